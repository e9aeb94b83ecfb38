-- scripts/demo.lua — a 784-256-256-10 ReLU MLP on the shipped MNIST-10k.
--
--   symlab scripts/demo.lua [EPOCHS]          (default 10)
--   symlab --seed 7 --threads 2 scripts/demo.lua
--
-- Inputs are standardised with the training set's mean and deviation; SGD
-- with momentum and a little weight decay, batch 32, the learning rate
-- decayed by 0.8 after every epoch.  (Seeds 1-3 reach 0.959-0.968.)
-- Prints one line per epoch and, last, `test_accuracy=0.xxxx`.
local sl = require "symlab"

local epochs = tonumber(arg and arg[1]) or 10
assert(epochs == math.floor(epochs) and epochs >= 1, "usage: symlab scripts/demo.lua [EPOCHS]")

local data = sl.data.idx(sl.data.path("mnist10k"))
local mean, std = data.train:stats()
data.train:normalize(mean, std)
data.test:normalize(mean, std)
local net = sl.nn.sequential {
  sl.nn.flatten(),                 -- (N, 1, 28, 28) -> (N, 784)
  sl.nn.linear(784, 256), sl.nn.relu(),
  sl.nn.linear(256, 256), sl.nn.relu(),
  sl.nn.linear(256, 10),
}
local opt = sl.optim.sgd(net, { lr = 0.05, momentum = 0.9, weight_decay = 5e-4 })
local decay = sl.optim.schedule.step { step_size = 1, gamma = 0.8 }   -- per epoch

print(string.format("demo: %d train, %d test images, %d parameters, %d thread(s), seed %d",
                    #data.train, #data.test, net:numel(), sl.threads, sl.seed))
sl.train(net, opt, data.train, {
  epochs = epochs, batch = 32, loss = "cross_entropy", progress = "never",
  val = data.test, schedule = decay,
  on_epoch = function(row)
    print(string.format("epoch %2d  loss %.4f  accuracy %.4f  val_accuracy %.4f  %.2fs",
                        row.epoch, row.loss, row.accuracy, row.val_accuracy, row.seconds))
  end,
})

local test = sl.evaluate(net, data.test)
print(string.format("test_accuracy=%.4f", test.accuracy))
