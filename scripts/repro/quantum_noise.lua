-- scripts/repro/quantum_noise.lua — noise-induced symmetry breaking in a
-- parametrized circuit, and SYMH (docs/background/quantum-noise.md; Fontana et al.,
-- arXiv 2011.08763).
--
--   symlab scripts/repro/quantum_noise.lua [RESULTS_DIR] [quick]
--   symlab sweep run scripts/repro/quantum_noise.lua --jobs 2   (SYMLAB_REPRO_QUICK=1: quick)
--
-- A sweep: one task per (configuration, method, initialisation); the tables
-- below come from the gathered rows.
-- Circuit: 3 layers of the hardware-efficient ansatz (RY, RZ on every
-- qubit, CNOT ladder); cost: TFIM H = -sum Z_i Z_{i+1} - sum X_i (open
-- chain), noise after every gate.  For each configuration, 50 random
-- initialisations (theta ~ U(-pi, pi)) are trained 300 Adam steps
-- (lr 0.05) alone, and with SYMH (a hop attempt every 60 steps, 64 sampled
-- symmetric images, at most 10 jumps, tol 1e-6): the same step budget.
-- Prints per configuration: the final noisy cost distribution, the
-- fraction of runs within EPS of the best cost found in that configuration
-- (by either method), the mean number of jumps, and the median spread
-- max - min of C(g . theta*) over 64 symmetric images of the final point.
-- Writes quantum_noise_runs.csv, quantum_noise_summary.csv and
-- quantum_noise.png (gnuplot, when installed) into RESULTS_DIR/quantum_noise
-- (default results/).  "quick" (or SYMLAB_REPRO_QUICK=1, which every task
-- process inherits) runs 8 initialisations per configuration.
local sl = require "symlab"
local qc = require "symlab.qc"
local results = require "symlab.results"
local tbl = require "symlab.table"
local sweep = require "symlab.sweep"

local script_args = { ... }
local quick = script_args[2] == "quick" or os.getenv("SYMLAB_REPRO_QUICK") == "1"
local INITS = quick and 8 or 50
local STEPS, EVERY, LR, EPS = 300, 60, 0.05, 1e-2

