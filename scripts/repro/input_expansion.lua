-- scripts/repro/input_expansion.lua — input dimension expansion at our scale
-- (Zhang et al. 2024, arXiv 2409.06402; docs/background/input-expansion.md).
--
--   symlab --threads 2 scripts/repro/input_expansion.lua [quick] [RESULTS_DIR]
--   symlab sweep run scripts/repro/input_expansion.lua --jobs 2   (SYMLAB_REPRO_QUICK=1: quick)
--
-- A sweep: one task per (configuration, seed); the tables below come from
-- the gathered rows.
-- Ten configurations, SEEDS seeds each, same SGD schedule (lr 0.05,
-- momentum 0.9, batch 64):
--   MLP 784-256-10:  baseline; input_expand K=2 fill 0.5 (3136 inputs);
--                    the bias-LR control (background, "MLP control": an MLP
--                    sees the 2352 constants only through its first-layer
--                    bias, whose step they multiply by 1 + c^2 d_c = 589 —
--                    grad_scale on "1.bias"); dropout 0.2; batch norm.
--   CNN conv16-pool-conv32-pool-fc: baseline 28x28; input_expand 56x56;
--                    the bilinear 2x upsampling control (56x56,
--                    background, "CNN control"); dropout 0.2; batch norm.
-- Inputs are raw pixels in [0, 1] (no normalisation), so fill 0.5 is the
-- paper's raw-pixel value.  For each run: the symmetry_breaking metric at
-- initialisation (replicas from the fresh model, short SGD on a subset:
-- what the paper pitches the metric for), then training with test accuracy
-- after every epoch, then symmetry_metrics (dead-neuron fraction).
--
-- Data: Fashion-MNIST from ../shared/data/fashion-mnist when readable.  Its
-- train images file there is truncated (the reader refuses it), so we fall
-- back to its 10k test split, divided into disjoint train and test parts;
-- without Fashion-MNIST, the shipped MNIST-10k.  The output says which.
-- Sizes are chosen to finish in about 10 minutes on 2 idle cores: TRAIN rows,
-- EPOCHS epochs (see the constants below; `quick` shrinks everything to a
-- smoke test of a few seconds).
--
-- Writes RESULTS_DIR/input_expansion/input_expansion_runs.csv (one row per run),
-- input_expansion_summary.csv (one row per configuration) and
-- input_expansion.png (gnuplot, when installed).
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local sweep = require "symlab.sweep"

-- quick (or SYMLAB_REPRO_QUICK=1, which every task process inherits)
local quick, outdir = os.getenv("SYMLAB_REPRO_QUICK") == "1", "results"
for _, a in ipairs({ ... }) do
  if a == "quick" then quick = true else outdir = a end
end

local P = quick and { train = 400, test = 400, epochs = 2, seeds = 2, sb_steps = 10,
                      sb_replicas = 2, target = 0.5 }
              or { train = 1500, test = 1000, epochs = 5, seeds = 5, sb_steps = 40,
                   sb_replicas = 3, target = 0.75 }
local LR, MOMENTUM, BATCH, FILL, K, SB_SUBSET = 0.05, 0.9, 64, 0.5, 2, 1000

-- ---------------------------------------------------------------- data
local function load_data()
  -- ../shared/data/fashion-mnist next to the source tree, or $SYMLAB_FASHION_MNIST
  local fm = os.getenv("SYMLAB_FASHION_MNIST") or (sl.datadir .. "/../../shared/data/fashion-mnist")
  local ok, train = pcall(sl.data.idx, fm, "train")
  if ok then
    local okt, test = pcall(sl.data.idx, fm, "test")
    if okt then
      return train:split(P.train, 1), test:split(P.test, 2),
             "Fashion-MNIST (train/test splits)"
    end
  end
  local why = tostring(train):gsub("^.-: ", "", 1)
  local okt, test = pcall(sl.data.idx, fm, "test")
  if okt then
    local tr, rest = test:split(P.train, 1)
    local te = rest:split(P.test, 2)
    return tr, te, ("Fashion-MNIST test split only, divided %d train / %d test (train split unusable: %s)")
                   :format(P.train, P.test, why)
  end
  local d = sl.data.idx(sl.data.path("mnist10k"))
  return d.train:split(P.train, 1), d.test:split(P.test, 2),
         ("shipped MNIST-10k (Fashion-MNIST unusable: %s)"):format(why)
