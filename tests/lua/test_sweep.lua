-- tests/lua/test_sweep.lua — the pieces of symlab.sweep that need no second
-- process: task numbering, row files, summaries, Slurm array ranges.  (The
-- launchers themselves are tested by tests/sweep/*.sh.)
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sweep = require "symlab.sweep"
local rows = require "symlab.sweep_rows"
local gather = require "symlab.sweep_gather"
local slurm = require "symlab.sweep_slurm"

local function noop() return {} end

local function tmpdir()
  local f = io.popen("mktemp -d")
  local d = f:read("l")
  f:close()
  return d
end

T.test("grid tasks: first axis slowest, seeds innermost, index = position", function()
  local S = sweep.define { name = "g", grid = { b = { 1, 2 }, a = { "x", "y", "z" } },
                           axes = { "b", "a" }, seeds = { 7, 9 }, task = noop }
  T.eq(#S.tasks, 12)
  local i = 0
  for _, b in ipairs({ 1, 2 }) do
    for _, a in ipairs({ "x", "y", "z" }) do
      for _, seed in ipairs({ 7, 9 }) do
        local t = S.tasks[i + 1]
        T.eq(t.index, i); T.eq(t.config.b, b); T.eq(t.config.a, a); T.eq(t.seed, seed)
        i = i + 1
      end
    end
  end
end)

T.test("grid axes default to sorted names; seeds = n means 1..n", function()
  local S = sweep.define { name = "g", grid = { z = { 1, 2 }, a = { 3, 4 } }, seeds = 3, task = noop }
  T.eq(S.axes[1], "a"); T.eq(S.axes[2], "z")
  T.eq(S.tasks[4].config.a, 3); T.eq(S.tasks[4].config.z, 2); T.eq(S.tasks[4].seed, 1)
  T.eq(S.tasks[3].seed, 3)
end)

T.test("explicit configs keep their order; axes are every key", function()
  local S = sweep.define { name = "c", configs = { { p = 1 }, { q = "s" } }, task = noop }
  T.eq(#S.tasks, 2); T.eq(S.tasks[2].config.q, "s")
  T.eq(table.concat(S.axes, ","), "p,q")
  T.eq(S.name, "c")
end)

T.test("seeds per config: numbered config by config", function()
  local S = sweep.define { name = "p", configs = { { a = 1 }, { a = 2 }, { a = 3 } },
                           seeds = function(c) return c.a == 2 and { 4, 5, 6 } or 1 end, task = noop }
  local want = { { 1, 1 }, { 2, 4 }, { 2, 5 }, { 2, 6 }, { 3, 1 } }
  T.eq(#S.tasks, #want)
  for i, w in ipairs(want) do
    T.eq(S.tasks[i].index, i - 1); T.eq(S.tasks[i].config.a, w[1]); T.eq(S.tasks[i].seed, w[2])
  end
  local done = { { task = 2, seed = 5, config = S.configs[2], values = { v = 1.0 } },
                 { task = 4, seed = 1, config = S.configs[3], values = { v = 2.0 } },
                 { task = 3, seed = 6, config = S.configs[2], values = { v = 3.0 } } }
  local summary = gather.summarize(S, { done[1], done[3], done[2] })
  T.eq(summary[1].a, 2); T.eq(summary[1].n, 2); T.eq(summary[1].v_mean, 2.0)
  T.eq(summary[2].a, 3); T.eq(summary[2].v_mean, 2.0)
end)

T.test("define refuses malformed sweeps", function()
  T.raises(function() sweep.define { grid = { a = { 1 } } } end, "task must be a function")
  T.raises(function() sweep.define { task = noop } end, "either grid or configs")
  T.raises(function() sweep.define { grid = { a = {} }, task = noop } end, "grid.a must be a non-empty list")
  T.raises(function() sweep.define { grid = { a = { 1 } }, seeds = { -1 }, task = noop } end,
           "non-negative integers")
  T.raises(function() sweep.define { name = "a b", grid = { a = { 1 } }, task = noop } end, "name must be")
  T.eq(sweep.define { grid = { a = { 1 } }, task = noop }.name, "test_sweep")
end)

T.test("row text reads back every value exactly, floats as floats", function()
  local v = { a = 0.1, b = 3, c = 2.0, d = 0 / 0, e = math.huge, f = -math.huge,
              g = "quote \" newline \n tab \t", h = true, l = { 1.5, 2, 1e-300 }, m = -0.0 }
  local back = load("return " .. rows.text(v), "row", "t", {})()
  for _, k in ipairs({ "a", "b", "c", "e", "f", "g", "h" }) do T.eq(back[k], v[k], k) end
  T.eq(math.type(back.b), "integer"); T.eq(math.type(back.c), "float")
  T.ok(back.d ~= back.d, "NaN stays NaN")
  T.eq(back.l[1], 1.5); T.eq(back.l[3], 1e-300); T.eq(#back.l, 3)
  T.eq(1 / back.m, -math.huge, "negative zero keeps its sign")
  T.eq(rows.text({ b = 1, a = 2 }), rows.text({ a = 2, b = 1 }), "keys sorted")
end)

T.test("run_task writes ok and error rows; state tells done, failed, stale, missing", function()
  local dir = tmpdir()
  local S = sweep.define { name = "r", grid = { x = { 1, 2 } }, seeds = 1,
                           task = function(c) if c.x == 2 then error("no two") end
                                              return { y = c.x * 10, s = "t" } end }
  sweep.prepare(S, dir)
  T.eq(rows.state(dir, S.tasks[1]), "missing")
  T.ok(sweep.run_task(S, dir, S.tasks[1]))
  local ok, msg = sweep.run_task(S, dir, S.tasks[2])
  T.ok(not ok); T.ok(msg:find("no two", 1, true), msg)
  local st, row = rows.state(dir, S.tasks[1])
  T.eq(st, "done"); T.eq(row.values.y, 10); T.eq(row.seed, 1); T.eq(row.config.x, 1)
  st, row = rows.state(dir, S.tasks[2])
  T.eq(st, "failed"); T.eq(row.status, "error"); T.ok(row.message:find("test_sweep.lua:%d+: no two"))
  T.eq(#sweep.pending(S, dir), 1); T.eq(#sweep.pending(S, dir, true), 2)
  -- the same index in an edited sweep is another config: stale, run again
  local S2 = sweep.define { name = "r", grid = { x = { 5, 2 } }, seeds = 1, task = noop }
  T.eq(rows.state(dir, S2.tasks[1]), "stale")
  T.eq(#sweep.pending(S2, dir), 2)
  -- a task returning something that is not a row is an error row
  local S3 = sweep.define { name = "r", grid = { x = { 1 } }, task = function() return { f = print } end }
  ok, msg = sweep.run_task(S3, dir, S3.tasks[1])
  T.ok(not ok); T.ok(msg:find("row value f is a function", 1, true), msg)
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("summaries: mean and sample std per config, in task order", function()
  local S = sweep.define { name = "s", grid = { k = { "a", "b" } }, seeds = 3, task = noop }
  local data = { { 1.0, 2.0, 4.0 }, { 0.5 } } -- config b has one seed done
  local done = {}
  for ci, vals in ipairs(data) do
    for si, v in ipairs(vals) do
      done[#done + 1] = { task = (ci - 1) * 3 + si - 1, seed = si, config = S.configs[ci],
                          values = { v = v, label = "x", curve = { v } } }
    end
  end
  local summary, numeric = gather.summarize(S, done)
  T.eq(#summary, 2); T.eq(#numeric, 1); T.eq(numeric[1], "v")
  T.eq(summary[1].k, "a"); T.eq(summary[1].n, 3)
  local mean = (1.0 + 2.0 + 4.0) / 3
  T.eq(summary[1].v_mean, mean)
  T.eq(summary[1].v_std, math.sqrt(((1 - mean) ^ 2 + (2 - mean) ^ 2 + (4 - mean) ^ 2) / 2))
  T.eq(summary[2].n, 1); T.eq(summary[2].v_mean, 0.5); T.eq(summary[2].v_std, 0.0)
  T.eq(summary[1].label_mean, nil, "strings are not averaged")
end)

T.test("Slurm array ranges", function()
  T.eq(slurm.ranges({ 0, 1, 2, 3 }), "0-3")
  T.eq(slurm.ranges({ 0, 2, 3, 4, 7, 9, 10 }), "0,2-4,7,9-10")
  T.eq(slurm.ranges({ 5 }), "5")
end)

T.test("sweep.main only returns the sweep while `symlab sweep` loads it", function()
  local dir = tmpdir()
  local file = dir .. "/s.lua"
  local f = io.open(file, "w")
  f:write('local sweep = require "symlab.sweep"\n',
          'return sweep.main(sweep.define { grid = { a = { 1, 2 } }, task = function() return {} end }, ...)\n')
  f:close()
  local S = sweep.load(file)
  T.eq(S.name, "s"); T.eq(#S.tasks, 2); T.eq(S.file, file)
  local g = io.open(dir .. "/rows/task-000000.lua")
  T.eq(g, nil, "loading ran no task")
  f = io.open(dir .. "/bad.lua", "w"); f:write("return 1\n"); f:close()
  T.raises(function() sweep.load(dir .. "/bad.lua") end, "does not return a sweep")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.run()
