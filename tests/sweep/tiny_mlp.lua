-- tests/sweep/tiny_mlp.lua — the sweep the sweep tests run: a 2-layer MLP on
-- a synthetic 3-class problem, hidden width x learning rate x seed (8 tasks).
--
--   symlab tests/sweep/tiny_mlp.lua [DIR]          all tasks in this process
--   symlab sweep run tests/sweep/tiny_mlp.lua --jobs 2 --dir DIR
--
-- SWEEP_TEST_EPOCHS (default 5) makes each task longer, for the kill test;
-- SWEEP_TEST_SEEDS (default 2) changes the grid, for the stale-row test;
-- SWEEP_TEST_FAIL=HIDDEN:SEED makes the tasks of that width and seed raise
-- a Lua error, for the error test.
local sl = require "symlab"
local sweep = require "symlab.sweep"

local EPOCHS = math.tointeger(tonumber(os.getenv("SWEEP_TEST_EPOCHS") or "5"))
local FAIL = os.getenv("SWEEP_TEST_FAIL")

-- 256 points in 6 dimensions; the class is the largest of three sums.
local function problem(seed)
  math.randomseed(1000 + seed)
  local x, y = {}, {}
  for n = 1, 256 do
    local row, best, class = {}, -math.huge, 0
    for i = 1, 6 do row[i] = 2 * math.random() - 1 end
    for c = 0, 2 do
      local s = row[2 * c + 1] + row[2 * c + 2]
      if s > best then best, class = s, c end
    end
    x[n], y[n] = row, class
  end
  return sl.data.from(sl.tensor.from(x), sl.tensor.from(y, "i64"))
end

local S = sweep.define {
  name = "tiny_mlp",
  grid = { hidden = { 8, 16 }, lr = { 0.05, 0.2 } },
  seeds = math.tointeger(tonumber(os.getenv("SWEEP_TEST_SEEDS") or "2")),
  task = function(config, seed)
    if ("%d:%d"):format(config.hidden, seed) == FAIL then
      error("task asked to fail by SWEEP_TEST_FAIL")
    end
    local data = problem(seed)
    local net = sl.nn.sequential({ sl.nn.linear(6, config.hidden), sl.nn.relu(),
                                   sl.nn.linear(config.hidden, 3) }, { seed = seed })
    local opt = sl.optim.sgd(net, { lr = config.lr, momentum = 0.9 })
    local hist = sl.train(net, opt, data, { epochs = EPOCHS, batch = 32, seed = seed,
                                            progress = "never" })
    local final = sl.evaluate(net, data)
    return { loss = final.loss, accuracy = final.accuracy, first_loss = hist[1].loss,
             curve = (function()
               local c = {}
               for i, row in ipairs(hist) do c[i] = row.loss end
               return c
             end)() }
  end,
  plot = function(dir)
    return ([[
set terminal pngcairo size 600,400
set output '%s/tiny_mlp.png'
set datafile separator ','
plot '%s/summary.csv' using 0:4 every ::1 with linespoints title 'loss (mean)'
]]):format(dir, dir)
  end,
}
return sweep.main(S, ...)
