-- tests/lua/test_stats.lua — symlab.stats against hand-computed values, and
-- the probe's hooks option from Lua.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"
local stats = require "symlab.stats"

local nan = 0 / 0
local function isnan(v) return v ~= v end

T.test("ranks average ties", function()
  local r = stats.ranks({ 10, 30, 20, 20, 5 })
  -- sorted: 5 (1), 10 (2), 20 20 (3, 4 -> 3.5), 30 (5)
  local want = { 2, 5, 3.5, 3.5, 1 }
  for i = 1, 5 do T.eq(r[i], want[i], "rank " .. i) end
  local all = stats.ranks({ 7, 7, 7 })
  for i = 1, 3 do T.eq(all[i], 2) end
end)

T.test("pearson by hand", function()
  -- x = 1..4, y = 2, 4, 5, 9: dx = -1.5 -0.5 0.5 1.5, dy = -3 -1 0 4
  -- sxy = 4.5 + 0.5 + 0 + 6 = 11, sxx = 5, syy = 26
  T.near(stats.pearson({ 1, 2, 3, 4 }, { 2, 4, 5, 9 }), 11 / math.sqrt(5 * 26), 1e-15)
  T.ok(isnan(stats.pearson({ 1, 2, 3 }, { 4, 4, 4 })), "constant side: NaN")
  T.ok(isnan(stats.pearson({ 1 }, { 2 })), "one point: NaN")
  T.raises(function() stats.pearson({ 1, 2 }, { 1 }) end, "2 x values but 1 y values")
  T.raises(function() stats.pearson({ 1, "a" }, { 1, 2 }) end, "item 2 is string")
end)

T.test("spearman by hand", function()
  -- y ranks {1, 2, 3.5, 5, 3.5}: dx = -2..2, dy = -2 -1 0.5 2 0.5;
  -- sxy = 4 + 1 + 0 + 2 + 1 = 8, sxx = 10, syy = 9.5
  T.near(stats.spearman({ 1, 2, 3, 4, 5 }, { 5, 6, 7, 8, 7 }), 8 / math.sqrt(95), 1e-15)
  T.eq(stats.spearman({ 1, 2, 3, 4 }, { 1, 8, 27, 64 }), 1.0) -- monotone, not linear
  T.eq(stats.spearman({ 1, 2, 3, 4 }, { 0.4, 0.3, 0.2, -5 }), -1.0)
  -- n = 3 without ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)); ranks x 1 2 3,
  -- y 2 3 1: d = -1 -1 2, sum d^2 = 6, rho = 1 - 36 / 24 = -0.5
  T.near(stats.spearman({ 1, 2, 3 }, { 20, 30, 10 }), -0.5, 1e-15)
end)

T.test("quantile interpolates between order statistics", function()
  local v = { 1, 2, 4, 8 }
  T.eq(stats.quantile(v, 0), 1)
  T.eq(stats.quantile(v, 1), 8)
  T.eq(stats.quantile(v, 0.5), 3)         -- h = 2.5
  T.near(stats.quantile(v, 0.25), 1.75, 1e-15) -- h = 1.75
  T.eq(stats.quantile({ 5 }, 0.3), 5)
end)

