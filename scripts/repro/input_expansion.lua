-- scripts/repro/input_expansion.lua — input dimension expansion and the
-- symmetry-breaking metric under a fair protocol (Zhang et al. 2024, arXiv
-- 2409.06402; SBDE, arXiv 2602.17948; docs/background/input-expansion.md,
-- results in docs/results/input_expansion.md).
--
--   symlab --threads 1 sweep run scripts/repro/input_expansion.lua --jobs 2 --dir D
--   symlab --threads 1 sweep run scripts/repro/input_expansion.lua --jobs 2 --dir D   (again)
--   symlab sweep gather D
--   symlab scripts/repro/input_expansion.lua [quick] [RESULTS_DIR]   (all in one process)
--
-- Protocol.  Points are (dataset, architecture, arm).  Every point first
-- trains once (seed 1) at each learning rate of the grid P.lrs: these are
-- the "grid" tasks.  Its rate is the one with the best final *validation*
-- accuracy.  The "seeds" tasks (seeds 2..P.seeds) then train at that rate;
-- with the grid run of the chosen rate they are the P.seeds seeds reported.
-- A seeds task reads the grid rows from the sweep directory, so under
-- `sweep run --jobs N` (whose batches mix tasks) some seeds tasks find
-- their grid incomplete and fail at once with a message saying so: running
-- the same command again runs exactly those.  In one process the tasks run
-- in order and one pass does it all.
--
-- Every run: SGD momentum 0.9, batch 128, cosine decay of the rate to 0
-- over EPOCHS epochs, raw pixels in [0, 1] (so fill 0.5 is the paper's raw
-- value).  Recorded per run: validation accuracy and training loss per
-- epoch, test accuracy, epochs to the dataset's target validation accuracy,
-- final training loss; the replica-distance probe (symmetry_breaking) of
-- the fresh model and of the trained one, with the arm's hooks; the order
-- parameters of the trained model (symmetry_metrics: dead and distinct
-- units); and accuracy on NOISE-perturbed test inputs, the perturbation
-- applied to what the network sees (the expanded image for expansion arms),
-- with and without the SBDE mask projection (expand_project) for the
-- expansion arms.
--
-- Data: Fashion-MNIST from the directory $SYMLAB_FASHION_MNIST (or
-- $SYMLAB_TEST_FASHION_MNIST, which `make check` and .ci/run set), else
-- sl.data.load("fashion-mnist") (the cache; downloads when it can); when
-- none is there it is skipped with one line saying why.  Its 60k training
-- images are split once (seed 12345) into train and a P.val-row validation
-- set; the 10k test images are the test set.  MNIST-10k (shipped) the same
-- way: 8000 train images split into train and validation, 2000 test.  Each
-- architecture trains on the first P.train_rows rows of the (shuffled)
-- train split (the time budget); every row of the runs CSV says how many.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local sweep = require "symlab.sweep"
local rows = require "symlab.sweep_rows"
local stats = require "symlab.stats"

-- quick (or SYMLAB_REPRO_QUICK=1, which every task process inherits)
local quick, outdir = os.getenv("SYMLAB_REPRO_QUICK") == "1", "results"
-- (`arg`: a test runs this file with dofile, which passes no `...`)
for _, a in ipairs(arg or { ... }) do
  if a == "quick" then quick = true else outdir = a end
end

