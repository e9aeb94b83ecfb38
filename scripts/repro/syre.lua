-- scripts/repro/syre.lua — syre vs plain weight decay (docs/background/syre.md).
--
--   symlab scripts/repro/syre.lua [RESULTS_DIR]       (default results/)
--   symlab sweep run scripts/repro/syre.lua --jobs 2   (or mpirun, Slurm: docs/sweeps.md)
--
-- A sweep: one task per (config, seed), 18 configs x 5 seeds; the tables
-- below come from the gathered rows, the same however the tasks ran.
-- (a) Rescaling toy: f(x) = u w x on y = a x (a = 1, E[x^2] = 1), loss
--     (uw - a)^2 + gamma |theta - theta0|^2, GD lr 0.05, from exactly 0 and
--     from 1e-6 noise; steps until |uw| > 0.5 (a - gamma).  "vanilla" is the
--     same decoupled decay with theta0 = 0 (syre sigma0 = 0), so the two
--     arms differ only by the anchor.
-- (b) Teacher-student neuron collapse: tanh student 10-32-1 on a tanh teacher
--     10-8-1, SGD lr 0.05, batch 32, decay in {1e-4, 1e-3, 3e-3, 1e-2, 3e-2},
--     5 seeds; distinct neurons (|cos| > 0.99 of [w_in, b, w_out], sign-merged
--     for tanh), dead neurons (|w_in| |w_out| < 1e-3), train loss.
-- Writes syre_toy.csv, syre_collapse.csv, syre_collapse_mean.csv and
-- syre.png (gnuplot) into RESULTS_DIR/syre, beside the sweep's own tables.
local sl = require "symlab"
local results = require "symlab.results"
local tbl = require "symlab.table"
local sweep = require "symlab.sweep"

local SEEDS = { 1, 2, 3, 4, 5 }

-- Gaussian N(0,1) from Lua's own (seeded, deterministic) generator.
local function gauss()
  local u1, u2 = math.random(), math.random()
  return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end


---------------------------------------------------------------- (a) the toy
local function toy_run(gamma, init, sigma0, seed, max_steps)
  math.randomseed(100 + seed)
  local xs = {}
  for i = 1, 256 do xs[i] = gauss() end
  local x = sl.tensor.from(xs, { 256, 1 }, "f64")
  local ds = sl.data.from(x, x) -- y = a x with a = 1
  local net = sl.nn.sequential({ sl.nn.linear(1, 1, { bias = false }),
                                 sl.nn.linear(1, 1, { bias = false }) },
                               { dtype = "f64", seed = seed })
  net:param(1):set(1, 1, init * gauss())
  net:param(2):set(1, 1, init * gauss())
  local opt = sl.optim.sgd(net, { lr = 0.05 })
  -- mse here is mean (uwx - ax)^2; gamma |theta - theta0|^2 has gradient
  -- 2 gamma (theta - theta0), so the decoupled factor is 2 gamma.
  local hook = sl.hook.syre { gamma = 2 * gamma, sigma0 = sigma0, seed = seed }
  local target, escaped = 0.5 * (1 - gamma), nil
  local ok, err = pcall(sl.train, net, opt, ds, {
    epochs = max_steps, batch = 256, loss = "mse", shuffle = false, progress = "never",
    hooks = { hook },
    on_epoch = function(row)
      local uw = net:param(1):get(1, 1) * net:param(2):get(1, 1)
      if math.abs(uw) > target then
        escaped = row.epoch
        error("escaped")
      end
    end,
  })
  if not ok and not tostring(err):find("escaped") then error(err) end
  local uw = net:param(1):get(1, 1) * net:param(2):get(1, 1)
  return escaped, uw
end