T.test("bootstrap of a two-point mean", function()
  -- A resample of {0, 1} has mean 0, 0.5, 1 with probabilities 1/4, 1/2,
  -- 1/4: the 95% interval is [0, 1], the 20% interval (quantiles 0.4 and
  -- 0.6) is [0.5, 0.5] — far from the CDF's steps at 0.25 and 0.75.
  local x = { 0, 1 }
  local function mean(idx) return (x[idx[1]] + x[idx[2]]) / 2 end
  local lo, hi, values = stats.bootstrap(2, mean, { reps = 4000, seed = 7 })
  T.eq(lo, 0); T.eq(hi, 1)
  T.eq(#values, 4000)
  local zeros = 0
  for _, v in ipairs(values) do if v == 0 then zeros = zeros + 1 end end
  T.near(zeros / 4000, 0.25, 0.03, "share of resamples with mean 0")
  lo, hi = stats.bootstrap(2, mean, { reps = 4000, seed = 7, level = 0.2 })
  T.eq(lo, 0.5); T.eq(hi, 0.5)
end)

T.test("bootstrap is seeded and leaves math.random alone", function()
  local x = { 3.1, 0.2, 5.5, 1.7, 2.2, 9.0, 4.4 }
  local function mean(idx)
    local s = 0
    for _, k in ipairs(idx) do s = s + x[k] end
    return s / #idx
  end
  math.randomseed(42)
  local expect = math.random()
  math.randomseed(42)
  local a1, b1 = stats.bootstrap(#x, mean, { reps = 500, seed = 3 })
  T.eq(math.random(), expect, "math.random untouched")
  local a2, b2 = stats.bootstrap(#x, mean, { reps = 500, seed = 3 })
  T.eq(a1, a2); T.eq(b1, b2)
  local a3 = stats.bootstrap(#x, mean, { reps = 500, seed = 4 })
  T.ok(a3 ~= a1, "another seed, another interval")
  T.ok(a1 < mean({ 1, 2, 3, 4, 5, 6, 7 }) and b1 > mean({ 1, 2, 3, 4, 5, 6, 7 }),
       "the interval holds the sample mean")
  T.raises(function() stats.bootstrap(0, mean) end, "n must be an integer >= 1")
  T.raises(function() stats.bootstrap(3, mean, { level = 1 }) end, "level must be in (0, 1)")
end)

T.test("spearman_ci", function()
  -- every resample of a monotone relation has rho 1 (or NaN when all its
  -- x are equal, which is left out)
  local rho, lo, hi = stats.spearman_ci({ 1, 2, 3, 4, 5, 6 }, { 2, 3, 5, 7, 11, 13 },
                                        { reps = 300, seed = 1 })
  T.eq(rho, 1); T.eq(lo, 1); T.eq(hi, 1)
  rho, lo, hi = stats.spearman_ci({ 1, 2, 3, 4, 5, 6, 7, 8 }, { 2, 1, 4, 3, 6, 5, 8, 7 },
                                  { reps = 1000, seed = 2 })
  T.near(rho, 1 - 6 * 8 / (8 * 63), 1e-15) -- every d = ±1
  T.ok(lo < rho and rho <= hi and hi <= 1, ("%g <= %g <= %g"):format(lo, rho, hi))
  local _, l2, h2 = stats.spearman_ci({ 1, 1 }, { 2, 3 }, { reps = 10 })
  T.ok(isnan(l2) and isnan(h2), "no defined resample: NaN interval")
  T.ok(isnan(nan))
end)

-- The probe takes the very hook objects sl.train takes.
T.test("symmetry_breaking hooks from Lua", function()
  local n = 120
  local xs, ys = {}, {}
  for i = 1, n do
    local a, b = math.sin(i), math.cos(3 * i)
    xs[#xs + 1] = a; xs[#xs + 1] = b
    ys[i] = (a + b > 0) and 1 or 0
  end
  local ds = sl.data.from(sl.tensor.from(xs, { n, 2 }, "f32"), sl.tensor.from(ys, { n }, "i64"))
  local net = sl.nn.sequential({ sl.nn.linear(2, 6), sl.nn.relu(), sl.nn.linear(6, 2) },
                               { seed = 1 })
  local opts = { steps = 20, batch = 10, subset = 100, probe_batch = 32 }
  local plain = sl.probe.symmetry_breaking(net, ds, opts)
  local freeze = sl.hook.grad_scale { pattern = "*", factor = 0 }
  opts.hooks = { freeze }
  local frozen = sl.probe.symmetry_breaking(net, ds, opts)
  T.eq(frozen.drift, 0.0)
  T.eq(frozen.aligned_distance, 0.0)
  T.ok(plain.drift > 0, "without hooks the replicas move")
  opts.hooks = { freeze, "x" }
  T.raises(function() sl.probe.symmetry_breaking(net, ds, opts) end,
           "symmetry_breaking: option 'hooks'[2] is string, not a hook")
end)

T.run()
