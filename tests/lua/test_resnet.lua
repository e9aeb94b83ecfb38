-- tests/lua/test_resnet.lua — ResNet-20 from sl.resnet: the tensor names and
-- shapes PyTorch's state_dict of the same architecture has (the list in
-- tests/data/resnet20_state.txt was written by tests/torch/resnet.py from
-- PyTorch), a short training run on MNIST-10k with a checkpoint, and, where
-- PyTorch is installed, a round trip through it in both directions.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function resnet20(dtype)
  return sl.nn.sequential(sl.resnet.cifar { depth = 20, width = 16, in_channels = 1 },
                          { dtype = dtype or "f32", seed = 3 })
end

local function shape_text(t)
  local s = {}
  for i, n in ipairs(t:shape()) do s[i] = tostring(n) end
  return #s > 0 and table.concat(s, "x") or "scalar"
end

T.test("names and shapes match PyTorch's state_dict", function()
  local want = {}
  local n = 0
  for line in io.lines(srcdir .. "/tests/data/resnet20_state.txt") do
    local name, shape = line:match("^(%S+) (%S+)$")
    want[name] = shape
    n = n + 1
  end
  T.eq(n, 128)
  local net, got = resnet20(), 0
  for _, list in ipairs { net:parameters(), net:buffers() } do
    for _, p in ipairs(list) do
      T.eq(shape_text(p.tensor), want[p.name], p.name)
      got = got + 1
    end
  end
  T.eq(got, n, "tensors in the symlab model")
end)

-- x[b, 0, i, j] = sin(0.01 * (784 b + 28 i + j)), as tests/torch/resnet.py makes it.
local function probe_input()
  local flat = {}
  for k = 0, 4 * 784 - 1 do flat[k + 1] = math.sin(0.01 * k) end
  return sl.tensor.from(flat, { 4, 1, 28, 28 }, "f64")
end

local function outputs(net)
  net:eval()
  local v = {}
  for _, row in ipairs(net:forward(probe_input()):totable()) do
    for _, x in ipairs(row) do v[#v + 1] = x end
  end
  T.eq(#v, 40)
  return v
end

local function python_with_torch()
  for _, py in ipairs { "/usr/bin/python3", "python3" } do
    if os.execute(py .. " -c 'import torch' >/dev/null 2>&1") then return py end
  end
end

T.test("trains, saves, and round-trips through PyTorch", function()
  local net = resnet20("f64")
  local d = sl.data.idx(sl.data.path("mnist10k"))
  local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9 })
  local h = sl.train(net, opt, d.train:subset(1, 64), { epochs = 1, batch = 32, seed = 1,
                                                         progress = "never" })
  T.ok(h[1].loss > 0 and h[1].loss < 10, "loss " .. tostring(h[1].loss))
  local ckpt = tmp .. "/resnet20.safetensors"
  net:save(ckpt)
  local mine = outputs(net)
  local py = python_with_torch()
  if not py then
    print("       (PyTorch round trip skipped: no python3 with torch)")
    return
  end
  local f = assert(io.open(tmp .. "/outputs.txt", "w"))
  for _, v in ipairs(mine) do f:write(string.format("%.17g\n", v)) end
  f:close()
  local back = tmp .. "/from_torch.safetensors"
  local cmd = string.format("%s '%s/tests/torch/resnet.py' check '%s' '%s/outputs.txt' '%s' 2>&1",
                            py, srcdir, ckpt, tmp, back)
  local p = io.popen(cmd)
  local said = p:read("a")
  local ok = p:close()
  T.ok(ok, "PyTorch side failed: " .. said)
  io.write("       ", said)
  local again = resnet20("f64")
  again:load(back)
  local theirs = outputs(again)
  for i = 1, #mine do T.eq(theirs[i], mine[i], "output " .. i .. " after PyTorch's checkpoint") end
end)

T.run()
os.execute("rm -rf '" .. tmp .. "'")
