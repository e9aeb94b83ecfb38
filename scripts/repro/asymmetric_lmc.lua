-- scripts/repro/asymmetric_lmc.lua — linear mode connectivity of standard
-- and asymmetric MLPs (Lim, Putterman, Walters, Maron, Jegelka, "The
-- Empirical Impact of Neural Parameter Symmetries, or Lack Thereof",
-- arXiv 2405.20231; weight matching from Ainsworth, Hayase, Srinivasa,
-- "Git Re-Basin", arXiv 2209.04836).
--
--   symlab --threads 2 scripts/repro/asymmetric_lmc.lua [quick] [depth] [RESULTS_DIR]
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
-- Data: Fashion-MNIST from the IDX directory $SYMLAB_FASHION_MNIST when set
-- and readable (TRAIN rows of its train split, its test split), else the
-- shipped MNIST-10k.  The output says which.  Full mode trains 30 models of
-- 784-512-512-512-10 for EPOCHS epochs (fewer than the paper's 25, to fit
-- about half an hour on 2 cores); `quick` is a smoke test of a few seconds
-- (tiny widths, 2 pairs), run by `make check`.
--
-- Depth, at small scale: plain MLPs of DEPTH linear layers of width
-- DEPTH_WIDTH with GELU and no normalisation, standard against W-asym
-- (n_fix = in/8 and kappa = 1/sqrt(in) in every layer, so the fixed
-- entries sit at the scale of the free ones' initialisation: our choice,
-- the paper's exact settings we could not read), DEPTH_SEEDS seeds each,
-- the same optimizer and budget; the training loss at the end says which
-- trains better.  `depth` runs only this part.
--
-- Writes RESULTS_DIR/asymmetric_lmc_runs.csv (one row per arm and pair),
-- asymmetric_lmc_summary.csv (mean and std per arm),
-- asymmetric_lmc_curves.csv (the curves), asymmetric_lmc_depth.csv (one row
-- per depth run) and asymmetric_lmc.png (gnuplot, when installed).
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local lmc = require "symlab.lmc"

local quick, depth_only, outdir = false, false, "results"
for _, a in ipairs(arg or {}) do
  if a == "quick" then
    quick = true
  elseif a == "depth" then
    depth_only = true
  else
    outdir = a
  end
end
outdir = results.outdir(outdir)

local P = quick and { train = 256, test = 256, width = 24, epochs = 2, pairs = 2, points = 5,
                      fix = { { 8, 1 }, { 8, 1 }, { 8, 0.5 }, { 12, 0.25 } },
                      depth = 16, depth_width = 16, depth_epochs = 1, depth_seeds = 2 }
              or { train = 10000, test = 10000, width = 512, epochs = 10, pairs = 5, points = 25,
                   fix = { { 64, 1 }, { 64, 1 }, { 64, 0.5 }, { 256, 0.25 } },
                   depth = 16, depth_width = 64, depth_epochs = 3, depth_seeds = 3 }
local LR, WEIGHT_DECAY, BATCH = 1e-3, 0.03, 64
local t_start = sl.clock()

-- ---------------------------------------------------------------- data
local function load_data()
  local fm = os.getenv("SYMLAB_FASHION_MNIST")
  local why = "SYMLAB_FASHION_MNIST not set"
  if fm and not quick then
    local ok, train = pcall(sl.data.idx, fm, "train")
    local okt, test = pcall(sl.data.idx, fm, "test")
    if ok and okt then
      local tr = train:split(math.min(P.train, #train), 1)
      local te = test:split(math.min(P.test, #test), 2)
      return tr, te, "Fashion-MNIST"
    end
    why = tostring(ok and test or train):gsub("^.-: ", "", 1)
  end
  local d = sl.data.idx(sl.data.path("mnist10k"))
  local tr = d.train:split(math.min(P.train, #d.train), 1)
  local te = d.test:split(math.min(P.test, #d.test), 2)
  return tr, te, ("shipped MNIST-10k (%s)"):format(why)
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

local function trained(arm, seed, train)
  local net = sl.nn.sequential(layers(arm), { seed = seed })
  local opt = sl.optim.adamw(net, { lr = LR, weight_decay = WEIGHT_DECAY })
  sl.train(net, opt, train, { epochs = P.epochs, batch = BATCH, seed = seed, progress = "never" })
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

-- Trains the pairs, interpolates, aligns; returns one row per arm and pair
-- and the curves.
local function run_pairs(train, test)
  local runs, curves = {}, {}
  local function record(arm, pair, c, extra)
    local row = { arm = arm, pair = pair, loss_a = c.loss[1], loss_b = c.loss[#c.loss],
                  acc_a = c.acc[1], acc_b = c.acc[#c.acc], barrier = c.barrier,
                  max_barrier = c.max_barrier, acc_barrier = c.acc_barrier,
                  max_acc_barrier = c.max_acc_barrier }
    for k, v in pairs(extra or {}) do row[k] = v end
    runs[#runs + 1] = row
    for i = 1, #c.loss do
      curves[#curves + 1] = { arm = arm, pair = pair, lambda = c.lambda[i], loss = c.loss[i],
                              acc = c.acc[i] }
    end
  end
  local opts = { points = P.points }
  for _, arm in ipairs({ "standard", "w_asym", "sigma_asym" }) do
    for p = 1, P.pairs do
      local a, b = trained(arm, 2 * p - 1, train), trained(arm, 2 * p, train)
      local first = #runs + 1
      record(arm, p, lmc.interpolate(a, b, test, opts))
      if arm == "standard" then
        local m = lmc.align(a, b, { seed = p })
        record("standard+wm", p, lmc.interpolate(a, b, test, opts),
               { sweeps = m.sweeps, units_moved = m.units_moved })
      end
      for i = first, #runs do
        local r = runs[i]
        print(("  %-11s pair %d: test acc %.4f / %.4f, barrier %.4f  (%.0f s)")
              :format(r.arm, p, r.acc_a, r.acc_b, r.barrier, sl.clock() - t_start))
      end
      a:close()
      b:close()
    end
  end
  return runs, curves
end

-- Mean and std of the barriers per arm.
local function summarise(runs)
  local summary = {}
  for _, arm in ipairs(ARMS) do
    local b, mb, ab, acc = {}, {}, {}, {}
    for _, r in ipairs(runs) do
      if r.arm == arm then
        b[#b + 1], mb[#mb + 1], ab[#ab + 1] = r.barrier, r.max_barrier, r.acc_barrier
        acc[#acc + 1] = (r.acc_a + r.acc_b) / 2
      end
    end
    local row = { arm = arm, pairs = #b }
    row.barrier_mean, row.barrier_std = mean_std(b)
    row.max_barrier_mean, row.max_barrier_std = mean_std(mb)
    row.acc_barrier_mean, row.acc_barrier_std = mean_std(ab)
    row.test_acc_mean = mean_std(acc)
    summary[#summary + 1] = row
  end
  return summary
end

-- The mean curve per arm as CSV, and its plot.
local function plot_curves(curves)
  local mean_curves = {}
  for _, arm in ipairs(ARMS) do
    for i = 0, P.points - 1 do
      local s, n, lam = 0, 0, nil
      for _, c in ipairs(curves) do
        if c.arm == arm and math.abs(c.lambda - i / (P.points - 1)) < 1e-12 then
          s, n, lam = s + c.loss, n + 1, c.lambda
        end
      end
      mean_curves[#mean_curves + 1] = { arm = arm, lambda = lam, loss = s / n }
    end
  end
  local csv = outdir .. "/asymmetric_lmc_mean_curves.csv"
  results.write_csv(csv, mean_curves, { "arm", "lambda", "loss" })
  local plot = { "set terminal pngcairo size 800,500",
                 ("set output '%s/asymmetric_lmc.png'"):format(outdir),
                 "set datafile separator ','", "set key top left",
                 "set xlabel 'lambda'", "set ylabel 'test loss (mean over pairs)'" }
  local parts = {}
  for _, arm in ipairs(ARMS) do -- grep's basic regex: '+' is literal
    parts[#parts + 1] = ("'< grep \"^%s,\" %s' using 2:3 with linespoints title '%s'")
                        :format(arm, csv, arm)
  end
  plot[#plot + 1] = "plot " .. table.concat(parts, ", \\\n     ")
  results.plot(outdir .. "/asymmetric_lmc.png", table.concat(plot, "\n") .. "\n")
end

local function connectivity(train, test)
  print(("mode connectivity: width %d, %d epochs, %d pairs, %d points")
        :format(P.width, P.epochs, P.pairs, P.points))
  local runs, curves = run_pairs(train, test)
  local summary = summarise(runs)
  local cols = { "arm", "pairs", "barrier_mean", "barrier_std", "max_barrier_mean",
                 "max_barrier_std", "acc_barrier_mean", "acc_barrier_std", "test_acc_mean" }
  results.write_csv(outdir .. "/asymmetric_lmc_runs.csv", runs,
                    { "arm", "pair", "loss_a", "loss_b", "acc_a", "acc_b", "barrier", "max_barrier",
                      "acc_barrier", "max_acc_barrier", "sweeps", "units_moved" })
  results.write_csv(outdir .. "/asymmetric_lmc_summary.csv", summary, cols)
  results.write_csv(outdir .. "/asymmetric_lmc_curves.csv", curves,
                    { "arm", "pair", "lambda", "loss", "acc" })
  tbl.print(summary, cols)
  plot_curves(curves)
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
local train, test, source = load_data()
local mean, std = train:stats()
train:normalize(mean, std)
test:normalize(mean, std)
print(("asymmetric_lmc: %s, %d train / %d test rows, %d threads%s")
      :format(source, #train, #test, sl.threads, quick and " [quick]" or ""))
if not depth_only then connectivity(train, test) end
depth(train, test)
print(("asymmetric_lmc: %.1f s"):format(sl.clock() - t_start))
