-- tests/lua/test_input_expansion.lua — scripts/repro/input_expansion.lua in
-- its quick mode, end to end: the sweep runs in one process, the rate each
-- point reports is the grid's best on validation, every seed of a point
-- trained at that rate, and the SBDE mask projection is the identity on
-- clean expanded inputs.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")

local read_csv = T.read_csv

T.test("input_expansion quick", function()
  local dir = os.tmpname()
  os.remove(dir)
  local saved = arg
  arg = { [0] = "input_expansion.lua", "quick", dir }
  local ok, err = pcall(dofile, srcdir .. "/scripts/repro/input_expansion.lua")
  arg = saved
  T.ok(ok, tostring(err))
  local out = dir .. "/input_expansion/"
  local summary = read_csv(out .. "input_expansion_summary.csv")
  T.eq(#summary, 9) -- quick: MNIST-10k, MLP 3 + CNN 4 + ResNet 2 arms
  local chosen = {}
  for _, s in ipairs(summary) do
    local key = s.arch .. "/" .. s.arm
    T.eq(s.n, 2, key)
    T.ok(s.accuracy >= 0 and s.accuracy <= 1, key)
    -- the reported rate is the grid's best on validation (ties: the smaller)
    local a, b = s["val_lr0.03"], s["val_lr0.1"]
    T.ok(a and b, key .. ": grid columns")
    T.eq(s.lr, b > a and 0.1 or 0.03, key)
    chosen[key] = s.lr
    local expand = s.arm:match("^exp_") ~= nil
    T.eq(s.projected_accuracy ~= nil, expand, key .. ": projection only for expansion arms")
  end
  local runs = read_csv(out .. "input_expansion_runs.csv")
  T.eq(#runs, 18)
  for _, r in ipairs(runs) do
    local key = r.arch .. "/" .. r.arm
    T.eq(r.lr, chosen[key], key .. " seed " .. r.seed .. " trained at the chosen rate")
    if r.clean_projected_accuracy then
      T.eq(r.clean_projected_accuracy, r.clean_subset_accuracy, key .. ": projection is the identity")
    end
  end
  local curves = read_csv(out .. "input_expansion_curves.csv")
  T.eq(#curves, 9 * 2) -- 2 epochs per point
  os.execute(("rm -rf '%s'"):format(dir))
end)

T.run()
