-- bench/mlp_symlab.lua — symlab's side of the PyTorch comparison (bench/run.sh).
--
--   symlab --threads N bench/mlp_symlab.lua NET BATCHES [SAMPLES] [REPS]
--   symlab --threads 1 bench/mlp_symlab.lua 784,256,256,10 16,64,256 8192 3
--
-- NET is a list of layer sizes (a ReLU MLP) or "cnn" (conv3x3(1->8, pad 1),
-- ReLU, maxpool 2, conv3x3(8->16, pad 1), ReLU, maxpool 2, linear(784->10)).
-- bench/mlp_torch.py builds the same net with the same initialisation scheme
-- (PyTorch's: U(-1/sqrt(fan_in), 1/sqrt(fan_in))), the same data (the first
-- SAMPLES standardised MNIST-10k training images), SGD with momentum 0.9,
-- cross-entropy, shuffled batches (the short last batch dropped).
--
-- Training is timed by sl.train's own per-epoch clock (one warm-up epoch,
-- then the median of REPS epochs), so a step includes everything a real
-- step does: gathering the batch, forward, loss, backward, optimizer.
-- Inference is sl.evaluate over the 2000 first test images in batches of
-- B, timed with sl.clock (monotonic wall time).  Prints key=value lines:
--   train net=... batch=B threads=N us_step=U samples_s=S
--   infer net=... batch=B threads=N samples_s=S
--   rss net=... threads=N peak_kb=K
local sl = require "symlab"

local net_arg = arg[1] or "784,256,256,10"
local batches = {}
for b in (arg[2] or "16,64,256"):gmatch("%d+") do batches[#batches + 1] = tonumber(b) end
local samples = tonumber(arg[3] or 8192)
local reps = tonumber(arg[4] or 3)

local wall = sl.clock

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function build()
  local specs
  if net_arg == "cnn" then
    specs = {
      sl.nn.conv2d { in_channels = 1, out_channels = 8, kernel_size = 3, padding = 1 },
      sl.nn.relu(), sl.nn.maxpool2d { kernel_size = 2 },
      sl.nn.conv2d { in_channels = 8, out_channels = 16, kernel_size = 3, padding = 1 },
      sl.nn.relu(), sl.nn.maxpool2d { kernel_size = 2 },
      sl.nn.flatten(), sl.nn.linear(16 * 7 * 7, 10),
    }
  else
    local sizes = {}
    for s in net_arg:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
    specs = { sl.nn.flatten() }
    for i = 1, #sizes - 1 do
      specs[#specs + 1] = sl.nn.linear(sizes[i], sizes[i + 1])
      if i < #sizes - 1 then specs[#specs + 1] = sl.nn.relu() end
    end
  end
  return sl.nn.sequential(specs, { seed = 1 })
end

local data = sl.data.idx(sl.data.path("mnist10k"))
local mean, std = data.train:stats()
data.train:normalize(mean, std)
data.test:normalize(mean, std)
local train = data.train:subset(1, samples)
local test = data.test:subset(1, 2000)

for _, b in ipairs(batches) do
  local net = build()
  local opt = sl.optim.sgd(net, { lr = 0.01, momentum = 0.9 })
  local times = {}
  sl.train(net, opt, train, {
    epochs = reps + 1, batch = b, drop_last = true, progress = "never",
    on_epoch = function(row) if row.epoch > 1 then times[#times + 1] = row.seconds end end,
  })
  local steps = samples // b
  local t = median(times)
  print(string.format("train net=%s batch=%d threads=%d us_step=%.1f samples_s=%.0f",
                      net_arg, b, sl.threads, t / steps * 1e6, steps * b / t))
  sl.evaluate(net, test, { batch = b }) -- warm-up: plans the buffers for this batch
  local inf = {}
  for _ = 1, reps do
    local t0 = wall()
    sl.evaluate(net, test, { batch = b })
    inf[#inf + 1] = wall() - t0
  end
  print(string.format("infer net=%s batch=%d threads=%d samples_s=%.0f", net_arg, b, sl.threads,
                      #test / median(inf)))
  net:close(); opt = nil
  collectgarbage()
end

local peak = 0
for line in io.lines("/proc/self/status") do
  local kb = line:match("^VmHWM:%s*(%d+)")
  if kb then peak = tonumber(kb) end
end
print(string.format("rss net=%s threads=%d peak_kb=%d", net_arg, sl.threads, peak))
