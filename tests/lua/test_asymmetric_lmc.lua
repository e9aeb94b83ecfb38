-- tests/lua/test_asymmetric_lmc.lua — scripts/repro/asymmetric_lmc.lua in its
-- quick mode, end to end: it runs, writes its files, and what it writes
-- holds together (weight matching changes B's coordinates, not its function),
-- on MNIST-10k and, when the developers' copy is there, Fashion-MNIST.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")

local read_csv = T.read_csv

-- The Fashion-MNIST part runs too when the developers' copy is there
-- (SYMLAB_TEST_FASHION_MNIST, as `make check` sets it).
local fashion = os.getenv("SYMLAB_TEST_FASHION_MNIST")
do
  local f = fashion and io.open(fashion .. "/fashion-train-labels-idx1-ubyte.gz", "rb")
  if f then f:close() else fashion = nil end
end

T.test("asymmetric_lmc quick", function()
  local dir = os.tmpname()
  os.remove(dir)
  local saved = arg
  arg = { [0] = "asymmetric_lmc.lua", "quick", dir }
  if fashion then arg[#arg + 1] = "fashion=" .. fashion end
  local ok, err = pcall(dofile, srcdir .. "/scripts/repro/asymmetric_lmc.lua")
  arg = saved
  T.ok(ok, tostring(err))
  local datasets = fashion and { "mnist10k", "fashion" } or { "mnist10k" }
  local summary = read_csv(dir .. "/asymmetric_lmc_summary.csv")
  T.eq(#summary, 4 * #datasets)
  local arms = {}
  for _, r in ipairs(summary) do
    arms[r.dataset .. " " .. r.arm] = true
    T.eq(r.pairs, 2, r.arm)
    T.ok(r.barrier_mean == r.barrier_mean and math.abs(r.barrier_mean) < 10, r.arm)
  end
  for _, d in ipairs(datasets) do
    for _, a in ipairs({ "standard", "standard+wm", "w_asym", "sigma_asym" }) do
      T.ok(arms[d .. " " .. a], "no arm " .. a .. " on " .. d)
    end
  end
  local runs, std = read_csv(dir .. "/asymmetric_lmc_runs.csv"), {}
  T.eq(#runs, 8 * #datasets)
  for _, r in ipairs(runs) do
    if r.arm == "standard" then std[r.dataset .. r.pair] = r end
  end
  for _, r in ipairs(runs) do
    if r.arm == "standard+wm" then
      local s = std[r.dataset .. r.pair]
      T.eq(r.loss_a, s.loss_a)                  -- A is untouched
      T.near(r.loss_b, s.loss_b, 1e-5)          -- aligned B: same function (f32)
      T.eq(r.acc_b, s.acc_b)
      T.ok(r.units_moved > 0)
    end
  end
  local curves = read_csv(dir .. "/asymmetric_lmc_curves.csv")
  T.eq(#curves, 8 * 5 * #datasets)
  local depth = read_csv(dir .. "/asymmetric_lmc_depth.csv")
  T.eq(#depth, 4)
  for _, r in ipairs(depth) do T.ok(r.train_loss > 0 and r.train_loss < 10, r.arm) end
  os.execute(("rm -rf '%s'"):format(dir))
end)

-- One arm alone (how the full run can be split into processes), and a bad
-- Fashion-MNIST directory is an error naming it.
T.test("asymmetric_lmc arm= and a bad fashion directory", function()
  local dir = os.tmpname()
  os.remove(dir)
  local saved = arg
  arg = { [0] = "asymmetric_lmc.lua", "quick", "mnist", "arm=w_asym", dir }
  local ok, err = pcall(dofile, srcdir .. "/scripts/repro/asymmetric_lmc.lua")
  arg = saved
  T.ok(ok, tostring(err))
  local summary = read_csv(dir .. "/asymmetric_lmc_summary.csv")
  T.eq(#summary, 1)
  T.eq(summary[1].arm, "w_asym")
  T.eq(#read_csv(dir .. "/asymmetric_lmc_runs.csv"), 2)
  arg = { [0] = "asymmetric_lmc.lua", "quick", "fashion", "fashion=/nonexistent/fm", dir }
  ok, err = pcall(dofile, srcdir .. "/scripts/repro/asymmetric_lmc.lua")
  arg = saved
  T.ok(not ok)
  T.ok(tostring(err):find("Fashion-MNIST directory /nonexistent/fm", 1, true), tostring(err))
  arg = { [0] = "asymmetric_lmc.lua", "quick", "arm=bogus", dir }
  ok, err = pcall(dofile, srcdir .. "/scripts/repro/asymmetric_lmc.lua")
  arg = saved
  T.ok(not ok)
  T.ok(tostring(err):find("arm=bogus", 1, true), tostring(err))
  os.execute(("rm -rf '%s'"):format(dir))
end)

T.run()
