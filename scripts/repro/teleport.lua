-- scripts/repro/teleport.lua — symmetry teleportation (docs/background/teleportation.md).
--
--   symlab scripts/repro/teleport.lua [RESULTS_DIR]   (default results/)
--   symlab sweep run scripts/repro/teleport.lua --jobs 2   (or mpirun, Slurm: docs/sweeps.md)
--   SYMLAB_TELEPORT_SEEDS=20 SYMLAB_TELEPORT_PARTS=regression symlab ...
--     regression seeds 1..N (default 5); "regression" leaves out MNIST
--
-- A sweep: one task per run (regression: 15 arms x the seeds; MNIST: 6
-- arms x 3 seeds); the tables below come from the gathered rows.
-- (1) Multi-layer regression after the 2022 code (multi_layer_regression.py):
--     dims [4,5,6,7,8], i.e. 4 samples, net 5-6-7-8 without biases,
--     leaky_relu(0.1), X, Y and weights all U[0,1), 300 epochs of full-batch
--     GD, with and without ONE teleport (8 ascent steps) before the step of
--     epoch 5 (0-based); and the reference's AdaGrad arm (lr 1e-1, teleport
--     lr 1e-5, 2 steps, accumulator kept).  The GD teleport comes in modes:
--     exact (2022 action with the exact g⁻¹, no guard), the exact action
--     with each runaway guard (max_growth, max_t_norm, sharpness_guard) and
--     with all three, and reference_2022 (the paper's own first-order,
--     not loss-preserving update, accepted whatever the loss does).
--     The reference loss is 0.5 * sum of squares; symlab's mse is the mean
--     over N * 8 = 32 entries, i.e. L_ref / 16.  So GD lr 1e-4 becomes
--     1.6e-3 and teleport lr 1e-7 becomes 1e-7 * 16^2 (the objective
--     |grad L|^2 scales by 1/256): the same trajectories up to rounding.
--     Losses and |grad L|^2 are reported in the reference's units.
-- (2) MNIST-10k 784-16-10-10, no biases, leaky_relu(0.1), cross-entropy,
--     batch 20, 5 epochs (not 40), 3 seeds; SGD lr 1e-2 and Adagrad lr 1e-2,
--     with and without teleports on the first 8 minibatches of epoch 2
--     (2023 action, teleport batch 200, 10 steps, lr 1e-4, cap 100, optimizer
--     reset), as the 2023 code; and a control arm with teleport lr 0, which
--     leaves the weights alone and only resets the optimizer.
-- Writes teleport_regression.csv, teleport_mnist.csv and teleport.png into
-- RESULTS_DIR/teleport, beside the sweep's own tables.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local sweep = require "symlab.sweep"