end

-- ---------------------------------------------------------------- models
local function mlp(extra)
  return function()
    local l = {}
    local inputs = 784
    if extra.expand then
      l[#l + 1] = sl.nn.input_expand { factor = K, fill = FILL }
      inputs = 784 * K * K
    end
    l[#l + 1] = sl.nn.flatten()
    l[#l + 1] = sl.nn.linear(inputs, 256)
    if extra.bn then l[#l + 1] = sl.nn.batchnorm { num_features = 256 } end
    l[#l + 1] = sl.nn.relu()
    if extra.dropout then l[#l + 1] = sl.nn.dropout { p = 0.2 } end
    l[#l + 1] = sl.nn.linear(256, 10)
    return l
  end
end

local function cnn(extra)
  return function()
    local l, side = {}, 28
    if extra.expand then l[#l + 1] = sl.nn.input_expand { factor = K, fill = FILL }; side = 56 end
    if extra.upsample then l[#l + 1] = sl.nn.upsample { factor = K }; side = 56 end
    local function block(cin, cout)
      l[#l + 1] = sl.nn.conv2d { in_channels = cin, out_channels = cout, kernel_size = 3, padding = 1 }
      if extra.bn then l[#l + 1] = sl.nn.batchnorm { num_features = cout } end
      l[#l + 1] = sl.nn.relu()
      l[#l + 1] = sl.nn.maxpool2d { kernel_size = 2 }
    end
    block(1, 16)
    block(16, 32)
    l[#l + 1] = sl.nn.flatten()
    if extra.dropout then l[#l + 1] = sl.nn.dropout { p = 0.2 } end
    l[#l + 1] = sl.nn.linear(32 * (side // 4) * (side // 4), 10)
    return l
  end
end

-- d_c constants of value c in front of the first linear layer multiply its
-- effective bias step by 1 + c^2 d_c (docs/background/input-expansion.md).
local BIAS_FACTOR = 1 + FILL * FILL * (784 * K * K - 784)

local configs = {
  { name = "mlp", family = "MLP", layers = mlp {} },
  { name = "mlp+expand", family = "MLP", layers = mlp { expand = true } },
  { name = "mlp+biasLR", family = "MLP", layers = mlp {},
    hooks = function() return { sl.hook.grad_scale { pattern = "1.bias", factor = BIAS_FACTOR } } end },
  { name = "mlp+dropout", family = "MLP", layers = mlp { dropout = true } },
  { name = "mlp+bn", family = "MLP", layers = mlp { bn = true } },
  { name = "cnn", family = "CNN", layers = cnn {} },
  { name = "cnn+expand", family = "CNN", layers = cnn { expand = true } },
  { name = "cnn+upsample", family = "CNN", layers = cnn { upsample = true } },
  { name = "cnn+dropout", family = "CNN", layers = cnn { dropout = true } },
  { name = "cnn+bn", family = "CNN", layers = cnn { bn = true } },
}

-- ---------------------------------------------------------------- one run
local function run(cfg, seed, train, test)
  local row = { config = cfg.name, family = cfg.family, seed = seed }
  local net = sl.nn.sequential(cfg.layers(), { seed = seed })
  local t0 = os.time()
  -- the metric at initialisation: replicas of this fresh model
  local sb = sl.probe.symmetry_breaking(net, train, {
    replicas = P.sb_replicas, steps = P.sb_steps, subset = SB_SUBSET, batch = 32, lr = LR,
    seed = seed, probe_batch = 64 })
  row.distance, row.spectral_distance, row.gram_distance =
    sb.distance, sb.spectral_distance, sb.gram_distance
  local opt = sl.optim.sgd(net, { lr = LR, momentum = MOMENTUM })
  local ok, err = pcall(sl.train, net, opt, train, {
    epochs = P.epochs, batch = BATCH, seed = seed, progress = "never", val = test,
    hooks = cfg.hooks and cfg.hooks() or nil,
    on_epoch = function(r)
      if not row.epochs_to_target and r.val_accuracy >= P.target then row.epochs_to_target = r.epoch end
      row["acc_e" .. r.epoch] = r.val_accuracy
    end })
  if not ok then
    row.diverged = 1
    row.error = tostring(err)
    row.accuracy = 0.1
  else
    row.diverged = 0
    row.accuracy = sl.evaluate(net, test).accuracy
    local sm = sl.probe.symmetry_metrics(net, test, { probe_batch = 256 })
    row.dead_fraction = sm.dead_fraction
  end
  row.seconds = os.time() - t0
  return row
end

-- ---------------------------------------------------------------- statistics
local function mean_std(xs)
  local n, s = #xs, 0
  if n == 0 then return nil, nil end
  for _, x in ipairs(xs) do s = s + x end
  local m, v = s / n, 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, n > 1 and math.sqrt(v / (n - 1)) or 0
end

local function ranks(xs)
  local idx = {}
  for i = 1, #xs do idx[i] = i end
  table.sort(idx, function(a, b) return xs[a] < xs[b] end)
  local r = {}
  for pos, i in ipairs(idx) do r[i] = pos end
  return r
end

-- Spearman rank correlation (no ties expected among means).
local function spearman(a, b)
  local ra, rb, n, d = ranks(a), ranks(b), #a, 0
  if n < 3 then return nil end
  for i = 1, n do d = d + (ra[i] - rb[i]) ^ 2 end
  return 1 - 6 * d / (n * (n * n - 1))
end

-- ---------------------------------------------------------------- the sweep
local train, test, source -- loaded once per process

local function task(c, seed)
  if not train then train, test, source = load_data() end
  local r = run(configs[c.index], seed, train, test)
  r.data_source = source
  return r
end

local function report(groups, outdir)
  local first = groups[1].rows[1]
  local source, threads = first.values.data_source, first.threads
  print(("input_expansion: data = %s"):format(source))
  print(("  %d train / %d test images, %d epochs, %d seeds, target accuracy %.2f, %d thread(s)%s")
        :format(P.train, P.test, P.epochs, P.seeds, P.target, threads, quick and " [quick]" or ""))
  print(("  metric: symmetry_breaking at initialisation, %d replicas x %d SGD steps (batch 32, lr %.2g) on %d rows")
        :format(P.sb_replicas, P.sb_steps, LR, math.min(SB_SUBSET, P.train)))

  local runs, summary = {}, {}
  local by = {}
  for _, g in ipairs(groups) do by[g.config.index] = g.rows end
  for ci, cfg in ipairs(configs) do
    local acc, ett, dist, spec, gram, dead, reached, diverged = {}, {}, {}, {}, {}, {}, 0, 0
    if not by[ci] or #by[ci] < P.seeds then return end -- a partial sweep: no tables yet
    for _, row in ipairs(by[ci]) do
      local r = {}
      for k, v in pairs(row.values) do r[k] = v end
      r.data_source = nil
      runs[#runs + 1] = r
      acc[#acc + 1] = r.accuracy
      if r.epochs_to_target then ett[#ett + 1] = r.epochs_to_target; reached = reached + 1 end
      dist[#dist + 1], spec[#spec + 1] = r.distance, r.spectral_distance
      if r.gram_distance then gram[#gram + 1] = r.gram_distance end
      if r.dead_fraction then dead[#dead + 1] = r.dead_fraction end
      diverged = diverged + r.diverged
    end
    local s = { config = cfg.name, family = cfg.family }
    s.acc_mean, s.acc_std = mean_std(acc)
    s.epochs_to_target = mean_std(ett)
    s.reached = ("%d/%d"):format(reached, P.seeds)
    s.distance, s.distance_std = mean_std(dist)
    s.spectral, s.spectral_std = mean_std(spec)
    s.gram, s.gram_std = mean_std(gram)
    s.dead = mean_std(dead)
    s.diverged = diverged
    s.accuracy = ("%.4f ± %.4f"):format(s.acc_mean, s.acc_std)
    summary[#summary + 1] = s
  end

  print()
  tbl.print(summary, { "config", "accuracy", "epochs_to_target", "reached", "distance",
                       "spectral", "gram", "dead", "diverged" },
            { formats = { epochs_to_target = "%.2f", distance = "%.4f", spectral = "%.5f",
                          gram = "%.4f", dead = "%.3f" },
              headers = { epochs_to_target = ("epochs>=%.2f"):format(P.target) } })

  -- Does the metric rank configurations as accuracy does?  Spearman within a family.
  print()
  for _, fam in ipairs { "MLP", "CNN" } do
    local a, cols = {}, { distance = {}, spectral = {}, gram = {} }
    for _, s in ipairs(summary) do
      if s.family == fam then
        a[#a + 1] = s.acc_mean
        for k, v in pairs(cols) do v[#v + 1] = s[k] or 0 / 0 end
      end
    end
    print(("%s: Spearman(accuracy, metric)  distance %+.2f  spectral %+.2f  gram %+.2f")
          :format(fam, spearman(a, cols.distance), spearman(a, cols.spectral), spearman(a, cols.gram)))
  end

  -- ---------------------------------------------------------------- files
  results.write_csv(outdir .. "/input_expansion_runs.csv", runs)
  local plotrows = {}
  for i, s in ipairs(summary) do
    plotrows[i] = { index = i, config = s.config, acc_mean = s.acc_mean, acc_std = s.acc_std,
                    distance = s.distance, spectral = s.spectral, gram = s.gram,
                    epochs_to_target = s.epochs_to_target, reached = s.reached, dead = s.dead,
                    diverged = s.diverged, family = s.family }
  end
  local sumcols = { "index", "config", "family", "acc_mean", "acc_std", "epochs_to_target",
                    "reached", "distance", "spectral", "gram", "dead", "diverged" }
  results.write_csv(outdir .. "/input_expansion_summary.csv", plotrows, sumcols)
  print(("wrote %s/input_expansion_runs.csv and input_expansion_summary.csv"):format(outdir))

  results.plot(outdir .. "/input_expansion.png", ([[
set terminal pngcairo size 1200,500
set output '%s/input_expansion.png'
set datafile separator ','
set multiplot layout 1,2 title 'input expansion at our scale (%s)'
set style fill solid 0.5
set xtics rotate by -40 noenhanced
set xrange [0.5:%d.5]
set ylabel 'test accuracy (mean ± std, %d seeds)'
set key off
plot '%s/input_expansion_summary.csv' every ::1 using 1:4:5:xtic(2) with yerrorbars pt 7
set ylabel 'replica distance at init (gram, spectral x10)'
set key top left
plot '%s/input_expansion_summary.csv' every ::1 using 1:10:xtic(2) with linespoints title 'gram', \
     '' every ::1 using 1:($9*10) with linespoints title 'spectral x10'
unset multiplot
  ]]):format(outdir, quick and "quick" or source:match("^[^(]*"), #summary, P.seeds, outdir, outdir))
end

local tasks = {}
for i, cfg in ipairs(configs) do tasks[i] = { index = i, name = cfg.name, family = cfg.family } end

local S = sweep.define {
  name = "input_expansion",
  configs = tasks,
  axes = { "index", "name", "family" },
  seeds = P.seeds,
  task = task,
  report = report,
}
return sweep.main(S, outdir)
