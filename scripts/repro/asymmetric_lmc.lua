-- scripts/repro/asymmetric_lmc.lua — linear mode connectivity of standard
-- and asymmetric MLPs (Lim, Putterman, Walters, Maron, Jegelka, "The
-- Empirical Impact of Neural Parameter Symmetries, or Lack Thereof",
-- arXiv 2405.20231; weight matching from Ainsworth, Hayase, Srinivasa,
-- "Git Re-Basin", arXiv 2209.04836).
--
--   symlab --threads 2 scripts/repro/asymmetric_lmc.lua [quick] [depth] [mnist] [fashion]
--                                  [fashion=DIR] [arm=NAME ...] [epochs=N] [train=N]
--                                  [test=N] [pairs=N] [RESULTS_DIR]
--
-- The claim: networks with their parameter symmetries removed are linearly
-- mode connected without any alignment, standard networks only after
-- weight matching.  Arms, on MLPs 784-W-W-W-10 with LayerNorm:
--   standard     linear -> layernorm -> gelu
--   standard+wm  the same pairs, B aligned to A by weight matching
--   w_asym       asym_linear (n_fix, kappa per layer: (64, 1), (64, 1),
--                (64, 0.5), (256, 0.25) as in the paper) -> layernorm -> gelu
--   sigma_asym   linear -> layernorm -> figlu
-- PAIRS pairs of models from independent initialisations (seeds 2p-1, 2p;
-- the data order follows the seed); every model of an arm shares its masks
-- and F (fixed mask_seed per layer).  AdamW lr 1e-3, weight decay 0.03,
-- batch 64.  For each pair: test loss and accuracy along the straight line
-- at POINTS points (the `interpolate` probe), the midpoint barrier
-- L(θ(½)) − ½(L(θ_A) + L(θ_B)) and the largest rise above the chord.
--
-- Data, one part each:
--   mnist10k  the shipped MNIST-10k (8000 train / 2000 test rows), always;
--             25 epochs, the paper's;
--   fashion   Fashion-MNIST from the IDX directory fashion=DIR, else
--             $SYMLAB_FASHION_MNIST; skipped (with a line saying so) when
--             neither is set, an error when the directory does not load.
--             A seeded subsample of 10000 rows of its train split, its whole
--             test split (10000 rows), 10 epochs: the full 60000 rows for
--             25 epochs would take about 100 minutes on 2 cores.
-- The full run trains 30 models of 784-512-512-512-10 per dataset; with
-- both parts it took 27 min 51 s with --threads 2 on 2 idle cores (AMD
-- EPYC, Zen 5 class; docs/results/asymmetric_lmc.md): MNIST-10k 17 min,
-- Fashion-MNIST 11 min, depth 5 s.  `mnist` or `fashion` runs only that
-- part (and no depth part); arm=NAME (repeatable: standard, which brings standard+wm,
-- w_asym, sigma_asym) only those arms, so that the arms can run as separate
-- processes; epochs=, train=, test=, pairs= override the sizes for a
-- smaller run.  `quick` is a smoke test of a few seconds (tiny widths, 2
-- pairs), run by `make check`.
--
-- Depth, at small scale: plain MLPs of DEPTH linear layers of width
-- DEPTH_WIDTH with GELU and no normalisation, standard against W-asym
-- (n_fix = in/8 and kappa = 1/sqrt(in) in every layer, so the fixed
-- entries sit at the scale of the free ones' initialisation: our choice,
-- the paper's exact settings we could not read), DEPTH_SEEDS seeds each,
-- the same optimizer and budget, on MNIST-10k; the training loss at the
-- end says which trains better.  `depth` runs only this part.
--
-- Writes RESULTS_DIR/asymmetric_lmc_runs.csv (one row per dataset, arm and
-- pair), asymmetric_lmc_summary.csv (mean and std per dataset and arm),
-- asymmetric_lmc_curves.csv (the curves), asymmetric_lmc_mean_curves.csv,
-- asymmetric_lmc_depth.csv (one row per depth run) and, when gnuplot is
-- installed, asymmetric_lmc_<dataset>.png.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local lmc = require "symlab.lmc"

local TRAINED_ARMS = { "standard", "w_asym", "sigma_asym" } -- standard+wm reuses standard's pairs
local quick, outdir, only, fashion_dir = false, "results", nil, os.getenv("SYMLAB_FASHION_MNIST")
local arms = nil
-- epochs=N, train=N, test=N, pairs=N override the sizes below for every part
-- run (a smaller run on a busy machine; the output says what ran).
local SIZE_KEYS, overrides = { epochs = true, train = true, test = true, pairs = true }, {}
for _, a in ipairs(arg or {}) do
  if a == "quick" then
    quick = true
  elseif a == "depth" or a == "mnist" or a == "fashion" then
    only = a
  elseif a:match("^fashion=") then
    fashion_dir = a:sub(#"fashion=" + 1)
  elseif a:match("^%a+=%d+$") and SIZE_KEYS[a:match("^%a+")] then
    overrides[a:match("^%a+")] = tonumber(a:match("%d+$"))
  elseif a:match("^arm=") then
    local name = a:sub(#"arm=" + 1)
    local known = false
    for _, t in ipairs(TRAINED_ARMS) do known = known or t == name end
    if not known then
      error(("asymmetric_lmc: arm=%s: the arms are standard, w_asym, sigma_asym"):format(name), 0)
    end
    arms = arms or {}
    arms[#arms + 1] = name
  else
    outdir = a
  end
end
outdir = results.outdir(outdir)

-- Sizes.  mnist10k and fashion override what differs per dataset.
local P = quick and { width = 24, pairs = 2, points = 5,
                      fix = { { 8, 1 }, { 8, 1 }, { 8, 0.5 }, { 12, 0.25 } },
                      mnist10k = { train = 256, test = 256, epochs = 2 },
                      fashion = { train = 256, test = 256, epochs = 2 },
                      depth = 16, depth_width = 16, depth_epochs = 1, depth_seeds = 2 }
              or { width = 512, pairs = 5, points = 25,
                   fix = { { 64, 1 }, { 64, 1 }, { 64, 0.5 }, { 256, 0.25 } },
                   mnist10k = { train = 10000, test = 10000, epochs = 25 },
                   fashion = { train = 10000, test = 10000, epochs = 10 },
                   depth = 16, depth_width = 64, depth_epochs = 3, depth_seeds = 3 }
for _, part in ipairs({ P.mnist10k, P.fashion }) do
  for _, key in ipairs({ "epochs", "train", "test" }) do
    part[key] = overrides[key] or part[key]
  end
end
P.pairs = overrides.pairs or P.pairs
local LR, WEIGHT_DECAY, BATCH = 1e-3, 0.03, 64
local t_start = sl.clock()

-- ---------------------------------------------------------------- data
-- Normalised with the training rows' own mean and std.
local function prepared(train, test, size)
  local tr = train:split(math.min(size.train, #train), 1)
  local te = test:split(math.min(size.test, #test), 2)
  local mean, std = tr:stats()
  tr:normalize(mean, std)
  te:normalize(mean, std)
  return tr, te
end

local function mnist10k()
  local d = sl.data.idx(sl.data.path("mnist10k"))
  local tr, te = prepared(d.train, d.test, P.mnist10k)
  return { tag = "mnist10k", name = "shipped MNIST-10k", train = tr, test = te,
           epochs = P.mnist10k.epochs }
end

-- nil (and a line saying why) when no directory is configured; a bad
-- directory is an error naming it.
local function fashion()
  if not fashion_dir or fashion_dir == "" then
    print("asymmetric_lmc: Fashion-MNIST part skipped: neither fashion=DIR nor "
          .. "SYMLAB_FASHION_MNIST is set")
    return nil
  end
  local ok, d = pcall(sl.data.idx, fashion_dir)
  if not ok then
    error(("asymmetric_lmc: Fashion-MNIST directory %s: %s")
          :format(fashion_dir, tostring(d):gsub("^.-: ", "", 1)), 0)
  end
  local tr, te = prepared(d.train, d.test, P.fashion)
  return { tag = "fashion", name = "Fashion-MNIST", train = tr, test = te,
           epochs = P.fashion.epochs }
end

-- ---------------------------------------------------------------- models
-- The layers of one arm.  Mask seeds are fixed per layer, so every model of
-- an arm shares its masks and F.
local function layers(arm)
  local W, l = P.width, { sl.nn.flatten() }
  local sizes = { 784, W, W, W, 10 }
  for i = 1, 4 do
    local last = i == 4
    if arm == "w_asym" then
      l[#l + 1] = sl.nn.asym_linear { in_features = sizes[i], out_features = sizes[i + 1],
                                      n_fix = P.fix[i][1], kappa = P.fix[i][2],
                                      mask_seed = 100 + i }
    else
      l[#l + 1] = sl.nn.linear(sizes[i], sizes[i + 1])
    end
    if not last then
      l[#l + 1] = sl.nn.layernorm { features = sizes[i + 1] }
      if arm == "sigma_asym" then
        l[#l + 1] = sl.nn.figlu { features = sizes[i + 1], mask_seed = 200 + i }
      else
        l[#l + 1] = sl.nn.gelu()
      end
    end
  end
  return l
end

local function trained(arm, seed, data)
  local net = sl.nn.sequential(layers(arm), { seed = seed })
  local opt = sl.optim.adamw(net, { lr = LR, weight_decay = WEIGHT_DECAY })
  sl.train(net, opt, data.train, { epochs = data.epochs, batch = BATCH, seed = seed,
                                   progress = "never" })
  return net
end

-- ---------------------------------------------------------------- helpers
local function mean_std(xs)
  local s, s2 = 0, 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / #xs
  for _, x in ipairs(xs) do s2 = s2 + (x - m) ^ 2 end
  return m, #xs > 1 and math.sqrt(s2 / (#xs - 1)) or 0
end

-- ---------------------------------------------------------------- mode connectivity
local ARMS = { "standard", "standard+wm", "w_asym", "sigma_asym" }

-- Trains the pairs on one dataset, interpolates, aligns; appends one row
-- per arm and pair to runs and the curves to curves.
local function run_pairs(data, runs, curves)
  local test = data.test
  local function record(arm, pair, c, extra)
    local row = { dataset = data.tag, arm = arm, pair = pair, loss_a = c.loss[1],
                  loss_b = c.loss[#c.loss], acc_a = c.acc[1], acc_b = c.acc[#c.acc],
                  barrier = c.barrier,
                  max_barrier = c.max_barrier, acc_barrier = c.acc_barrier,
                  max_acc_barrier = c.max_acc_barrier }
    for k, v in pairs(extra or {}) do row[k] = v end
    runs[#runs + 1] = row
    for i = 1, #c.loss do
      curves[#curves + 1] = { dataset = data.tag, arm = arm, pair = pair, lambda = c.lambda[i],
                              loss = c.loss[i], acc = c.acc[i] }
    end
  end
  local opts = { points = P.points }
  for _, arm in ipairs(arms or TRAINED_ARMS) do
    for p = 1, P.pairs do
      local a, b = trained(arm, 2 * p - 1, data), trained(arm, 2 * p, data)
      local first = #runs + 1
      record(arm, p, lmc.interpolate(a, b, test, opts))
      if arm == "standard" then
        local m = lmc.align(a, b, { seed = p })
        record("standard+wm", p, lmc.interpolate(a, b, test, opts),
               { sweeps = m.sweeps, units_moved = m.units_moved })
      end
      for i = first, #runs do
        local r = runs[i]
        print(("  %s %-11s pair %d: test acc %.4f / %.4f, barrier %.4f  (%.0f s)")
              :format(data.tag, r.arm, p, r.acc_a, r.acc_b, r.barrier, sl.clock() - t_start))
      end
      a:close()
      b:close()
    end
  end
end

-- Mean and std of the barriers per arm, appended to summary.
local function summarise(tag, runs, summary)
  for _, arm in ipairs(ARMS) do
    local b, mb, ab, acc = {}, {}, {}, {}
    for _, r in ipairs(runs) do
      if r.dataset == tag and r.arm == arm then
        b[#b + 1], mb[#mb + 1], ab[#ab + 1] = r.barrier, r.max_barrier, r.acc_barrier
        acc[#acc + 1] = (r.acc_a + r.acc_b) / 2
      end
    end
    if #b > 0 then -- arms not run (arm=) have no row
      local row = { dataset = tag, arm = arm, pairs = #b }
      row.barrier_mean, row.barrier_std = mean_std(b)
      row.max_barrier_mean, row.max_barrier_std = mean_std(mb)
      row.acc_barrier_mean, row.acc_barrier_std = mean_std(ab)
      row.test_acc_mean = mean_std(acc)
      summary[#summary + 1] = row
    end
  end
end

-- The mean curve per dataset and arm, appended to mean_curves, and the
-- dataset's plot.
local function plot_curves(tag, curves, mean_curves)
  for _, arm in ipairs(ARMS) do
    for i = 0, P.points - 1 do
      local s, n, lam = 0, 0, nil
      for _, c in ipairs(curves) do
        local at = math.abs(c.lambda - i / (P.points - 1)) < 1e-12
        if c.dataset == tag and c.arm == arm and at then
          s, n, lam = s + c.loss, n + 1, c.lambda
        end
      end
      if n > 0 then
        mean_curves[#mean_curves + 1] = { dataset = tag, arm = arm, lambda = lam, loss = s / n }
      end
    end
  end
  local csv = outdir .. "/asymmetric_lmc_mean_curves.csv"
  results.write_csv(csv, mean_curves, { "dataset", "arm", "lambda", "loss" })
  local png = ("%s/asymmetric_lmc_%s.png"):format(outdir, tag)
  local plot = { "set terminal pngcairo size 800,500", ("set output '%s'"):format(png),
                 "set datafile separator ','", "set key top left noenhanced", "set xlabel 'lambda'",
                 ("set ylabel 'test loss, %s (mean over pairs)'"):format(tag) }
  local parts, present = {}, {}
  for _, c in ipairs(mean_curves) do
    if c.dataset == tag then present[c.arm] = true end
  end
  for _, arm in ipairs(ARMS) do -- grep's basic regex: '+' is literal
    if present[arm] then
      parts[#parts + 1] = ("'< grep \"^%s,%s,\" %s' using 3:4 with linespoints title '%s'")
                          :format(tag, arm, csv, arm)
    end
  end
  plot[#plot + 1] = "plot " .. table.concat(parts, ", \\\n     ")
  results.plot(png, table.concat(plot, "\n") .. "\n")
end

local SUMMARY_COLS = { "dataset", "arm", "pairs", "barrier_mean", "barrier_std",
                       "max_barrier_mean", "max_barrier_std", "acc_barrier_mean",
                       "acc_barrier_std", "test_acc_mean" }

-- One dataset's part; the files hold every part run so far.
local function connectivity(data, acc)
  print(("mode connectivity on %s: %d train / %d test rows, width %d, %d epochs, %d pairs, "
         .. "%d points"):format(data.name, #data.train, #data.test, P.width, data.epochs, P.pairs,
                                P.points))
  run_pairs(data, acc.runs, acc.curves)
  summarise(data.tag, acc.runs, acc.summary)
  results.write_csv(outdir .. "/asymmetric_lmc_runs.csv", acc.runs,
                    { "dataset", "arm", "pair", "loss_a", "loss_b", "acc_a", "acc_b", "barrier",
                      "max_barrier", "acc_barrier", "max_acc_barrier", "sweeps", "units_moved" })
  results.write_csv(outdir .. "/asymmetric_lmc_summary.csv", acc.summary, SUMMARY_COLS)
  results.write_csv(outdir .. "/asymmetric_lmc_curves.csv", acc.curves,
                    { "dataset", "arm", "pair", "lambda", "loss", "acc" })
  local mine = {}
  for _, r in ipairs(acc.summary) do
    if r.dataset == data.tag then mine[#mine + 1] = r end
  end
  tbl.print(mine, SUMMARY_COLS)
  plot_curves(data.tag, acc.curves, acc.mean_curves)
end

-- ---------------------------------------------------------------- depth
local function deep_layers(arm)
  local l = { sl.nn.flatten() }
  for i = 1, P.depth do
    local n_in = i == 1 and 784 or P.depth_width
    local n_out = i == P.depth and 10 or P.depth_width
    if arm == "w_asym" then
      l[#l + 1] = sl.nn.asym_linear { in_features = n_in, out_features = n_out, n_fix = n_in // 8,
                                      kappa = 1 / math.sqrt(n_in), mask_seed = 300 + i }
    else
      l[#l + 1] = sl.nn.linear(n_in, n_out)
    end
    if i < P.depth then l[#l + 1] = sl.nn.gelu() end
  end
  return l
end

local function depth(train, test)
  print(("depth: %d plain layers of width %d, %d epochs, %d seeds")
        :format(P.depth, P.depth_width, P.depth_epochs, P.depth_seeds))
  local runs, summary = {}, {}
  for _, arm in ipairs({ "standard", "w_asym" }) do
    local losses = {}
    for seed = 1, P.depth_seeds do
      local net = sl.nn.sequential(deep_layers(arm), { seed = seed })
      local opt = sl.optim.adamw(net, { lr = LR, weight_decay = WEIGHT_DECAY })
      local hist = sl.train(net, opt, train, { epochs = P.depth_epochs, batch = BATCH, seed = seed,
                                               progress = "never" })
      local last = hist[#hist]
      runs[#runs + 1] = { arm = arm, seed = seed, train_loss = last.loss,
                          train_acc = last.accuracy, test_acc = sl.evaluate(net, test).accuracy }
      losses[#losses + 1] = last.loss
      net:close()
    end
    local m, s = mean_std(losses)
    summary[#summary + 1] = { arm = arm, layers = P.depth, seeds = #losses,
                              train_loss_mean = m, train_loss_std = s }
  end
  results.write_csv(outdir .. "/asymmetric_lmc_depth.csv", runs,
                    { "arm", "seed", "train_loss", "train_acc", "test_acc" })
  tbl.print(summary, { "arm", "layers", "seeds", "train_loss_mean", "train_loss_std" })
end

-- ---------------------------------------------------------------- main
print(("asymmetric_lmc: %d threads%s"):format(sl.threads, quick and " [quick]" or ""))
local acc = { runs = {}, curves = {}, summary = {}, mean_curves = {} }
local mnist = mnist10k()
if only == nil or only == "mnist" then connectivity(mnist, acc) end
if only == nil or only == "fashion" then
  local fm = fashion()
  if fm then connectivity(fm, acc) end
end
if only == nil or only == "depth" then depth(mnist.train, mnist.test) end
print(("asymmetric_lmc: %.1f s"):format(sl.clock() - t_start))