local SPLIT_SEED = 12345
-- Sizes.  train_rows: rows of the train split each architecture trains on
-- (per dataset); val: the validation split (selection: final accuracy on
-- all of it); curve: its first rows, evaluated after every epoch for the
-- accuracy-vs-epoch curves; sb_steps: SGD steps of each probe replica.
local P = quick and {
  lrs = { 0.03, 0.1 }, seeds = 2, epochs = 2, batch = 32,
  val = 200, curve = 100, test = 200, noise_rows = 100,
  train_rows = { mlp = 400, cnn = 300, resnet = 200 },
  widths = { mlp = 32, cnn = { 4, 8 }, resnet = 4 }, resnet_depth = 8,
  sb = { replicas = 2, subset = 200, probe_batch = 64 },
  sb_steps = { mlp = 10, cnn = 5, resnet = 5 },
  datasets = { "mnist10k" },
} or {
  lrs = { 0.01, 0.03, 0.1 }, seeds = 5, epochs = 15, batch = 128,
  val = 2000, curve = 500, test = nil, noise_rows = 1000,
  train_rows = { mlp = 20000, cnn = 1000, resnet = 500 },
  widths = { mlp = 256, cnn = { 32, 64 }, resnet = 8 }, resnet_depth = 20,
  sb = { replicas = 3, subset = 1000, probe_batch = 128 },
  sb_steps = { mlp = 200, cnn = 20, resnet = 10 },
  datasets = { "fmnist", "mnist10k" },
}
local MOMENTUM, K, CENTRE = 0.9, 2, 1 -- CENTRE: the offset nearest the cell's centre, K // 2
local SB_LR = 0.05                    -- the probe's replicas: plain SGD at one rate for all arms
local NOISE = 0.25                    -- perturbation: +-NOISE on every input entry, random signs
local TARGET = { fmnist = 0.80, mnist10k = 0.93 } -- validation accuracy for "epochs to target"

-- Evaluation in batches of EVAL_BATCH rows: a 1000-row batch through the
-- expanded CNN holds gigabytes of activations, and two tasks run at once.
local EVAL_BATCH = 200
local function evaluate(net, ds) return sl.evaluate(net, ds, { batch = EVAL_BATCH }) end

-- ---------------------------------------------------------------- data
local data = {}      -- per dataset: { train, val, test, source }, loaded once per process
local skipped = {}   -- dataset -> why it is not in this run

local function fashion_dir()
  return os.getenv("SYMLAB_FASHION_MNIST") or os.getenv("SYMLAB_TEST_FASHION_MNIST")
end

local function load_raw(name)
  if name == "mnist10k" then
    return sl.data.idx(sl.data.path("mnist10k")), "MNIST-10k (shipped)"
  end
  local dir = fashion_dir()
  if dir then return sl.data.idx(dir), "Fashion-MNIST from " .. dir end
  return sl.data.load("fashion-mnist", { progress = "never" }), "Fashion-MNIST (sl.data.load cache)"
end

-- Whether a dataset can be used, decided once when the sweep is defined (so
-- the task list does not change between processes of one run).
local function available(name)
  if name == "mnist10k" then return true end
  local dir = fashion_dir()
  if dir then
    local f = io.open(dir .. "/fashion-train-labels-idx1-ubyte.gz", "rb")
              or io.open(dir .. "/train-labels-idx1-ubyte.gz", "rb")
    if f then f:close(); return true end
    return false, "no Fashion-MNIST training labels in " .. dir
  end
  local ok, err = pcall(sl.data.get, "fashion-mnist", { progress = "never" })
  return ok, not ok and tostring(err) or nil
end

