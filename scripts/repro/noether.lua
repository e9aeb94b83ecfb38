-- scripts/repro/noether.lua — drift of conserved quantities
-- (docs/background/conserved-quantities.md).
--
--   symlab scripts/repro/noether.lua [RESULTS_DIR]    (default results/)
--
-- 784-64-10 on 1000 MNIST-10k images (f64, full batch, cross-entropy): a ReLU
-- net with biases (per-neuron Q_j) and its linear twin (C = W1 W1ᵀ + b bᵀ −
-- W2ᵀ W2).  GD at eta in {0.2, 0.1, 0.05, 0.025} with the same time
-- eta * steps = 4: expected total drift proportional to eta (slope 1 in
-- log-log).  Then GD with weight decay lambda (Q decays as e^{-2 lambda t})
-- and Adam (no conservation).  The "conserved" hook reports the drift since
-- TRAIN_BEGIN after each epoch (one step each).
-- Writes noether_lr.csv, noether_curves.csv and noether.png.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"

local outdir = results.outdir((arg and arg[1]) or "results")
local t_start = sl.clock()

local data = sl.data.idx(sl.data.path("mnist10k"), "train"):subset(1, 1000)
local mean, std = data:stats()
data:normalize(mean, std)
local N, TIME = #data, 4.0

local function make(relu, seed)
  local specs = { sl.nn.flatten(), sl.nn.linear(784, 64) }
  if relu then specs[#specs + 1] = sl.nn.relu() end
  specs[#specs + 1] = sl.nn.linear(64, 10)
  return sl.nn.sequential(specs, { dtype = "f64", seed = seed })
end

-- Trains one arm; returns the history (one row per step).
local function run(relu, optname, optopts, steps)
  local net = make(relu, 1)
  local opt = sl.optim[optname](net, optopts)
  return sl.train(net, opt, data, { epochs = steps, batch = N, shuffle = false,
                                    progress = "never", hooks = { sl.hook.conserved {} } })
end

local lr_rows, curves = {}, {}
for _, eta in ipairs({ 0.2, 0.1, 0.05, 0.025 }) do
  local steps = math.floor(TIME / eta + 0.5)
  local hr = run(true, "sgd", { lr = eta }, steps)
  local hl = run(false, "sgd", { lr = eta }, steps)
  lr_rows[#lr_rows + 1] = { eta = eta, steps = steps,
    relu_Q_drift = hr[steps].Q0_drift, relu_loss = hr[steps].loss,
    linear_C_drift = hl[steps].C0_drift, linear_loss = hl[steps].loss,
    colsum_drift = hr[steps].colsum_drift }
end
for i = 2, #lr_rows do
  local a, b = lr_rows[i - 1], lr_rows[i]
  b.slope_Q = math.log(a.relu_Q_drift / b.relu_Q_drift) / math.log(a.eta / b.eta)
  b.slope_C = math.log(a.linear_C_drift / b.linear_C_drift) / math.log(a.eta / b.eta)
end
print(("GD, same time eta * steps = %g, full batch of %d: drift at the end"):format(TIME, N))
tbl.print(lr_rows, { "eta", "steps", "relu_Q_drift", "slope_Q", "linear_C_drift", "slope_C",
                     "colsum_drift", "relu_loss", "linear_loss" },
          { formats = { relu_Q_drift = "%.4g", linear_C_drift = "%.4g", slope_Q = "%.3f",
                        slope_C = "%.3f", colsum_drift = "%.2g", relu_loss = "%.4f",
                        linear_loss = "%.4f" } })
results.write_csv(outdir .. "/noether_lr.csv", lr_rows,
                  { "eta", "steps", "relu_Q_drift", "slope_Q", "linear_C_drift", "slope_C",
                    "colsum_drift", "relu_loss", "linear_loss" })

-- Weight decay and Adam, eta 0.1 for 40 steps (t = 4).
local LAMBDA, STEPS = 0.1, 40
local plain = run(true, "sgd", { lr = 0.1 }, STEPS)
local wd = run(true, "sgd", { lr = 0.1, weight_decay = LAMBDA }, STEPS)
local adam = run(true, "adam", { lr = 1e-3 }, STEPS)
local q0 = sl.probe.conserved(make(true, 1)).Q0_l2
local rows = {}
for s = 1, STEPS do
  rows[s] = { step = s, t = 0.1 * s, gd_Q_l2 = plain[s].Q0_l2, gd_drift = plain[s].Q0_drift,
              wd_Q_l2 = wd[s].Q0_l2, wd_predicted = q0 * math.exp(-2 * LAMBDA * 0.1 * s),
              adam_Q_l2 = adam[s].Q0_l2, adam_drift = adam[s].Q0_drift,
              gd_loss = plain[s].loss, wd_loss = wd[s].loss, adam_loss = adam[s].loss }
end
results.write_csv(outdir .. "/noether_curves.csv", rows,
                  { "step", "t", "gd_Q_l2", "gd_drift", "wd_Q_l2", "wd_predicted", "adam_Q_l2",
                    "adam_drift", "gd_loss", "wd_loss", "adam_loss" })
local show = {}
for _, s in ipairs({ 1, 10, 20, 40 }) do show[#show + 1] = rows[s] end
print(("\nReLU net, |Q|_2 over time (|Q(0)|_2 = %.4g); weight decay %g (prediction |Q(0)| e^{-2 lambda t}), Adam lr 1e-3")
      :format(q0, LAMBDA))
tbl.print(show, { "step", "t", "gd_Q_l2", "gd_drift", "wd_Q_l2", "wd_predicted", "adam_Q_l2",
                  "adam_drift", "gd_loss", "adam_loss" },
          { formats = { gd_Q_l2 = "%.5g", gd_drift = "%.3g", wd_Q_l2 = "%.5g",
                        wd_predicted = "%.5g", adam_Q_l2 = "%.5g", adam_drift = "%.3g",
                        gd_loss = "%.4f", adam_loss = "%.4f" } })

results.plot(outdir .. "/noether.png", ([[
set terminal pngcairo size 1000,450
set output '%s/noether.png'
set datafile separator ','
set multiplot layout 1,2
set logscale xy
set xlabel 'eta'; set ylabel 'drift at t = 4'
set title 'GD drift vs learning rate (same time)'
plot '%s/noether_lr.csv' using 1:3 every ::1 with linespoints title 'ReLU max_j |dQ_j|', \
     '' using 1:5 every ::1 with linespoints title 'linear |dC|_F'
unset logscale x
set xlabel 't = eta * steps'; set ylabel '|Q|_2'
set title 'ReLU net: |Q|_2 under GD, GD + weight decay, Adam'
plot '%s/noether_curves.csv' using 2:3 every ::1 with lines title 'GD', \
     '' using 2:5 every ::1 with lines title 'GD + wd', \
     '' using 2:6 every ::1 with lines dt 2 title 'e^{-2 lambda t} prediction', \
     '' using 2:7 every ::1 with lines title 'Adam'
unset multiplot
]]):format(outdir, outdir, outdir))
print(("total wall time: %.1f s"):format(sl.clock() - t_start))
