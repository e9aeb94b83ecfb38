-- scripts/repro/hierarchy.lua — order parameters of hierarchical learning
-- (Ziyin, Xu, Poggio, Chuang, "Parameter Symmetry Breaking and Restoration
-- Determines the Hierarchical Learning in AI Systems", arXiv 2502.05300;
-- the deep-linear dynamics are Saxe, McClelland, Ganguli, arXiv 1312.6120;
-- CKA is Kornblith, Norouzi, Lee, Hinton, arXiv 1905.00414).
--
--   symlab --threads 2 scripts/repro/hierarchy.lua [quick] [linear|cka] [RESULTS_DIR]
--
-- (a) linear: a deep linear network (DEPTH layers of D x D, no biases)
--     from small initialisation regresses onto a teacher W* = U diag(s) Vᵀ
--     (random orthogonal U, V; s halving from mode to mode) under full-batch
--     gradient descent on whitened inputs (the rows sqrt(D) e_i, repeated
--     REPS times so that one epoch is REPS steps).  The claim: the singular
--     values of the end-to-end map W_L ... W_1 are learned one at a time,
--     largest first, so the loss falls in steps with plateaus in between and
--     the rank rises by one per step.  The rank_log hook records the
--     product's (and every layer's) rank and top singular values per epoch;
--     rank = #{singular values > ATOL}, an absolute cut well below the
--     smallest teacher value and well above the initial scale.  The loss on
--     a plateau where modes 1..k are learned is predicted exactly:
--     (1/D) sum_{j > k} s_j^2 (mse is the mean over the D outputs).
-- (b) cka: PAIRS pairs of ReLU MLPs 784-W-W-10 from independent
--     initialisations (and data orders) trained side by side on MNIST-10k
--     (SGD, momentum 0.9); after every epoch, linear CKA between the pair's
--     hidden activations on the first PROBE test images (the
--     symmetry_metrics probe with `other`), and as a control the CKA of the
--     trained A with B's untrained initialisation.  The claim: independently
--     trained networks align; alignment rises during training.  rank_log
--     also logs each layer's rank and NC1 of the penultimate features.
--
-- The control: the same network and teacher from the default
-- initialisation (init x1), far from the symmetric state W = 0.
--
-- Writes RESULTS_DIR/hierarchy_linear.csv (one row per epoch; and
-- hierarchy_linear_control.csv),
-- hierarchy_linear_modes.csv (per teacher mode: when it was learned),
-- hierarchy_cka.csv (pair, epoch, layer), hierarchy_cka_summary.csv (mean
-- and std over pairs), hierarchy_nets.csv (accuracy, NC1, ranks per net
-- and epoch), and hierarchy_linear.png / hierarchy_cka.png (gnuplot, when
-- installed).  `quick` is a smoke test of a few seconds run by `make check`.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"

local quick, part, outdir = false, nil, "results"
for _, a in ipairs(arg or {}) do
  if a == "quick" then
    quick = true
  elseif a == "linear" or a == "cka" then
    part = a
  else
    outdir = a
  end
end
outdir = results.outdir(outdir)

local P = quick and { D = 4, depth = 3, s = { 3, 1.5, 0.75 }, init = 0.05, lr = 0.2, reps = 20,
                      epochs = 80, atol = 0.1,
                      train = 512, width = 32, epochs_cka = 2, pairs = 1, probe = 128 }
              or { D = 8, depth = 3, s = { 3, 1.5, 0.75, 0.375 }, init = 0.01, lr = 0.4, reps = 20,
                   epochs = 500, atol = 0.1,
                   train = 10000, width = 256, epochs_cka = 10, pairs = 3, probe = 1000 }
local t_start = sl.clock()

local function mean_std(xs)
  local s, s2 = 0, 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / #xs
  for _, x in ipairs(xs) do s2 = s2 + (x - m) ^ 2 end
  return m, #xs > 1 and math.sqrt(s2 / (#xs - 1)) or 0
end

-- ---------------------------------------------------------------- (a) deep linear

