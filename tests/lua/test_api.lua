-- tests/lua/test_api.lua — the Lua API of symlab, end to end.
--
-- Run by `make check` as `symlab tests/lua/test_api.lua` (SYMLAB_TEST_SRCDIR
-- names the source tree).  Expected values come from naive computations in
-- this file, never from the code under test.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"
local results = require "symlab.results"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")
local script = (arg and arg[0] or "test_api.lua"):match("[^/]*$")

-- ---- helpers --------------------------------------------------------------------

-- Naive dense layer: y[n][o] = sum_i x[n][i] * W[o][i] + b[o].
local function naive_linear(x, W, b)
  local y = {}
  for n = 1, #x do
    y[n] = {}
    for o = 1, #W do
      local s = b and b[o] or 0
      for i = 1, #x[n] do s = s + x[n][i] * W[o][i] end
      y[n][o] = s
    end
  end
  return y
end

local function naive_relu(x)
  local y = {}
  for n = 1, #x do
    y[n] = {}
    for i = 1, #x[n] do y[n][i] = math.max(x[n][i], 0) end
  end
  return y
end

local function small_net(seed, dtype)
  return sl.nn.sequential({ sl.nn.linear(4, 3), sl.nn.relu(), sl.nn.linear(3, 2) },
                          { seed = seed or 1, dtype = dtype or "f64" })
end

local function flat_values(t)
  local f, out = t:copy():reshape({ t:numel() }), {}
  for i = 1, t:numel() do out[i] = f:get(i) end
  return out
end

local mnist
local function mnist_data()
  if not mnist then mnist = sl.data.idx(sl.data.path("mnist10k")) end
  return mnist
end

local function mlp(seed)
  return sl.nn.sequential({ sl.nn.flatten(), sl.nn.linear(784, 32), sl.nn.relu(),
                            sl.nn.linear(32, 10) }, { seed = seed })
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- ---- module ------------------------------------------------------------------------

T.test("module fields", function()
  T.eq(type(sl.version), "string")
  T.ok(sl.abi:match("^%d+%.%d+$"), sl.abi)
  T.eq(math.type(sl.seed), "integer")
  T.ok(sl.threads >= 1, "threads")
  T.ok(sl.data.path("mnist10k"):find("mnist10k$"), "data path")
end)

T.test("pure-Lua helpers are reachable as sl.<name>", function()
  T.eq(sl.results, require "symlab.results")
  T.eq(type(sl.table), "table")
  T.eq(sl.no_such_helper, nil)
end)

T.test("sl.clock is monotonic wall time", function()
  local t0 = sl.clock()
  T.eq(math.type(t0), "float")
  T.ok(sl.clock() >= t0, "clock went backwards")
end)

-- ---- tensors ------------------------------------------------------------------------

