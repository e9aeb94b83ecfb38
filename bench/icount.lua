-- bench/icount.lua — the workloads `make bench-icount` counts instructions of
-- (bench/icount.sh runs this under valgrind; see there).
--
--   symlab --threads 1 bench/icount.lua WHAT REPS
--
-- WHAT is one of
--   mlp    REPS epochs of SGD-momentum training, 784-256-256-10 ReLU MLP,
--          batch 64, on the first 1024 MNIST-10k training images (16 steps
--          an epoch, the whole training step: gather, forward, loss,
--          backward, update);
--   cnn    the same for bench/mlp_symlab.lua's CNN (conv8-pool-conv16-pool-
--          linear), batch 64;
--   infer  REPS evaluations (forward, loss, accuracy) of the MLP over the
--          first 1024 test images in batches of 256;
--   qc     REPS cost evaluations of an 8-qubit, 4-layer hardware-efficient
--          circuit with amplitude damping after every gate (f64 density
--          matrix).
-- The script prints nothing on success.  The workload runs REPS times after
-- an identical set-up, so the difference between two REPS values is the
-- steady-state cost of the extra repetitions alone: start-up, data loading
-- and the first step's buffer growth cancel out.
local sl = require "symlab"

local what, reps = arg[1], tonumber(arg[2] or "")
if not (what and reps and reps >= 1) then
  error("usage: symlab bench/icount.lua mlp|cnn|infer|qc REPS", 0)
end

local function mlp()
  return sl.nn.sequential({
    sl.nn.flatten(), sl.nn.linear(784, 256), sl.nn.relu(),
    sl.nn.linear(256, 256), sl.nn.relu(), sl.nn.linear(256, 10),
  }, { seed = 1 })
end

local function cnn()
  return sl.nn.sequential({
    sl.nn.conv2d { in_channels = 1, out_channels = 8, kernel_size = 3, padding = 1 },
    sl.nn.relu(), sl.nn.maxpool2d { kernel_size = 2 },
    sl.nn.conv2d { in_channels = 8, out_channels = 16, kernel_size = 3, padding = 1 },
    sl.nn.relu(), sl.nn.maxpool2d { kernel_size = 2 },
    sl.nn.flatten(), sl.nn.linear(16 * 7 * 7, 10),
  }, { seed = 1 })
end

local function mnist()
  local data = sl.data.idx(sl.data.path("mnist10k"))
  return data.train:subset(1, 1024), data.test:subset(1, 1024)
end

local function train(net)
  local train_set = mnist()
  local opt = sl.optim.sgd(net, { lr = 0.01, momentum = 0.9 })
  sl.train(net, opt, train_set, { epochs = reps, batch = 64, drop_last = true,
                                  progress = "never", seed = 1 })
end

if what == "mlp" then
  train(mlp())
elseif what == "cnn" then
  train(cnn())
elseif what == "infer" then
  local _, test = mnist()
  local net = mlp()
  for _ = 1, reps do sl.evaluate(net, test, { batch = 256 }) end
elseif what == "qc" then
  local qc = require "symlab.qc"
  local net = qc.model(qc.hea(8, 4, { noise = qc.noise("amplitude_damping", 0.01) }), 1)
  for _ = 1, reps do qc.cost(net) end
else
  error("bench/icount.lua: unknown workload '" .. what .. "' (mlp, cnn, infer or qc)", 0)
end