-- n = 4 over the full noise grid; n = 6 (36 angles, 16x larger rho) on the
-- two settings that matter most, to stay within the 10-minute budget.
local configs = {}
for _, c in ipairs {
  { "none", 0.0 }, { "depolarizing", 0.01 }, { "depolarizing", 0.05 },
  { "amplitude_damping", 0.01 }, { "amplitude_damping", 0.05 }, { "amplitude_damping", 0.1 },
} do configs[#configs + 1] = { n = 4, noise = c[1], strength = c[2] } end
configs[#configs + 1] = { n = 6, noise = "none", strength = 0.0 }
configs[#configs + 1] = { n = 6, noise = "amplitude_damping", strength = 0.05 }

local function quantile(sorted, q)
  local pos = 1 + q * (#sorted - 1)
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, #sorted)
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo])
end

-- One training from initialisation `init` of circuit configuration ci.
local function task(c, init)
  local ci, cfg = c.circuit, configs[c.circuit]
  local net = qc.model(qc.hea(cfg.n, 3, { observable = "tfim",
                                           noise = qc.noise(cfg.noise, cfg.strength) }))
  net:reset(1000 * ci + init) -- the same initial angles for both methods
  local hooks = nil
  if c.method == "symh" then
    hooks = { sl.hook.symh { every = EVERY, hops = 10, samples = 64, tol = 1e-6,
                             seed = 7919 * init + ci } }
  end
  local cost, hist = qc.minimize(net, { steps = STEPS, lr = LR, hooks = hooks, seed = init })
  local jumps = 0
  for _, row in ipairs(hist) do jumps = row.symh_hops or jumps end
  local probe = sl.probe.circuit_symmetries(net, nil, { samples = 64, seed = init })
  return { cost = cost, jumps = jumps, image_spread = probe.image_spread,
           image_min = probe.image_min, log2_group = probe.log2_group_size }
end

local function report(groups, outdir)
  local by = {} -- "ci|method" -> rows by init
  for _, g in ipairs(groups) do
    local t = {}
    for _, r in ipairs(g.rows) do t[r.seed] = r.values end
    by[g.config.circuit .. "|" .. g.config.method] = t
  end
  local runs, summary = {}, {}
  for ci, cfg in ipairs(configs) do
    local per = { adam = {}, symh = {} }
    for init = 1, INITS do
      for _, method in ipairs { "adam", "symh" } do
        local v = (by[ci .. "|" .. method] or {})[init]
        if not v then return end -- a partial sweep: no tables yet
        local row = { n = cfg.n, noise = cfg.noise, strength = cfg.strength, method = method,
                      init = init, cost = v.cost, jumps = v.jumps,
                      image_spread = v.image_spread, image_min = v.image_min,
                      log2_group = v.log2_group }
        runs[#runs + 1] = row
        table.insert(per[method], row)
      end
    end
    local best = math.huge
    for _, m in pairs(per) do for _, r in ipairs(m) do best = math.min(best, r.cost) end end
    for _, method in ipairs { "adam", "symh" } do
      local costs, spreads, jumps, near = {}, {}, 0, 0
      for _, r in ipairs(per[method]) do
        costs[#costs + 1] = r.cost
        spreads[#spreads + 1] = r.image_spread
        jumps = jumps + r.jumps
        if r.cost <= best + EPS then near = near + 1 end
      end
      table.sort(costs)
      table.sort(spreads)
      local mean = 0
      for _, c in ipairs(costs) do mean = mean + c end
      mean = mean / #costs
      summary[#summary + 1] = {
        n = cfg.n, noise = cfg.noise, strength = cfg.strength, method = method, runs = #costs,
        mean = mean, min = costs[1], q25 = quantile(costs, 0.25), median = quantile(costs, 0.5),
        q75 = quantile(costs, 0.75), max = costs[#costs], best = best,
        frac_near_best = near / #costs, mean_jumps = jumps / #costs,
        median_image_spread = quantile(spreads, 0.5), log2_group = per[method][1].log2_group,
      }
    end
  end

  local cols = { "n", "noise", "strength", "method", "runs", "mean", "min", "median", "max",
                 "best", "frac_near_best", "mean_jumps", "median_image_spread", "log2_group" }
  print(("quantum_noise: %d inits x %d configs, %d Adam steps, SYMH every %d, eps %g"):format(
    INITS, #configs, STEPS, EVERY, EPS))
  tbl.print(summary, cols, { formats = { mean = "%.4f", min = "%.4f", median = "%.4f",
                                         max = "%.4f", best = "%.4f", frac_near_best = "%.2f",
                                         mean_jumps = "%.2f", median_image_spread = "%.2e" } })
  local runs_csv = outdir .. "/quantum_noise_runs.csv"
  local sum_csv = outdir .. "/quantum_noise_summary.csv"
  results.write_csv(runs_csv, runs, { "n", "noise", "strength", "method", "init", "cost", "jumps",
                                      "image_spread", "image_min", "log2_group" })
  results.write_csv(sum_csv, summary, cols)
  print("wrote " .. runs_csv .. " and " .. sum_csv)

  -- Plot: final cost of every run, per configuration, Adam left, SYMH right.
  do
    local dat = outdir .. "/quantum_noise_plot.dat"
    local f = assert(io.open(dat, "w"))
    local index = {}
    for ci, cfg in ipairs(configs) do index[cfg.n .. cfg.noise .. cfg.strength] = ci end
    for _, r in ipairs(runs) do
      local x = index[r.n .. r.noise .. r.strength] + (r.method == "symh" and 0.2 or -0.2)
      f:write(("%g %.17g %s\n"):format(x, r.cost, r.method))
    end
    f:close()
    local labels = {}
    for ci, cfg in ipairs(configs) do
      local name = cfg.noise == "none" and "none" or
                   ((cfg.noise == "depolarizing" and "dep " or "AD ") .. cfg.strength)
      labels[#labels + 1] = ('"n%d %s" %d'):format(cfg.n, name, ci)
    end
    results.plot(outdir .. "/quantum_noise.png", ([[
set terminal pngcairo size 1100,500
set output '%s/quantum_noise.png'
set ylabel 'final noisy cost Tr(O rho)'
set xtics (%s) rotate by -30
set key top left
set xrange [0.5:%d.5]
set title 'HEA 3 layers, TFIM: Adam alone vs Adam + SYMH (%d inits)'
plot '%s' using (strcol(3) eq "adam" ? $1 : 1/0):2 with points pt 7 ps 0.5 title 'Adam', \
     '%s' using (strcol(3) eq "symh" ? $1 : 1/0):2 with points pt 7 ps 0.5 title 'Adam + SYMH'
  ]]):format(outdir, table.concat(labels, ", "), #configs, INITS, dat, dat))
  end
end

local tasks = {}
for ci in ipairs(configs) do
  for _, method in ipairs { "adam", "symh" } do
    tasks[#tasks + 1] = { circuit = ci, n = configs[ci].n, noise = configs[ci].noise,
                          strength = configs[ci].strength, method = method }
  end
end

local S = sweep.define {
  name = "quantum_noise",
  configs = tasks,
  axes = { "circuit", "n", "noise", "strength", "method" },
  seeds = INITS, -- the initialisation
  task = task,
  report = report,
}
return sweep.main(S, ...)
