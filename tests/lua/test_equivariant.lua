-- tests/lua/test_equivariant.lua — the equivariant plugin from Lua: the
-- layers by name with their options, exact invariance of a small C_4
-- network under every cyclic shift (shifts written here), the walker's view,
-- and the hessian probe's record.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"

-- x (B, n) shifted by k along its n positions: y[b][a] = x[b][a - k mod n].
local function shift(x, k)
  local B, n = x:shape()[1], x:shape()[2]
  local flat = {}
  for b = 1, B do
    for a = 0, n - 1 do flat[#flat + 1] = x:get(b, (a - k) % n + 1) end
  end
  return sl.tensor.from(flat, { B, n }, "f64")
end

local function c4_net(seed)
  return sl.nn.sequential({
    sl.nn.gconv { group = 4, in_channels = 1, out_channels = 3 }, sl.nn.tanh(),
    sl.nn.gconv { group = 4, in_channels = 3, out_channels = 2, out_rep = "quotient",
                  out_subgroup = 2 }, sl.nn.tanh(),
    sl.nn.gconv { group = 4, in_channels = 2, out_channels = 1, in_rep = "quotient",
                  in_subgroup = 2, out_rep = "trivial" } }, { seed = seed, dtype = "f64" })
end

local function inputs(B, n, seed)
  local flat, s = {}, seed
  for i = 1, B * n do
    s = (s * 1103515245 + 12345) % 2147483648
    flat[i] = s / 2147483648 - 0.5
  end
  return sl.tensor.from(flat, { B, n }, "f64")
end

T.test("a C_4-invariant network is invariant under every shift", function()
  local net, x = c4_net(3), inputs(5, 4, 7)
  local y = net:forward(x)
  T.eq(y:shape()[2], 1)
  for k = 0, 3 do
    local yk = net:forward(shift(x, k))
    for b = 1, 5 do T.near(yk:get(b, 1), y:get(b, 1), 1e-12) end
  end
  -- the check can fail: a dense layer in front breaks the symmetry
  local dense = sl.nn.sequential({ sl.nn.linear(4, 4), sl.nn.tanh(),
                                   sl.nn.gconv { group = 4, in_channels = 1, out_channels = 1,
                                                 out_rep = "trivial" } },
                                 { seed = 4, dtype = "f64" })
  local d0, d1 = dense:forward(x), dense:forward(shift(x, 1))
  local worst = 0
  for b = 1, 5 do worst = math.max(worst, math.abs(d0:get(b, 1) - d1:get(b, 1))) end
  T.ok(worst > 1e-3, "a dense layer looked invariant")
end)

T.test("the walker sees gconv channels as hidden units", function()
  local s = c4_net(5):structure()
  T.eq(#s.layers, 3)
  T.eq(#s.hidden, 2)
  T.eq(s.hidden[1].units, 3)
  T.eq(s.hidden[2].units, 2)
  T.eq(s.hidden[1].symmetry, "permute,sign")
end)

T.test("bad options name the option", function()
  local ok, err = pcall(function()
    return sl.nn.sequential({ sl.nn.gconv { group = 4, in_channels = 1, out_channels = 1,
                                            out_rep = "quotient", out_subgroup = 3 } })
  end)
  T.ok(not ok)
  T.ok(tostring(err):find("out_subgroup", 1, true), tostring(err))
end)

T.test("hessian probe from Lua", function()
  local net = c4_net(6)
  local x = inputs(12, 4, 9)
  local y = sl.tensor.from((function()
    local t = {}
    for i = 1, 12 do t[i] = (i % 3) - 1 end
    return t
  end)(), { 12, 1 }, "f64")
  local r = sl.probe.hessian(net, sl.data.from(x, y), { k = 2 })
  T.ok(r.lambda_min_1 <= r.lambda_min_2)
  T.ok(r.lambda_max_1 >= r.lambda_max_2)
  T.ok(r.lambda_min_1 <= r.lambda_max_1)
  T.eq(r.iters, 32) -- every parameter: (3*1*4 + 3) + (2*3*2 + 2) + (1*2*1 + 1)
  T.ok(r.residual_max < 1e-6)
end)

T.test("sl.nn.relax: dense and residual forms compute the same function", function()
  local net, x = c4_net(7), inputs(6, 4, 11)
  local y = net:forward(x)
  local dense = sl.nn.relax(net)
  T.eq(table.concat(dense:modules(), " "), "linear tanh linear tanh linear")
  T.eq(dense:param("0.weight"):shape()[1], 12)
  local soft = sl.nn.relax(net, { residual = true, input_shape = { 1, 4 } })
  T.eq(soft:modules()[1], "residual")
  T.eq(soft:param("0.shortcut.0.weight"):norm(), 0)
  local yd, ys = dense:forward(x), soft:forward(x)
  for b = 1, 6 do
    T.near(yd:get(b, 1), y:get(b, 1), 1e-12)
    T.near(ys:get(b, 1), y:get(b, 1), 1e-12)
  end
  -- the original is untouched and a fresh model needs an input shape
  T.eq(net:modules()[1], "gconv")
  local fresh = c4_net(8)
  local ok, err = pcall(sl.nn.relax, fresh)
  T.ok(not ok and tostring(err):find("input shape", 1, true), tostring(err))
  ok, err = pcall(sl.nn.relax, net, { residul = true })
  T.ok(not ok and tostring(err):find("residul", 1, true), tostring(err))
end)

T.run()
