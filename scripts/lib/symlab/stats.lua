-- symlab.stats — rank correlation and bootstrap intervals for results
-- tables (does a metric predict accuracy, and how sure are we).
--
--   local stats = require "symlab.stats"
--   local rho, lo, hi = stats.spearman_ci(metric, accuracy, { reps = 2000, seed = 1 })
--
-- Pure Lua, deterministic: the bootstrap draws from a generator of its own
-- (splitmix64 on Lua's 64-bit integers, which wrap the same way
-- everywhere), so the same seed gives the same interval on every platform
-- and the script's math.random is left alone.
local M = {}

local function check_list(x, what)
  assert(type(x) == "table", ("stats.%s: expects a list of numbers"):format(what))
  for i = 1, #x do
    assert(type(x[i]) == "number",
           ("stats.%s: item %d is %s, not a number"):format(what, i, type(x[i])))
  end
end

-- ranks(x) -> list: the rank (1..n) of each x[i]; tied values share the
-- mean of the ranks they span (so {10, 20, 20} ranks {1, 2.5, 2.5}).
function M.ranks(x)
  check_list(x, "ranks")
  local n, order = #x, {}
  for i = 1, n do order[i] = i end
  table.sort(order, function(a, b)
    if x[a] ~= x[b] then return x[a] < x[b] end
    return a < b
  end)
  local r, i = {}, 1
  while i <= n do
    local j = i
    while j < n and x[order[j + 1]] == x[order[i]] do j = j + 1 end
    local mean = (i + j) / 2 -- ranks i..j share their mean
    for k = i, j do r[order[k]] = mean end
    i = j + 1
  end
  return r
end

-- pearson(x, y) -> the sample correlation, NaN when n < 2 or a side is
-- constant (no correlation is defined then).
function M.pearson(x, y)
  check_list(x, "pearson"); check_list(y, "pearson")
  assert(#x == #y, ("stats.pearson: %d x values but %d y values"):format(#x, #y))
  local n = #x
  if n < 2 then return 0 / 0 end
  local mx, my = 0, 0
  for i = 1, n do mx, my = mx + x[i], my + y[i] end
  mx, my = mx / n, my / n
  local sxy, sxx, syy = 0, 0, 0
  for i = 1, n do
    local dx, dy = x[i] - mx, y[i] - my
    sxy, sxx, syy = sxy + dx * dy, sxx + dx * dx, syy + dy * dy
  end
  if sxx == 0 or syy == 0 then return 0 / 0 end
  return sxy / math.sqrt(sxx * syy)
end

-- spearman(x, y) -> Spearman's rank correlation: pearson of the
-- tie-averaged ranks (the definition that stays exact with ties).
function M.spearman(x, y)
  return M.pearson(M.ranks(x), M.ranks(y))
end

-- quantile(sorted, p) -> the p-quantile (0 <= p <= 1) of an ascending list,
-- interpolating linearly between order statistics: h = (n - 1) p + 1,
-- value = v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h])
-- (Hyndman and Fan's type 7, the default of R and numpy).
function M.quantile(sorted, p)
  local n = #sorted
  assert(n > 0, "stats.quantile: empty list")
  assert(p >= 0 and p <= 1, "stats.quantile: p must be in [0, 1]")
  local h = (n - 1) * p + 1
  local lo = math.floor(h)
  if lo >= n then return sorted[n] end
  return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo])
end

-- A splitmix64 stream (Steele, Lea and Flood 2014): next() -> a 64-bit
-- integer.  Lua 5.4 integer arithmetic wraps modulo 2^64.
local function splitmix64(seed)
  local state = seed
  return function()
    state = state + 0x9e3779b97f4a7c15
    local z = state
    z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
    z = (z ~ (z >> 27)) * 0x94d049bb133111eb
    return z ~ (z >> 31)
  end
end

-- bootstrap(n, statistic, opts) -> lo, hi, values
-- The percentile bootstrap interval at level opts.level (0.95) of
-- statistic(idx), where idx is a list of n indices drawn uniformly from
-- 1..n with replacement, opts.reps (2000) times from opts.seed (1).
-- Resamples whose statistic is NaN (e.g. a correlation of a constant
-- resample) are left out; `values` holds the others, sorted.  lo and hi
-- are NaN when none is left.
function M.bootstrap(n, statistic, opts)
  opts = opts or {}
  local reps, level, seed = opts.reps or 2000, opts.level or 0.95, opts.seed or 1
  assert(math.type(n) == "integer" and n >= 1, "stats.bootstrap: n must be an integer >= 1")
  assert(type(statistic) == "function", "stats.bootstrap: statistic must be a function")
  assert(math.type(reps) == "integer" and reps >= 1, "stats.bootstrap: reps must be an integer >= 1")
  assert(level > 0 and level < 1, "stats.bootstrap: level must be in (0, 1)")
  assert(math.type(seed) == "integer", "stats.bootstrap: seed must be an integer")
  local next64, values, idx = splitmix64(seed), {}, {}
  for _ = 1, reps do
    -- (x >> 1) is in [0, 2^63): the modulo bias is below n / 2^63
    for i = 1, n do idx[i] = 1 + (next64() >> 1) % n end
    local v = statistic(idx)
    if v == v then values[#values + 1] = v end
  end
  if #values == 0 then return 0 / 0, 0 / 0, values end
  table.sort(values)
  local tail = (1 - level) / 2
  return M.quantile(values, tail), M.quantile(values, 1 - tail), values
end

-- spearman_ci(x, y, opts) -> rho, lo, hi: Spearman's rho of the pairs
-- (x[i], y[i]) and its bootstrap interval (bootstrap's opts), pairs being
-- resampled together.
function M.spearman_ci(x, y, opts)
  local rho = M.spearman(x, y)
  local bx, by = {}, {}
  local lo, hi = M.bootstrap(#x, function(idx)
    for i, k in ipairs(idx) do bx[i], by[i] = x[k], y[k] end
    return M.spearman(bx, by)
  end, opts)
  return rho, lo, hi
end

return M