T.test("tensor creation, shape, get, set", function()
  local t = sl.tensor.from({ { 1, 2, 3 }, { 4, 5, 6 } })
  T.eq(t:dtype(), "f32")
  T.eq(t:ndim(), 2)
  T.eq(t:numel(), 6)
  local s = t:shape()
  T.eq(#s, 2); T.eq(s[1], 2); T.eq(s[2], 3)
  T.eq(t:get(1, 1), 1); T.eq(t:get(2, 3), 6); T.eq(t:get(1, 2), 2)
  t:set(2, 1, -7.5)
  T.eq(t:get(2, 1), -7.5)
  local tt = t:totable()
  T.eq(tt[2][1], -7.5); T.eq(tt[1][3], 3)

  local z = sl.tensor.zeros({ 3, 2 }, "f64")
  T.eq(z:dtype(), "f64"); T.eq(z:get(3, 2), 0)
  local o = sl.tensor.ones({ 4 })
  T.eq(o:get(4), 1)
  local f = sl.tensor.from({ 1, 2, 3, 4, 5, 6 }, { 3, 2 }, "f64")
  T.eq(f:get(2, 1), 3); T.eq(f:get(3, 2), 6)
  local l = sl.tensor.from({ 3, 1 }, "i64")
  T.eq(l:dtype(), "i64"); T.eq(math.type(l:get(1)), "integer")
  T.ok(tostring(t):find("f32"), "tostring names the dtype")

  T.raises(function() t:get(3, 1) end, "outside 1..2")
  T.raises(function() t:get(1) end, "needs 2 indices")
  T.raises(function() sl.tensor.from({ { 1, 2 }, { 3 } }) end, "ragged")
  T.raises(function() sl.tensor.zeros({ 2 }, "f16") end, "f16")
  T.raises(function() sl.tensor.from({ 1, 2, 3 }, { 2, 2 }) end, "3 values")
end)

T.test("tensor __close and use after close", function()
  local kept
  do
    local t <close> = sl.tensor.zeros({ 2, 2 })
    t:fill(3)
    T.eq(t:get(2, 2), 3)
    kept = t
  end
  T.raises(function() kept:get(1, 1) end, "closed tensor")
  T.ok(tostring(kept):find("closed"), "tostring of a closed tensor")
  local u = sl.tensor.ones({ 2 })
  u:close(); u:close() -- closing twice is harmless
  T.raises(function() u:numel() end, "closed tensor")
end)

T.test("tensor arithmetic against naive sums", function()
  local a = sl.tensor.from({ 1.5, -2, 3, 0.25 }, { 4 }, "f64")
  local b = sl.tensor.from({ 2, 4, -1, 8 }, { 4 }, "f64")
  T.near(a:dot(b), 1.5 * 2 - 2 * 4 - 3 + 0.25 * 8, 1e-12)
  T.near(a:norm(), math.sqrt(1.5 ^ 2 + 4 + 9 + 0.0625), 1e-12)
  local c = a:copy()
  c:axpy(0.5, b)
  for i = 1, 4 do T.near(c:get(i), a:get(i) + 0.5 * b:get(i), 1e-12) end
  c:scale(2)
  T.near(c:get(1), 2 * (1.5 + 1), 1e-12)
  local d = sl.tensor.zeros({ 4 }, "f32"):assign(a)
  T.eq(d:get(2), -2)
  local r = a:reshape({ 2, 2 })
  T.eq(r:get(2, 1), 3)
end)

-- ---- models ---------------------------------------------------------------------------

T.test("model build and named parameters", function()
  local net = small_net()
  T.eq(#net, 3)
  T.eq(net:numel(), 4 * 3 + 3 + 3 * 2 + 2)
  T.eq(net:dtype(), "f64")
  local names = {}
  for i, p in ipairs(net:parameters()) do
    names[i] = p.name
    T.eq(p.tensor:numel(), p.grad:numel(), p.name)
  end
  T.eq(table.concat(names, " "), "0.weight 0.bias 2.weight 2.bias")
  local w = net:param("0.weight"):shape()
  T.eq(w[1], 3); T.eq(w[2], 4)
  T.eq(net:param("2.bias"):numel(), 2)
  T.eq(net:modules()[2], "relu")
  T.ok(tostring(net):find("linear: weight %[3, 4%], bias %[3%]"), tostring(net))
  T.raises(function() net:param("1.weight") end, "0.weight, 0.bias")
  local sum = 0 -- the flat vector is the concatenation of the parameters
  for _, p in ipairs(net:parameters()) do sum = sum + p.tensor:numel() end
  T.eq(net:flat_params():numel(), sum)
  T.eq(net:flat_params():get(1), net:param("0.weight"):get(1, 1))
end)

T.test("forward matches a naive MLP", function()
  local net = small_net(3)
  local x = sl.tensor.from({ { 1, 2, 3, 4 }, { -1, 0.5, 0, 2 }, { 0, 0, 0, 0 }, { 3, -2, 1, -1 },
                             { 0.1, 0.2, 0.3, 0.4 } }, "f64")
  local y = net:forward(x)
  local s = y:shape()
  T.eq(#s, 2); T.eq(s[1], 5); T.eq(s[2], 2)
  local shape = net:output_shape({ 7, 4 })
  T.eq(shape[1], 7); T.eq(shape[2], 2)
  local h = naive_relu(naive_linear(x:totable(), net:param("0.weight"):totable(),
                                    net:param("0.bias"):totable()))
  local want = naive_linear(h, net:param("2.weight"):totable(), net:param("2.bias"):totable())
  for n = 1, 5 do
    for o = 1, 2 do T.near(y:get(n, o), want[n][o], 1e-12, "y[" .. n .. "][" .. o .. "]") end
  end
  -- f32 input to an f64 model is converted
  local y32 = net:forward(x:copy("f32"))
  T.near(y32:get(1, 1), want[1][1], 1e-6)
  T.raises(function() net:forward(sl.tensor.zeros({ 2, 5 }, "f64")) end, "")
end)

T.test("backward fills gradients as a naive computation does", function()
  local net = small_net(5)
  local x = sl.tensor.from({ { 1, 2, 3, 4 }, { -1, 0.5, 0, 2 }, { 3, -2, 1, -1 } }, "f64")
  net:zero_grad()
  net:forward(x)
  net:backward(sl.tensor.ones({ 3, 2 }, "f64"))
  -- d sum(y) / d b2 = batch size; d / d W2[o][j] = sum_n h[n][j]
  local g = net:grad("2.bias")
  T.eq(g:get(1), 3); T.eq(g:get(2), 3)
  local h = naive_relu(naive_linear(x:totable(), net:param("0.weight"):totable(),
                                    net:param("0.bias"):totable()))
  local gw = net:grad("2.weight")
  for o = 1, 2 do
    for j = 1, 3 do
      T.near(gw:get(o, j), h[1][j] + h[2][j] + h[3][j], 1e-12)
    end
  end
  -- backward accumulates; zero_grad clears
  net:backward(sl.tensor.ones({ 3, 2 }, "f64"))
  T.eq(net:grad("2.bias"):get(1), 6)
  net:zero_grad()
  T.eq(net:flat_grads():norm(), 0)
end)

T.test("parameter views outlive their model", function()
  local net = small_net(2)
  local p = net:param("0.weight")
  local v = p:get(2, 3)
  net = nil
  collectgarbage(); collectgarbage()
  T.eq(p:get(2, 3), v)
  local net2 = small_net(2)
  local q = net2:flat_params()
  net2:close()
  T.eq(q:get(1), q:get(1)) -- memory still owned by the view
  T.raises(function() net2:forward(sl.tensor.zeros({ 1, 4 }, "f64")) end, "closed model")
end)

T.test("model __close", function()
  local kept
  do
    local net <close> = small_net()
    kept = net
  end
  T.raises(function() kept:numel() end, "closed model")
end)

-- ---- errors ----------------------------------------------------------------------------

-- Runs f (which records debug line), returns the error message and that line.
local function error_at(f)
  local line
  local ok, err = pcall(f, function() line = debug.getinfo(2, "l").currentline end)
  T.ok(not ok, "an error was expected")
  return tostring(err), line
end

T.test("option errors name the script line and the key", function()
  local err, line = error_at(function(mark) mark(); sl.nn.linear { in_features = 4, out_features = 3, bogus = 1 } end)
  T.ok(err:find(script .. ":" .. line .. ":", 1, true), "no file:line in: " .. err)
  T.ok(err:find("bogus", 1, true), err)

  err = T.raises(function() sl.nn.linear { in_features = "four", out_features = 3 } end, "in_features")
  T.ok(err:find(script, 1, true), err)
  T.raises(function() sl.nn.linear(4) end, "out_features")
  T.raises(function() sl.nn.linear(4, 3, true, 9) end, "positional")
  T.raises(function() sl.nn.linear(4, 3, { in_features = 5 }) end, "given twice")
  T.raises(function() sl.nn.linear { in_features = { 4 }, out_features = 1 } end, "must be a number")
  -- an empty table is an empty list of hooks (an option type of its own)
  T.raises(function() sl.nn.linear { in_features = {}, out_features = 1 } end,
           "option 'in_features' expects an integer, got a list of hooks")
  T.raises(function() sl.nn.sequential({ sl.nn.relu() }, { dtype = "f16" }) end, "dtype")
  T.raises(function() sl.nn.sequential({ sl.nn.relu() }, { colour = 1 }) end, "colour")
  T.raises(function() sl.nn.sequential({ 42 }) end, "element 1")

  local net = small_net()
  local opt = sl.optim.sgd(net, { lr = 0.1 })
  local d = mnist_data().train:subset(1, 8)
  err, line = error_at(function(mark) mark(); sl.train(net, opt, d, { epochs = 1, bogus_key = 2 }) end)
  T.ok(err:find(script .. ":" .. line .. ":", 1, true), err)
  T.ok(err:find("bogus_key", 1, true), err)
  T.raises(function() sl.optim.sgd(net, { lr = 0.1, speed = 3 }) end, "speed")
  T.raises(function() sl.evaluate(net, d, { batches = 3 }) end, "batches")
end)

T.test("unknown names are errors naming them", function()
  T.raises(function() return sl.nn.no_such_layer end, "no_such_layer")
  T.raises(function() return sl.optim.no_such_optim end, "no_such_optim")
  T.raises(function() return sl.loss.no_such_loss end, "no_such_loss")
  T.raises(function() return sl.hook.no_such_hook end, "no_such_hook")
  T.raises(function() return sl.probe.no_such_probe end, "no_such_probe")
  T.raises(function() sl.describe("no_such_thing") end, "no_such_thing")
  T.ok(sl.describe("linear"):find("in_features"), "describe lists options")
end)

-- ---- losses ------------------------------------------------------------------------------

T.test("cross_entropy against a naive log-softmax", function()
  local logits = { { 1, 2, 0.5 }, { -1, 0, 3 } }
  local labels = { 1, 2 } -- 0-based classes
  local pred = sl.tensor.from(logits, "f64")
  local target = sl.tensor.from(labels, "i64")
  local value, grad = sl.loss.cross_entropy(pred, target, true)
  local want, B = 0, #logits
  for n = 1, B do
    local z = 0
    for c = 1, 3 do z = z + math.exp(logits[n][c]) end
    want = want - (logits[n][labels[n] + 1] - math.log(z)) / B
    for c = 1, 3 do
      local g = (math.exp(logits[n][c]) / z - (c == labels[n] + 1 and 1 or 0)) / B
      T.near(grad:get(n, c), g, 1e-12)
    end
  end
  T.near(value, want, 1e-12)
  T.near(sl.loss.cross_entropy(pred, target), want, 1e-12)
  local m = sl.loss.mse(sl.tensor.from({ 1, 2 }, "f64"), sl.tensor.from({ 0, 4 }, "f64"))
  T.near(m, (1 + 4) / 2, 1e-12)
end)

-- ---- optimizers -----------------------------------------------------------------------------

T.test("sgd step moves parameters by -lr * grad", function()
  local net = small_net(4)
  local opt = sl.optim.sgd(net, { lr = 0.25 })
  T.eq(opt:lr(), 0.25)
  net:zero_grad()
  net:forward(sl.tensor.from({ { 1, 2, 3, 4 }, { 0, 1, 0, -1 } }, "f64"))
  net:backward(sl.tensor.ones({ 2, 2 }, "f64"))
  local before, grads = flat_values(net:flat_params()), flat_values(net:flat_grads())
  opt:step()
  T.eq(opt:steps(), 1)
  local after, moved = flat_values(net:flat_params()), 0
  for i = 1, #before do
    T.near(after[i], before[i] - 0.25 * grads[i], 1e-12, "parameter " .. i)
    if after[i] ~= before[i] then moved = moved + 1 end
  end
  T.ok(moved > 0, "some parameter moved")
  T.eq(opt:lr(0.1), 0.25); T.eq(opt:lr(), 0.1)
  opt:reset()
  T.eq(opt:steps(), 0)
  T.ok(tostring(opt):find("sgd"), tostring(opt))
  local adam = sl.optim.adam(net, { lr = 1e-3 })
  adam:step()
  T.eq(adam:steps(), 1)
end)

-- ---- data --------------------------------------------------------------------------------------

T.test("datasets: size, split, subset, stats", function()
  local d = mnist_data()
  T.ok(#d.train > 0 and #d.test > 0, "both splits")
  T.eq(d.train:size(), #d.train)
  local xs = d.train.x:shape()
  T.eq(#xs, 4); T.eq(xs[2], 1); T.eq(xs[3], 28); T.eq(xs[4], 28)
  T.eq(d.train.y:dtype(), "i64")
  local s = d.train:subset(11, 5)
  T.eq(#s, 5)
  T.eq(s.y:get(1), d.train.y:get(11))
  T.eq(s.x:get(3, 1, 14, 14), d.train.x:get(13, 1, 14, 14))
  local picked = d.train:subset({ 7, 2 })
  T.eq(picked.y:get(1), d.train.y:get(7)); T.eq(picked.y:get(2), d.train.y:get(2))
  T.raises(function() d.train:subset({ 0 }) end, "index 1")
  local a, b = s:split(2, 9)
  T.eq(#a, 2); T.eq(#b, 3)
  local a2 = s:split(2, 9)
  T.eq(a2.y:get(1), a.y:get(1))
  -- stats against a naive mean and deviation over the same elements
  local mean, std = s:stats()
  local x, n, sum, sq = s.x:copy():reshape({ s.x:numel() }), s.x:numel(), 0, 0
  for i = 1, n do sum = sum + x:get(i) end
  local mu = sum / n
  for i = 1, n do sq = sq + (x:get(i) - mu) ^ 2 end
  T.near(mean, mu, 1e-6)
  T.near(std, math.sqrt(sq / n), 1e-4)
  s:normalize(mean, std)
  local m2 = s:stats()
  T.near(m2, 0, 1e-5)
end)

T.test("sl.data.from copies tensors into a dataset", function()
  local x = sl.tensor.from({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
  local y = sl.tensor.from({ { 1, 0 }, { 0, 1 }, { 1, 1 } })
  local d = sl.data.from(x, y)
  T.eq(#d, 3)
  T.eq(d.y:get(3, 2), 1.0)
  x:set(1, 1, 42)
  T.eq(d.x:get(1, 1), 1.0)
  local labels = sl.data.from(x, sl.tensor.from({ 0, 1, 2 }, "i64"))
  T.eq(labels.y:dtype(), "i64")
  T.ok(not pcall(sl.data.from, x, sl.tensor.from({ 1, 2 })), "mismatched rows")
end)

T.test("csv reader", function()
  local path = T.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("a,b,label\n1,2,0\n3,4.5,1\n-1,0,1\n")
  f:close()
  local d = sl.data.csv(path, { header = true })
  T.eq(#d, 3)
  T.eq(d.x:get(2, 2), 4.5)
  T.eq(d.y:get(3), 1)
  local e = sl.data.csv(path, { header = true, label = 1, classes = false })
  T.eq(e.y:get(2, 1), 3)
  T.eq(e.x:get(1, 2), 0)
  T.raises(function() sl.data.csv(path, { headers = true }) end, "headers")
  os.remove(path)
  T.raises(function() sl.data.csv(path .. ".missing") end, ".missing")
end)

-- ---- training ------------------------------------------------------------------------------------

T.test("training a tiny MLP reduces the loss", function()
  local d = mnist_data().train:subset(1, 512)
  local net = mlp(1)
  local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9 })
  local seen = {}
  local hist = sl.train(net, opt, d, { epochs = 4, batch = 32, progress = "never",
    on_epoch = function(row) seen[#seen + 1] = row.epoch end })
  T.eq(#hist, 4)
  T.eq(table.concat(seen, ","), "1,2,3,4")
  T.ok(hist[4].loss < hist[1].loss, string.format("%g -> %g", hist[1].loss, hist[4].loss))
  T.ok(hist[4].accuracy > hist[1].accuracy, "accuracy rises")
  T.ok(hist[1].seconds >= 0, "seconds")
  local ev = sl.evaluate(net, d, { batch = 100 })
  T.ok(ev.accuracy >= 0 and ev.accuracy <= 1, "accuracy")
  T.ok(ev.loss > 0, "loss")
end)

T.test("validation set and on_epoch errors", function()
  local all = mnist_data().train:subset(1, 128)
  local tr, val = all:split(96, 1)
  local net = mlp(2)
  local opt = sl.optim.sgd(net, { lr = 0.05 })
  local hist = sl.train(net, opt, tr, { epochs = 1, batch = 32, val = val, progress = "never" })
  T.ok(hist[1].val_accuracy ~= nil and hist[1].val_loss ~= nil, "val_ columns")
  local err, line = error_at(function(mark)
    sl.train(net, opt, tr, { epochs = 3, progress = "never",
      on_epoch = function(row) mark(); error("stop at epoch " .. row.epoch) end })
  end)
  T.ok(err:find("stop at epoch 1", 1, true), err)
  T.ok(err:find(script .. ":" .. line .. ":", 1, true), err)
  T.raises(function() sl.train(net, opt, tr, { hooks = { 1 } }) end, "hooks[1]")
  local other = mlp(3)
  T.raises(function() sl.train(other, opt, tr, {}) end, "another model")
end)

T.test("one seed, bit-identical training", function()
  local d = mnist_data().train:subset(1, 256)
  local function run(seed)
    local net = mlp(7)
    local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9 })
    sl.train(net, opt, d, { epochs = 2, batch = 32, seed = seed, progress = "never" })
    return flat_values(net:flat_params())
  end
  local a, b, c = run(3), run(3), run(4)
  T.eq(#a, #b)
  local differ = 0
  for i = 1, #a do
    if a[i] ~= b[i] then error(string.format("element %d: %.17g ~= %.17g", i, a[i], b[i])) end
    if a[i] ~= c[i] then differ = differ + 1 end
  end
  T.ok(differ > 0, "another shuffling seed gives other parameters")
end)

local function mlp64(seed)
  return sl.nn.sequential({ sl.nn.flatten(), sl.nn.linear(784, 16), sl.nn.relu(),
                            sl.nn.linear(16, 10) }, { seed = seed, dtype = "f64" })
end

local function same_values(a, b, what)
  T.eq(#a, #b, what)
  for i = 1, #a do
    if a[i] ~= b[i] then error(string.format("%s: element %d: %.17g ~= %.17g", what, i, a[i], b[i])) end
  end
end

T.test("on_step and record_steps: step rows, and no change to training", function()
  local d = mnist_data().train:subset(1, 200)
  local function run(extra)
    local net = mlp64(5)
    local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9 })
    local o = { epochs = 2, batch = 64, seed = 2, progress = "never" }
    for k, v in pairs(extra) do o[k] = v end
    return flat_values(net:flat_params()), sl.train(net, opt, d, o)
  end
  local plain, hist0 = run {}
  T.eq(hist0.steps, nil)
  local rows = {}
  local watched, hist = run { record_steps = true, on_step = function(r) rows[#rows + 1] = r end }
  same_values(plain, watched, "parameters with and without on_step/record_steps")
  T.eq(#rows, 8)                          -- 200 samples in batches of 64: 4 per epoch
  T.eq(#hist.steps, 8)
  local sum, n = 0, 0
  for i, r in ipairs(rows) do
    T.eq(r.step, i)
    T.eq(r.epoch, (i - 1) // 4 + 1)
    T.eq(r.lr, 0.05)
    T.eq(hist.steps[i].loss, r.loss)
    T.eq(hist.steps[i].step, i)
    if r.epoch == 2 then
      local size = i == 8 and 8 or 64
      sum, n = sum + r.loss * size, n + size
    end
  end
  T.near(hist[2].loss, sum / n, 1e-12, "epoch loss is the mean of its step losses")
  local _, every3 = run { record_steps = 3 }
  T.eq(#every3.steps, 2)
  T.eq(every3.steps[2].step, 6)
  T.raises(function() run { record_steps = "often" } end, "record_steps")
  T.raises(function() run { progress = "sometimes" } end, "auto|always|never")
  local err, line = error_at(function(mark)
    run { on_step = function(r) if r.step == 3 then mark(); error("stop at step 3") end end }
  end)
  T.ok(err:find(script .. ":" .. line .. ": stop at step 3", 1, true), err)
end)

T.test("learning-rate schedules as objects", function()
  local S = sl.optim.schedule
  local s = S.step { step_size = 1, gamma = 0.8 }
  T.eq(s:kind(), "step")
  T.eq(s:interval(), "epoch")
  local lr = 0.05
  for _ = 1, 5 do
    T.eq(s:lr(0.05), lr)
    s:advance()
    lr = lr * 0.8
  end
  local st = s:state()
  T.eq(st.count, 5)
  T.eq(st.base_lr, 0.05)
  local again = S.step { step_size = 1, gamma = 0.8 }
  T.eq(again:state().base_lr, nil)
  T.raises(function() again:lr() end, "number expected")
  again:restore(st)
  T.eq(again:lr(), s:lr())

  -- warmup then cosine, per step, during training: the rates on_step sees
  local d = mnist_data().train:subset(1, 128)
  local net = mlp(4)
  local opt = sl.optim.sgd(net, { lr = 0.1 })
  local cos = S.cosine { t_max = 4, eta_min = 0.01, interval = "step" }
  local warm = S.warmup { length = 2, start_factor = 0.5, interval = "step", after = cos }
  local seen = {}
  sl.train(net, opt, d, { epochs = 3, batch = 64, schedule = warm, progress = "never",
                          on_step = function(r) seen[#seen + 1] = r.lr end })
  local want = { 0.05, 0.075 }
  for t = 0, 3 do want[#want + 1] = 0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 end
  T.eq(#seen, 6)
  for i = 1, 6 do T.near(seen[i], want[i], 1e-15, "step " .. i) end
  T.eq(warm:state().count, 6)
  T.eq(cos:state().count, 4)
  T.ok(tostring(warm):find("schedule warmup", 1, true), tostring(warm))

  T.raises(function() S.step { step_size = 0 } end, "step_size must be >= 1")
  T.raises(function() S.step { gamma = 0.5 } end, "step_size")
  T.raises(function() S.cosine { t_max = 3, bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() S.warmup { length = 2, after = 3 } end, "not a schedule")
  T.raises(function() S.warmup { length = 2, interval = "step", after = S.cosine { t_max = 2 } } end,
           "counts steps but its 'after' schedule counts epochs")
  T.raises(function() sl.train(net, opt, d, { schedule = 1, progress = "never" }) end, "symlab.schedule")
end)

T.test("early stopping stops, and restores the best epoch", function()
  local all = mnist_data().train:subset(1, 600)
  local tr, val = all:split(400, 1)
  local function run(epochs, es)
    local net = mlp64(6)
    local opt = sl.optim.sgd(net, { lr = 0.02 })
    local h = sl.train(net, opt, tr, { epochs = epochs, batch = 50, seed = 3, val = val,
                                       progress = "never", early_stop = es })
    return h, flat_values(net:flat_params())
  end
  -- Watching val_loss the wrong way round (higher is better) while training
  -- lowers it: epoch 1 stays the best, so training stops after 1 + patience
  -- epochs and restore_best puts epoch 1's parameters back.
  local h, restored = run(6, { metric = "val_loss", mode = "max", patience = 2, restore_best = true })
  T.eq(#h, 3)
  for i = 2, #h do T.ok(h[i].val_loss < h[i - 1].val_loss, "val_loss falls in this setup") end
  T.eq(h.best_epoch, 1)
  T.eq(h.stopped_epoch, 3)
  local _, one_epoch = run(1, nil)
  same_values(restored, one_epoch, "restored parameters are epoch 1's")
  -- The right way round it never stops; without restore_best the last epoch's parameters stay.
  local h2, last = run(3, { metric = "val_loss", patience = 1 })
  T.eq(#h2, 3)
  T.eq(h2.best_epoch, 3)
  T.eq(h2.stopped_epoch, nil)
  local _, three = run(3, nil)
  same_values(last, three, "no restore")
  T.raises(function() run(1, { metric = "val_acc", wait = 2 }) end, "early_stop: unknown option 'wait'")
  T.raises(function() run(1, { metric = "nope" }) end, "metric 'nope' is not in")
end)

T.test("save and load round trip", function()
  local path = T.tmpname()
  local a, b = small_net(11), small_net(12)
  a:save(path)
  T.ok(flat_values(a:flat_params())[1] ~= flat_values(b:flat_params())[1], "seeds differ")
  b:load(path)
  T.tensor_eq(b:flat_params(), a:flat_params(), nil, "loaded parameters")
  local x = sl.tensor.from({ { 1, -1, 2, 0.5 } }, "f64")
  T.tensor_eq(b:forward(x), a:forward(x), nil, "outputs")
  local wrong = sl.nn.sequential({ sl.nn.linear(4, 5) }, { dtype = "f64" })
  T.raises(function() wrong:load(path) end, "")
  os.remove(path)
  T.raises(function() b:load(path) end, path)
end)

-- ---- results helpers ----------------------------------------------------------------------------

T.test("batch norm keeps PyTorch's num_batches_tracked", function()
  local function bn_net()
    return sl.nn.sequential({ sl.nn.linear(4, 3), sl.nn.batchnorm { num_features = 3 } },
                            { dtype = "f64" })
  end
  local net = bn_net()
  net:load(srcdir .. "/tests/data/torch_batchnorm.safetensors")   -- written by PyTorch
  local b = net:buffers()
  T.eq(#b, 3)
  T.eq(b[3].name, "1.num_batches_tracked")
  T.eq(b[3].tensor:dtype(), "i64")
  T.eq(b[3].tensor:get(), 5)
  net:forward(sl.tensor.zeros({ 2, 4 }))              -- training mode: counted
  T.eq(b[3].tensor:get(), 6)
  net:eval()
  net:forward(sl.tensor.zeros({ 2, 4 }))              -- evaluation: not counted
  T.eq(b[3].tensor:get(), 6)
  local path = os.tmpname()
  net:save(path)
  local other = bn_net()
  other:load(path)
  os.remove(path)
  T.eq(other:buffers()[3].tensor:get(), 6)
end)

T.test("results.outdir and results.plot", function()
  local results = require "symlab.results"
  local base = T.tmpname()
  os.remove(base)
  local dir = results.outdir(base .. "/a/b")
  T.eq(dir, base .. "/a/b")
  local f = assert(io.open(dir .. "/probe", "w")); f:close()
  -- gnuplot may or may not be installed; either way the script is kept and
  -- the call reports (rather than raises) a missing or failing gnuplot.
  local ok = results.plot(dir .. "/x.png", "this is not gnuplot\n")
  T.eq(ok, false)
  T.eq(read_file(dir .. "/x.gp"), "this is not gnuplot\n")
end)

T.test("results.write_csv and write_jsonl", function()
  local path = T.tmpname()
  local rows = { { epoch = 1, loss = 0.5, note = "a,b" }, { epoch = 2, loss = 0.1, note = 'say "hi"' },
                 { epoch = 3, loss = 0 / 0 } }
  results.write_csv(path, rows, { "epoch", "loss", "note" })
  T.eq(read_file(path), 'epoch,loss,note\n1,0.5,"a,b"\n2,0.10000000000000001,"say ""hi"""\n3,nan,\n')
  T.eq(io.open(path .. ".tmp"), nil, "no temporary file left")
  results.write_csv(path, { { b = 2, epoch = 1, a = "x" } })
  T.eq(read_file(path), "epoch,a,b\n1,x,2\n")
  results.write_jsonl(path, rows)
  T.eq(read_file(path), '{"epoch":1,"loss":0.5,"note":"a,b"}\n' ..
                        '{"epoch":2,"loss":0.10000000000000001,"note":"say \\"hi\\""}\n' ..
                        '{"epoch":3,"loss":null}\n')
  T.eq(tonumber(("0.10000000000000001")), 0.1)
  results.write_jsonl(path, { { s = "tab\tnl\n\1", inf = math.huge, t = { 1, 2 }, ok = true } })
  T.eq(read_file(path), '{"inf":null,"ok":true,"s":"tab\\tnl\\n\\u0001","t":[1,2]}\n')
  -- a failing write leaves the previous file intact
  T.raises(function() results.write_jsonl(path, { { f = print } }) end, "function")
  T.eq(read_file(path), '{"inf":null,"ok":true,"s":"tab\\tnl\\n\\u0001","t":[1,2]}\n')
  local tbl = require "symlab.table"
  local text = tbl.format({ { epoch = 1, loss = 0.25 }, { epoch = 10, loss = 1.5 } }, { "epoch", "loss" })
  T.eq(text, "epoch  loss\n-----  ----\n    1  0.25\n   10   1.5\n")
end)

-- ---- registry -----------------------------------------------------------------------------------

T.test("plugins lists the built-in types and the example plugin's", function()
  local have, example = {}, {}
  for _, e in ipairs(sl.plugins()) do
    have[e.kind .. ":" .. e.name] = e
    T.ok(e.summary ~= "" and e.origin ~= "" and e.abi ~= "", e.name)
    if e.plugin == "example" then example[#example + 1] = e end
  end
  for _, k in ipairs({ "module:linear", "module:relu", "optim:sgd", "loss:cross_entropy" }) do
    T.ok(have[k], k .. " registered")
  end
  T.eq(have["module:linear"].origin, "built-in")
  local libs = { module = sl.nn, optim = sl.optim, loss = sl.loss, hook = sl.hook, probe = sl.probe }
  for _, e in ipairs(example) do
    T.eq(type(libs[e.kind][e.name]), "function", e.kind .. " " .. e.name .. " resolves")
  end
  if have["module:scale"] and have["module:scale"].plugin == "example" then
    local net = sl.nn.sequential({ sl.nn.linear(2, 2), sl.nn.scale() }, { dtype = "f64" })
    T.eq(net:modules()[2], "scale")
  end
  if have["probe:param_norm"] then
    local net = small_net(1)
    local r = sl.probe.param_norm(net)
    local sq = 0
    for _, v in ipairs(flat_values(net:flat_params())) do sq = sq + v * v end
    local found = false
    for _, v in pairs(r) do if math.abs(v - math.sqrt(sq)) < 1e-9 then found = true end end
    T.ok(found, "param_norm reports the norm of all parameters")
  end
  if have["hook:grad_clip"] then
    local d = mnist_data().train:subset(1, 64)
    local net = mlp(1)
    local opt = sl.optim.sgd(net, { lr = 0.01 })
    local h = sl.hook.grad_clip { max_norm = 0.5 }
    T.ok(tostring(h):find("grad_clip"), tostring(h))
    local hist = sl.train(net, opt, d, { epochs = 1, hooks = { h }, progress = "never" })
    T.eq(#hist, 1)
  end
  T.eq(type(sl.plugin_failures()), "table")
  local mods = sl.types("module")
  T.ok(#mods >= 1, "types")
end)

-- ---- the command line ------------------------------------------------------------------------------

-- The symlab being tested: the program the test runs under.
local function symlab_cmd()
  local i, prog = -1, nil
  while arg and arg[i] do prog = arg[i]; i = i - 1 end
  return prog
end

local function shell(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return out
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

T.test("command line", function()
  local prog = symlab_cmd()
  if not prog or not prog:find("symlab") then
    print("       (skipped: not run by the symlab executable)")
    return
  end
  prog = quote(prog)
  local out = shell(prog .. " --threads x foo.lua")
  T.eq(out, "symlab: --threads: expected a positive integer, got 'x'\nrc=2\n")
  out = shell(prog .. " --version")
  T.ok(out:find("ABI " .. sl.abi, 1, true) and out:find("rc=0"), out)
  out = shell(prog .. " describe linear")
  T.ok(out:find("in_features") and out:find("role: weight", 1, true) and out:find("rc=0"), out)
  out = shell(prog .. " describe relu")
  T.ok(out:find("role: per-unit (homogeneous)", 1, true), out)
  out = shell(prog .. " describe no_such_thing")
  T.ok(out:find("no_such_thing") and out:find("rc=1"), out)
  out = shell(prog .. " plugins")
  T.ok(out:find("cross_entropy") and out:find("rc=0"), out)
  out = shell(prog .. " /nonexistent/x.lua")
  T.ok(out:find("^symlab: cannot open /nonexistent/x.lua") and out:find("\nrc=1\n$"), out)

  local path = T.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("local sl = require 'symlab'\nassert(sl.seed == 42 and arg[1] == 'a1')\nerror('boom')\n")
  f:close()
  out = shell(prog .. " --seed 42 " .. quote(path) .. " a1")
  T.eq(out, "symlab: " .. path .. ":3: boom\nrc=1\n")
  f = assert(io.open(path, "w"))
  f:write("local sl = require 'symlab'\nlocal x = sl.nn.linear{in_features = 1}\n")
  f:close()
  out = shell(prog .. " " .. quote(path))
  T.ok(out:find("symlab: " .. path .. ":2: ", 1, true) and out:find("out_features") and
       out:find("\nrc=1\n$"), out)
  -- The progress bar is the executable's: drawn on request, and by default
  -- only on a terminal (here stderr is a pipe).
  for _, mode in ipairs { "always", "auto" } do
    f = assert(io.open(path, "w"))
    f:write("local sl = require 'symlab'\n",
            "local d = sl.data.idx(sl.data.path('mnist10k')).train:subset(1, 64)\n",
            "local net = sl.nn.sequential { sl.nn.flatten(), sl.nn.linear(784, 10) }\n",
            "sl.train(net, sl.optim.sgd(net, { lr = 0.1 }), d, { batch = 32, progress = '", mode, "' })\n")
    f:close()
    out = shell(prog .. " " .. quote(path))
    if mode == "always" then
      T.ok(out:find("\repoch 1/1 [===============>              ] 1/2 loss ", 1, true) and
           out:find("\r\27%[Krc=0\n$"), out)     -- erased at the epoch's end
    else
      T.eq(out, "rc=0\n")
    end
  end
  os.remove(path)
end)

T.test("structure as the symmetry techniques see it", function()
  local net = sl.nn.sequential({ sl.nn.linear(3, 4), sl.nn.relu(),
    sl.nn.residual { sl.nn.linear(4, 4), sl.nn.tanh(), sl.nn.linear(4, 4) },
    sl.nn.linear(4, 2) }, { dtype = "f64" })
  local s = net:structure()
  T.eq(#s.layers, 4)
  T.eq(s.layers[2].path, "2.body.0")
  T.eq(s.layers[2].fan_in, 4)
  T.eq(#s.hidden, 2)
  -- the block's inner units: sign flips (tanh); the stream: written by the
  -- first layer and the block's last, read by the block's first and the last
  local inner, stream = s.hidden[s.layers[2].hidden_out], s.hidden[s.layers[1].hidden_out]
  T.eq(inner.symmetry, "permute,sign")
  T.eq(inner.producers, 1)
  T.eq(stream.producers, 2)
  T.eq(stream.consumers, 2)
  T.eq(stream.symmetry, "permute,rescale") -- relu on the stream, no per-unit tensors
  T.eq(table.concat(stream.tensors, " "),
       "2.body.2.weight 2.body.2.bias 0.weight 0.bias 2.body.0.weight 3.weight")
end)

T.run()