-- A random D x D orthogonal matrix (Gram-Schmidt of Gaussian columns), as
-- a list of rows.
local function orthogonal(D)
  local function normal()
    return math.sqrt(-2 * math.log(1 - math.random())) * math.cos(2 * math.pi * math.random())
  end
  local Q = {}
  for c = 1, D do
    local v = {}
    for r = 1, D do v[r] = normal() end
    for k = 1, c - 1 do
      local dot = 0
      for r = 1, D do dot = dot + v[r] * Q[r][k] end
      for r = 1, D do v[r] = v[r] - dot * Q[r][k] end
    end
    local n = 0
    for r = 1, D do n = n + v[r] ^ 2 end
    n = math.sqrt(n)
    for r = 1, D do
      Q[r] = Q[r] or {}
      Q[r][c] = v[r] / n
    end
  end
  return Q
end

-- W* = U diag(s) Vᵀ (s padded with zeros to D).
local function teacher(D, s)
  local U, V, W = orthogonal(D), orthogonal(D), {}
  for i = 1, D do
    W[i] = {}
    for j = 1, D do
      local v = 0
      for k = 1, #s do v = v + U[i][k] * s[k] * V[j][k] end
      W[i][j] = v
    end
  end
  return W
end

-- Whitened inputs x = sqrt(D) e_i (so the empirical input covariance is
-- exactly I), targets W* x, the D rows repeated `reps` times.
local function linear_data(W, D, reps)
  local xs, ys, c = {}, {}, math.sqrt(D)
  for _ = 1, reps do
    for i = 1, D do
      for j = 1, D do
        xs[#xs + 1] = i == j and c or 0
        ys[#ys + 1] = c * W[j][i]
      end
    end
  end
  return sl.data.from(sl.tensor.from(xs, { reps * D, D }), sl.tensor.from(ys, { reps * D, D }))
end

-- The probe's rank names of the product and the layers, for one record.
local function linear_row(epoch, loss, r)
  local row = { epoch = epoch, loss = loss, rank = r["product.rank"],
                effective_rank = r["product.effective_rank"] }
  for k = 1, P.D do row["sv" .. k] = r["product.sv" .. (k - 1)] end
  for l = 1, P.depth do row["rank_w" .. l] = r[(l - 1) .. ".rank"] end
  return row
end

-- Trains the deep linear network from the default initialisation scaled
-- by `init`; one row per epoch (epoch 0 from the probe).
local function deep_linear(init)
  math.randomseed(7)
  local D = P.D
  local W = teacher(D, P.s)
  local ds = linear_data(W, D, P.reps)
  local layers = {}
  for _ = 1, P.depth do layers[#layers + 1] = sl.nn.linear(D, D, { bias = false }) end
  local net = sl.nn.sequential(layers, { seed = 1, dtype = "f64" })
  net:flat_params():scale(init)
  local opt = sl.optim.sgd(net, { lr = P.lr })
  local ropts = { top_sv = D, rank_atol = P.atol, rank_rtol = 0 }
  local rows = { linear_row(0, sl.evaluate(net, ds, { loss = "mse" }).loss,
                            sl.probe.symmetry_metrics(net, nil, ropts)) }
  local hist = sl.train(net, opt, ds, { epochs = P.epochs, batch = D, shuffle = false,
                                        loss = "mse", seed = 1, progress = "never",
                                        hooks = { sl.hook.rank_log(ropts) } })
  for _, h in ipairs(hist) do rows[#rows + 1] = linear_row(h.epoch, h.loss, h) end
  net:close()
  return rows
end

-- Per teacher mode k: the first epoch at which the product's k-th singular
-- value reaches half of s_k, the first epoch at which the rank reaches k,
-- and the loss on the plateau before it (the epoch halfway between the
-- previous mode's learning and this one's) against the prediction.
local function modes_of(rows)
  local modes, D = {}, P.D
  local prev = 0
  for k, s in ipairs(P.s) do
    local learned, ranked
    for _, r in ipairs(rows) do
      if not learned and r["sv" .. k] >= s / 2 then learned = r.epoch end
      if not ranked and r.rank >= k then ranked = r.epoch end
    end
    local predicted = 0
    for j = k, #P.s do predicted = predicted + P.s[j] ^ 2 / D end
    local plateau
    if learned then
      local mid = (prev + learned) // 2
      for _, r in ipairs(rows) do
        if r.epoch == mid then plateau = r.loss end
      end
      prev = learned
    end
    modes[#modes + 1] = { mode = k, s = s, learned_epoch = learned or -1,
                          rank_epoch = ranked or -1, plateau_loss = plateau or -1,
                          predicted_loss = predicted }
  end
  return modes
end

-- Is the rank trajectory a staircase of unit steps?
local function rank_steps(rows)
  local ups, jumps, falls = 0, 0, 0
  for i = 2, #rows do
    local d = rows[i].rank - rows[i - 1].rank
    if d == 1 then ups = ups + 1 elseif d > 1 then jumps = jumps + 1 elseif d < 0 then falls = falls + 1 end
  end
  return ups, jumps, falls
end

local function plot_linear(csv, control)
  local svs = {}
  for k = 1, #P.s do
    svs[#svs + 1] = ("'%s' using 1:(column('sv%d')) with lines lw 2 title 'sigma_%d (teacher %g)'")
                    :format(csv, k, k, P.s[k])
  end
  local plot = {
    "set terminal pngcairo size 900,900", ("set output '%s/hierarchy_linear.png'"):format(outdir),
    "set datafile separator ','", "set multiplot layout 3,1", "set key top right",
    "set logscale y", "set format y '%g'", "set ylabel 'training loss (mse)'",
    "set yrange [1e-6:*]",
    ("plot '%s' using 1:(column('loss')) with lines lw 2 title 'loss, small init', "
     .. "'%s' using 1:(column('loss')) with lines dt 2 title 'loss, init x1 (control)'"):format(csv, control),
    "unset yrange",
    "unset logscale y", "set ylabel 'singular values of W_L...W_1'", "set key bottom right",
    "plot " .. table.concat(svs, ", "),
    "set ylabel 'rank (s > " .. P.atol .. ")'", "set xlabel 'epoch (" .. P.reps .. " GD steps each)'",
    ("set yrange [-0.2:%g]"):format(#P.s + 1.5),
    ("plot '%s' using 1:(column('rank')) with steps lw 2 title 'product', "
     .. "'%s' using 1:(column('rank_w1')) with steps dt 2 title 'W_1', "
     .. "'%s' using 1:(column('rank')) with steps dt 3 title 'product, init x1 (control)'")
    :format(csv, csv, control),
    "unset multiplot" }
  results.plot(outdir .. "/hierarchy_linear.png", table.concat(plot, "\n") .. "\n")
end

local function run_linear()
  print(("(a) deep linear: %d layers of %dx%d, teacher s = {%s}, init x%g, lr %g, %d epochs x %d steps")
        :format(P.depth, P.D, P.D, table.concat(P.s, ", "), P.init, P.lr, P.epochs, P.reps))
  local rows, control = deep_linear(P.init), deep_linear(1)
  local cols = { "epoch", "loss", "rank", "effective_rank" }
  for k = 1, P.D do cols[#cols + 1] = "sv" .. k end
  for l = 1, P.depth do cols[#cols + 1] = "rank_w" .. l end
  local csv, csv_control = outdir .. "/hierarchy_linear.csv", outdir .. "/hierarchy_linear_control.csv"
  results.write_csv(csv, rows, cols)
  results.write_csv(csv_control, control, cols)
  local modes = modes_of(rows)
  results.write_csv(outdir .. "/hierarchy_linear_modes.csv", modes,
                    { "mode", "s", "learned_epoch", "rank_epoch", "plateau_loss", "predicted_loss" })
  tbl.print(modes, { "mode", "s", "learned_epoch", "rank_epoch", "plateau_loss", "predicted_loss" })
  local ups, jumps, falls = rank_steps(rows)
  print(("rank: %d -> %d; %d unit steps, %d jumps of more than one, %d falls; final loss %.3g")
        :format(rows[1].rank, rows[#rows].rank, ups, jumps, falls, rows[#rows].loss))
  local cmodes = modes_of(control)
  local learned = {}
  for _, m in ipairs(cmodes) do learned[#learned + 1] = m.learned_epoch end
  ups, jumps, falls = rank_steps(control)
  print(("control, init x1: modes reach half their value at epochs {%s}; rank %d -> %d "
         .. "(%d rises, %d falls); final loss %.3g")
        :format(table.concat(learned, ", "), control[1].rank, control[#control].rank, ups + jumps,
                falls, control[#control].loss))
  plot_linear(csv, csv_control)
  return rows, modes
end

-- ---------------------------------------------------------------- (b) CKA across seeds

local function load_mnist()
  local d = sl.data.idx(sl.data.path("mnist10k"))
  local train = d.train:split(math.min(P.train, #d.train), 1)
  local mean, std = train:stats()
  train:normalize(mean, std)
  d.test:normalize(mean, std)
  return train, d.test
end

local function mlp(seed)
  local W = P.width
  return sl.nn.sequential({ sl.nn.flatten(), sl.nn.linear(784, W), sl.nn.relu(),
                            sl.nn.linear(W, W), sl.nn.relu(), sl.nn.linear(W, 10) }, { seed = seed })
end

-- CKA of every hidden layer of a with the model saved at path: { ["1"] = c, ... }.
local function cka(a, path, test)
  local r = sl.probe.symmetry_metrics(a, test, { other = path, probe_batch = P.probe, nc1 = "false" })
  local out = {}
  for k, v in pairs(r) do
    local layer = k:match("^(.-)%.cka$")
    if layer then out[layer] = v end
  end
  return out
end

local function layers_of(c)
  local ls = {}
  for l in pairs(c) do ls[#ls + 1] = l end
  table.sort(ls, function(x, y) return tonumber(x) < tonumber(y) end)
  return ls
end

local function run_pair(p, train, test, ckas, nets)
  local seeds = { 2 * p - 1, 2 * p }
  local a, b = mlp(seeds[1]), mlp(seeds[2])
  local path_b, path_b0 = os.tmpname(), os.tmpname()
  b:save(path_b0)
  local opts = { sl.optim.sgd(a, { lr = 0.02, momentum = 0.9 }),
                 sl.optim.sgd(b, { lr = 0.02, momentum = 0.9 }) }
  local function record(epoch, rows) -- rows: the epoch's history rows of a and b
    b:save(path_b)
    local c, c0 = cka(a, path_b, test), cka(a, path_b0, test)
    for _, l in ipairs(layers_of(c)) do
      ckas[#ckas + 1] = { pair = p, epoch = epoch, layer = l, cka = c[l], cka_vs_init = c0[l] }
    end
    for i, net in ipairs({ a, b }) do
      -- before training the hook has not run: the probe gives the same numbers
      local h = rows and rows[i] or sl.probe.symmetry_metrics(net, train, { probe_batch = 512 })
      nets[#nets + 1] = { pair = p, net = i, seed = seeds[i], epoch = epoch,
                          test_acc = sl.evaluate(net, test).accuracy, train_loss = h.loss,
                          nc1 = h.nc1, rank_1 = h["1.rank"], rank_3 = h["3.rank"],
                          effective_rank_1 = h["1.effective_rank"],
                          effective_rank_3 = h["3.effective_rank"] }
    end
  end
  record(0)
  for e = 1, P.epochs_cka do
    local rows = {}
    for i, net in ipairs({ a, b }) do
      local hook = sl.hook.rank_log { nc1 = true, probe_batch = 512 }
      local h = sl.train(net, opts[i], train, { epochs = 1, start_epoch = e - 1, batch = 64,
                                                 seed = seeds[i], progress = "never",
                                                 hooks = { hook } })
      rows[i] = h[1]
    end
    record(e, rows)
    local last = ckas[#ckas]
    print(("  pair %d epoch %d: test acc %.4f / %.4f, CKA layer %s %.3f (vs init %.3f)  (%.0f s)")
          :format(p, e, nets[#nets - 1].test_acc, nets[#nets].test_acc, last.layer, last.cka,
                  last.cka_vs_init, sl.clock() - t_start))
  end
  os.remove(path_b)
  os.remove(path_b0)
  a:close()
  b:close()
end

local function summarise_cka(ckas)
  local groups, order = {}, {}
  for _, r in ipairs(ckas) do
    local key = r.epoch .. "," .. r.layer
    if not groups[key] then
      groups[key] = { epoch = r.epoch, layer = r.layer, c = {}, c0 = {} }
      order[#order + 1] = key
    end
    local g = groups[key]
    g.c[#g.c + 1], g.c0[#g.c0 + 1] = r.cka, r.cka_vs_init
  end
  local summary = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    local row = { epoch = g.epoch, layer = g.layer, pairs = #g.c }
    row.cka_mean, row.cka_std = mean_std(g.c)
    row.cka_vs_init_mean, row.cka_vs_init_std = mean_std(g.c0)
    summary[#summary + 1] = row
  end
  return summary
end

local function plot_cka(csv)
  local plot = {
    "set terminal pngcairo size 800,500", ("set output '%s/hierarchy_cka.png'"):format(outdir),
    "set datafile separator ','", "set key bottom right", "set xlabel 'epoch'",
    "set ylabel 'linear CKA (mean over pairs)'", "set yrange [0:1]",
    ("plot '< grep \"^[0-9]*,1,\" %s' using 1:4:5 with yerrorlines title 'hidden 1: A vs B', "
     .. "'< grep \"^[0-9]*,3,\" %s' using 1:4:5 with yerrorlines title 'hidden 2: A vs B', "
     .. "'< grep \"^[0-9]*,1,\" %s' using 1:6 with lines dt 2 title 'hidden 1: A vs untrained B', "
     .. "'< grep \"^[0-9]*,3,\" %s' using 1:6 with lines dt 2 title 'hidden 2: A vs untrained B'")
    :format(csv, csv, csv, csv) }
  results.plot(outdir .. "/hierarchy_cka.png", table.concat(plot, "\n") .. "\n")
end

local function run_cka()
  local train, test = load_mnist()
  print(("(b) CKA: %d pairs of 784-%d-%d-10 ReLU MLPs, MNIST-10k %d train rows, %d epochs, "
         .. "probe %d test images"):format(P.pairs, P.width, P.width, #train, P.epochs_cka, P.probe))
  local ckas, nets = {}, {}
  for p = 1, P.pairs do run_pair(p, train, test, ckas, nets) end
  results.write_csv(outdir .. "/hierarchy_cka.csv", ckas,
                    { "pair", "epoch", "layer", "cka", "cka_vs_init" })
  results.write_csv(outdir .. "/hierarchy_nets.csv", nets,
                    { "pair", "net", "seed", "epoch", "test_acc", "train_loss", "nc1", "rank_1",
                      "rank_3", "effective_rank_1", "effective_rank_3" })
  local summary = summarise_cka(ckas)
  local cols = { "epoch", "layer", "pairs", "cka_mean", "cka_std", "cka_vs_init_mean",
                 "cka_vs_init_std" }
  local csv = outdir .. "/hierarchy_cka_summary.csv"
  results.write_csv(csv, summary, cols)
  tbl.print(summary, cols)
  plot_cka(csv)
  return summary, nets
end

-- ---------------------------------------------------------------- main
print(("hierarchy: %d threads%s"):format(sl.threads, quick and " [quick]" or ""))
if part ~= "cka" then run_linear() end
if part ~= "linear" then run_cka() end
print(("hierarchy: %.1f s"):format(sl.clock() - t_start))