------------------------------------------------------------- (1) regression
local NSEEDS = math.tointeger(tonumber(os.getenv("SYMLAB_TELEPORT_SEEDS") or "5"))
local PARTS = os.getenv("SYMLAB_TELEPORT_PARTS") or "all"
assert(NSEEDS and NSEEDS >= 1, "SYMLAB_TELEPORT_SEEDS must be a positive integer")
assert(PARTS == "all" or PARTS == "regression", "SYMLAB_TELEPORT_PARTS must be all or regression")
local DIMS, NS, EPOCHS = { 5, 6, 7, 8 }, 4, 300
local LSCALE = NS * DIMS[#DIMS] / 2 -- L_ref = LSCALE * mse; grad scales likewise
-- GD: the reference's teleport lr 1e-7, and 1e-8 and 3e-8 because at 1e-7
-- the ascent overshoots in some seeds (|grad L|^2 x 100 or more) and GD at
-- lr 1e-4 then diverges.  AdaGrad: the reference's 1e-5.  Adagrad's step
-- is invariant to the gradient's scale, so its lr stays 1e-1.
-- Guards (teleport options): max_growth 10 keeps |grad L|^2 within x10 of
-- its value before the teleport; max_t_norm 0.05 clamps each ascent step's
-- |T_m|_F (8 steps: g within about e^0.4 of I); sharpness_guard rejects a
-- teleport whose top Hessian eigenvalue exceeds 2 / (GD's lr).
local HUGE_TOL = 1e300 -- the reference code checks no loss
local MODES = {
  exact = {},
  growth = { max_growth = 10 },
  tnorm = { max_t_norm = 0.05 },
  sharp = { sharpness_guard = true },
  guarded = { max_growth = 10, max_t_norm = 0.05, sharpness_guard = true },
  reference = { form = "reference_2022", loss_tol = HUGE_TOL },
}
local ARMS = {
  { name = "gd", opt = "sgd", lr = 1e-4 * LSCALE, steps = 8,
    tele = { { "exact", 1e-8 }, { "exact", 3e-8 }, { "exact", 1e-7 },
             { "growth", 3e-8 }, { "growth", 1e-7 }, { "tnorm", 3e-8 }, { "tnorm", 1e-7 },
             { "sharp", 3e-8 }, { "sharp", 1e-7 }, { "guarded", 3e-8 }, { "guarded", 1e-7 },
             { "reference", 3e-8 }, { "reference", 1e-7 } } },
  { name = "adagrad", opt = "adagrad", lr = 1e-1, steps = 2, tele = { { "exact", 1e-5 } } },
}

local function rand_tensor(rows, cols)
  local flat = {}
  for i = 1, rows * cols do flat[i] = math.random() end
  return sl.tensor.from(flat, { rows, cols }, "f64")
end

local function regression(seed, arm, tele)
  math.randomseed(seed)
  local x, y = rand_tensor(NS, DIMS[1]), rand_tensor(NS, DIMS[#DIMS])
  local ds = sl.data.from(x, y) -- x (4, 5), y (4, 8)
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
  local opt = sl.optim[arm.opt](net, { lr = arm.lr })
  local hooks = {}
  if tele then
    local o = { form = "2022", epoch = 5, count = 1, steps = arm.steps,
                lr = tele[2] * LSCALE * LSCALE, cap = 0, loss_tol = 1e-6, reset_optim = false }
    for k, v in pairs(MODES[tele[1]]) do o[k] = v end
    hooks[1] = sl.hook.teleport(o)
  end
  -- a run that blows up stops with an error: keep the rows up to there
  local rows = {}
  local ok, err = pcall(sl.train, net, opt, ds, {
    epochs = EPOCHS, batch = NS, loss = "mse", shuffle = false, progress = "never",
    hooks = hooks, on_epoch = function(row) rows[#rows + 1] = row end })
  if not ok and not tostring(err):find("loss is") then error(err) end
  return rows
end

-- The regression task: the loss curve (mse units) and, with a teleport, what
-- the epoch-5 row says about it.
local function regression_task(c, seed)
  local arm = c.optimizer == "gd" and ARMS[1] or ARMS[2]
  local h = regression(seed, arm, c.teleport_lr and { c.mode, c.teleport_lr })
  local row = { loss = {} }
  for e, r in ipairs(h) do row.loss[e] = r.loss end
  if c.teleport_lr then
    local t = assert(h[6], "diverged before the teleport") -- epoch-5 row (0-based 5)
    for _, k in ipairs({ "teleport_gradsq_before", "teleport_gradsq_after", "teleport_loss_before",
                         "teleport_loss_after", "teleports", "teleport_steps" }) do row[k] = t[k] end
  end
  return row
end

-- epochs after the teleport (rows 7..300) where the teleported run's loss is
-- below the plain run's: the 2022 claim is "all of them"
local function below(plain, h)
  local n = 0
  for e = 7, EPOCHS do if h[e] and h[e] < plain[e] then n = n + 1 end end
  return n
end

-- loss of epoch e in the reference's units; nil once the run has diverged
local function loss_at(h, e) return h[e] and h[e] * LSCALE end
local function final(h)
  return #h == EPOCHS and h[EPOCHS] * LSCALE or ("diverged@%d"):format(#h + 1)
end

-- first epoch (1-based) whose loss (reference units) is below `level`, or "-"
local function reach(h, level)
  for e = 1, #h do if h[e] * LSCALE < level then return e end end
  return "-"
end

-- the curve's CSV column: loss_gd_tp_1e8 etc. for the exact arms (as
-- before the modes), loss_gd_<mode>_1e7 for the others
local function column(arm, tele)
  local lr = ("%.0e"):format(tele[2]):gsub("e%-0*", "e")
  return tele[1] == "exact" and ("loss_%s_tp_%s"):format(arm.name, lr)
      or ("loss_%s_%s_%s"):format(arm.name, tele[1], lr)
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  if n == 0 then return nil end
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local RUN_COLUMNS = { "optimizer", "mode", "teleport_lr", "seed", "gradsq_before", "gradsq_after",
                      "loss_rel_change", "accepted", "steps", "loss50", "loss50_tp", "loss300",
                      "loss300_tp", "to1", "to1_tp", "below", "to_plain300" }

-- Per arm over the seeds: runs ending lower at epoch 300, diverged runs,
-- geometric mean of loss300_tp / loss300 over the runs that finished,
-- medians of the teleport's |grad L|^2 and loss ratios (after / before) and
-- of the epochs to reach plain GD's epoch-300 loss (never: 301).
local function summarise(reg_table)
  local summary = {}
  for _, arm in ipairs(ARMS) do
    for _, tele in ipairs(arm.tele) do
      local n, lower, div, logsum, bel, acc = 0, 0, 0, 0, 0, 0
      local growth, lossr, reach300 = {}, {}, {}
      for _, r in ipairs(reg_table) do
        if r.optimizer == arm.name and r.mode == tele[1] and r.teleport_lr == tele[2] then
          n = n + 1
          bel = bel + r.below
          acc = acc + math.tointeger(r.accepted)
          growth[#growth + 1] = r.gradsq_after / r.gradsq_before
          lossr[#lossr + 1] = 1 + r.loss_rel_change
          reach300[#reach300 + 1] = r.to_plain300 == "-" and EPOCHS + 1 or r.to_plain300
          if type(r.loss300_tp) == "string" then div = div + 1
          else
            if r.loss300_tp < r.loss300 then lower = lower + 1 end
            logsum = logsum + math.log(r.loss300_tp / r.loss300)
          end
        end
      end
      summary[#summary + 1] = { optimizer = arm.name, mode = tele[1], teleport_lr = tele[2],
        accepted = acc .. "/" .. n, lower_at_300 = lower .. "/" .. n, diverged = div .. "/" .. n,
        geomean_ratio_300 = n > div and math.exp(logsum / (n - div)) or "-",
        mean_below = bel / n, median_gradsq_x = median(growth), median_loss_x = median(lossr),
        median_to_plain300 = median(reach300) }
    end
  end
  tbl.print(summary, { "optimizer", "mode", "teleport_lr", "accepted", "lower_at_300", "diverged",
                       "geomean_ratio_300", "mean_below", "median_gradsq_x", "median_loss_x",
                       "median_to_plain300" },
            { formats = { geomean_ratio_300 = "%.3f", mean_below = "%.0f", median_gradsq_x = "%.3g",
                          median_loss_x = "%.3g" } })
end

-- The regression tables, from the rows: per (arm, mode, teleport lr, seed),
-- and per arm over the seeds.
local function regression_report(groups, outdir)
  local run = {} -- "optimizer|mode|lr|seed" -> row values (lr "none": no teleport)
  local function key(arm, mode, lr, seed)
    return ("%s|%s|%s|%d"):format(arm, tostring(mode or "none"), tostring(lr or "none"), seed)
  end
  for _, g in ipairs(groups) do
    if g.config.part == "regression" then
      for _, r in ipairs(g.rows) do
        run[key(g.config.optimizer, g.config.mode, g.config.teleport_lr, r.seed)] = r.values
      end
    end
  end
  local reg_rows, reg_table = {}, {}
  for seed = 1, NSEEDS do
    local curves = {}
    for _, arm in ipairs(ARMS) do
      local plain = run[key(arm.name, nil, nil, seed)]
      if not plain then return end -- a partial sweep: no regression tables yet
      curves["loss_" .. arm.name] = plain.loss
      for _, tele in ipairs(arm.tele) do
        local t = run[key(arm.name, tele[1], tele[2], seed)]
        if not t then return end
        local h = t.loss
        curves[column(arm, tele)] = h
        reg_table[#reg_table + 1] = {
          optimizer = arm.name, mode = tele[1], teleport_lr = tele[2], seed = seed,
          gradsq_before = t.teleport_gradsq_before * LSCALE ^ 2,
          gradsq_after = t.teleport_gradsq_after * LSCALE ^ 2,
          loss_rel_change = (t.teleport_loss_after - t.teleport_loss_before) / t.teleport_loss_before,
          accepted = t.teleports, steps = t.teleport_steps,
          loss50 = loss_at(plain.loss, 50), loss50_tp = loss_at(h, 50) or "-",
          loss300 = final(plain.loss), loss300_tp = final(h),
          to1 = reach(plain.loss, 1), to1_tp = reach(h, 1), below = below(plain.loss, h),
          to_plain300 = reach(h, plain.loss[EPOCHS] * LSCALE * (1 + 1e-12)) }
      end
    end
    for e = 1, EPOCHS do
      local row = { seed = seed, epoch = e }
      for k, h in pairs(curves) do row[k] = loss_at(h, e) end
      reg_rows[#reg_rows + 1] = row
    end
  end
  local reg_columns = { "seed", "epoch" }
  for _, arm in ipairs(ARMS) do
    reg_columns[#reg_columns + 1] = "loss_" .. arm.name
    for _, tele in ipairs(arm.tele) do reg_columns[#reg_columns + 1] = column(arm, tele) end
  end
  -- the plot reads the exact GD and AdaGrad curves by position
  table.sort(reg_columns, function(a, b)
    local function rank(c)
      local fixed = { seed = 1, epoch = 2, loss_gd = 3, loss_gd_tp_1e8 = 4, loss_gd_tp_3e8 = 5,
                      loss_gd_tp_1e7 = 6, loss_adagrad = 7, loss_adagrad_tp_1e5 = 8 }
      return fixed[c] or 100
    end
    if rank(a) ~= rank(b) then return rank(a) < rank(b) end
    return a < b
  end)
  print(("(1) regression 5-6-7-8, 4 samples, one teleport at epoch 5, seeds 1..%d; loss = 0.5 sum"):format(NSEEDS))
  print("    of squares, teleport lr and |grad L|^2 in the reference's units; to1 = first epoch with loss < 1")
  tbl.print(reg_table, RUN_COLUMNS,
            { formats = { gradsq_before = "%.4g", gradsq_after = "%.4g", loss_rel_change = "%.1e",
                          loss50 = "%.4g", loss50_tp = "%.4g", loss300 = "%.4g",
                          loss300_tp = "%.4g" } })
  print("    diverged@E: stopped at epoch E with an infinite loss; below: of the 294 epochs after")
  print("    the teleport, how many have a lower loss than the run without it; to_plain300: first")
  print("    epoch at or below the run without it's epoch-300 loss")
  summarise(reg_table)
  results.write_csv(outdir .. "/teleport_regression.csv", reg_rows, reg_columns)
  results.write_csv(outdir .. "/teleport_regression_runs.csv", reg_table, RUN_COLUMNS)
end

----------------------------------------------------------------- (2) MNIST
local MEPOCHS, MSEEDS = 5, { 1, 2, 3 }
local data -- loaded once per process
local MNIST_OPTS = { sgd = 1e-2, adagrad = 1e-2 }

-- One MNIST run; arms: none; teleport; the same hook with lr 0, which (batch
-- 200 > width 16, so A A⁺ = I) moves nothing and only resets the optimizer:
-- the control for Adagrad, whose reset alone raises its step size.
local function mnist_task(c, seed)
  data = data or sl.data.idx(sl.data.path("mnist10k"))
  local tp = c.teleport
  local net = sl.nn.sequential({ sl.nn.flatten(),
    sl.nn.linear(784, 16, { bias = false }), sl.nn.leaky_relu { negative_slope = 0.1 },
    sl.nn.linear(16, 10, { bias = false }), sl.nn.leaky_relu { negative_slope = 0.1 },
    sl.nn.linear(10, 10, { bias = false }) }, { seed = seed })
  local opt = sl.optim[c.optimizer](net, { lr = MNIST_OPTS[c.optimizer] })
  local hooks = {}
  if tp ~= "none" then
    hooks[1] = sl.hook.teleport { form = "2023", epoch = 2, count = 8, batch = 200, steps = 10,
                                  lr = tp == "teleport" and 1e-4 or 0, cap = 100, reset_optim = true, loss_tol = 0.05,
                                  seed = seed }
  end
  local h = sl.train(net, opt, data.train, { epochs = MEPOCHS, batch = 20, shuffle = false,
                                             progress = "never", seed = seed, val = data.test,
                                             hooks = hooks })
  local row = { loss = {}, val_loss = {} }
  for e, r in ipairs(h) do row.loss[e], row.val_loss[e] = r.loss, r.val_loss end
  for _, k in ipairs({ "teleports", "teleports_rejected", "teleport_gradsq_before",
                       "teleport_gradsq_after", "teleport_loss_before", "teleport_loss_after" }) do
    row[k] = h[3][k]
  end
  return row
end

local function mnist_report(groups, outdir)
  local run = {} -- "optimizer|teleport|seed" -> row values
  for _, g in ipairs(groups) do
    if g.config.part == "mnist" then
      for _, r in ipairs(g.rows) do
        run[("%s|%s|%d"):format(g.config.optimizer, g.config.teleport, r.seed)] = r.values
      end
    end
  end
  local mnist_rows, mnist_table = {}, {}
  for _, o in ipairs({ "sgd", "adagrad" }) do
    for _, seed in ipairs(MSEEDS) do
      local curves = {}
      for _, tp in ipairs({ "none", "teleport", "reset" }) do
        curves[tp] = run[("%s|%s|%d"):format(o, tp, seed)]
        if not curves[tp] then return end -- a partial sweep: no MNIST tables yet
      end
      for e = 1, MEPOCHS do
        mnist_rows[#mnist_rows + 1] = { optimizer = o, seed = seed, epoch = e,
          loss = curves.none.loss[e], loss_teleport = curves.teleport.loss[e],
          loss_reset = curves.reset.loss[e],
          val_loss = curves.none.val_loss[e], val_loss_teleport = curves.teleport.val_loss[e],
          val_loss_reset = curves.reset.val_loss[e] }
      end
      local t = curves.teleport
      mnist_table[#mnist_table + 1] = { optimizer = o, seed = seed, accepted = t.teleports,
        rejected = t.teleports_rejected,
        last_gradsq = ("%.3g -> %.3g"):format(t.teleport_gradsq_before, t.teleport_gradsq_after),
        last_loss = ("%.4f -> %.4f"):format(t.teleport_loss_before, t.teleport_loss_after),
        loss_e3 = curves.none.loss[3], loss_e3_tp = curves.teleport.loss[3],
        loss_e5 = curves.none.loss[MEPOCHS], loss_e5_tp = curves.teleport.loss[MEPOCHS],
        loss_e5_reset = curves.reset.loss[MEPOCHS],
        val_e5 = curves.none.val_loss[MEPOCHS], val_e5_tp = curves.teleport.val_loss[MEPOCHS],
        val_e5_reset = curves.reset.val_loss[MEPOCHS] }
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
end

---------------------------------------------------------------- the sweep
local configs = {}
for _, arm in ipairs(ARMS) do
  configs[#configs + 1] = { part = "regression", optimizer = arm.name }
  for _, tele in ipairs(arm.tele) do
    configs[#configs + 1] = { part = "regression", optimizer = arm.name, mode = tele[1],
                              teleport_lr = tele[2] }
  end
end
for _, o in ipairs(PARTS == "all" and { "sgd", "adagrad" } or {}) do
  for _, tp in ipairs({ "none", "teleport", "reset" }) do
    configs[#configs + 1] = { part = "mnist", optimizer = o, teleport = tp }
  end
end

local S = sweep.define {
  name = "teleport",
  configs = configs,
  axes = { "part", "optimizer", "mode", "teleport_lr", "teleport" },
  seeds = function(c) return c.part == "regression" and NSEEDS or MSEEDS end,
  task = function(c, seed)
    if c.part == "regression" then return regression_task(c, seed) end
    return mnist_task(c, seed)
  end,
  report = function(groups, outdir)
    regression_report(groups, outdir)
    mnist_report(groups, outdir)
  end,
  plot = function(outdir)
    return ([[
set terminal pngcairo size 1000,450
set output '%s/teleport.png'
set datafile separator ','
set multiplot layout 1,2
set logscale y
set xlabel 'epoch'; set ylabel 'train loss (0.5 sum of squares)'
set title 'regression 5-6-7-8, seed 1'
set key font ',8'
set yrange [0.5:3000]  # the lr 1e-7 arm blows up (seed 1) and would flatten the rest
plot '< awk -F, "NR>1 && \$1==1" %s/teleport_regression.csv' using 2:3 with lines title 'GD', \
     '' using 2:4 with lines title 'GD + teleport (lr 1e-8) at epoch 5', \
     '' using 2:5 with lines title 'GD + teleport (lr 3e-8) at epoch 5', \
     '' using 2:6 with lines title 'GD + teleport (lr 1e-7) at epoch 5', \
     '' using 2:7 with lines title 'AdaGrad', \
     '' using 2:8 with lines title 'AdaGrad + teleport (lr 1e-5) at epoch 5'
set title 'MNIST 784-16-10-10, seed 1'
set autoscale y
set ylabel 'train loss (cross-entropy)'
plot '< awk -F, "NR>1 && \$2==1 && \$1==\"sgd\"" %s/teleport_mnist.csv' using 3:4 with linespoints title 'SGD', \
     '' using 3:5 with linespoints title 'SGD + teleport', \
     '< awk -F, "NR>1 && \$2==1 && \$1==\"adagrad\"" %s/teleport_mnist.csv' using 3:4 with linespoints title 'Adagrad', \
     '' using 3:5 with linespoints title 'Adagrad + teleport', \
     '' using 3:6 with linespoints title 'Adagrad + reset only'
unset multiplot
  ]]):format(outdir, outdir, outdir, outdir)
  end,
}
return sweep.main(S, ...)
