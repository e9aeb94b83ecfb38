-- tests/lua/helpers.lua — a tiny test runner for symlab's Lua tests.
--
--   local T = require "helpers"
--   T.test("name", function() T.eq(1 + 1, 2) end)
--   T.skip("why")   -- inside a test: stop it and count it as skipped
--   T.run()   -- prints one line per test, then "N passed, M failed[, K skipped]";
--             -- exits 1 on failure
local T = {}
local tests = {}

-- Registers a test.
function T.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

-- A fresh temporary path (nothing is created there) that the runner removes,
-- with anything made under it or beside it as path.*, after the current
-- test, whether it passed or failed.
local scratch = {}
function T.tmpname()
  local path = os.tmpname()
  scratch[#scratch + 1] = path
  return path
end

local function remove_scratch()
  for i = #scratch, 1, -1 do
    local q = "'" .. scratch[i]:gsub("'", "'\\''") .. "'"
    os.execute("rm -rf " .. q .. " " .. q .. ".*")
    scratch[i] = nil
  end
end

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.ok(cond, msg)
  if not cond then fail(msg or "assertion failed") end
  return cond
end

function T.eq(got, want, msg)
  if got ~= want then
    fail(string.format("%sgot %s, want %s", msg and msg .. ": " or "", show(got), show(want)))
  end
end

-- |got - want| <= tol (absolute) or relative to |want|.
function T.near(got, want, tol, msg)
  tol = tol or 1e-6
  local d = math.abs(got - want)
  if not (d <= tol or d <= tol * math.abs(want)) then
    fail(string.format("%sgot %.17g, want %.17g (difference %.3g > %.3g)",
                       msg and msg .. ": " or "", got, want, d, tol))
  end
end

-- Calls fn, which must raise an error containing `needle` (plain text);
-- returns the message.
function T.raises(fn, needle, msg)
  local ok, err = pcall(fn)
  if ok then fail((msg and msg .. ": " or "") .. "no error raised (wanted '" .. needle .. "')") end
  err = tostring(err)
  if not err:find(needle, 1, true) then
    fail(string.format("%serror %q does not mention %q", msg and msg .. ": " or "", err, needle))
  end
  return err
end

-- Element-by-element equality of two tensors (exact unless tol is given).
function T.tensor_eq(a, b, tol, msg)
  local sa, sb = a:shape(), b:shape()
  T.eq(#sa, #sb, (msg or "tensor") .. " ndim")
  for i = 1, #sa do T.eq(sa[i], sb[i], (msg or "tensor") .. " extent " .. i) end
  local fa, fb = a:copy():reshape({ a:numel() }), b:copy():reshape({ b:numel() })
  for i = 1, a:numel() do
    local x, y = fa:get(i), fb:get(i)
    if tol then
      T.near(x, y, tol, string.format("%s element %d", msg or "tensor", i))
    elseif x ~= y then
      fail(string.format("%s element %d: %.17g ~= %.17g", msg or "tensor", i, x, y))
    end
  end
end

-- Ends the running test as skipped, saying why.
local SKIP = {}
function T.skip(why)
  error({ [SKIP] = why }, 0)
end

-- Runs every registered test, prints the summary as the last line and exits
-- non-zero if any failed.
function T.run()
  local passed, failed, skipped = 0, 0, 0
  for _, t in ipairs(tests) do
    local ok, err = xpcall(t.fn, function(e)
      return type(e) == "table" and e[SKIP] and e or debug.traceback(e)
    end)
    remove_scratch()
    collectgarbage() -- exercise __gc between tests
    if not ok and type(err) == "table" and err[SKIP] then
      skipped = skipped + 1
      print("skip   " .. t.name .. ": " .. tostring(err[SKIP]))
    elseif ok then
      passed = passed + 1
      print("ok     " .. t.name)
    else
      failed = failed + 1
      print("FAIL   " .. t.name .. ": " .. tostring(err))
    end
  end
  print(string.format("%d passed, %d failed", passed, failed) ..
        (skipped > 0 and string.format(", %d skipped", skipped) or ""))
  io.stdout:flush()
  os.exit(failed == 0 and 0 or 1, true) -- close the state: finalizers run
end

-- The rows of a CSV file written by symlab.results (no quoting), as
-- tables keyed by the header's names; numbers become numbers, and an empty
-- cell leaves its key unset.
function T.read_csv(path)
  local f = assert(io.open(path))
  local header, rows = nil, {}
  for line in f:lines() do
    local cells = {}
    for c in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = c end
    if not header then
      header = cells
    else
      local row = {}
      for i, name in ipairs(header) do
        if cells[i] ~= "" then row[name] = tonumber(cells[i]) or cells[i] end
      end
      rows[#rows + 1] = row
    end
  end
  f:close()
  return rows
end

return T
