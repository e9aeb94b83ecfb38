-- tests/lua/test_equivariant_relax.lua — scripts/repro/equivariant_relax.lua
-- in its quick mode, end to end: it runs, writes its files, and what it
-- writes holds together (relaxation keeps the stuck student's function and
-- its hidden representation; every seed is either converged or stuck).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")

local read_csv = T.read_csv

-- The representation each setup's architecture puts on its hidden layer.
local OWN = { C4 = "regular+q2", C4reg = "regular*2", S3 = "perm*2" }

T.test("equivariant_relax quick", function()
  local dir = os.tmpname()
  os.remove(dir)
  local saved = arg
  arg = { [0] = "equivariant_relax.lua", "quick", dir }
  local ok, err = pcall(dofile, srcdir .. "/scripts/repro/equivariant_relax.lua")
  arg = saved
  T.ok(ok, tostring(err))
  local runs = read_csv(dir .. "/equivariant_relax_runs.csv")
  T.eq(#runs, 3 * 6)
  local stuck, own = 0, {}
  for _, r in ipairs(runs) do
    T.ok(OWN[r.setup], "unknown setup " .. tostring(r.setup))
    T.ok(r.converged == 1 or r.converged == 0)
    T.eq(r.converged == 1, r.loss < 1e-6, r.setup .. " " .. r.seed)
    if r.converged == 0 then
      stuck = stuck + 1
      -- the constrained student is equivariant, and so is its relaxation,
      -- with the architecture's own hidden representation
      T.ok(r.error < 1e-12, ("%s %d: error %g"):format(r.setup, r.seed, r.error))
      T.ok(r.hard_start_gap < 1e-9, ("%s %d: relax moved the loss by %g")
                                    :format(r.setup, r.seed, r.hard_start_gap))
      -- its hidden layer carries a permutation representation exactly (which
      -- one can be degenerate: a q2 channel with equal taps is two trivial
      -- neurons, a dead neuron matches anything)
      T.ok(r.residual < 1e-9, ("%s %d: residual %g"):format(r.setup, r.seed, r.residual))
      if r.rep == OWN[r.setup] then own[r.setup] = true end
      T.ok(r.hard_loss == r.hard_loss and r.hard_loss >= 0)
      T.eq(r.hard_rescued == 1, r.hard_loss < 1e-6)
      if r.setup == "C4reg" then
        T.ok(r.soft_start_gap < 1e-9, "soft relaxation moved the loss")
        T.ok(r.soft_loss == r.soft_loss and r.soft_loss >= 0)
      else
        T.eq(r.soft_loss, nil)
      end
    end
  end
  for setup, rep in pairs(OWN) do T.ok(own[setup], setup .. ": never found " .. rep) end
  local summary = read_csv(dir .. "/equivariant_relax_summary.csv")
  T.eq(#summary, 3)
  local total = 0
  for _, s in ipairs(summary) do
    T.eq(s.seeds, 6)
    T.eq(s.converged + s.stuck, 6)
    T.ok(s.hard_rescued <= s.stuck)
    total = total + s.stuck
  end
  T.eq(total, stuck)
  if stuck > 0 then T.ok(#read_csv(dir .. "/equivariant_relax_curves.csv") > 0) end
  os.execute(("rm -rf '%s'"):format(dir))
end)

T.run()
