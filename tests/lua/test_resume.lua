-- tests/lua/test_resume.lua — sl.train's training checkpoints from Lua: a
-- symlab process running tests/lua/resume_child.lua is killed with
-- SIGKILL after it wrote a checkpoint; a second process resumes it and
-- must end with the uninterrupted run's parameters and history, bit for
-- bit (SGD with momentum and Adam, dropout, a per-step warmup + cosine
-- schedule).  Also: chained calls with start_epoch, and refusals.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"

local symlab = (os.getenv("SYMLAB_TEST_BUILDDIR") or ".") .. "/symlab"
local child = here .. "/resume_child.lua"

-- A fresh name prefix in the temporary directory (os.tmpname makes the
-- file, which names the files below); clean() removes all of them.
local function prefix()
  return os.tmpname()
end

local function clean(p)
  os.execute("rm -f '" .. p .. "' '" .. p .. "'.*")
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function run_child(mode, optim, ckpt, out)
  return os.execute(("'%s' '%s' %s %s '%s' '%s' 2>/dev/null"):format(symlab, child, mode, optim,
                                                                     ckpt, out))
end

for _, optim in ipairs({ "sgd", "adam" }) do
  T.test("kill -9 mid-run and resume is bit-identical (" .. optim .. ")", function()
    local dir = prefix()
    local ckpt = dir .. ".ckpt"
    T.ok(run_child("full", optim, ckpt, dir .. ".full.st"), "the uninterrupted run")
    local ok, how, code = run_child("crash", optim, ckpt, dir .. ".crash.st")
    -- os.execute goes through sh, which reports a killed child as 128 + 9.
    T.ok(not ok and (how == "signal" and code == 9 or how == "exit" and code == 137),
         ("the child was killed by SIGKILL (%s %s)"):format(how, code))
    T.eq(slurp(dir .. ".crash.st"), nil, "the killed run did not finish")
    T.ok(slurp(ckpt), "the killed run left a checkpoint")
    T.ok(run_child("resume", optim, ckpt, dir .. ".res.st"), "the resumed run")
    -- 10 batches an epoch, 4 epochs; the last checkpoint before the kill
    -- at step 23 was step 20's.
    T.eq(slurp(dir .. ".full.st.steps"), "40\n")
    T.eq(slurp(dir .. ".res.st.steps"), "20\n", "the resumed run's steps")
    T.ok(slurp(dir .. ".full.st") == slurp(dir .. ".res.st"),
         "final parameters differ from the uninterrupted run's")
    local hist = slurp(dir .. ".full.st.hist")
    T.eq(select(2, hist:gsub("\n", "")), 4)
    T.eq(slurp(dir .. ".res.st.hist"), hist)
    clean(dir)
  end)
end

local function tiny()
  local xs, ys = {}, {}
  for i = 1, 40 do
    for j = 1, 3 do xs[#xs + 1] = math.cos(i * 0.9 + j) end
    ys[i] = i % 2
  end
  return sl.data.from(sl.tensor.from(xs, { 40, 3 }), sl.tensor.from(ys, { 40 }, "i64"))
end

local function net_and_opt(hidden)
  local net = sl.nn.sequential({ sl.nn.linear(3, hidden or 8), sl.nn.dropout { p = 0.2 },
                                 sl.nn.relu(), sl.nn.linear(hidden or 8, 2) }, { seed = 2 })
  return net, sl.optim.sgd(net, { lr = 0.1, momentum = 0.9 })
end

local function flat(net)
  local p = prefix()
  net:save(p)
  local s = slurp(p)
  clean(p)
  return s
end

T.test("chained sl.train calls with start_epoch equal one call", function()
  local d = tiny()
  local S = sl.optim.schedule
  local net, opt = net_and_opt()
  local h = sl.train(net, opt, d, { epochs = 4, batch = 8, seed = 5, progress = "never",
                                    schedule = S.step { step_size = 1, gamma = 0.7 } })
  local net2, opt2 = net_and_opt()
  local s2 = S.step { step_size = 1, gamma = 0.7 }
  local a = sl.train(net2, opt2, d, { epochs = 2, batch = 8, seed = 5, progress = "never",
                                      schedule = s2 })
  local b = sl.train(net2, opt2, d, { epochs = 2, start_epoch = 2, batch = 8, seed = 5,
                                      progress = "never", schedule = s2 })
  T.eq(b[1].epoch, 3)
  T.eq(b[2].loss, h[4].loss)
  T.eq(a[2].loss, h[2].loss)
  T.ok(flat(net) == flat(net2), "parameters differ")
end)

T.test("checkpoint options and refused resumes", function()
  local d = tiny()
  local dir = prefix()
  local ckpt = dir .. ".ckpt"
  local net, opt = net_and_opt()
  local h = sl.train(net, opt, d, { epochs = 2, batch = 8, progress = "never",
                                    checkpoint = { path = ckpt, every_epochs = 1 } })
  T.eq(#h, 2)
  -- Resuming a finished run changes nothing and returns its history.
  local again = sl.train(net, opt, d, { epochs = 2, batch = 8, progress = "never",
                                        resume = ckpt })
  T.eq(#again, 2)
  T.eq(again[2].loss, h[2].loss)
  local other, oopt = net_and_opt(6)
  T.raises(function()
    sl.train(other, oopt, d, { epochs = 2, batch = 8, progress = "never", resume = ckpt })
  end, "tensor '0.weight' has shape [8, 3], the training run expects [6, 3]")
  local n3, adam = net_and_opt()
  adam = sl.optim.adam(n3, { lr = 0.01 })
  T.raises(function()
    sl.train(n3, adam, d, { epochs = 2, batch = 8, progress = "never", resume = ckpt })
  end, "written with optimizer 'sgd', this run uses 'adam'")
  local f = io.open(dir .. ".short.ckpt", "wb")
  f:write(slurp(ckpt):sub(1, 50))
  f:close()
  local err = T.raises(function()
    sl.train(n3, adam, d, { epochs = 2, batch = 8, progress = "never",
                            resume = dir .. ".short.ckpt" })
  end, "short.ckpt: truncated")
  T.ok(not err:find("\n"), "one line: " .. err)
  T.raises(function() sl.train(net, opt, d, { checkpoint = { every_steps = 2 } }) end,
           "needs a path")
  T.raises(function() sl.train(net, opt, d, { checkpoint = 3 }) end, "must be a path or a table")
  T.raises(function() sl.train(net, opt, d, { checkpoint_every_steps = 2 }) end,
           "need a 'checkpoint' path")
  clean(dir)
end)

T.run()
