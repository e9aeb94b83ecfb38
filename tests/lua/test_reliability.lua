-- tests/lua/test_reliability.lua — hostile use of the Lua API: objects closed
-- while training uses them, out-of-range options, non-finite data, results
-- files with several writers.  Each case once crashed, wrapped or was
-- silently accepted; each must now be a one-line error or work.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"

-- A small regression problem: 16 rows of 3 features, 2 targets.
local function toy_data()
  local x, y = {}, {}
  for i = 1, 16 do
    x[i] = { i / 16, (i % 3) / 3, 1 - i / 16 }
    y[i] = { x[i][1] - x[i][2], x[i][3] }
  end
  return sl.data.from(sl.tensor.from(x), sl.tensor.from(y))
end

local function toy_net()
  return sl.nn.sequential({ sl.nn.linear(3, 4), sl.nn.tanh(), sl.nn.linear(4, 2) }, { seed = 3 })
end

local function train_opts(extra)
  local o = { epochs = 3, batch = 4, loss = "mse", progress = "never" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The symlab running this test, quoted for the shell (nil if not symlab).
local function symlab_cmd()
  local i, prog = -1, nil
  while arg and arg[i] do prog = arg[i]; i = i - 1 end
  if not prog or not prog:find("symlab") then return nil end
  return "'" .. prog:gsub("'", "'\\''") .. "'"
end

-- ---- closing what sl.train uses ----------------------------------------------------

T.test("closing the model, optimizer, data or a hook inside on_epoch is refused", function()
  local d, val = toy_data(), toy_data()
  local net = toy_net()
  local opt = sl.optim.sgd(net, { lr = 0.01 })
  local hook = sl.hook.syre { gamma = 1e-3 }
  local sched = sl.optim.schedule.step { step_size = 1, gamma = 0.5 }
  local cases = {
    { "model", function() net:close() end },
    { "optimizer", function() opt:close() end },
    { "dataset", function() d:close() end },
    { "dataset", function() val:close() end },
    { "hook", function() hook:close() end },
    { "schedule", function() sched:close() end },
  }
  for _, c in ipairs(cases) do
    local epochs = 0
    T.raises(function()
      sl.train(net, opt, d, train_opts { val = val, hooks = { hook }, schedule = sched,
        on_epoch = function() epochs = epochs + 1; c[2]() end })
    end, "cannot close the " .. c[1] .. ": sl.train is using it", c[1])
    T.eq(epochs, 1, c[1] .. ": training stops at the error")
  end
  -- Nothing was closed: everything still works, and closes after training.
  local hist = sl.train(net, opt, d, train_opts { val = val, hooks = { hook } })
  T.eq(#hist, 3)
  T.ok(hist[3].val_loss == hist[3].val_loss, "val_loss is a number")
  hook:close(); opt:close(); val:close(); d:close(); net:close()
  T.raises(function() net:numel() end, "closed model")
end)

T.test("a <close> variable leaving scope inside on_epoch is refused too", function()
  local d = toy_data()
  local net = toy_net()
  local opt = sl.optim.sgd(net, { lr = 0.01 })
  T.raises(function()
    sl.train(net, opt, d, train_opts { on_epoch = function()
      local alias <close> = net -- luacheck: ignore
    end })
  end, "cannot close the model")
  T.eq(net:numel(), 3 * 4 + 4 + 4 * 2 + 2)
end)

T.test("objects dropped inside on_epoch stay alive until sl.train returns", function()
  local net = toy_net()
  local opts = train_opts { epochs = 4, val = toy_data(), hooks = { sl.hook.syre { gamma = 1e-3 } } }
  opts.on_epoch = function()
    opts.val, opts.hooks = nil, nil
    collectgarbage(); collectgarbage()
  end
  local hist = sl.train(net, sl.optim.sgd(net, { lr = 0.01 }), toy_data(), opts)
  T.eq(#hist, 4)
  T.ok(hist[4].val_loss == hist[4].val_loss, "validation still ran")
  collectgarbage()
end)

T.test("sl.train inside on_epoch with the same objects", function()
  local d, net = toy_data(), toy_net()
  local opt = sl.optim.sgd(net, { lr = 0.01 })
  local inner = 0
  sl.train(net, opt, d, train_opts { epochs = 2, on_epoch = function()
    sl.train(net, opt, d, train_opts { epochs = 1 })
    inner = inner + 1
  end })
  T.eq(inner, 2)
  -- The inner run's end does not release the outer run's marks.
  T.raises(function()
    sl.train(net, opt, d, train_opts { epochs = 2, on_epoch = function()
      sl.train(net, opt, d, train_opts { epochs = 1 })
      net:close()
    end })
  end, "cannot close the model")
  net:close()
end)

-- ---- numbers out of range -----------------------------------------------------------

local maxint = math.maxinteger

T.test("sizes that overflow int64 are refused, naming the option", function()
  T.raises(function() sl.nn.sequential { sl.nn.linear(maxint, maxint) } end,
           "in_features * out_features (" .. maxint .. " * " .. maxint .. ") is out of range")
  local conv = sl.nn.sequential { sl.nn.conv2d { in_channels = 1, out_channels = 1,
                                                 kernel_size = 3, padding = 1 << 40 } }
  T.raises(function() conv:forward(sl.tensor.zeros({ 1, 1, 4, 4 })) end,
           "padding 1099511627776 is out of range for input [1, 1, 4, 4]")
  local expand = sl.nn.sequential { sl.nn.input_expand { extra = maxint } }
  T.raises(function() expand:forward(sl.tensor.zeros({ 1, 4 })) end,
           "extra " .. maxint .. " is out of range for input [1, 4]")
  local image = sl.nn.sequential { sl.nn.input_expand { factor = 1 << 62 } }
  T.raises(function() image:forward(sl.tensor.zeros({ 1, 1, 4, 4 })) end,
           "factor " .. (1 << 62) .. " is out of range")
  T.raises(function() sl.nn.sequential { sl.nn.conv2d { in_channels = 4, out_channels = 2,
                                                       kernel_size = 1 << 31 } } end,
           "parameter 'weight' of shape [2, 4, 2147483648, 2147483648] has more elements")
  -- Each layer fits; together they do not.
  T.raises(function() sl.nn.sequential { sl.nn.linear(1 << 31, 1 << 31),
                                         sl.nn.linear(1 << 31, 1 << 31) } end,
           "parameter count overflows at '1.weight'")
  T.raises(function() sl.tensor.zeros({ 4 }):reshape({ (1 << 62) + 1, 4 }) end,
           "element count of [" .. ((1 << 62) + 1) .. ", 4] overflows")
end)

T.test("ds:subset with a huge count is refused, not wrapped past the bounds check", function()
  local d = toy_data()
  T.raises(function() d:subset(2, maxint) end, maxint .. " rows from row 2 do not fit in 1..16")
  T.raises(function() d:subset(maxint, 2) end, "do not fit")
  T.eq(#d:subset(2, 15), 15)
end)

T.test("a batch larger than the dataset is one batch, even at maxinteger", function()
  local function run(batch)
    local net = toy_net()
    local hist = sl.train(net, sl.optim.sgd(net, { lr = 0.1 }), toy_data(),
                          train_opts { batch = batch, seed = 5 })
    return hist[3].loss, net:flat_params():get(1)
  end
  local loss16, w16 = run(16)
  local loss, w = run(maxint)
  T.eq(loss, loss16)
  T.eq(w, w16)
end)

-- ---- values that were silently accepted ------------------------------------------------

T.test("sl.train refuses seed = -1 as sequential does", function()
  local net = toy_net()
  local opt = sl.optim.sgd(net, { lr = 0.01 })
  T.raises(function() sl.nn.sequential({ sl.nn.linear(2, 2) }, { seed = -1 }) end, "seed")
  T.raises(function() sl.train(net, opt, toy_data(), train_opts { seed = -1 }) end,
           "train: option 'seed' must be >= 0, got -1")
end)

T.test("NaN or infinity in the validation set or the parameters is an error", function()
  local net = toy_net()
  local opt = sl.optim.sgd(net, { lr = 0.01 })
  local x = {}
  for i = 1, 4 do x[i] = { 0.1 * i, 0, 1 } end
  x[3][2] = 0 / 0
  local bad_val = sl.data.from(sl.tensor.from(x), sl.tensor.zeros({ 4, 2 }))
  T.raises(function() sl.train(net, opt, toy_data(), train_opts { val = bad_val }) end,
           "train: the validation set: x has a non-finite value (nan) in row 3")
  local y = sl.tensor.zeros({ 4, 2 })
  y:set(4, 1, math.huge)
  local bad_y = sl.data.from(sl.tensor.from({ { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } }), y)
  T.raises(function() sl.train(net, opt, toy_data(), train_opts { val = bad_y }) end,
           "y has a non-finite value (inf) in row 4")
  local hist = sl.train(net, opt, toy_data(), train_opts { val = toy_data() })
  T.eq(#hist, 3)
  local p = net:flat_params()
  p:set(5, -math.huge)
  T.raises(function() sl.train(net, opt, toy_data(), train_opts { val = toy_data() }) end,
           "train: parameter '0.weight' holds a non-finite value (-inf) at element 5")
end)

T.test("a validation loss that overflows stops training", function()
  -- Finite parameters and data whose loss is not: 1e30^2 overflows f32.
  local net = sl.nn.sequential({ sl.nn.linear(1, 1, { bias = false }) }, { seed = 1 })
  net:flat_params():set(1, 1e30)
  local small = sl.data.from(sl.tensor.from({ { 0 } }), sl.tensor.from({ { 0 } }))
  local huge = sl.data.from(sl.tensor.from({ { 1e10 } }), sl.tensor.from({ { 0 } }))
  T.raises(function()
    sl.train(net, sl.optim.sgd(net, { lr = 0 }), small, train_opts { epochs = 2, batch = 1, val = huge })
  end, "train: validation loss is inf after epoch 1")
end)

-- ---- messages ------------------------------------------------------------------------

T.test("symlab without arguments says so with the symlab: prefix, then the usage", function()
  local prog = symlab_cmd()
  if not prog then print("       (skipped: not run by the symlab executable)") return end
  local p = io.popen(prog .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  T.ok(out:find("^symlab: no script or command given\nusage: symlab ") and out:find("\nrc=2\n$"),
       out)
end)

T.test("a script using a type whose plugin was refused is told why", function()
  local prog = symlab_cmd()
  if not prog then print("       (skipped: not run by the symlab executable)") return end
  -- The test plugins are built beside the symlab under test (which libtool
  -- may run from the build tree's .libs).
  local builddir = ((arg[-1] or "."):match("^(.*)/[^/]*$") or "."):gsub("/%.libs$", "")
  local plugins = builddir .. "/tests/plugins/.libs"
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write("local sl = require 'symlab'\nlocal m = sl.nn.bad_abi {}\n")
  f:close()
  local p = io.popen(string.format("SYMLAB_PLUGIN_PATH='%s' %s '%s' 2>&1; echo \"rc=$?\"",
                                   plugins, prog, script))
  local out = p:read("a")
  p:close()
  os.remove(script)
  T.ok(out:find("no module type 'bad_abi' (its plugin was refused: plugin '", 1, true) and
       out:find("bad_abi.so' has incompatible ABI version", 1, true) and out:find("\nrc=1\n$"),
       out)
end)

-- ---- results files with two writers ------------------------------------------------

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

T.test("two writers of one results file never tear it", function()
  local prog = symlab_cmd()
  if not prog then print("       (skipped: not run by the symlab executable)") return end
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir '" .. dir .. "'"))
  local path, writer = dir .. "/history.csv", dir .. "/writer.lua"
  -- Each writer rewrites the file with its own 3000 rows, again and again.
  local f = assert(io.open(writer, "w"))
  f:write([[
local results = require "symlab.results"
local rows = {}
for i = 1, 3000 do rows[i] = { epoch = i, writer = arg[2] } end
for _ = 1, 60 do results.write_csv(arg[1], rows, { "epoch", "writer" }) end
]])
  f:close()
  local function expected(id)
    local lines = { "epoch,writer" }
    for i = 1, 3000 do lines[#lines + 1] = i .. "," .. id end
    return table.concat(lines, "\n") .. "\n"
  end
  local want = { [expected("a")] = true, [expected("b")] = true }
  local run = string.format("%s '%s' '%s'", prog, writer, path)
  local p = io.popen(string.format("(%s a 2>&1 & A=$!; %s b 2>&1 & B=$!; wait $A; ra=$?; " ..
                                   "wait $B; echo \"rc=$ra,$?\")", run, run))
  local reads, torn = 0, 0
  for _ = 1, 400 do
    local s = slurp(path)
    if s then
      reads = reads + 1
      if not want[s] then torn = torn + 1 end
    end
  end
  local out = p:read("a")
  p:close()
  T.ok(out:find("rc=0,0", 1, true), "both writers succeed: " .. out)
  T.eq(torn, 0, "torn reads out of " .. reads)
  T.ok(want[slurp(path)], "the final file is one writer's")
  local left = io.popen("ls '" .. dir .. "'"):read("a")
  T.eq(left, "history.csv\nwriter.lua\n", "no temporary file left")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.run()
