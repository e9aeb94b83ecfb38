-- symlab.results — write experiment results as CSV or JSON Lines.
--
--   local results = require "symlab.results"
--   results.write_csv("out/history.csv", history)                 -- columns: all keys
--   results.write_csv("out/history.csv", history, {"epoch", "loss"})
--   results.write_jsonl("out/history.jsonl", history)
--   local dir = results.outdir(arg[1] or "results")               -- mkdir -p
--   results.plot(dir .. "/fig.png", gnuplot_script)               -- if gnuplot is there
--
-- Both write a temporary file beside `path` first and rename it over `path`,
-- so a crash or an error never leaves a half-written file and earlier
-- results survive.  Each writer gets its own temporary (sl.file_temp), so two
-- runs writing one path (a sweep) never tear each other's file: a reader
-- sees one complete version or the other.
-- Numbers are written with %.17g (integers as integers), which reads back
-- to the same double.  In CSV, NaN and infinities are written as nan, inf,
-- -inf; JSON has no such numbers, so they become null.
local sl = require "symlab"
local M = {}

local function number_text(v)
  if math.type(v) == "integer" then
    return string.format("%d", v)
  elseif v ~= v then
    return "nan"
  elseif v == math.huge then
    return "inf"
  elseif v == -math.huge then
    return "-inf"
  end
  return string.format("%.17g", v)
end

-- The columns of rows: every key that appears, "epoch" first, then sorted.
function M.columns(rows)
  local seen, cols = {}, {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if type(k) == "string" and not seen[k] then
        seen[k] = true
        cols[#cols + 1] = k
      end
    end
  end
  table.sort(cols, function(a, b)
    if a == "epoch" or b == "epoch" then return a == "epoch" and b ~= "epoch" end
    return a < b
  end)
  return cols
end

-- Writes the text made by `produce(f)` to path atomically.
local function write_atomic(path, produce)
  assert(type(path) == "string", "results: path must be a string")
  local made, tmp = pcall(sl.file_temp, path)
  if not made then error("results: " .. tostring(tmp), 3) end
  local f, err = io.open(tmp, "w")
  if not f then error("results: cannot write " .. tmp .. ": " .. tostring(err), 3) end
  local ok, perr = pcall(produce, f)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    error("results: writing " .. path .. " failed: " .. tostring(ok and cerr or perr), 3)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error("results: cannot rename " .. tmp .. " to " .. path .. ": " .. tostring(rerr), 3)
  end
end

local function checked_write(f, ...)
  local ok, err = f:write(...)
  if not ok then error(err, 0) end
end

-- ---- CSV (RFC 4180) ---------------------------------------------------------

local function csv_field(v)
  local t = type(v)
  if v == nil then return "" end
  if t == "number" then return number_text(v) end
  if t == "boolean" then return tostring(v) end
  if t ~= "string" then
    error("results: a CSV field must be a number, string or boolean, got " .. t, 0)
  end
  if v:find('[,"\r\n]') or v:find("^%s") or v:find("%s$") then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

-- write_csv(path, rows, [columns]): a header line, then one line per row;
-- a key missing from a row is an empty field.
function M.write_csv(path, rows, columns)
  assert(type(rows) == "table", "results.write_csv: rows must be a list of tables")
  columns = columns or M.columns(rows)
  write_atomic(path, function(f)
    local fields = {}
    for i, c in ipairs(columns) do fields[i] = csv_field(c) end
    checked_write(f, table.concat(fields, ","), "\n")
    for _, row in ipairs(rows) do
      for i, c in ipairs(columns) do fields[i] = csv_field(row[c]) end
      checked_write(f, table.concat(fields, ","), "\n")
    end
  end)
end

-- ---- JSON Lines -----------------------------------------------------------------

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local json_value

-- A table is an array if its keys are exactly 1..n (an empty table is {}).
local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function json_table(t, depth)
  if depth > 32 then error("results: tables nested too deeply (a cycle?)", 0) end
  local parts = {}
  if is_array(t) then
    for i = 1, #t do parts[i] = json_value(t[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("results: JSON object keys must be strings", 0) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = json_string(k) .. ":" .. json_value(t[k], depth + 1) end
  return "{" .. table.concat(parts, ",") .. "}"
end

json_value = function(v, depth)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return number_text(v)
  elseif t == "string" then
    return json_string(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "nil" then
    return "null"
  elseif t == "table" then
    return json_table(v, depth or 0)
  end
  error("results: cannot write a " .. t .. " as JSON", 0)
end

-- The JSON text of a value (objects with sorted keys).
function M.json(v) return json_value(v, 0) end

-- write_jsonl(path, rows): one JSON object per line.
function M.write_jsonl(path, rows)
  assert(type(rows) == "table", "results.write_jsonl: rows must be a list of tables")
  write_atomic(path, function(f)
    for _, row in ipairs(rows) do checked_write(f, json_value(row, 0), "\n") end
  end)
end

--- Creates directory `dir` (with its parents) if it is missing; returns dir.
function M.outdir(dir)
  assert(type(dir) == "string", "results: directory must be a string")
  if not os.execute(("mkdir -p '%s'"):format(dir:gsub("'", "'\\''"))) then
    error("results: cannot create directory " .. dir, 2)
  end
  return dir
end

--- Renders `png` by running gnuplot on `script` (which sets its own
--- terminal and output).  The script is kept beside the plot (.gp) so it can
--- be re-run.  Without gnuplot, or if it fails, prints why the plot was
--- skipped and returns false; the results files are unaffected.
function M.plot(png, script)
  local gp = png:gsub("%.png$", "") .. ".gp"
  write_atomic(gp, function(f) assert(f:write(script)) end)
  if not os.execute("command -v gnuplot >/dev/null 2>&1") then
    print("gnuplot not found; plot " .. png .. " skipped")
    return false
  end
  local ok = os.execute(("gnuplot '%s'"):format(gp:gsub("'", "'\\''")))
  print(ok and ("wrote " .. png) or ("gnuplot failed; plot " .. png .. " skipped"))
  return ok and true or false
end

return M
