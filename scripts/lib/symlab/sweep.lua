-- symlab.sweep — an experiment as a grid of (config, seed) tasks that run in
-- one process, as N local processes, under mpirun or as a Slurm array, and
-- always gather into the same table (docs/sweeps.md).
--
--   local sweep = require "symlab.sweep"
--   local S = sweep.define {
--     name  = "tiny_mlp",                      -- default: the file's name
--     grid  = { hidden = { 8, 16 }, lr = { 0.1, 0.3 } },  -- or configs = { {...}, ... }
--     axes  = { "hidden", "lr" },              -- grid order (default: sorted names)
--     seeds = { 1, 2 },                        -- or a count: 2 means { 1, 2 },
--                                              -- or function(config) -> list or count
--     task  = function(config, seed, dir) ... return { loss = l, accuracy = a } end,
--                                              -- (dir: the sweep directory, for a task
--                                              -- that reads rows of earlier tasks)
--     report = function(groups, dir, summary) ... end,  -- optional: own tables, files
--     plot  = function(dir, summary) return gnuplot_script end, -- optional
--   }
--   return sweep.main(S, ...)   -- `symlab FILE [DIR]` runs it all in this process
--
-- Tasks are numbered from 0, config by config and, within a config, seed by
-- seed (with one seed list: task i is config floor(i / #seeds) + 1 with seed
-- (i % #seeds) + 1); grid configs come in product order, the first axis
-- varying slowest.  So a task index names the same (config, seed) on every
-- machine.
local sl = require "symlab"
local rows = require "symlab.sweep_rows"

local M = {}

-- True while `symlab sweep ...` loads a sweep file: sweep.main then only
-- returns the sweep instead of running it.
M.loading = false

local function seed_list(seeds)
  if math.type(seeds) == "integer" and seeds >= 1 then
    local list = {}
    for i = 1, seeds do list[i] = i end
    return list
  end
  assert(type(seeds) == "table" and #seeds > 0, "sweep: seeds must be a count or a list")
  for _, s in ipairs(seeds) do
    assert(math.type(s) == "integer" and s >= 0, "sweep: seeds must be non-negative integers")
  end
  return seeds
end

local function product(grid, axes)
  if not axes then
    axes = {}
    for k in pairs(grid) do axes[#axes + 1] = k end
    table.sort(axes)
  end
  local configs = { {} }
  for _, axis in ipairs(axes) do
    local values = grid[axis]
    assert(type(values) == "table" and #values > 0,
           "sweep: grid." .. tostring(axis) .. " must be a non-empty list")
    local next_configs = {}
    for _, c in ipairs(configs) do
      for _, v in ipairs(values) do
        local nc = {}
        for k, x in pairs(c) do nc[k] = x end
        nc[axis] = v
        next_configs[#next_configs + 1] = nc
      end
    end
    configs = next_configs
  end
  return configs, axes
end

-- The axes of an explicit config list: every key, sorted.
local function config_axes(configs)
  local seen, axes = {}, {}
  for _, c in ipairs(configs) do
    for k in pairs(c) do
      if not seen[k] then seen[k] = true; axes[#axes + 1] = k end
    end
  end
  table.sort(axes)
  return axes
end

--- Checks a sweep description and completes it: S.configs, S.axes,
--- S.tasks (index from 0, config, seed, ci: the config's position).
function M.define(S)
  assert(type(S) == "table", "sweep.define: expected a table")
  assert(type(S.task) == "function", "sweep: task must be a function(config, seed)")
  assert((S.grid == nil) ~= (S.configs == nil), "sweep: give either grid or configs")
  local src = debug.getinfo(2, "S").source
  if not S.name then S.name = src:match("([^/]+)%.lua$") or "sweep" end
  if not S.file and src:sub(1, 1) == "@" then S.file = M.absolute(src:sub(2)) end
  assert(type(S.name) == "string" and S.name:match("^[%w_.-]+$"),
         "sweep: name must be letters, digits, '_', '.' or '-'")
  if S.grid then
    S.configs, S.axes = product(S.grid, S.axes)
  else
    assert(type(S.configs) == "table" and #S.configs > 0, "sweep: configs must be a non-empty list")
    S.axes = S.axes or config_axes(S.configs)
  end
  local seeds = S.seeds or 1
  if type(seeds) ~= "function" then
    local list = seed_list(seeds)
    seeds = function() return list end
  end
  S.tasks = {}
  for ci, config in ipairs(S.configs) do
    for _, seed in ipairs(seed_list(seeds(config))) do
      local index = #S.tasks
      S.tasks[index + 1] = { index = index, config = config, seed = seed, ci = ci }
    end
  end
  return S
end

--- A path made absolute against the working directory.
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return (os.getenv("PWD") or ".") .. "/" .. path:gsub("^%./", "")
end

--- Loads a sweep file: the sweep it returns (defined, not run).
function M.load(file)
  local chunk, err = loadfile(file)
  if not chunk then error(err, 0) end
  M.loading = true
  local ok, S = pcall(chunk)
  M.loading = false
  if not ok then error(S, 0) end
  if type(S) ~= "table" or not S.tasks then
    error(file .. ": does not return a sweep (end it with `return sweep.main(S, ...)`)", 0)
  end
  S.file = M.absolute(file)
  return S
end

-- A row's values: string keys; numbers, strings, booleans or lists of numbers.
local function check_values(v)
  if type(v) ~= "table" then return "the task returned a " .. type(v) .. ", not a table" end
  for k, x in pairs(v) do
    if type(k) ~= "string" then return "a row key is not a string: " .. tostring(k) end
    local t = type(x)
    if t == "table" then
      for i, e in pairs(x) do
        if math.type(i) ~= "integer" or type(e) ~= "number" then
          return "row value " .. k .. " is a table but not a list of numbers"
        end
      end
    elseif t ~= "number" and t ~= "string" and t ~= "boolean" then
      return "row value " .. k .. " is a " .. t
    end
  end
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- The done rows of S grouped by config, in config order: a list of
--- { config = ..., rows = { row, ... } } (rows in seed order; configs
--- without a done row are left out).  A row is { task, seed, config,
--- values, wall, ... } as stored.
function M.groups(S, done)
  local groups, by_index = {}, {}
  for _, row in ipairs(done) do
    local ci = S.tasks[row.task + 1].ci
    if not by_index[ci] then
      by_index[ci] = { config = S.configs[ci], rows = {} }
      groups[#groups + 1] = by_index[ci]
    end
    table.insert(by_index[ci].rows, row)
  end
  return groups
end

--- Runs task t in this process and writes its row: true if it succeeded,
--- else false and the message (the row is then an error row).
function M.run_task(S, dir, t)
  local threads = S.threads or sl.threads
  sl.set_threads(threads)
  math.randomseed(t.seed) -- a task that draws without seeding still repeats
  local t0 = sl.clock()
  local ok, values = xpcall(S.task, function(e)
    return type(e) == "string" and e or tostring(e)
  end, copy(t.config), t.seed, dir)
  local problem = ok and check_values(values) or (not ok and values) or nil
  local record = { task = t.index, seed = t.seed, config = t.config, version = sl.version,
                   threads = threads, wall = sl.clock() - t0 }
  if problem then
    record.status, record.message, record.exit = "error", problem, 1
  else
    record.status, record.values = "ok", values
  end
  rows.write(dir, record)
  return not problem, problem
end

--- Marks dir as the directory of sweep S.
function M.prepare(S, dir)
  rows.prepare(dir)
  rows.write_info(dir, { file = S.file or "", name = S.name, tasks = #S.tasks })
end

--- The tasks to run: all of them if forced, else those without a good row.
function M.pending(S, dir, force)
  local list = {}
  for _, t in ipairs(S.tasks) do
    if force or rows.state(dir, t) ~= "done" then list[#list + 1] = t end
  end
  return list
end

--- The task of a 0-based index, or an error naming the range.
function M.task(S, index)
  local t = S.tasks[index + 1]
  if not t then
    error(("sweep %s: task %d out of range: it has %d tasks (0..%d)")
          :format(S.name, index, #S.tasks, #S.tasks - 1), 0)
  end
  return t
end

local function progress(S, state, total)
  if not state.tty then return end
  io.stderr:write(("\rsweep %s: %d/%d done, %d failed, %d running  ")
                  :format(S.name, state.done, total, state.failed, state.running))
  io.stderr:flush()
end

-- The pending tasks in batches for worker processes: each worker starts
-- symlab, loads the sweep file and its data once and runs its batch in
-- order, so short tasks do not each pay a process start-up.  Batches are
-- strided (batch b: tasks b, b + n, b + 2n, ...), so each mixes the configs
-- — which often differ in cost — and about four of them per job keep the
-- jobs busy to the end.
local function batches(list, jobs)
  local n = math.min(#list, 4 * jobs)
  local out = {}
  for b = 1, n do
    out[b] = {}
    for k = b, #list, n do out[b][#out[b] + 1] = list[k] end
  end
  return out
end

-- Workers over the batches, at most `jobs` at a time.  A task whose worker
-- dies before writing its row (a crash, a signal) gets an error row here.
local function run_children(S, dir, list, opts, state)
  local work, by_pid, next_b, workers = batches(list, opts.jobs), {}, 1, 0
  local function start()
    local b = work[next_b]
    next_b = next_b + 1
    local ids = {}
    for k, t in ipairs(b) do ids[k] = tostring(t.index) end
    local args = { "--threads", tostring(S.threads or sl.threads), "sweep", "task", S.file,
                   "--dir", dir, "--task", table.concat(ids, ",") }
    if opts.force then args[#args + 1] = "--force" end
    -- the batch's output goes to the log of its first task
    by_pid[sl.proc.spawn(args, rows.log_path(dir, b[1].index))] = b
    state.running = state.running + #b
    workers = workers + 1
  end
  while next_b <= #work and workers < opts.jobs do start() end
  progress(S, state, opts.total)
  while next(by_pid) do
    local pid, how, code = sl.proc.wait()
    if not pid then error("sweep: waiting for a task failed: " .. tostring(how), 0) end
    local b = by_pid[pid]
    if b then
      by_pid[pid], workers = nil, workers - 1
      for _, t in ipairs(b) do
        state.running = state.running - 1
        local st = rows.state(dir, t)
        if st == "done" then
          state.done = state.done + 1
        else
          state.failed = state.failed + 1
          if st ~= "failed" then
            rows.write(dir, { task = t.index, seed = t.seed, config = t.config, status = "error",
                              version = sl.version, exit = how == "exit" and code or 128 + code,
                              message = ("task process %s %d; see %s"):format(
                                how == "exit" and "exited with status" or "killed by signal",
                                code, rows.log_path(dir, b[1].index)) })
          end
        end
      end
      if next_b <= #work then start() end
      progress(S, state, opts.total)
    end
  end
end

--- Runs the pending tasks of S into dir: in this process (jobs 1 or no
--- file to re-run) or as `jobs` child processes.  Returns the number that
--- failed and the number run.
function M.run(S, dir, opts)
  opts = opts or {}
  opts.jobs = opts.jobs or 1
  M.prepare(S, dir)
  local list = M.pending(S, dir, opts.force)
  opts.total = #list
  local state = { done = 0, failed = 0, running = 0, tty = sl.proc.isatty(2) }
  if opts.jobs > 1 and S.file then
    run_children(S, dir, list, opts, state)
  else
    for _, t in ipairs(list) do
      state.running = 1
      progress(S, state, #list)
      local ok, err = M.run_task(S, dir, t)
      state.running = 0
      if ok then state.done = state.done + 1 else
        state.failed = state.failed + 1
        io.stderr:write(("%ssweep %s: task %d failed: %s\n")
                        :format(state.tty and "\n" or "", S.name, t.index, err))
      end
    end
  end
  progress(S, state, #list)
  if state.tty then io.stderr:write("\n") end
  return state.failed, #list
end

--- `symlab FILE [RESULTS_DIR]`: the whole sweep in this process into
--- RESULTS_DIR/<name> (default results/<name>), every task afresh, then the
--- gathered tables.  Under `symlab sweep ...` it only returns S.
function M.main(S, outdir)
  if M.loading then return S end
  local gather = require "symlab.sweep_gather"
  local dir = (outdir or "results") .. "/" .. S.name
  local t0 = sl.clock()
  local failed = M.run(S, dir, { force = true })
  local complete = gather.gather(S, dir)
  print(("total wall time: %.1f s"):format(sl.clock() - t0))
  if failed > 0 or not complete then
    error(("sweep %s: %d of %d tasks failed (see %s)"):format(S.name, failed, #S.tasks, dir), 0)
  end
  return S
end

return M
