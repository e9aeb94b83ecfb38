-- symlab.lmc — linear mode connectivity between two models in Lua.
--
--   local lmc = require "symlab.lmc"           -- or sl.lmc
--   local c = lmc.interpolate(net_a, net_b, ds, { points = 25, loss = "cross_entropy" })
--   c.lambda[i], c.loss[i], c.acc[i]            -- i = 1 .. points (acc for labels)
--   c.barrier, c.max_barrier, c.acc_barrier, c.max_acc_barrier
--
-- The `interpolate` probe (asym plugin) takes one model and reads the
-- second from a checkpoint; these helpers save net_b to a temporary file,
-- run the probe on net_a and remove the file.  net_a and net_b are not
-- changed.  Errors are raised (the probe's message) after cleaning up.
local sl = require "symlab"

local M = {}

-- Runs fn(path) with net saved at a temporary path, then removes the file.
local function with_checkpoint(net, fn)
  local path = os.tmpname()
  local ok, res = pcall(function()
    net:save(path)
    return fn(path)
  end)
  os.remove(path)
  if not ok then error(res, 0) end
  return res
end

-- The probe's options table plus other = path (a copy; opts is not changed).
local function with_other(opts, path)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.other = path
  return o
end

-- The interpolation curve and barriers from net_a (lambda 0) to net_b
-- (lambda 1) on ds; opts are the probe's (points, loss, batch).
function M.interpolate(net_a, net_b, ds, opts)
  local rec = with_checkpoint(net_b, function(path)
    return sl.probe.interpolate(net_a, ds, with_other(opts, path))
  end)
  local c = { lambda = {}, loss = {}, acc = {},
              barrier = rec.barrier, max_barrier = rec.max_barrier,
              acc_barrier = rec.acc_barrier, max_acc_barrier = rec.max_acc_barrier }
  local i = 0
  while rec["loss_" .. i] do
    c.lambda[i + 1] = rec["lambda_" .. i]
    c.loss[i + 1] = rec["loss_" .. i]
    c.acc[i + 1] = rec["acc_" .. i]
    i = i + 1
  end
  return c
end

return M
