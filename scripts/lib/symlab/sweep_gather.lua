-- symlab.sweep_gather — merge a sweep's rows into tables, and say how far
-- it got.
--
--   gather(S, dir) writes, into dir:
--     sweep.csv, sweep.jsonl      one line per finished task: task, seed, the
--                                 config's axes, the row's values, wall, threads,
--                                 version (list values only in the JSONL)
--     summary.csv, summary.jsonl  one line per config: its axes, n (seeds
--                                 done) and NAME_mean, NAME_std of every
--                                 numeric value
--   prints the summary (mean +- std) and the failed and missing tasks, then
--   runs the sweep's own report and plot.  Returns true if every task is done.
--
-- Means and standard deviations are summed in task order, so they are the
-- same bits however the tasks were run.  std is the sample standard
-- deviation (n - 1 in the denominator), 0 for a single seed.
local results = require "symlab.results"
local tbl = require "symlab.table"
local rows = require "symlab.sweep_rows"

local M = {}

--- Reads every task's state: { done = {row...}, failed = {row...},
--- missing = {task...}, stale = {task...} }, each in task order.
function M.scan(S, dir)
  local out = { done = {}, failed = {}, missing = {}, stale = {} }
  for _, t in ipairs(S.tasks) do
    local state, row = rows.state(dir, t)
    if state == "done" then out.done[#out.done + 1] = row
    elseif state == "failed" then out.failed[#out.failed + 1] = row
    else out[state][#out[state] + 1] = t end
  end
  return out
end

local function is_list(v) return type(v) == "table" end

-- The value columns of rows: sorted names.
local function value_columns(done, keep)
  local seen, cols = {}, {}
  for _, row in ipairs(done) do
    for k, v in pairs(row.values) do
      if not seen[k] and keep(v) then seen[k] = true; cols[#cols + 1] = k end
    end
  end
  table.sort(cols)
  return cols
end

-- One flat line per finished task.
local function task_lines(S, done, with_lists)
  local lines = {}
  for i, row in ipairs(done) do
    local line = { task = row.task, seed = row.seed, wall = row.wall, threads = row.threads,
                   version = row.version }
    for _, a in ipairs(S.axes) do line[a] = row.config[a] end
    for k, v in pairs(row.values) do
      if with_lists or not is_list(v) then line[k] = v end
    end
    lines[i] = line
  end
  return lines
end

local function config_columns(S, extra)
  local cols = {}
  for _, a in ipairs(S.axes) do cols[#cols + 1] = a end
  for _, c in ipairs(extra) do cols[#cols + 1] = c end
  return cols
end

--- Per config (in config order): the axes, n, and NAME_mean / NAME_std of
--- every value that is a number in each of its rows.
function M.summarize(S, done)
  local numeric = value_columns(done, function(v) return type(v) == "number" end)
  local summary = {}
  for _, g in ipairs(require("symlab.sweep").groups(S, done)) do
    local group = g.rows
    local line = { n = #group }
    for _, a in ipairs(S.axes) do line[a] = g.config[a] end
    for _, k in ipairs(numeric) do
      local sum, count = 0.0, 0
      for _, row in ipairs(group) do
        local v = row.values[k]
        if type(v) == "number" then sum, count = sum + v, count + 1 end
      end
      if count == #group then
        local mean, ss = sum / count, 0.0
        for _, row in ipairs(group) do ss = ss + (row.values[k] - mean) ^ 2 end
        line[k .. "_mean"] = mean
        line[k .. "_std"] = count > 1 and math.sqrt(ss / (count - 1)) or 0.0
      end
    end
    summary[#summary + 1] = line
  end
  return summary, numeric
end

local function describe(S, t)
  local parts = {}
  for _, a in ipairs(S.axes) do
    if t.config[a] ~= nil then parts[#parts + 1] = a .. "=" .. tostring(t.config[a]) end
  end
  return ("task %d (%s, seed %d)"):format(t.task or t.index, table.concat(parts, " "), t.seed)
end

--- Prints what is not done: failed tasks with their message, missing and
--- stale ones.  Returns true if nothing is.
function M.report_problems(S, dir, scan)
  for _, row in ipairs(scan.failed) do
    print(("failed: %s: %s"):format(describe(S, row), tostring(row.message):match("^[^\n]*")))
  end
  for _, t in ipairs(scan.missing) do print("missing: " .. describe(S, t)) end
  for _, t in ipairs(scan.stale) do
    print("stale: " .. describe(S, t) .. " (its row is of another config; re-run the sweep)")
  end
  return #scan.failed + #scan.missing + #scan.stale == 0
end

-- "%.4g" without the platform's spelling of NaN ("-nan").
local function num(fmt, v) return v ~= v and "nan" or fmt:format(v) end

local function print_summary(S, summary, numeric)
  local shown, cols = {}, config_columns(S, { "n" })
  for _, k in ipairs(numeric) do cols[#cols + 1] = k end
  for i, line in ipairs(summary) do
    local s = { n = line.n }
    for _, a in ipairs(S.axes) do s[a] = line[a] end
    for _, k in ipairs(numeric) do
      local m, sd = line[k .. "_mean"], line[k .. "_std"]
      s[k] = m and (num("%.4g", m) .. " +- " .. num("%.2g", sd)) or nil
    end
    shown[i] = s
  end
  tbl.print(shown, cols)
end

function M.gather(S, dir)
  local scan = M.scan(S, dir)
  local done = scan.done
  local values = value_columns(done, function(v) return not is_list(v) end)
  local cols = config_columns(S, {})
  table.insert(cols, 1, "task")
  table.insert(cols, 2, "seed")
  for _, k in ipairs(values) do cols[#cols + 1] = k end
  for _, k in ipairs({ "wall", "threads", "version" }) do cols[#cols + 1] = k end
  results.write_csv(dir .. "/sweep.csv", task_lines(S, done, false), cols)
  results.write_jsonl(dir .. "/sweep.jsonl", task_lines(S, done, true))

  local summary, numeric = M.summarize(S, done)
  local scols = config_columns(S, { "n" })
  for _, k in ipairs(numeric) do
    scols[#scols + 1] = k .. "_mean"
    scols[#scols + 1] = k .. "_std"
  end
  results.write_csv(dir .. "/summary.csv", summary, scols)
  results.write_jsonl(dir .. "/summary.jsonl", summary)
  print(("sweep %s: %d of %d tasks done, mean +- std over seeds:")
        :format(S.name, #done, #S.tasks))
  print_summary(S, summary, numeric)
  local complete = M.report_problems(S, dir, scan)
  if S.report and #done > 0 then S.report(require("symlab.sweep").groups(S, done), dir, summary) end
  if S.plot and #done > 0 then
    results.plot(dir .. "/" .. S.name .. ".png", S.plot(dir, summary))
  end
  print(("wrote %s/sweep.csv, sweep.jsonl, summary.csv, summary.jsonl"):format(dir))
  return complete
end

--- `symlab sweep status`: counts and the problem list; true if all done.
function M.status(S, dir)
  local scan = M.scan(S, dir)
  print(("sweep %s (%s): %d tasks: %d done, %d failed, %d missing%s")
        :format(S.name, dir, #S.tasks, #scan.done, #scan.failed, #scan.missing,
                #scan.stale > 0 and (", %d stale"):format(#scan.stale) or ""))
  return M.report_problems(S, dir, scan)
end

return M
