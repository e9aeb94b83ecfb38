-- symlab.sweep_cli — `symlab sweep COMMAND ...` (core/main.c calls main).
--
--   symlab sweep run    FILE [--jobs N] [--dir DIR] [--force]
--   symlab sweep task   FILE [--task I] [--dir DIR] [--force]
--   symlab sweep slurm  FILE [--dir DIR] [--force] [--dry-run] [SBATCH OPTIONS...]
--   symlab sweep gather DIR
--   symlab sweep status DIR
--
-- DIR defaults to results/<the sweep's name>.  --threads (before `sweep`)
-- is every task's thread count.  Exit status: 0 when every task asked for
-- is done, 1 when a task failed or is missing, 2 for a bad command line.
local sl = require "symlab"
local sweep = require "symlab.sweep"
local gather = require "symlab.sweep_gather"

local M = {}

local USAGE = [[
usage: symlab [--threads N] sweep run    FILE [--jobs N] [--dir DIR] [--force]
       symlab [--threads N] sweep task   FILE [--task I] [--dir DIR] [--force]
       symlab [--threads N] sweep slurm  FILE [--dir DIR] [--force] [--dry-run] [SBATCH OPTIONS...]
       symlab sweep gather DIR
       symlab sweep status DIR

run     runs the tasks without a row on this machine, N processes at a time
task    runs the task(s) a launcher names: --task I (or I,J,...), SLURM_ARRAY_TASK_ID, the
        MPI rank (OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK: tasks r, r+K, ...
        for K ranks) or GNU parallel's PARALLEL_SEQ (task PARALLEL_SEQ - 1)
slurm   submits the missing tasks as a job array and a dependent gather job
gather  merges the rows into DIR/sweep.csv|jsonl and DIR/summary.csv|jsonl
status  counts done, failed and missing tasks
DIR defaults to results/<sweep name>; --force re-runs tasks that have a row.
]]

local function usage_error(msg)
  io.stderr:write("symlab: sweep: ", msg, "; see `symlab sweep help`\n")
  return 2
end

-- Parses FILE and options; `allowed` maps an option to "flag" or "value".
-- With `rest`, unknown options are collected (sbatch options) instead.
local function parse(args, allowed, rest)
  local o, extra = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local kind = allowed[name]
    if kind == "flag" and not value then
      o[name] = true
    elseif kind == "value" then
      if not value then i = i + 1; value = args[i] end
      if not value then return nil, name .. " needs a value" end
      o[name] = value
    elseif a:sub(1, 1) == "-" and rest then
      extra[#extra + 1] = a
    elseif a:sub(1, 1) == "-" then
      return nil, "unknown option '" .. a .. "'"
    elseif not o.file then
      o.file = a
    else
      return nil, "unexpected argument '" .. a .. "'"
    end
    i = i + 1
  end
  if not o.file then return nil, "which file?" end
  o.sbatch = extra
  return o
end


local function dir_of(S, o) return sweep.absolute(o["--dir"] or ("results/" .. S.name)) end

local commands = {}

function commands.run(args)
  local o, err = parse(args, { ["--jobs"] = "value", ["--dir"] = "value", ["--force"] = "flag" })
  if not o then return usage_error(err) end
  local jobs = math.tointeger(tonumber(o["--jobs"] or "1"))
  if not jobs or jobs < 1 then
    return usage_error(("--jobs: expected a positive integer, got '%s'"):format(o["--jobs"]))
  end
  local S = sweep.load(o.file)
  local dir = dir_of(S, o)
  local failed, ran = sweep.run(S, dir, { jobs = jobs, force = o["--force"] })
  print(("sweep %s: ran %d of %d tasks, %d failed; rows in %s")
        :format(S.name, ran, #S.tasks, failed, dir))
  return failed == 0 and 0 or 1
end

function commands.task(args)
  local o, err = parse(args, { ["--task"] = "value", ["--dir"] = "value", ["--force"] = "flag" })
  if not o then return usage_error(err) end
  -- --task I,J,...: the batch `sweep run --jobs` gives one worker process
  local batch = o["--task"] and o["--task"]:find(",", 1, true) and o["--task"]
  local first, stride, source
  if batch then
    first, stride, source = 0, -1, "--task"
  else
    first, stride, source = sl.proc.task(o["--task"])
  end
  if not first then
    if stride then return usage_error(stride) end
    return usage_error("no task index: give --task I, or run under a Slurm array, mpirun or GNU parallel")
  end
  local S = sweep.load(o.file)
  local dir = dir_of(S, o)
  sweep.prepare(S, dir)
  local list = {}
  if batch then
    for item in batch:gmatch("[^,]+") do
      local i = math.tointeger(tonumber(item))
      if not i then return usage_error(("--task: '%s' is not a task index"):format(item)) end
      list[#list + 1] = sweep.task(S, i)
    end
  elseif stride == 0 then
    list[1] = sweep.task(S, first)
  else
    for i = first, #S.tasks - 1, stride do list[#list + 1] = S.tasks[i + 1] end
  end
  local failed = 0
  local rows = require "symlab.sweep_rows"
  for _, t in ipairs(list) do
    if o["--force"] or rows.state(dir, t) ~= "done" then
      local ok, msg = sweep.run_task(S, dir, t)
      if not ok then
        failed = failed + 1
        io.stderr:write(("symlab: sweep %s: task %d (%s) failed: %s\n")
                        :format(S.name, t.index, source, msg))
      end
    end
  end
  return failed == 0 and 0 or 1
end

function commands.slurm(args)
  local o, err = parse(args, { ["--dir"] = "value", ["--force"] = "flag", ["--dry-run"] = "flag" }, true)
  if not o then return usage_error(err) end
  local S = sweep.load(o.file)
  local dir = dir_of(S, o)
  sweep.prepare(S, dir)
  local pending = sweep.pending(S, dir, o["--force"])
  if #pending == 0 then
    print(("sweep %s: all %d tasks are done; `symlab sweep gather %s` merges them")
          :format(S.name, #S.tasks, dir))
    return 0
  end
  require("symlab.sweep_slurm").submit(S, dir, pending, {
    force = o["--force"], dry_run = o["--dry-run"], sbatch = o.sbatch })
  return 0
end

-- The sweep of a directory, from the file recorded in its sweep.info.
local function sweep_of(args, name)
  if #args ~= 1 then return nil, name .. " takes one directory" end
  local dir = sweep.absolute(args[1])
  local info = require("symlab.sweep_rows").read_info(dir)
  local S = sweep.load(info.file)
  if info.tasks ~= #S.tasks then
    io.stderr:write(("symlab: sweep %s: %s was run with %d tasks, %s now defines %d "
                     .. "(a parameter changed? an environment variable such as SYMLAB_REPRO_QUICK?)\n")
                    :format(S.name, dir, info.tasks, info.file, #S.tasks))
  end
  return S, dir
end

function commands.gather(args)
  local S, dir = sweep_of(args, "gather")
  if not S then return usage_error(dir) end
  return gather.gather(S, dir) and 0 or 1
end

function commands.status(args)
  local S, dir = sweep_of(args, "status")
  if not S then return usage_error(dir) end
  return gather.status(S, dir) and 0 or 1
end

function M.main(command, ...)
  if command == "help" or command == "--help" or command == "-h" then
    io.write(USAGE)
    return 0
  end
  local fn = commands[command or ""]
  if not fn then
    return usage_error(command and ("unknown command '" .. command .. "'") or "which command?")
  end
  return fn({ ... })
end

return M
