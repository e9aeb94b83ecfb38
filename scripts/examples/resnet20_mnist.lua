-- ResNet-20 (width 16) on the shipped MNIST-10k: one epoch, then a
-- checkpoint PyTorch loads by name into the same architecture
-- (tests/torch/resnet.py).
--
--   symlab scripts/examples/resnet20_mnist.lua [OUTDIR] [EPOCHS] [TRAIN_ROWS]
--
-- Prints the test accuracy and writes OUTDIR/resnet20.safetensors.
local sl = require "symlab"
local resnet = sl.resnet
local results = sl.results

local outdir = results.outdir(arg[1] or "results")
local epochs = tonumber(arg[2] or "1")
local rows = tonumber(arg[3] or "0")

local d = sl.data.idx(sl.data.path("mnist10k"))
local train = rows > 0 and d.train:subset(1, rows) or d.train
local net = sl.nn.sequential(resnet.cifar { depth = 20, width = 16, in_channels = 1,
                                            classes = 10 }, { seed = 1 })
local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9, weight_decay = 1e-4 })
local history = sl.train(net, opt, train, { epochs = epochs, batch = 64, seed = 1 })
local last = history[#history]
local acc = sl.evaluate(net, d.test).accuracy
local path = outdir .. "/resnet20.safetensors"
net:save(path)
print(string.format("epochs=%d train_loss=%.4f seconds=%.1f checkpoint=%s", epochs, last.loss,
                    last.seconds, path))
print(string.format("test_accuracy=%.4f", acc))
