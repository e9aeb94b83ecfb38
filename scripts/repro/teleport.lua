-- scripts/repro/teleport.lua — symmetry teleportation (../shared/PAPERS.md 4.3, 4.5).
--
--   symlab scripts/repro/teleport.lua [RESULTS_DIR]   (default results/)
--
-- (1) Multi-layer regression after the 2022 code: 4 samples, leaky_relu(0.1),
--     all entries U[0,1), full-batch GD lr 1e-4 for 300 epochs, 5 seeds, with
--     and without ONE teleport (2022 action, 8 ascent steps) at epoch 5.
--     DEVIATION: the output has 1 dimension (dims 5-6-7-1), not 8: a Lua
--     script cannot yet build a dataset with multi-column regression
--     targets (sl.data.csv gives one target column).  Loss is symlab's mse
--     (mean), so learning rates differ from the reference's 0.5 * sum.
-- (2) MNIST-10k 784-16-10-10, no biases, leaky_relu(0.1), cross-entropy,
--     batch 20, 5 epochs (not 40), 3 seeds; SGD lr 1e-2 and Adagrad lr 1e-2,
--     with and without teleports on the first 8 minibatches of epoch 2
--     (2023 action, teleport batch 200, 10 steps, lr 1e-4, cap 100, optimizer
--     reset), as the 2023 code; and a control arm with teleport lr 0, which
--     leaves the weights alone and only resets the optimizer.
-- Writes teleport_regression.csv, teleport_mnist.csv and teleport.png.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"

local outdir = (arg and arg[1]) or "results"
os.execute("mkdir -p '" .. outdir .. "'")

local function csv_dataset(rows)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  for _, r in ipairs(rows) do f:write(table.concat(r, ","), "\n") end
  f:close()
  local ds = sl.data.csv(path, { classes = false })
  os.remove(path)
  return ds
end

------------------------------------------------------------- (1) regression
local DIMS, NS, EPOCHS = { 5, 6, 7, 1 }, 4, 300
local TELE_LRS = { 1e-7, 1e-6 } -- the reference code's 1e-7, and 10x

