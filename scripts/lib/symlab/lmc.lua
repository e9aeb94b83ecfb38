-- symlab.lmc — linear mode connectivity between two models in Lua.
--
--   local lmc = require "symlab.lmc"           -- or sl.lmc
--   local c = lmc.interpolate(net_a, net_b, ds, { points = 25, loss = "cross_entropy" })
--   c.lambda[i], c.loss[i], c.acc[i]            -- i = 1 .. points (acc for labels)
--   c.barrier, c.max_barrier, c.acc_barrier, c.max_acc_barrier
--   local rec = lmc.align(net_a, net_b, { seed = 0 })   -- permutes net_b's units
--
-- The `interpolate` and `weight_matching` probes (asym plugin) take one
-- model and read the second from a checkpoint; these helpers save net_b to
-- a temporary file, run the probe on net_a and remove the file.
-- interpolate changes neither model; align loads the aligned net_b back
-- into net_b.  Errors are raised (the probe's message) after cleaning up.
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

-- Weight matching (Git Re-Basin): permutes net_b's hidden units in place
-- to line them up with net_a's; net_b computes the same function after.
-- opts: seed, max_sweeps.  Returns the probe's record (sweeps, converged,
-- units_moved, moved_<h>, distance_before, distance_after).
function M.align(net_a, net_b, opts)
  local out = os.tmpname()
  local ok, res = pcall(function()
    return with_checkpoint(net_b, function(path)
      local o = with_other(opts, path)
      o.output = out
      local rec = sl.probe.weight_matching(net_a, o)
      net_b:load(out)
      return rec
    end)
  end)
  os.remove(out)
  if not ok then error(res, 0) end
  return res
end

return M