local function dataset(name)
  if data[name] then return data[name] end
  local d, source = load_raw(name)
  local n = #d.train
  local train, val = d.train:split(n - (quick and P.val or math.min(P.val, n // 8)), SPLIT_SEED)
  local test = d.test
  if P.test then test = d.test:split(P.test, SPLIT_SEED) end
  data[name] = { train = train, val = val, curve = val:subset(1, math.min(P.curve, #val)),
                 test = test, source = source, sub = {} }
  return data[name]
end

-- The first `n` rows of the shuffled train split (the same rows for every
-- arm and seed).
local function train_rows(d, n)
  if n >= #d.train then return d.train end
  d.sub[n] = d.sub[n] or d.train:subset(1, n)
  return d.sub[n]
end

-- ---------------------------------------------------------------- arms
-- An arm: `input` — the transform in front of the network (input_expand
-- with fill and offset, or upsample); `body` — options of the network
-- (dropout, bn, p4); `hooks` — the bias learning-rate control.
local function expand(fill, offset)
  return { kind = "expand", fill = fill, offset = offset }
end

local ARMS = {
  base = {},
  ["exp_f0.5_o0"] = { input = expand(0.5, 0) },
  ["exp_f0.5_oc"] = { input = expand(0.5, CENTRE) },
  ["exp_f0_o0"] = { input = expand(0, 0) },
  ["exp_f0_oc"] = { input = expand(0, CENTRE) },
  upsample = { input = { kind = "upsample" } },
  biasLR = { bias_lr = true },
  dropout = { dropout = 0.2 },
  bn = { bn = true },
  p4 = { p4 = true },
}

-- Arms per architecture.  For the MLP the offset only permutes the inputs
-- of a dense layer (the same model in distribution), so only offset 0 runs;
-- upsampling is the CNN's control.  The ResNet has batch norm built in.
-- Per dataset: MNIST-10k gets the cheap MLP in full and the CNN's main
-- comparison only (time budget).
local ARCH_ARMS = quick and { mnist10k = {
  mlp = { "base", "exp_f0.5_o0", "biasLR" },
  cnn = { "base", "exp_f0.5_oc", "upsample", "p4" },
  resnet = { "base", "exp_f0.5_o0" },
} } or {
  fmnist = {
    mlp = { "base", "exp_f0.5_o0", "exp_f0_o0", "biasLR", "dropout", "bn" },
    cnn = { "base", "exp_f0.5_o0", "exp_f0.5_oc", "exp_f0_o0", "exp_f0_oc", "upsample", "dropout",
            "bn", "p4" },
    resnet = { "base", "exp_f0.5_o0", "upsample" },
  },
  mnist10k = {
    mlp = { "base", "exp_f0.5_o0", "exp_f0_o0", "biasLR", "dropout", "bn" },
    cnn = { "base", "exp_f0.5_o0", "upsample" },
    resnet = {},
  },
}
local ARCHS = { "mlp", "cnn", "resnet" }

-- The input transform's spec, and the side of the image the network sees.
local function input_layer(arm)
  local i = arm.input
  if not i then return nil, 28 end
  if i.kind == "upsample" then return sl.nn.upsample { factor = K }, 28 * K end
  return sl.nn.input_expand { factor = K, fill = i.fill, offset = i.offset }, 28 * K
end

-- The network after the input transform, for an image of side `side`.
local function body(arch, arm, side)
  local l = {}
  local function add(x) l[#l + 1] = x end
  if arch == "mlp" then
    local h = P.widths.mlp
    add(sl.nn.flatten())
    add(sl.nn.linear(side * side, h))
    if arm.bn then add(sl.nn.batchnorm { num_features = h }) end
    add(sl.nn.relu())
    if arm.dropout then add(sl.nn.dropout { p = arm.dropout }) end
    add(sl.nn.linear(h, 10))
  elseif arch == "cnn" then
    local c1, c2 = P.widths.cnn[1], P.widths.cnn[2]
    -- p4: the same number of feature maps (4 rotations x c/4 channels),
    -- pooled over the rotations after each layer (rotation-invariant
    -- channels that rotate with the image).
    local function conv(cin, cout)
      if arm.p4 then
        add(sl.nn.p4conv { input = "z2", in_channels = cin, out_channels = cout // 4 })
        add(sl.nn.relu())
        add(sl.nn.p4pool { reduce = "max" })
        return cout // 4
      end
      add(sl.nn.conv2d { in_channels = cin, out_channels = cout, kernel_size = 3, padding = 1 })
      if arm.bn then add(sl.nn.batchnorm { num_features = cout }) end
      add(sl.nn.relu())
      return cout
    end
    local o1 = conv(1, c1)
    add(sl.nn.maxpool2d { kernel_size = 2 })
    local o2 = conv(o1, c2)
    add(sl.nn.maxpool2d { kernel_size = 2 })
    add(sl.nn.flatten())
    if arm.dropout then add(sl.nn.dropout { p = arm.dropout }) end
    add(sl.nn.linear(o2 * (side // 4) * (side // 4), 10))
  else
    l = sl.resnet.cifar { depth = P.resnet_depth, width = P.widths.resnet, in_channels = 1,
                          classes = 10 }
  end
  return l
end

local function layers(arch, arm, first)
  local head, side = input_layer(arm)
  local l = { first or head }
  if not (first or head) then l = {} end
  for _, x in ipairs(body(arch, arm, side)) do l[#l + 1] = x end
  return l, side
end

-- The bias learning-rate control: the first linear layer's bias gradient
-- times 1 + c^2 d_c, d_c = 3 * 784 constants of value c = 0.5 (the MLP
-- control of docs/background/input-expansion.md).  "1.bias": flatten is 0.
local BIAS_FACTOR = 1 + 0.5 * 0.5 * (784 * K * K - 784)
local function hooks(arm)
  if arm.bias_lr then return { sl.hook.grad_scale { pattern = "1.bias", factor = BIAS_FACTOR } } end
  return nil
end

-- ---------------------------------------------------------------- robustness
-- Test accuracy when every entry of the network's input (after the input
-- transform) gets +-NOISE with random signs; for expansion arms also with
-- the SBDE mask projection in front, which resets the inserted entries.
local function noise_accuracy(net, cfg, arm, d, seed)
  local n = math.min(P.noise_rows, #d.test)
  local test = d.test:subset(1, n)
  local head, side = input_layer(arm)
  local pre = head and sl.nn.sequential({ head }, { seed = seed })
  local spec, _ = layers(cfg.arch, arm, sl.nn.identity())
  local plain = sl.nn.sequential(spec, { seed = seed })
  local proj
  if arm.input and arm.input.kind == "expand" then
    proj = sl.nn.sequential(layers(cfg.arch, arm, sl.nn.expand_project {
      factor = K, fill = arm.input.fill, offset = arm.input.offset }), { seed = seed })
  end
  -- same parameters and buffers (same names: module 0 holds none)
  for _, m in ipairs({ plain, proj }) do
    for i, p in ipairs(net:parameters()) do m:param(i):assign(p.tensor) end
    local mb = m:buffers()
    for i, b in ipairs(net:buffers()) do mb[i].tensor:assign(b.tensor) end
    m:eval()
  end
  local x = pre and pre:forward(test.x) or test.x:copy()
  local numel = x:numel()
  math.randomseed(1000 + seed)
  local flat = {}
  for i = 1, numel do flat[i] = math.random() < 0.5 and -NOISE or NOISE end
  x:axpy(1, sl.tensor.from(flat, x:shape()))
  flat = nil
  local noisy = sl.data.from(x, test.y)
  local r = { noise_accuracy = evaluate(plain, noisy).accuracy,
              clean_subset_accuracy = evaluate(net, test).accuracy }
  if proj then
    r.projected_accuracy = evaluate(proj, noisy).accuracy
    -- on clean expanded inputs the projection is the identity: a check
    r.clean_projected_accuracy = evaluate(proj, sl.data.from(pre:forward(test.x), test.y)).accuracy
  end
  return r, side
end

-- ---------------------------------------------------------------- probes
local function sb_probe(net, d, arch, seed, arm, prefix, row)
  local ok, r = pcall(sl.probe.symmetry_breaking, net, d.val, {
    replicas = P.sb.replicas, steps = P.sb_steps[arch], subset = P.sb.subset, batch = 32, lr = SB_LR,
    seed = seed, probe_batch = P.sb.probe_batch, hooks = hooks(arm) })
  if not ok then
    row[prefix .. "error"] = tostring(r)
    return
  end
  for _, k in ipairs({ "distance", "aligned_distance", "spectral_distance", "gram_distance" }) do
    row[prefix .. k] = r[k]
  end
end

-- ---------------------------------------------------------------- one run
local function run(cfg, seed, lr)
  local cpu0 = os.clock() -- CPU seconds: on a shared machine the wall time says little
  local d = dataset(cfg.data)
  local arm = ARMS[cfg.arm]
  local train = train_rows(d, P.train_rows[cfg.arch])
  local net = sl.nn.sequential(layers(cfg.arch, arm), { seed = seed })
  local row = { seed = seed, lr = lr, train_rows = #train, params = net:numel(), data_source = d.source }
  sb_probe(net, d, cfg.arch, seed, arm, "init_", row)
  local opt = sl.optim.sgd(net, { lr = lr, momentum = MOMENTUM })
  local val_curve, loss_curve = {}, {}
  local ok, err = pcall(sl.train, net, opt, train, {
    epochs = P.epochs, batch = P.batch, seed = seed, progress = "never", val = d.curve,
    eval_batch = EVAL_BATCH,
    hooks = hooks(arm), schedule = sl.optim.schedule.cosine { t_max = P.epochs },
    on_epoch = function(r)
      val_curve[r.epoch], loss_curve[r.epoch] = r.val_accuracy, r.loss
      if not row.epochs_to_target and r.val_accuracy >= TARGET[cfg.data] then
        row.epochs_to_target = r.epoch
      end
    end })
  row.diverged = (ok and loss_curve[P.epochs] == loss_curve[P.epochs]) and 0 or 1
  if not ok then row.error = tostring(err) end
  row.val_curve, row.loss_curve = val_curve, loss_curve
  row.val_accuracy = evaluate(net, d.val).accuracy
  row.train_loss = loss_curve[#loss_curve]
  row.accuracy = evaluate(net, d.test).accuracy
  if row.diverged == 0 then
    sb_probe(net, d, cfg.arch, seed, arm, "after_", row)
    local sm = sl.probe.symmetry_metrics(net, d.val, { probe_batch = 256 })
    row.dead_fraction, row.distinct_fraction = sm.dead_fraction, sm.distinct_fraction
    local nr = noise_accuracy(net, cfg, arm, d, seed)
    for k, v in pairs(nr) do row[k] = v end
  end
  row.cpu_seconds = os.clock() - cpu0
  return row
end

-- ---------------------------------------------------------------- the sweep
local configs, use = {}, {}
for _, name in ipairs(P.datasets) do
  local ok, why = available(name)
  if ok then use[#use + 1] = name else skipped[name] = why end
end
for _, dname in ipairs(use) do
  for _, arch in ipairs(ARCHS) do
    for _, arm in ipairs(ARCH_ARMS[dname][arch]) do
      for _, lr in ipairs(P.lrs) do
        configs[#configs + 1] = { stage = "grid", data = dname, arch = arch, arm = arm, lr = lr }
      end
    end
  end
end
for _, dname in ipairs(use) do
  for _, arch in ipairs(ARCHS) do
    for _, arm in ipairs(ARCH_ARMS[dname][arch]) do
      configs[#configs + 1] = { stage = "seeds", data = dname, arch = arch, arm = arm, lr = 0 }
    end
  end
end

local function point(c) return c.data .. "/" .. c.arch .. "/" .. c.arm end

local S -- the sweep, defined below; tasks read its task list

-- The rate of a point: best final validation accuracy over its grid rows
-- (ties: the smaller rate); nil and a message while a grid row is missing.
local function chosen(grid_rows)
  local best
  for _, r in ipairs(grid_rows) do
    local v = r.values
    if not best or v.val_accuracy > best.val_accuracy then best = v end
  end
  return best.lr, best
end

local function grid_rows_of(dir, c)
  local found, missing = {}, 0
  for _, t in ipairs(S.tasks) do
    local tc = t.config
    if tc.stage == "grid" and point(tc) == point(c) then
      local st, row = rows.state(dir, t)
      if st == "done" then found[#found + 1] = row else missing = missing + 1 end
    end
  end
  return found, missing
end

local function task(c, seed, dir)
  if c.stage == "grid" then return run(c, seed, c.lr) end
  local found, missing = grid_rows_of(dir, c)
  if missing > 0 then
    error(("%s: learning-rate grid not complete (%d of %d rows missing); run the sweep again")
          :format(point(c), missing, missing + #found), 0)
  end
  local lr = chosen(found)
  return run(c, seed, lr)
end

-- ---------------------------------------------------------------- report
local METRICS = { "init_distance", "init_aligned_distance", "init_spectral_distance",
                  "init_gram_distance", "after_distance", "after_aligned_distance",
                  "after_spectral_distance", "after_gram_distance", "dead_fraction",
                  "distinct_fraction" }

local function mean_std(xs)
  local n, s = #xs, 0
  if n == 0 then return nil, nil end
  for _, x in ipairs(xs) do s = s + x end
  local m, v = s / n, 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, n > 1 and math.sqrt(v / (n - 1)) or 0
end

local function report(groups, dir)
  -- rows by point: grid rows (seed 1, every rate) and seeds rows
  local grid, seeds, first = {}, {}, nil
  for _, g in ipairs(groups) do
    local c = g.config
    local into = c.stage == "grid" and grid or seeds
    into[point(c)] = into[point(c)] or {}
    for _, r in ipairs(g.rows) do
      table.insert(into[point(c)], r)
      first = first or r
    end
  end
  if not first then return end
  print(("input_expansion%s: %d epochs, batch %d, rates %s, %d seeds, %d thread(s)")
        :format(quick and " [quick]" or "", P.epochs, P.batch,
                table.concat(P.lrs, "/"), P.seeds, first.threads))
  for name, why in pairs(skipped) do print(("  %s skipped: %s"):format(name, why)) end

  local summary, runs, curves = {}, {}, {}
  for _, dname in ipairs(use) do
    for _, arch in ipairs(ARCHS) do
      for _, armname in ipairs(ARCH_ARMS[dname][arch]) do
        local c = { data = dname, arch = arch, arm = armname }
        local gr = grid[point(c)] or {}
        if #gr == #P.lrs then
          local lr, best = chosen(gr)
          local set = { best }
          for _, r in ipairs(seeds[point(c)] or {}) do set[#set + 1] = r.values end
          local s = { data = dname, arch = arch, arm = armname, lr = lr, n = #set,
                      train_rows = best.train_rows, params = best.params }
          for _, r in ipairs(gr) do s[("val_lr%g"):format(r.values.lr)] = r.values.val_accuracy end
          local cols = { accuracy = {}, train_loss = {}, epochs_to_target = {},
                         noise_accuracy = {}, projected_accuracy = {}, diverged = {} }
          for _, m in ipairs(METRICS) do cols[m] = {} end
          local reached = 0
          for _, v in ipairs(set) do
            local r = { data = dname, arch = arch, arm = armname }
            for k, x in pairs(v) do if type(x) ~= "table" then r[k] = x end end
            runs[#runs + 1] = r
            for k, list in pairs(cols) do
              if v[k] then list[#list + 1] = v[k] end
            end
            if v.epochs_to_target then reached = reached + 1 end
          end
          for k, list in pairs(cols) do s[k], s[k .. "_std"] = mean_std(list) end
          s.reached = reached
          -- mean validation accuracy per epoch over the seeds
          for e = 1, P.epochs do
            local xs = {}
            for _, v in ipairs(set) do xs[#xs + 1] = v.val_curve[e] end
            local m = mean_std(xs)
            curves[#curves + 1] = { data = dname, arch = arch, arm = armname, epoch = e,
                                    val_accuracy = m }
          end
          summary[#summary + 1] = s
        end
      end
    end
  end

  local fmt = function(m, s, f) return m and (f .. " ± " .. f):format(m, s or 0) or "–" end
  local shown = {}
  for _, s in ipairs(summary) do
    shown[#shown + 1] = {
      point = ("%s/%s/%s"):format(s.data, s.arch, s.arm), lr = s.lr, n = s.n,
      test = fmt(s.accuracy, s.accuracy_std, "%.4f"),
      epochs = s.epochs_to_target and ("%.1f (%d/%d)"):format(s.epochs_to_target, s.reached, s.n)
               or ("– (0/%d)"):format(s.n),
      loss = fmt(s.train_loss, s.train_loss_std, "%.4f"),
      noise = s.noise_accuracy and ("%.3f"):format(s.noise_accuracy) or "–",
      proj = s.projected_accuracy and ("%.3f"):format(s.projected_accuracy) or "–",
      sb_init = s.init_aligned_distance or s.init_distance,
      sb_after = s.after_aligned_distance or s.after_distance,
      dead = s.dead_fraction,
    }
  end
  print()
  tbl.print(shown, { "point", "lr", "n", "test", "epochs", "loss", "noise", "proj", "sb_init",
                     "sb_after", "dead" },
            { formats = { sb_init = "%.4f", sb_after = "%.4f", dead = "%.3f" },
              headers = { test = "test accuracy", epochs = "epochs to target",
                          loss = "final train loss", noise = "noisy acc",
                          proj = "projected", sb_init = "dist@init", sb_after = "dist@end" } })

  -- Does a metric rank the points as test accuracy does?  Spearman over
  -- every point and within each architecture, bootstrap 95 % interval
  -- over points (pairs resampled together).
  local corr = {}
  for _, scope in ipairs({ "all", table.unpack(ARCHS) }) do
    for _, m in ipairs(METRICS) do
      local xs, ys = {}, {}
      for _, s in ipairs(summary) do
        if s[m] and s.accuracy and (scope == "all" or s.arch == scope) then
          xs[#xs + 1] = s[m]; ys[#ys + 1] = s.accuracy
        end
      end
      if #xs >= 4 then
        local rho, lo, hi = stats.spearman_ci(xs, ys, { reps = 2000, seed = 1 })
        corr[#corr + 1] = { scope = scope, metric = m, points = #xs, rho = rho, lo = lo, hi = hi }
      end
    end
  end
  print()
  tbl.print(corr, { "scope", "metric", "points", "rho", "lo", "hi" },
            { formats = { rho = "%+.3f", lo = "%+.3f", hi = "%+.3f" },
              headers = { rho = "Spearman(metric, test acc)", lo = "95% CI lo", hi = "hi" } })

  -- the summary as a Markdown table, for docs/results/input_expansion.md
  local md = { "| point | lr | n | test accuracy | epochs to target | final train loss | noisy acc | projected | aligned dist @init | @end | dead |",
               "|---|---|---|---|---|---|---|---|---|---|---|" }
  for _, r in ipairs(shown) do
    local function f(v, fm) return v and fm:format(v) or "–" end
    md[#md + 1] = ("| %s | %g | %d | %s | %s | %s | %s | %s | %s | %s | %s |"):format(
      r.point, r.lr, r.n, r.test, r.epochs, r.loss, r.noise, r.proj, f(r.sb_init, "%.4f"),
      f(r.sb_after, "%.4f"), f(r.dead, "%.3f"))
  end
  md[#md + 1] = ""
  md[#md + 1] = "| scope | metric | points | Spearman ρ | 95 % CI |"
  md[#md + 1] = "|---|---|---|---|---|"
  for _, c in ipairs(corr) do
    md[#md + 1] = c.rho ~= c.rho
      and ("| %s | %s | %d | – (metric constant) | |"):format(c.scope, c.metric, c.points)
      or ("| %s | %s | %d | %+.2f | [%+.2f, %+.2f] |"):format(c.scope, c.metric, c.points,
                                                            c.rho, c.lo, c.hi)
  end
  -- the selection: final validation accuracy of the seed-1 run at each rate
  md[#md + 1] = ""
  local head = { "| point |" }
  for _, lr in ipairs(P.lrs) do head[#head + 1] = (" val @ %g |"):format(lr) end
  md[#md + 1] = table.concat(head) .. " chosen |"
  md[#md + 1] = "|---|" .. ("---|"):rep(#P.lrs) .. "---|"
  for _, s in ipairs(summary) do
    local cells = { ("| %s/%s/%s |"):format(s.data, s.arch, s.arm) }
    for _, lr in ipairs(P.lrs) do
      cells[#cells + 1] = (" %.4f |"):format(s[("val_lr%g"):format(lr)])
    end
    md[#md + 1] = table.concat(cells) .. (" %g |"):format(s.lr)
  end
  local f = assert(io.open(dir .. "/input_expansion_tables.md", "w"))
  f:write(table.concat(md, "\n"), "\n")
  f:close()

  -- metric vs accuracy, one point per (dataset, architecture, arm)
  local pts = {}
  for _, s in ipairs(summary) do
    pts[#pts + 1] = { data = s.data, arch = s.arch, arm = s.arm, accuracy = s.accuracy,
                      init = s.init_aligned_distance or 0 / 0,
                      after = s.after_aligned_distance or 0 / 0 }
  end
  results.write_csv(dir .. "/input_expansion_points.csv", pts,
                    { "data", "arch", "arm", "accuracy", "init", "after" })
  local series = {}
  for _, dname in ipairs(use) do
    for _, arch in ipairs(ARCHS) do
      if #ARCH_ARMS[dname][arch] > 0 then series[#series + 1] = { dname, arch } end
    end
  end
  local function scatter(col)
    local l = {}
    for _, sr in ipairs(series) do
      l[#l + 1] = ("'%s/input_expansion_points.csv' using ((stringcolumn(1) eq '%s' && "
        .. "stringcolumn(2) eq '%s') ? $%d : 1/0):4 with points pt 7 title '%s %s'")
        :format(dir, sr[1], sr[2], col, sr[1], sr[2])
    end
    return table.concat(l, ", \\\n  ")
  end
  results.plot(dir .. "/input_expansion_metric.png", ([[
set terminal pngcairo size 1200,500
set output '%s/input_expansion_metric.png'
set datafile separator ','
set key bottom right font ',8' noenhanced
set logscale x
set ylabel 'test accuracy (mean over seeds)'
set multiplot layout 1,2
set xlabel 'aligned replica distance at initialisation'
plot %s
set xlabel 'aligned replica distance after training'
plot %s
unset multiplot
]]):format(dir, scatter(5), scatter(6)))

  results.write_csv(dir .. "/input_expansion_runs.csv", runs)
  results.write_csv(dir .. "/input_expansion_summary.csv", summary)
  results.write_csv(dir .. "/input_expansion_curves.csv", curves,
                    { "data", "arch", "arm", "epoch", "val_accuracy" })
  results.write_csv(dir .. "/input_expansion_correlation.csv", corr)
  print(("wrote %s/input_expansion_{runs,summary,curves,correlation,points}.csv and _tables.md")
        :format(dir))
  -- accuracy vs epoch per arm (one panel per dataset/architecture) and
  -- the metric after training vs test accuracy
  -- (only points with results: a partial run leaves some out, and gnuplot
  -- stops at a plot with no valid point)
  local panels, have = {}, {}
  for _, s in ipairs(summary) do have[point(s)] = true end
  for _, dname in ipairs(use) do
    for _, arch in ipairs(ARCHS) do
      local lines = {}
      for _, armname in ipairs(ARCH_ARMS[dname][arch]) do
        if not have[point { data = dname, arch = arch, arm = armname }] then goto next_arm end
        lines[#lines + 1] = ("'%s/input_expansion_curves.csv' using 4:((stringcolumn(1) eq '%s' && "
          .. "stringcolumn(2) eq '%s' && stringcolumn(3) eq '%s') ? $5 : 1/0) with linespoints "
          .. "title '%s'"):format(dir, dname, arch, armname, armname)
        ::next_arm::
      end
      if #lines > 0 then panels[#panels + 1] = ("set title '%s %s'\nplot %s"):format(dname, arch, table.concat(lines, ", \\\n  ")) end
    end
  end
  if #panels > 0 then results.plot(dir .. "/input_expansion.png", ([[
set terminal pngcairo size 1500,%d
set output '%s/input_expansion.png'
set datafile separator ','
set key bottom right font ',8' noenhanced
set xlabel 'epoch'
set ylabel 'validation accuracy (mean over seeds)'
set multiplot layout %d,3
%s
unset multiplot
]]):format(420 * math.ceil(#panels / 3), dir, math.ceil(#panels / 3), table.concat(panels, "\n"))) end
end

S = sweep.define {
  name = "input_expansion",
  configs = configs,
  axes = { "stage", "data", "arch", "arm", "lr" },
  seeds = function(c)
    if c.stage == "grid" then return { 1 } end
    local list = {}
    for s = 2, P.seeds do list[#list + 1] = s end
    return list
  end,
  task = task,
  report = report,
}
return sweep.main(S, outdir)