local function regression(seed, tele_lr)
  math.randomseed(seed)
  local rows = {}
  for i = 1, NS do
    local r = {}
    for j = 1, DIMS[1] + DIMS[#DIMS] do r[j] = math.random() end
    rows[i] = r
  end
  local ds = csv_dataset(rows)
  local specs = {}
  for l = 1, #DIMS - 1 do
    specs[#specs + 1] = sl.nn.linear(DIMS[l], DIMS[l + 1], { bias = false })
    if l < #DIMS - 1 then specs[#specs + 1] = sl.nn.leaky_relu { negative_slope = 0.1 } end
  end
  local net = sl.nn.sequential(specs, { dtype = "f64", seed = seed })
  for _, p in ipairs(net:parameters()) do -- torch.rand init
    local s = p.tensor:shape()
    for i = 1, s[1] do for j = 1, s[2] do p.tensor:set(i, j, math.random()) end end
  end
  local opt = sl.optim.sgd(net, { lr = 1e-4 })
  local hooks = {}
  if tele_lr then
    hooks[1] = sl.hook.teleport { form = "2022", epoch = 5, count = 1, steps = 8, lr = tele_lr,
                                  cap = 0, loss_tol = 1e-6 }
  end
  local hist = sl.train(net, opt, ds, { epochs = EPOCHS, batch = NS, loss = "mse",
                                        shuffle = false, progress = "never", hooks = hooks })
  return hist
end

local reg_rows, reg_table = {}, {}
for seed = 1, 5 do
  local plain = regression(seed, nil)
  local tele = {}
  for _, lr in ipairs(TELE_LRS) do
    local h = regression(seed, lr)
    tele[lr] = h
    local t = h[6] -- the epoch-5 row (0-based epoch 5) carries the teleport report
    reg_table[#reg_table + 1] = {
      teleport_lr = lr, seed = seed, gradsq_before = t.teleport_gradsq_before,
      gradsq_after = t.teleport_gradsq_after,
      loss_rel_change = (t.teleport_loss_after - t.teleport_loss_before) / t.teleport_loss_before,
      accepted = t.teleports, loss50_gd = plain[50].loss, loss50_tp = h[50].loss,
      loss300_gd = plain[EPOCHS].loss, loss300_tp = h[EPOCHS].loss }
  end
  for e = 1, EPOCHS do
    reg_rows[#reg_rows + 1] = { seed = seed, epoch = e, loss_gd = plain[e].loss,
                                loss_tp_1e7 = tele[1e-7][e].loss, loss_tp_1e6 = tele[1e-6][e].loss }
  end
end
print("(1) regression 5-6-7-1, 4 samples, GD lr 1e-4, one 2022 teleport at epoch 5 (8 steps)")
tbl.print(reg_table, { "teleport_lr", "seed", "gradsq_before", "gradsq_after", "loss_rel_change",
                       "accepted", "loss50_gd", "loss50_tp", "loss300_gd", "loss300_tp" },
          { formats = { gradsq_before = "%.4g", gradsq_after = "%.4g", loss_rel_change = "%.1e",
                        loss50_gd = "%.4g", loss50_tp = "%.4g", loss300_gd = "%.4g",
                        loss300_tp = "%.4g" } })
results.write_csv(outdir .. "/teleport_regression.csv", reg_rows,
                  { "seed", "epoch", "loss_gd", "loss_tp_1e7", "loss_tp_1e6" })

----------------------------------------------------------------- (2) MNIST
local data = sl.data.idx(sl.data.path("mnist10k"))
local MEPOCHS, MSEEDS = 5, { 1, 2, 3 }
local mnist_rows, mnist_table = {}, {}
for _, o in ipairs({ { "sgd", 1e-2 }, { "adagrad", 1e-2 } }) do
  for _, seed in ipairs(MSEEDS) do
    local curves = {}
    -- arms: none; teleport; the same hook with lr 0, which (batch 200 > width
    -- 16, so A A⁺ = I) moves nothing and only resets the optimizer: the
    -- control for Adagrad, whose reset alone raises its step size.
    for _, tp in ipairs({ "none", "teleport", "reset" }) do
      local net = sl.nn.sequential({ sl.nn.flatten(),
        sl.nn.linear(784, 16, { bias = false }), sl.nn.leaky_relu { negative_slope = 0.1 },
        sl.nn.linear(16, 10, { bias = false }), sl.nn.leaky_relu { negative_slope = 0.1 },
        sl.nn.linear(10, 10, { bias = false }) }, { seed = seed })
      local opt = sl.optim[o[1]](net, { lr = o[2] })
      local hooks = {}
      if tp ~= "none" then
        hooks[1] = sl.hook.teleport { form = "2023", epoch = 2, count = 8, batch = 200, steps = 10,
                                      lr = tp == "teleport" and 1e-4 or 0, cap = 100, reset_optim = true, loss_tol = 0.05,
                                      seed = seed }
      end
      curves[tp] = sl.train(net, opt, data.train, { epochs = MEPOCHS, batch = 20, shuffle = false,
                                                   progress = "never", seed = seed, val = data.test,
                                                   hooks = hooks })
    end
    for e = 1, MEPOCHS do
      mnist_rows[#mnist_rows + 1] = { optimizer = o[1], seed = seed, epoch = e,
        loss = curves.none[e].loss, loss_teleport = curves.teleport[e].loss,
        loss_reset = curves.reset[e].loss,
        val_loss = curves.none[e].val_loss, val_loss_teleport = curves.teleport[e].val_loss,
        val_loss_reset = curves.reset[e].val_loss }
    end
    local t = curves.teleport[3]
    mnist_table[#mnist_table + 1] = { optimizer = o[1], seed = seed, accepted = t.teleports,
      rejected = t.teleports_rejected,
      last_gradsq = ("%.3g -> %.3g"):format(t.teleport_gradsq_before, t.teleport_gradsq_after),
      last_loss = ("%.4f -> %.4f"):format(t.teleport_loss_before, t.teleport_loss_after),
      loss_e3 = curves.none[3].loss, loss_e3_tp = curves.teleport[3].loss,
      loss_e5 = curves.none[MEPOCHS].loss, loss_e5_tp = curves.teleport[MEPOCHS].loss,
      loss_e5_reset = curves.reset[MEPOCHS].loss,
      val_e5 = curves.none[MEPOCHS].val_loss, val_e5_tp = curves.teleport[MEPOCHS].val_loss,
      val_e5_reset = curves.reset[MEPOCHS].val_loss }
  end
end
print("\n(2) MNIST-10k 784-16-10-10, batch 20, teleports (2023) on the first 8 steps of epoch 3")
tbl.print(mnist_table, { "optimizer", "seed", "accepted", "rejected", "last_gradsq", "last_loss",
                         "loss_e3", "loss_e3_tp", "loss_e5", "loss_e5_tp", "loss_e5_reset", "val_e5",
                         "val_e5_tp", "val_e5_reset" },
          { formats = { loss_e3 = "%.4f", loss_e3_tp = "%.4f", loss_e5 = "%.4f",
                        loss_e5_tp = "%.4f", loss_e5_reset = "%.4f", val_e5 = "%.4f",
                        val_e5_tp = "%.4f", val_e5_reset = "%.4f" } })
results.write_csv(outdir .. "/teleport_mnist.csv", mnist_rows,
                  { "optimizer", "seed", "epoch", "loss", "loss_teleport", "loss_reset", "val_loss",
                    "val_loss_teleport", "val_loss_reset" })

------------------------------------------------------------------- the plot
if os.execute("command -v gnuplot >/dev/null 2>&1") then
  local gp = assert(io.popen("gnuplot", "w"))
  gp:write(([[
set terminal pngcairo size 1000,450
set output '%s/teleport.png'
set datafile separator ','
set multiplot layout 1,2
set logscale y
set xlabel 'epoch'; set ylabel 'train loss (mse)'
set title 'regression 5-6-7-1, seed 1'
plot '< awk -F, "NR>1 && \$1==1" %s/teleport_regression.csv' using 2:3 with lines title 'GD', \
     '' using 2:4 with lines title 'GD + teleport (lr 1e-7) at epoch 5', \
     '' using 2:5 with lines title 'GD + teleport (lr 1e-6) at epoch 5'
set title 'MNIST 784-16-10-10, seed 1'
set ylabel 'train loss (cross-entropy)'
plot '< awk -F, "NR>1 && \$2==1 && \$1==\"sgd\"" %s/teleport_mnist.csv' using 3:4 with linespoints title 'SGD', \
     '' using 3:5 with linespoints title 'SGD + teleport', \
     '< awk -F, "NR>1 && \$2==1 && \$1==\"adagrad\"" %s/teleport_mnist.csv' using 3:4 with linespoints title 'Adagrad', \
     '' using 3:5 with linespoints title 'Adagrad + teleport', \
     '' using 3:6 with linespoints title 'Adagrad + reset only'
unset multiplot
]]):format(outdir, outdir, outdir, outdir))
  gp:close()
  print("plot: " .. outdir .. "/teleport.png")
else
  print("gnuplot not found: no plot")
end
