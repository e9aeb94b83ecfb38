-- symlab.sweep_slurm — a sweep as a Slurm job array plus a gather job that
-- starts when the array has finished (whatever its tasks' outcome).
--
--   DIR/slurm/array.sh    #SBATCH --array=<pending tasks>; each element runs
--                         `symlab sweep task FILE --dir DIR`, which reads
--                         SLURM_ARRAY_TASK_ID; --cpus-per-task is the task's
--                         thread count (symlab reads SLURM_CPUS_PER_TASK)
--   DIR/slurm/gather.sh   `symlab sweep gather DIR`
--
-- Options the user gives go to both sbatch calls, after the script's own
-- #SBATCH lines, so they win (e.g. --cpus-per-task, --partition, --time).
local sl = require "symlab"

local M = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- "0-3,5,7-9" for a sorted list of task indices.
function M.ranges(indices)
  local parts, i = {}, 1
  while i <= #indices do
    local j = i
    while j < #indices and indices[j + 1] == indices[j] + 1 do j = j + 1 end
    parts[#parts + 1] = i == j and tostring(indices[i]) or (indices[i] .. "-" .. indices[j])
    i = j + 1
  end
  return table.concat(parts, ",")
end

local function script(lines)
  return "#!/bin/sh\n" .. table.concat(lines, "\n") .. "\n"
end

--- The two job scripts for the pending tasks of S in dir (absolute paths).
function M.scripts(S, dir, pending, force)
  local indices = {}
  for i, t in ipairs(pending) do indices[i] = t.index end
  local exe = sl.proc.exe
  local array = script {
    "#SBATCH --job-name=" .. S.name,
    "#SBATCH --array=" .. M.ranges(indices),
    "#SBATCH --cpus-per-task=" .. (S.threads or sl.threads),
    "#SBATCH --output=" .. dir .. "/logs/slurm-%A_%a.log",
    ("exec %s sweep task %s --dir %s%s"):format(quote(exe), quote(S.file), quote(dir),
                                                force and " --force" or ""),
  }
  local gather = script {
    "#SBATCH --job-name=" .. S.name .. "-gather",
    "#SBATCH --output=" .. dir .. "/logs/slurm-gather-%j.log",
    ("exec %s sweep gather %s"):format(quote(exe), quote(dir)),
  }
  return array, gather
end

-- Runs sbatch; the job id it prints with --parsable.
local function sbatch(args)
  local cmd = { "sbatch", "--parsable" }
  for _, a in ipairs(args) do cmd[#cmd + 1] = quote(a) end
  local f = io.popen(table.concat(cmd, " ") .. " 2>&1")
  local out = f:read("a")
  local ok = f:close()
  local id = out:match("^(%d+)")
  if not ok or not id then
    error("sweep slurm: sbatch failed: " .. (out:gsub("%s+$", "")), 0)
  end
  return id
end

--- Writes the scripts and submits them (or, dry, prints them and the
--- commands).  `options` are sbatch options.
function M.submit(S, dir, pending, opts)
  local rows = require "symlab.sweep_rows"
  local array, gather = M.scripts(S, dir, pending, opts.force)
  rows.write_atomic(dir .. "/slurm/array.sh", array)
  rows.write_atomic(dir .. "/slurm/gather.sh", gather)
  local array_args, gather_args = {}, {}
  for _, o in ipairs(opts.sbatch) do
    array_args[#array_args + 1] = o
    gather_args[#gather_args + 1] = o
  end
  array_args[#array_args + 1] = dir .. "/slurm/array.sh"
  if opts.dry_run then
    io.write(dir, "/slurm/array.sh:\n", array, "\n", dir, "/slurm/gather.sh:\n", gather, "\n")
    print("would run: sbatch --parsable " .. table.concat(array_args, " "))
    print("then:      sbatch --parsable --dependency=afterany:JOBID "
          .. table.concat(gather_args, " ") .. " " .. dir .. "/slurm/gather.sh")
    return
  end
  local job = sbatch(array_args)
  table.insert(gather_args, 1, "--dependency=afterany:" .. job)
  gather_args[#gather_args + 1] = dir .. "/slurm/gather.sh"
  local gjob = sbatch(gather_args)
  print(("sweep %s: submitted array job %s (%d tasks) and gather job %s")
        :format(S.name, job, #pending, gjob))
  return job, gjob
end

return M
