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

-- b is a with its hidden units reversed: align must give a back exactly.
T.test("align undoes a permutation of the hidden units", function()
  local function mlp(seed)
    return sl.nn.sequential({ sl.nn.linear(3, 4), sl.nn.relu(), sl.nn.linear(4, 2) },
                            { dtype = "f64", seed = seed })
  end
  local a, b = mlp(1), mlp(2)
  for o = 1, 4 do
    local r = 5 - o
    for i = 1, 3 do b:param(1):set(r, i, a:param(1):get(o, i)) end
    b:param(2):set(r, a:param(2):get(o))
    for i = 1, 2 do b:param(3):set(i, r, a:param(3):get(i, o)) end
  end
  for i = 1, 2 do b:param(4):set(i, a:param(4):get(i)) end
  local rec = lmc.align(a, b)
  T.eq(rec.units_moved, 4)
  T.eq(rec.distance_after, 0)
  for p = 1, 4 do T.tensor_eq(b:param(p), a:param(p)) end
end)

T.run()
