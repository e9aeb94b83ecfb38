-- symlab.sweep_rows — the files a sweep keeps in its directory.
--
--   DIR/rows/task-000007.lua   one per finished task, written atomically:
--                              return { task = 7, seed = 3, status = "ok",
--                                       config = {...}, values = {...},
--                                       version = "...", wall = 1.25, threads = 1 }
--                              (status "error": message and exit instead of values)
--   DIR/logs/task-000007.log   the output of a task run by `sweep run --jobs N`
--   DIR/sweep.info             which sweep file the directory belongs to
--
-- Rows are Lua text, not JSON, because Lua text carries every double exactly
-- (%.17g, floats kept floats) and NaN and infinities too; the gathered
-- tables are CSV and JSON Lines.  A row is written to a temporary file named
-- after the writing process and renamed over its final name, so a reader
-- sees a whole row or none, even when a task is killed mid-write.
local sl = require "symlab"

local M = {}

local function number_text(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  local s = string.format("%.17g", v)
  if not s:find("[.eEn]") then s = s .. ".0" end -- read back as a float
  return s
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return keys
end

-- The Lua text of v: numbers, strings, booleans and tables of them (keys
-- sorted, so equal values give equal text).
local function lua_text(v, depth)
  local t = type(v)
  if t == "number" then return number_text(v) end
  if t == "string" then return string.format("%q", v) end
  if t == "boolean" then return tostring(v) end
  if t ~= "table" then error("sweep: cannot store a " .. t .. " in a row", 0) end
  if depth > 8 then error("sweep: row tables nested too deeply", 0) end
  local parts = {}
  for _, k in ipairs(sorted_keys(v)) do
    local key = type(k) == "string" and string.format("[%q]", k) or ("[" .. number_text(k) .. "]")
    parts[#parts + 1] = key .. " = " .. lua_text(v[k], depth + 1)
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

function M.text(v) return lua_text(v, 0) end

-- The identity of a config, for telling a stale row from a current one.
function M.config_key(config, seed) return lua_text(config, 0) .. "#" .. tostring(seed) end

function M.row_path(dir, index) return string.format("%s/rows/task-%06d.lua", dir, index) end
function M.log_path(dir, index) return string.format("%s/logs/task-%06d.log", dir, index) end

-- mkdir -p for the directories of a sweep directory (slurm/: the job scripts).
function M.prepare(dir)
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  if not os.execute(("mkdir -p %s/rows %s/logs %s/slurm"):format(q, q, q)) then
    error("sweep: cannot create directory " .. dir, 0)
  end
end

-- Writes `text` to path via a temporary file of this process, then rename.
function M.write_atomic(path, text)
  local tmp = ("%s.tmp.%d"):format(path, sl.proc.pid())
  local f, err = io.open(tmp, "w")
  if not f then error("sweep: cannot write " .. tmp .. ": " .. tostring(err), 0) end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    error("sweep: writing " .. path .. " failed: " .. tostring(werr or cerr), 0)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error("sweep: cannot rename " .. tmp .. " to " .. path .. ": " .. tostring(rerr), 0)
  end
end

function M.write(dir, record)
  M.write_atomic(M.row_path(dir, record.task), "return " .. lua_text(record, 0) .. "\n")
end

-- Reads a Lua-text file written above: the table, or nil if it is missing,
-- or nil and a message if it cannot be read.
function M.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local chunk, err = load(text, "@" .. path, "t", {})
  if not chunk then return nil, err end
  local ok, value = pcall(chunk)
  if not ok or type(value) ~= "table" then return nil, path .. ": not a sweep row" end
  return value
end

-- The state of task t in dir: "done", "failed", "stale" (a row of another
-- config or seed: the sweep was edited) or "missing"; and the row.
function M.state(dir, t)
  local row = M.read_file(M.row_path(dir, t.index))
  if not row then return "missing" end
  if M.config_key(row.config or {}, row.seed) ~= M.config_key(t.config, t.seed) then
    return "stale", row
  end
  return row.status == "ok" and "done" or "failed", row
end

-- DIR/sweep.info: the absolute path of the sweep file, its name and size.
function M.write_info(dir, info)
  M.write_atomic(dir .. "/sweep.info", "return " .. lua_text(info, 0) .. "\n")
end

function M.read_info(dir)
  local info, err = M.read_file(dir .. "/sweep.info")
  if not info then
    error(("sweep: %s is not a sweep directory (no readable sweep.info%s)")
          :format(dir, err and ": " .. err or ""), 0)
  end
  return info
end

return M
