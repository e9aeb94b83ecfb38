-- tests/lua/resume_child.lua — the training run that test_resume.lua kills
-- and resumes in a separate symlab process.
--
--   symlab resume_child.lua MODE OPTIM CKPT OUT
--
-- MODE: "full" trains 4 epochs; "crash" trains the same run writing the
-- training checkpoint CKPT every 5 steps and kills its own process with
-- SIGKILL at step 23 (mid-epoch 3, after the checkpoint of step 20);
-- "resume" reruns the same call with resume = CKPT.  Every mode that ends
-- writes the final parameters to OUT (net:save), the history's losses, as
-- exact hexadecimal floats, to OUT .. ".hist", and the number of steps it
-- took to OUT .. ".steps".
local mode, optim, ckpt, out = arg[1], arg[2], arg[3], arg[4]
local sl = require "symlab"

-- 96 samples of 6 features, 3 classes, from a fixed formula.
local xs, ys = {}, {}
for i = 1, 96 do
  for j = 1, 6 do xs[#xs + 1] = math.sin(i * 1.7 + j * 0.31) + 0.1 * j end
  ys[i] = (i * 7) % 3
end
local d = sl.data.from(sl.tensor.from(xs, { 96, 6 }), sl.tensor.from(ys, { 96 }, "i64"))

local net = sl.nn.sequential({ sl.nn.linear(6, 16), sl.nn.dropout { p = 0.25 }, sl.nn.relu(),
                               sl.nn.linear(16, 3) }, { seed = 5 })
local opt = optim == "adam" and sl.optim.adam(net, { lr = 0.01 })
            or sl.optim.sgd(net, { lr = 0.1, momentum = 0.9 })
local S = sl.optim.schedule
local sched = S.warmup { length = 6, start_factor = 0.2, interval = "step",
                         after = S.cosine { t_max = 40, eta_min = 0.001, interval = "step" } }

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

local opts = { epochs = 4, batch = 10, seed = 3, progress = "never", schedule = sched }
if mode == "crash" then
  opts.checkpoint = { path = ckpt, every_steps = 5 }
  opts.on_step = function(row)
    if row.step == 23 then os.execute("kill -KILL " .. own_pid()) end
  end
elseif mode == "resume" then
  opts.resume = ckpt
end
local steps = 0
local on_step = opts.on_step
opts.on_step = function(row)
  steps = steps + 1
  if on_step then on_step(row) end
end
local hist = sl.train(net, opt, d, opts)
net:save(out)
local f = assert(io.open(out .. ".hist", "w"))
for _, row in ipairs(hist) do f:write(("%d %a\n"):format(row.epoch, row.loss)) end
f:close()
f = assert(io.open(out .. ".steps", "w"))
f:write(steps, "\n")
f:close()