-- The toy's table: per config, how many seeds escaped and how fast.
local function toy_report(groups, outdir)
  local toy = {}
  for _, g in ipairs(groups) do
    local c = g.config
    if c.part == "toy" then
      local steps = {}
      for i, row in ipairs(g.rows) do steps[i] = row.values.steps end
      table.sort(steps)
      local med = steps[math.ceil(#steps / 2)]
      local escaped = 0
      for _, st in ipairs(steps) do if st < math.huge then escaped = escaped + 1 end end
      toy[#toy + 1] = { gamma = c.gamma, init = c.init, method = c.method,
                        escaped = escaped .. "/" .. #steps,
                        median_steps = med < math.huge and med or "never (3000)",
                        min_steps = steps[1] < math.huge and steps[1] or "-",
                        final_uw_seed1 = g.rows[1].values.uw }
    end
  end
  print("(a) rescaling toy: GD steps until |uw| > 0.5 (a - gamma), a = 1, lr 0.05")
  tbl.print(toy, { "gamma", "init", "method", "escaped", "median_steps", "min_steps",
                   "final_uw_seed1" }, { formats = { final_uw_seed1 = "%.3g" } })
  results.write_csv(outdir .. "/syre_toy.csv", toy,
                    { "gamma", "init", "method", "escaped", "median_steps", "min_steps",
                      "final_uw_seed1" })
end

------------------------------------------------------- (b) neuron collapse
local D, WIDTH, TEACHER, N = 10, 32, 8, 1000

local function teacher_data(seed)
  local teacher = sl.nn.sequential({ sl.nn.linear(D, TEACHER), sl.nn.tanh(),
                                     sl.nn.linear(TEACHER, 1) }, { dtype = "f64", seed = 1000 + seed })
  -- a teacher with O(1) weights, so its neurons are distinct and alive
  for _, p in ipairs(teacher:parameters()) do p.tensor:scale(2.0) end
  math.randomseed(2000 + seed)
  local flat = {}
  for i = 1, N * D do flat[i] = gauss() end
  local x = sl.tensor.from(flat, { N, D }, "f64")
  return sl.data.from(x, teacher:forward(x)) -- y (N, 1)
end

-- Distinct and dead hidden neurons of a 10-32-1 tanh net.
local function neuron_stats(net)
  local W1, b1, W2 = net:param("0.weight"), net:param("0.bias"), net:param("2.weight")
  local vec, alive, dead = {}, {}, 0
  for j = 1, WIDTH do
    local v, nin = {}, 0
    for i = 1, D do
      v[i] = W1:get(j, i); nin = nin + v[i] ^ 2
    end
    v[D + 1] = b1:get(j)
    v[D + 2] = W2:get(1, j)
    vec[j] = v
    if math.sqrt(nin) * math.abs(v[D + 2]) < 1e-3 then dead = dead + 1 else alive[#alive + 1] = j end
  end
  -- greedy clustering of live neurons by |cos| > 0.99 (tanh is odd: a
  -- neuron and its negation compute the same function)
  local reps = {}
  for _, j in ipairs(alive) do
    local found = false
    for _, r in ipairs(reps) do
      local dot, na, nb = 0, 0, 0
      for t = 1, D + 2 do
        dot = dot + vec[j][t] * vec[r][t]; na = na + vec[j][t] ^ 2; nb = nb + vec[r][t] ^ 2
      end
      if math.abs(dot) / math.sqrt(na * nb + 1e-300) > 0.99 then found = true; break end
    end
    if not found then reps[#reps + 1] = j end
  end
  return #reps, dead
end

local EPOCHS = 150

local function collapse_run(wd, sigma0, seed)
  local ds = teacher_data(seed)
  local net = sl.nn.sequential({ sl.nn.linear(D, WIDTH), sl.nn.tanh(), sl.nn.linear(WIDTH, 1) },
                               { dtype = "f32", seed = seed })
  local opt = sl.optim.sgd(net, { lr = 0.05 })
  local hook = sl.hook.syre { gamma = wd, sigma0 = sigma0, seed = seed }
  local hist = sl.train(net, opt, ds, { epochs = EPOCHS, batch = 32, loss = "mse",
                                        progress = "never", seed = seed, hooks = { hook } })
  local distinct, dead = neuron_stats(net)
  return { distinct = distinct, dead = dead, loss = sl.evaluate(net, ds, { loss = "mse" }).loss,
           syre_dist = hist[#hist].syre_dist }
end

-- The collapse tables: every run, and the mean over seeds per config.
local function collapse_report(groups, outdir)
  local collapse, summary = {}, {}
  for _, g in ipairs(groups) do
    local c = g.config
    if c.part == "collapse" then
      local acc = { distinct = 0, dead = 0, loss = 0 }
      for _, row in ipairs(g.rows) do
        local v = row.values
        collapse[#collapse + 1] = { weight_decay = c.weight_decay, method = c.method, seed = row.seed,
                                    distinct = v.distinct, dead = v.dead, loss = v.loss,
                                    syre_dist = v.syre_dist }
        acc.distinct = acc.distinct + v.distinct / #g.rows
        acc.dead = acc.dead + v.dead / #g.rows
        acc.loss = acc.loss + v.loss / #g.rows
      end
      summary[#summary + 1] = { weight_decay = c.weight_decay, method = c.method,
                                distinct = acc.distinct, dead = acc.dead, loss = acc.loss }
    end
  end
  print(("\n(b) teacher-student collapse: width %d, teacher %d, %d epochs, mean of %d seeds")
        :format(WIDTH, TEACHER, EPOCHS, #SEEDS))
  tbl.print(summary, { "weight_decay", "method", "distinct", "dead", "loss" },
            { formats = { distinct = "%.1f", dead = "%.1f", loss = "%.3g" } })
  results.write_csv(outdir .. "/syre_collapse.csv", collapse,
                    { "weight_decay", "method", "seed", "distinct", "dead", "loss", "syre_dist" })
  results.write_csv(outdir .. "/syre_collapse_mean.csv", summary,
                    { "weight_decay", "method", "distinct", "dead", "loss" })
end

---------------------------------------------------------------- the sweep
local SIGMA0 = { toy = { vanilla = 0, syre = 0.01 }, collapse = { vanilla = 0, syre = -1 } }
local configs = {}
for _, gamma in ipairs({ 0.1, 0.5 }) do
  for _, init in ipairs({ 0, 1e-6 }) do
    for _, method in ipairs({ "vanilla", "syre" }) do
      configs[#configs + 1] = { part = "toy", gamma = gamma, init = init, method = method }
    end
  end
end
for _, wd in ipairs({ 1e-4, 1e-3, 3e-3, 1e-2, 3e-2 }) do
  for _, method in ipairs({ "vanilla", "syre" }) do
    configs[#configs + 1] = { part = "collapse", weight_decay = wd, method = method }
  end
end

local S = sweep.define {
  name = "syre",
  configs = configs,
  axes = { "part", "gamma", "init", "weight_decay", "method" },
  seeds = SEEDS,
  task = function(c, seed)
    if c.part == "toy" then
      local steps, uw = toy_run(c.gamma, c.init, SIGMA0.toy[c.method], seed, 3000)
      return { steps = steps or math.huge, uw = uw }
    end
    return collapse_run(c.weight_decay, SIGMA0.collapse[c.method], seed)
  end,
  report = function(groups, outdir)
    toy_report(groups, outdir)
    collapse_report(groups, outdir)
  end,
  plot = function(outdir)
    return ([[
set terminal pngcairo size 900,500
set output '%s/syre.png'
set datafile separator ','
set key autotitle columnhead
set logscale x
set xlabel 'weight decay'
set ylabel 'distinct live neurons (mean of 5 seeds)'
set title 'syre vs plain decay: neuron collapse (teacher width 8, student 32)'
plot '< grep vanilla %s/syre_collapse_mean.csv' using 1:3 with linespoints title 'vanilla', \
     '< grep syre %s/syre_collapse_mean.csv' using 1:3 with linespoints title 'syre'
  ]]):format(outdir, outdir, outdir)
  end,
}
return sweep.main(S, ...)
