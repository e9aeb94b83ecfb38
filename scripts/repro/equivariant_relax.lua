-- scripts/repro/equivariant_relax.lua — equivariant students that get stuck,
-- and what relaxing the constraint does (Xie & Smidt, "A Tale of Two
-- Symmetries: Exploring the Loss Landscape of Equivariant Models", arXiv
-- 2506.02269; relaxed group convolutions: Wang, Walters & Yu, arXiv
-- 2201.11969).
--
--   symlab --threads 2 scripts/repro/equivariant_relax.lua [quick] [RESULTS_DIR]
--
-- The claim: an equivariant network is an unconstrained MLP restricted to a
-- linear subspace; the MLP's parameter symmetries (hidden permutations and
-- rescalings) put critical points inside that subspace, where a constrained
-- student can stop short of the teacher.  Continued as an unconstrained MLP
-- from the stuck weights, some students escape: the loss drops to ~0, the
-- smallest Hessian eigenvalue at the stuck point is negative in the larger
-- space (a saddle there, a minimum or flat point in the subspace), and the
-- rescued weights are equivariant again under a hidden permutation
-- representation, possibly a different one.
--
-- Setups (teacher and students share the architecture; teacher seed 1000):
--   C4  C_4 acting on R^4 by cyclic shift; gconv_mixed regular ->
--       regular+q2 (6 hidden neurons: one regular channel, one C_4/C_2
--       channel) -> relu -> regular.
--   S3  S_3 acting on R^3 ⊕ R (permutation ⊕ trivial), the trivial entry
--       carried as a constant second channel of the set (B, 2, 3); deepsets
--       2 -> 2 channels (6 hidden neurons: two permutation channels) ->
--       relu -> deepsets 2 -> 1 -> flatten: an equivariant map R^3 ⊕ R ->
--       R^3.
-- Data: ROWS inputs uniform in [-1.7, 1.7] (f32 values), targets the
-- teacher's outputs.  Students: seeds 1..SEEDS, Adam lr 1e-2, full batch,
-- EPOCHS epochs, MSE.  Converged: final loss < 1e-6.  Every stuck student
-- is then
--   hard-relaxed: sl.nn.relax (every equivariant layer -> the dense layer
--     computing the same function) and trained again with the same budget
--     (S3: the same dense layers as a plain MLP on the flattened set, so the
--     structure walker sees the hidden layer);
--   soft-relaxed (C4 only): the gconv layers replaced by relaxed_gconv
--     with FILTERS banks starting equal (so exactly equivariant), trained
--     the same way.
--   restarted (C4 and C4reg: the control): the constrained student itself
--     with a fresh Adam and the same budget, to tell a point where the
--     constrained loss is stuck from an optimizer that stalled there.
-- Before and after: the loss, the equivariance error (equivariance_error
-- probe, max over the group), the smallest Hessian eigenvalue (hessian
-- probe, f64 Lanczos over every parameter of the model at hand: the
-- constrained student's few, the relaxed model's dense ones), and the
-- hidden representation (orbits of the hidden relabelings the
-- equivariance_error probe finds; "relabeled" counts the neurons whose
-- relabeling under the generators differs from the student's own).
--
-- Writes RESULTS_DIR/equivariant_relax_runs.csv (a row per setup and seed),
-- equivariant_relax_summary.csv (per setup), equivariant_relax_curves.csv
-- (loss and equivariance error at the start and every CURVE epochs of each
-- relaxed run) and equivariant_relax.png (gnuplot, when installed: the
-- curves of the rescued run whose constrained loss was highest).  `quick` (6 seeds, short training) is the smoke test `make check`
-- runs.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"

local quick, outdir = false, "results"
for _, a in ipairs(arg or {}) do
  if a == "quick" then quick = true else outdir = a end
end
outdir = results.outdir(outdir)

local P = quick and { seeds = 6, epochs = 300, rows = 128, curve = 50 }
              or { seeds = 50, epochs = 8000, rows = 512, curve = 200 }
local LR, TEACHER_SEED, TOL = 1e-2, 1000, 1e-6
local t_start = sl.clock()

-- ---------------------------------------------------------------- setups
-- The soft relaxation of a regular -> regular -> regular gconv network
-- (channels[i] -> channels[i + 1]): relaxed_gconv layers with BANKS banks,
-- every bank a copy of the gconv filter and the mixing weights 1/BANKS, so
-- it starts at the same function, exactly equivariant, and training may
-- move the mixing weights apart (Wang, Walters & Yu's relaxed group
-- convolution).
local BANKS = 2

local function soft_relaxed(net, channels)
  local layers = {}
  for i = 1, #channels - 1 do
    if i > 1 then layers[#layers + 1] = sl.nn.relu() end
    layers[#layers + 1] = sl.nn.relaxed_gconv { group = 4, in_channels = channels[i],
                                                out_channels = channels[i + 1], banks = BANKS }
  end
  local soft = sl.nn.sequential(layers, { seed = 1, dtype = "f64" })
  for i = 1, #channels - 1 do
    local at = 2 * (i - 1)
    local w, rw = net:param(at .. ".weight"), soft:param(at .. ".weight")
    local sh = w:shape()
    for o = 1, sh[1] do
      for c = 1, sh[2] do
        for t = 1, sh[3] do
          for b = 1, BANKS do rw:set(o, c, b, t, w:get(o, c, t)) end
        end
      end
    end
    soft:param(at .. ".bias"):assign(net:param(at .. ".bias"))
    soft:param(at .. ".mix"):fill(1 / BANKS)
  end
  return soft
end

-- Each setup: the student's layers, the probe's group options, the data's
-- input generator, and the name of each hidden orbit size.
local SETUPS = {
  {
    name = "C4", hidden = "regular+q2", restart = true,
    layers = function()
      return { sl.nn.gconv_mixed { group = 4, in_reps = "regular", out_reps = "regular+q2" },
               sl.nn.relu(),
               sl.nn.gconv_mixed { group = 4, in_reps = "regular+q2", out_reps = "regular" } }
    end,
    group = { group = "C4", input = "regular", output = "regular" },
    shape = { 4 }, fill = function(u) return { u(), u(), u(), u() } end,
    orbit_name = { [4] = "regular", [2] = "q2", [1] = "trivial" },
  },
  {
    name = "C4reg", hidden = "regular*2", restart = true,
    layers = function()
      return { sl.nn.gconv { group = 4, in_channels = 1, out_channels = 2 }, sl.nn.relu(),
               sl.nn.gconv { group = 4, in_channels = 2, out_channels = 1 } }
    end,
    soft = function(net) return soft_relaxed(net, { 1, 2, 1 }) end,
    group = { group = "C4", input = "regular", output = "regular" },
    shape = { 4 }, fill = function(u) return { u(), u(), u(), u() } end,
    orbit_name = { [4] = "regular", [2] = "q2", [1] = "trivial" },
  },
  {
    name = "S3", hidden = "perm*2",
    layers = function()
      return { sl.nn.deepsets { in_channels = 2, out_channels = 2 }, sl.nn.relu(),
               sl.nn.deepsets { in_channels = 2, out_channels = 1 }, sl.nn.flatten() }
    end,
    -- sl.nn.relax puts reshapes around each dense layer (set channels <->
    -- flat features), which the structure walker cannot look through; the
    -- same function as a plain MLP on the flattened set shows it the
    -- hidden layer.
    relax = function(net)
      local r = sl.nn.relax(net, { input_shape = { 1, 2, 3 } })
      local mlp = sl.nn.sequential({ sl.nn.flatten(), sl.nn.linear(6, 6), sl.nn.relu(),
                                     sl.nn.linear(6, 3) }, { seed = 1, dtype = "f64" })
      for _, pair in ipairs({ { "1", "0.1" }, { "3", "2.1" } }) do
        mlp:param(pair[1] .. ".weight"):assign(r:param(pair[2] .. ".weight"))
        mlp:param(pair[1] .. ".bias"):assign(r:param(pair[2] .. ".bias"))
      end
      r:close()
      return mlp
    end,
    group = { group = "S3", input = "perm*2", output = "perm" },
    shape = { 2, 3 },
    fill = function(u)
      local t = u()
      return { u(), u(), u(), t, t, t }
    end,
    orbit_name = { [6] = "regular", [3] = "perm", [2] = "sign", [1] = "trivial" },
  },
}

-- ---------------------------------------------------------------- data
-- A linear congruential stream, so the data do not depend on symlab's
-- generators (uniform in [-1.7, 1.7], rounded to f32 like sl.data.from).
local function inputs(setup, rows, seed)
  local s, flat = seed, {}
  local function u()
    s = (s * 1103515245 + 12345) % 2147483648
    return (s / 2147483648 - 0.5) * 3.4
  end
  for _ = 1, rows do
    for _, v in ipairs(setup.fill(u)) do flat[#flat + 1] = v end
  end
  local shape = { rows }
  for _, e in ipairs(setup.shape) do shape[#shape + 1] = e end
  return sl.tensor.from(flat, shape, "f32"):copy("f64")
end

local function model(setup, seed)
  return sl.nn.sequential(setup.layers(), { seed = seed, dtype = "f64" })
end

local function teacher_data(setup)
  local teacher = model(setup, TEACHER_SEED)
  local x = inputs(setup, P.rows, 7)
  local y = teacher:forward(x)
  teacher:close()
  return sl.data.from(x, y)
end

-- ---------------------------------------------------------------- measurements
local function train(net, data, seed, curve)
  local opt = sl.optim.adam(net, { lr = LR })
  local hist = sl.train(net, opt, data, {
    epochs = P.epochs, batch = P.rows, loss = "mse", seed = seed, progress = "never",
    on_epoch = curve and function(row)
      if row.epoch % P.curve == 0 or row.epoch == 1 then curve(row) end
    end })
  return hist[#hist].loss
end

local function loss_of(net, data)
  return sl.evaluate(net, data, { loss = "mse" }).loss
end

local function lambda_min(net, data)
  return sl.probe.hessian(net, data, { k = 1, iters = math.min(net:numel(), 100) }).lambda_min_1
end

-- The equivariance error and, with hidden, the representation the first
-- hidden layer carries: "regular+q2*2" from the orbit counts, the residual,
-- and the relabeling of every generator (σ[g][j]).
local function equivariance(setup, net, data, hidden)
  local opts = { hidden = hidden, permutations = hidden }
  for k, v in pairs(setup.group) do opts[k] = v end
  local r = sl.probe.equivariance_error(net, data, opts)
  local out = { error = r.error_max }
  if not hidden or not r["0.neurons"] then return out end
  local parts = {}
  for size = math.tointeger(r["0.neurons"]), 1, -1 do
    local n = r[("0.orbits_%d"):format(size)]
    if n then
      local name = setup.orbit_name[size] or ("orbit" .. size)
      parts[#parts + 1] = n > 1 and ("%s*%d"):format(name, n) or name
    end
  end
  out.rep = table.concat(parts, "+") .. (r["0.is_rep"] == 1 and "" or " (not a representation)")
  out.residual, out.dead = r["0.residual"], r["0.dead"]
  out.neurons = r["0.neurons"]
  out.sigma = {}
  for g = 0, 1 do
    if r[("0.g%d.perm_0"):format(g)] then
      local s = {}
      for j = 0, r["0.neurons"] - 1 do s[j] = r[("0.g%d.perm_%d"):format(g, j)] end
      out.sigma[#out.sigma + 1] = s
    end
  end
  return out
end

-- Neurons whose relabeling under some generator differs between a and b.
local function relabeled(a, b)
  local n = 0
  for j = 0, a.neurons - 1 do
    for g = 1, #a.sigma do
      if a.sigma[g][j] ~= b.sigma[g][j] then
        n = n + 1
        break
      end
    end
  end
  return n
end

-- ---------------------------------------------------------------- one student
local curves = {}

local function keep_curve(setup, seed, arm, net, data)
  return function(row)
    curves[#curves + 1] = { setup = setup.name, seed = seed, arm = arm, epoch = row.epoch,
                            loss = row.loss, eq_error = equivariance(setup, net, data).error }
  end
end

-- Trains a relaxed copy (made by `relax`) of the stuck student and measures
-- it; fields prefixed with `arm`.
local function relaxed_arm(setup, seed, arm, relaxed, data, before, row)
  row[arm .. "_start_gap"] = math.abs(loss_of(relaxed, data) - row.loss) / row.loss
  row[arm .. "_lmin_start"] = lambda_min(relaxed, data)
  local curve = keep_curve(setup, seed, arm, relaxed, data)
  curve({ epoch = 0, loss = loss_of(relaxed, data) })
  train(relaxed, data, seed, curve)
  row[arm .. "_loss"] = loss_of(relaxed, data)
  row[arm .. "_rescued"] = row[arm .. "_loss"] < TOL and 1 or 0
  row[arm .. "_lmin"] = lambda_min(relaxed, data)
  local after = equivariance(setup, relaxed, data, before ~= nil)
  row[arm .. "_error"] = after.error
  if before and after.rep then
    row[arm .. "_rep"], row[arm .. "_residual"] = after.rep, after.residual
    row[arm .. "_relabeled"] = relabeled(before, after)
  end
  relaxed:close()
end

local function student(setup, seed, data)
  local net = model(setup, seed)
  train(net, data, seed)
  local row = { setup = setup.name, seed = seed, loss = loss_of(net, data) }
  row.converged = row.loss < TOL and 1 or 0
  if row.converged == 0 then
    row.error = equivariance(setup, net, data).error
    row.lmin = lambda_min(net, data)
    if setup.restart then
      -- the control: the constrained student itself, a fresh optimizer
      local again = model(setup, seed)
      again:flat_params():assign(net:flat_params())
      relaxed_arm(setup, seed, "restart", again, data, nil, row)
    end
    local hard = setup.relax and setup.relax(net) or sl.nn.relax(net)
    local before = equivariance(setup, hard, data, true)
    row.rep, row.residual, row.dead = before.rep, before.residual, before.dead
    relaxed_arm(setup, seed, "hard", hard, data, before, row)
    if setup.soft then relaxed_arm(setup, seed, "soft", setup.soft(net), data, before, row) end
  end
  net:close()
  return row
end

-- ---------------------------------------------------------------- summary
local function mean(rows, key)
  local s, n = 0, 0
  for _, r in ipairs(rows) do
    if r[key] then s, n = s + r[key], n + 1 end
  end
  return n > 0 and s / n or nil
end

local function summarise(setup, rows)
  local stuck, rescued = {}, {}
  local out = { setup = setup.name, hidden = setup.hidden, seeds = #rows, converged = 0 }
  for _, r in ipairs(rows) do
    out.converged = out.converged + r.converged
    if r.converged == 0 then stuck[#stuck + 1] = r end
    if r.hard_rescued == 1 then rescued[#rescued + 1] = r end
  end
  out.stuck = #stuck
  out.hard_rescued = 0
  out.soft_rescued = setup.soft and 0 or nil
  out.restart_rescued = setup.restart and 0 or nil
  for _, r in ipairs(stuck) do
    out.hard_rescued = out.hard_rescued + r.hard_rescued
    if setup.soft then out.soft_rescued = out.soft_rescued + r.soft_rescued end
    if setup.restart then out.restart_rescued = out.restart_rescued + r.restart_rescued end
  end
  out.stuck_loss = mean(stuck, "loss")
  out.stuck_lmin = mean(stuck, "lmin")
  out.relaxed_lmin_start = mean(stuck, "hard_lmin_start")
  out.rescued_error = mean(rescued, "hard_error")
  out.rescued_lmin = mean(rescued, "hard_lmin")
  out.rescued_residual = mean(rescued, "hard_residual")
  out.rescued_relabeled = 0
  for _, r in ipairs(rescued) do
    out.rescued_relabeled = out.rescued_relabeled + ((r.hard_relabeled or 0) > 0 and 1 or 0)
  end
  local reps = {}
  for _, r in ipairs(rescued) do reps[r.hard_rep] = (reps[r.hard_rep] or 0) + 1 end
  local parts = {}
  for rep, n in pairs(reps) do parts[#parts + 1] = ("%s:%d"):format(rep, n) end
  table.sort(parts)
  out.rescued_reps = table.concat(parts, " ")
  return out
end

-- ---------------------------------------------------------------- plot
local function plot(runs)
  local pick -- the rescued run that was stuck highest
  for _, r in ipairs(runs) do
    if r.hard_rescued == 1 and (not pick or r.loss > pick.loss) then pick = r end
  end
  for _, r in ipairs(runs) do
    if r.converged == 0 then pick = pick or r end
  end
  if not pick then return end
  local csv = outdir .. "/equivariant_relax_curves.csv"
  local sel = ("< grep \"^%s,%d,hard,\" %s"):format(pick.setup, pick.seed, csv)
  local script = table.concat({
    "set terminal pngcairo size 800,500",
    ("set output '%s/equivariant_relax.png'"):format(outdir),
    "set datafile separator ','", "set logscale xy", "set format y '10^{%L}'",
    "set xlabel 'epochs after relaxation + 1 (full batch, Adam lr 1e-2)'", "set key bottom left",
    ("set title '%s student seed %d, hard relaxation%s'")
      :format(pick.setup, pick.seed, pick.hard_rescued == 1 and " (rescued)" or " (not rescued)"),
    ("plot '%s' using ($4+1):5 with linespoints title 'training loss', \\"):format(sel),
    ("     '%s' using ($4+1):6 with linespoints title 'equivariance error (max over the group)'")
      :format(sel),
  }, "\n") .. "\n"
  results.plot(outdir .. "/equivariant_relax.png", script)
end

-- ---------------------------------------------------------------- main
print(("equivariant_relax: %d seeds, %d epochs, %d rows, %d threads%s")
      :format(P.seeds, P.epochs, P.rows, sl.threads, quick and " [quick]" or ""))
local runs, summary = {}, {}
for _, setup in ipairs(SETUPS) do
  local data, rows = teacher_data(setup), {}
  for seed = 1, P.seeds do
    local r = student(setup, seed, data)
    rows[#rows + 1], runs[#runs + 1] = r, r
    print(("  %s seed %2d: loss %.3g%s  (%.0f s)"):format(setup.name, seed, r.loss,
      r.converged == 1 and "" or ("  stuck; hard relaxation -> %.3g%s"):format(r.hard_loss,
        r.hard_rep and (" (" .. r.hard_rep .. ")") or ""), sl.clock() - t_start))
  end
  summary[#summary + 1] = summarise(setup, rows)
end

local RUN_COLS = { "setup", "seed", "loss", "converged", "error", "lmin", "rep", "residual", "dead" }
for _, arm in ipairs({ "restart", "hard", "soft" }) do
  for _, k in ipairs({ "start_gap", "lmin_start", "loss", "rescued", "error", "lmin", "rep",
                       "residual", "relabeled" }) do
    RUN_COLS[#RUN_COLS + 1] = arm .. "_" .. k
  end
end
local SUM_COLS = { "setup", "hidden", "seeds", "converged", "stuck", "restart_rescued",
                   "hard_rescued", "soft_rescued",
                   "stuck_loss", "stuck_lmin", "relaxed_lmin_start", "rescued_error",
                   "rescued_lmin", "rescued_residual", "rescued_relabeled", "rescued_reps" }
results.write_csv(outdir .. "/equivariant_relax_runs.csv", runs, RUN_COLS)
results.write_csv(outdir .. "/equivariant_relax_summary.csv", summary, SUM_COLS)
results.write_csv(outdir .. "/equivariant_relax_curves.csv", curves,
                  { "setup", "seed", "arm", "epoch", "loss", "eq_error" })
tbl.print(summary, SUM_COLS)
plot(runs)
print(("equivariant_relax: %.1f s"):format(sl.clock() - t_start))
