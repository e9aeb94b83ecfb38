-- symlab.resnet — ResNets for small images (He, Zhang, Ren, Sun 2016,
-- "Deep Residual Learning for Image Recognition", arXiv 1512.03385, the
-- CIFAR variant of section 4.2), as layer lists for sl.nn.sequential.
--
--   local resnet = require "symlab.resnet"        (also sl.resnet)
--   local net = sl.nn.sequential(resnet.cifar { depth = 20, width = 16,
--                                               in_channels = 1, classes = 10 })
--
-- depth = 6n + 2: a 3x3 stem convolution (width channels), three stages of
-- n basic blocks at width, 2*width and 4*width channels — a block is
-- conv3x3 - norm - relu - conv3x3 - norm plus the shortcut, then relu; the
-- first block of stages 2 and 3 halves the resolution with stride 2 and
-- projects its shortcut with a 1x1 convolution and a norm (the paper's
-- option B) — then global average pooling and a linear classifier.
-- Any input size works (28x28 gives 28, 14, 7).  Convolutions have no bias
-- before a norm, as in the paper; `norm` is "batchnorm" (default) or
-- "groupnorm" (with `groups`, default 4) or "none".
--
-- Parameter names follow the PyTorch module tree this builds: a
-- nn.Sequential whose blocks are modules with a `body` and a `shortcut`
-- nn.Sequential, y = body(x) + shortcut(x) (the identity when the shortcut
-- is empty).  tests/torch/resnet.py defines that module in PyTorch.
local sl = require "symlab"

local M = {}

local function norm_layer(kind, channels, groups)
  if kind == "batchnorm" then
    return sl.nn.batchnorm { num_features = channels }
  elseif kind == "groupnorm" then
    return sl.nn.groupnorm { num_groups = math.min(groups, channels), num_channels = channels }
  end
  error("resnet: norm must be batchnorm, groupnorm or none, got " .. tostring(kind), 3)
end

local function conv(cin, cout, k, stride, bias)
  return sl.nn.conv2d { in_channels = cin, out_channels = cout, kernel_size = k,
                        stride = stride, padding = k // 2, bias = bias }
end

--- The layers of one basic block: a residual spec, then its relu.
function M.block(cin, cout, stride, opts)
  opts = opts or {}
  local kind = opts.norm or "batchnorm"
  local bias = kind == "none"
  local function normed(list, channels)
    if kind ~= "none" then list[#list + 1] = norm_layer(kind, channels, opts.groups or 4) end
    return list
  end
  local body = normed({ conv(cin, cout, 3, stride, bias) }, cout)
  body[#body + 1] = sl.nn.relu()
  body[#body + 1] = conv(cout, cout, 3, 1, bias)
  normed(body, cout)
  if stride ~= 1 or cin ~= cout then
    body.shortcut = normed({ conv(cin, cout, 1, stride, bias) }, cout)
  end
  return sl.nn.residual(body), sl.nn.relu()
end

--- The CIFAR ResNet of the given depth (6n + 2) as a list of layers.
function M.cifar(opts)
  opts = opts or {}
  local depth, width = opts.depth or 20, opts.width or 16
  local cin, classes = opts.in_channels or 3, opts.classes or 10
  if (depth - 2) % 6 ~= 0 or depth < 8 then
    error("resnet.cifar: depth must be 6n + 2 (8, 14, 20, 32, 44, 56, 110), got " .. depth, 2)
  end
  local n, kind = (depth - 2) // 6, opts.norm or "batchnorm"
  local layers = { conv(cin, width, 3, 1, kind == "none") }
  if kind ~= "none" then layers[#layers + 1] = norm_layer(kind, width, opts.groups or 4) end
  layers[#layers + 1] = sl.nn.relu()
  local channels = width
  for stage = 1, 3 do
    local cout = width * 2 ^ (stage - 1) // 1
    for b = 1, n do
      local stride = (stage > 1 and b == 1) and 2 or 1
      local res, relu = M.block(channels, cout, stride, opts)
      layers[#layers + 1] = res
      layers[#layers + 1] = relu
      channels = cout
    end
  end
  layers[#layers + 1] = sl.nn.global_avgpool()
  layers[#layers + 1] = sl.nn.linear(channels, classes)
  return layers
end

return M
