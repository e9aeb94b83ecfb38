-- symlab.table — an aligned text table of rows, for printing results.
--
--   local tbl = require "symlab.table"
--   tbl.print(history, {"epoch", "loss", "accuracy"})
--   io.stderr:write(tbl.format(rows, nil, { formats = { loss = "%.6f" } }))
--
-- Numbers are right-aligned (integers as integers, other numbers with
-- "%.4g" unless opts.formats[column] says otherwise), text left-aligned;
-- a missing value prints as "-".
local M = {}

local function cell(v, fmt)
  if v == nil then return "-" end
  if type(v) == "number" then
    if v ~= v then return "nan" end
    if fmt then return string.format(fmt, v) end
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.4g", v)
  end
  return tostring(v)
end

local function default_columns(rows)
  local ok, results = pcall(require, "symlab.results")
  if ok then return results.columns(rows) end
  local seen, cols = {}, {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if not seen[k] then seen[k] = true; cols[#cols + 1] = k end
    end
  end
  table.sort(cols)
  return cols
end

-- format(rows, [columns], [opts]) -> the table as a string ending in "\n".
-- opts.formats: {column = "%.2f"}; opts.headers: {column = "shown name"}.
function M.format(rows, columns, opts)
  assert(type(rows) == "table", "table.format: rows must be a list of tables")
  columns = columns or default_columns(rows)
  opts = opts or {}
  local formats, headers = opts.formats or {}, opts.headers or {}
  local grid, width, numeric = { [0] = {} }, {}, {}
  for j, c in ipairs(columns) do
    local h = tostring(headers[c] or c)
    width[j], numeric[j] = #h, true
    grid[0][j] = h
  end
  for i, row in ipairs(rows) do
    grid[i] = {}
    for j, c in ipairs(columns) do
      local v = row[c]
      local s = cell(v, formats[c])
      if v ~= nil and type(v) ~= "number" then numeric[j] = false end
      grid[i][j] = s
      if #s > width[j] then width[j] = #s end
    end
  end
  local lines = {}
  for i = 0, #rows do
    local parts = {}
    for j = 1, #columns do
      local s, pad = grid[i][j], string.rep(" ", width[j] - #grid[i][j])
      parts[j] = numeric[j] and pad .. s or s .. pad
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
    if i == 0 then
      local rule = {}
      for j = 1, #columns do rule[j] = string.rep("-", width[j]) end
      lines[#lines + 1] = table.concat(rule, "  ")
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

-- print(rows, [columns], [opts]): writes format(...) to standard output.
function M.print(rows, columns, opts)
  io.write(M.format(rows, columns, opts))
end

return M
