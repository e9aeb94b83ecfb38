-- tests/lua/test_hierarchy.lua — scripts/repro/hierarchy.lua in its quick
-- mode, end to end: it runs, writes its files, and what it writes holds
-- together (the deep linear network starts at rank 0 and ends at the
-- teacher's rank, learning its modes in order; CKA values are in [0, 1]).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"

local srcdir = os.getenv("SYMLAB_TEST_SRCDIR") or (here .. "/../..")

local read_csv = T.read_csv

T.test("hierarchy quick", function()
  local dir = os.tmpname()
  os.remove(dir)
  local saved = arg
  arg = { [0] = "hierarchy.lua", "quick", dir }
  local ok, err = pcall(dofile, srcdir .. "/scripts/repro/hierarchy.lua")
  arg = saved
  T.ok(ok, tostring(err))
  local lin = read_csv(dir .. "/hierarchy_linear.csv")
  T.eq(#lin, 81)                                -- epoch 0 and 80 epochs
  T.eq(lin[1].rank, 0)
  T.eq(lin[#lin].rank, 3)                       -- the teacher's rank
  T.ok(lin[#lin].loss < 1e-3 * lin[1].loss, "loss did not fall to the teacher")
  for i = 2, #lin do T.ok(lin[i].rank >= lin[i - 1].rank, "rank fell at epoch " .. lin[i].epoch) end
  local modes = read_csv(dir .. "/hierarchy_linear_modes.csv")
  T.eq(#modes, 3)
  for k = 2, 3 do
    T.ok(modes[k].learned_epoch > modes[k - 1].learned_epoch, "mode " .. k .. " not after " .. k - 1)
  end
  local ckas = read_csv(dir .. "/hierarchy_cka.csv")
  T.eq(#ckas, 1 * 3 * 2)                        -- 1 pair, epochs 0..2, 2 hidden layers
  for _, r in ipairs(ckas) do
    T.ok(r.cka > 0 and r.cka <= 1 + 1e-12, "cka " .. tostring(r.cka))
    T.ok(r.cka_vs_init > 0 and r.cka_vs_init <= 1 + 1e-12)
  end
  local nets = read_csv(dir .. "/hierarchy_nets.csv")
  T.eq(#nets, 2 * 3)
  for _, r in ipairs(nets) do
    if r.epoch > 0 then T.ok(r.nc1 > 0 and r.rank_1 >= 1, "nc1/rank of net " .. r.net) end
  end
  os.execute(("rm -rf '%s'"):format(dir))
end)

T.run()
