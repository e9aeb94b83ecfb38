-- tests/lua/test_lmc.lua — symlab.lmc (linear mode connectivity helpers).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"
local lmc = require "symlab.lmc"

-- y = x w + b with one input: the MSE along the line is a quadratic whose
-- values this test computes by hand.
T.test("interpolate a 1-d linear model under mse", function()
  local xs, ys = { -1, 0, 1, 2 }, { 1, -1, 0.5, 2 }
  local ds = sl.data.from(sl.tensor.from(xs, { 4, 1 }, "f64"), sl.tensor.from(ys, { 4, 1 }, "f64"))
  local a = sl.nn.sequential({ sl.nn.linear(1, 1) }, { dtype = "f64", seed = 1 })
  local b = sl.nn.sequential({ sl.nn.linear(1, 1) }, { dtype = "f64", seed = 2 })
  a:param(1):set(1, 1, 0.5); a:param(2):set(1, 0.25)
  b:param(1):set(1, 1, -1.5); b:param(2):set(1, 1.0)
  local c = lmc.interpolate(a, b, ds, { points = 3, loss = "mse" })
  T.eq(#c.loss, 3)
  T.eq(#c.acc, 0)
  local function loss(t)
    local w, bias, s = 0.5 + t * (-2.0), 0.25 + t * 0.75, 0
    for i = 1, 4 do s = s + (xs[i] * w + bias - ys[i]) ^ 2 end
    return s / 4
  end
  for i, t in ipairs({ 0, 0.5, 1 }) do
    T.eq(c.lambda[i], t)
    T.near(c.loss[i], loss(t), 1e-12)
  end
  T.near(c.barrier, loss(0.5) - 0.5 * (loss(0) + loss(1)), 1e-12)
end)

T.test("interpolate raises the probe's error", function()
  local ds = sl.data.from(sl.tensor.from({ 1, 2 }, { 2, 1 }, "f64"), sl.tensor.from({ 1, 2 }, { 2, 1 }, "f64"))
  local a = sl.nn.sequential({ sl.nn.linear(1, 1) }, { dtype = "f64" })
  T.raises(function() lmc.interpolate(a, a, ds, { points = 1, loss = "mse" }) end, "points")
end)

T.run()
