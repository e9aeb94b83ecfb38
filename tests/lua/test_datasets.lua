-- tests/lua/test_datasets.lua — datasets by name from Lua and the command
-- line: sl.data.load / get / list / root / cifar10 and `symlab data ...`.
--
-- The download path is exercised end to end offline through a file://
-- mirror built from a local copy of Fashion-MNIST, named by
-- SYMLAB_TEST_FASHION_MNIST (`make check` points it at the developers' and
-- CI's copy).  That copy was repaired, so its files differ from upstream:
-- the tests give their hashes in a manifest written by coreutils'
-- sha256sum, never by the code under test.  Without the copy those tests
-- are skipped with a message; the rest run everywhere.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local T = require "helpers"
local sl = require "symlab"

local builddir = os.getenv("SYMLAB_TEST_BUILDDIR") or (here .. "/../..")
local fashion = os.getenv("SYMLAB_TEST_FASHION_MNIST")
local symlab_bin = builddir .. "/symlab"

-- ---- helpers --------------------------------------------------------------------

local function sh(cmd)
  local ok = os.execute(cmd)
  T.ok(ok, "command failed: " .. cmd)
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its exit code and its stdout+stderr.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, out:gsub("exit=%d+%s*$", "")
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function listing(dir)
  local p = io.popen("ls -A " .. q(dir) .. " 2>/dev/null")
  local s = p:read("a")
  p:close()
  return s
end

local function tmpdir()
  local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/symlab-test-datasets-XXXXXX\"")
  local d = p:read("l")
  p:close()
  T.ok(d and #d > 0, "mktemp -d failed")
  return d
end

local scratch = tmpdir()

local have_fashion = fashion and exists(fashion .. "/fashion-train-labels-idx1-ubyte.gz")
local function needs_fashion()
  if not have_fashion then
    T.skip("no local Fashion-MNIST copy (SYMLAB_TEST_FASHION_MNIST=" .. tostring(fashion) ..
           "): the mirror tests need it")
  end
  if not sl.data.download_supported() then T.skip("built without download support") end
end

-- The upstream file names, and the names of the local copy's files.
local upstream = {
  ["train-images-idx3-ubyte.gz"] = "fashion-train-images-idx3-ubyte.gz",
  ["train-labels-idx1-ubyte.gz"] = "fashion-train-labels-idx1-ubyte.gz",
  ["t10k-images-idx3-ubyte.gz"] = "fashion-test-images-idx3-ubyte.gz",
  ["t10k-labels-idx1-ubyte.gz"] = "fashion-test-labels-idx1-ubyte.gz",
}

-- A mirror <dir>/fashion-mnist/<upstream names> of the local copy, with
-- `damage(name, path)` applied to a copied file when given, and a manifest
-- of the good files' hashes (sha256sum) at <dir>/manifest.
local mirror_count = 0
local function make_mirror(damage)
  mirror_count = mirror_count + 1
  local dir = scratch .. "/mirror" .. mirror_count
  sh("mkdir -p " .. q(dir .. "/fashion-mnist"))
  for name, local_name in pairs(upstream) do
    local path = dir .. "/fashion-mnist/" .. name
    sh("ln -s " .. q(fashion .. "/" .. local_name) .. " " .. q(path))
  end
  sh("cd " .. q(dir) .. " && sha256sum fashion-mnist/* > manifest")
  if damage then damage(dir .. "/fashion-mnist") end
  return dir, "file://" .. dir, dir .. "/manifest"
end

-- A damage function for make_mirror: replaces the link `name` by a file
-- holding edit(its bytes).
local function rewrite(name, edit)
  return function(dir)
    local path = dir .. "/" .. name
    local f = io.open(path, "rb"); local s = f:read("a"); f:close()
    os.remove(path)
    f = io.open(path, "wb"); f:write(edit(s)); f:close()
  end
end

local function flip_byte(name, offset)
  return rewrite(name, function(s)
    return s:sub(1, offset - 1) .. string.char((s:byte(offset) + 1) % 256) .. s:sub(offset + 1)
  end)
end

local function truncate(name, keep)
  return rewrite(name, function(s) return s:sub(1, keep) end)
end

-- ---- everywhere -----------------------------------------------------------------

T.test("list names the catalog with hashes and sizes", function()
  local names = {}
  for _, e in ipairs(sl.data.list()) do
    names[e.name] = e
    for _, f in ipairs(e.files) do
      T.ok(f.sha256:match("^%x+$") and #f.sha256 == 64, e.name .. "/" .. f.name .. " hash")
      T.ok(f.size > 0, f.name .. " size")
    end
  end
  for _, n in ipairs({ "mnist", "fashion-mnist", "cifar10", "mnist10k" }) do
    T.ok(names[n], "catalog lacks " .. n)
  end
  T.eq(#names["fashion-mnist"].files, 4)
  T.eq(names["cifar10"].files[1].name, "cifar-10-binary.tar.gz")
  T.eq(names["mnist10k"].url, nil)
end)

T.test("mnist10k loads from the shipped folder without a cache", function()
  local d = sl.data.load("mnist10k", { root = scratch .. "/never", mirror = "file:///nowhere" })
  local ref = sl.data.idx(sl.data.path("mnist10k"))
  T.eq(d.train:size(), ref.train:size())
  T.eq(d.test:size(), ref.test:size())
  local m1, s1 = d.train:stats()
  local m2, s2 = ref.train:stats()
  T.eq(m1, m2)
  T.eq(s1, s2)
  T.eq(sl.data.load("mnist10k", { split = "test" }):size(), ref.test:size())
  T.ok(not exists(scratch .. "/never"), "a shipped dataset created a cache folder")
end)

T.test("bad names and options are errors naming them", function()
  T.raises(function() sl.data.load("imagenet") end, "no dataset 'imagenet'")
  T.raises(function() sl.data.load("mnist10k", { split = "valid" }) end, "unknown split 'valid'")
  T.raises(function() sl.data.load("mnist10k", { roots = "/x" }) end, "unknown option 'roots'")
  T.raises(function() sl.data.load("mnist10k", { progress = "sometimes" }) end, "progress")
  T.raises(function() sl.data.get("mnist", { root = 7 }) end, "option 'root' must be a string")
end)

T.test("root follows the option", function()
  T.eq(sl.data.root({ root = "/some/where" }), "/some/where")
  T.ok(#sl.data.root() > 0)
end)

T.test("no mirror and no network: the error names the URL", function()
  -- A proxy nobody answers on stands for a machine without a network.
  local code, out = run("all_proxy=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 " ..
    "no_proxy= NO_PROXY= SYMLAB_DATA_MIRROR= SYMLAB_DATA=" .. q(scratch .. "/offline") .. " " ..
    q(symlab_bin) .. " data get fashion-mnist")
  T.eq(code, 1, out)
  T.ok(out:find("symlab: fashion-mnist: ", 1, true), out)
  T.ok(out:find("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
                1, true), out)
  T.eq(select(2, out:gsub("\n", "")), 1, "one line: " .. out)
  T.eq(listing(scratch .. "/offline/fashion-mnist"), "")
end)

T.test("symlab data: usage errors", function()
  local code, out = run(q(symlab_bin) .. " data")
  T.eq(code, 2, out)
  code, out = run(q(symlab_bin) .. " data get")
  T.eq(code, 2, out)
  T.ok(out:find("which dataset", 1, true), out)
  code, out = run(q(symlab_bin) .. " data get imagenet")
  T.eq(code, 1, out)
  T.ok(out:find("no dataset 'imagenet'", 1, true), out)
  code, out = run("SYMLAB_DATA=" .. q(scratch .. "/listed") .. " " .. q(symlab_bin) .. " data list")
  T.eq(code, 0, out)
  T.ok(out:find("mnist10k%s+shipped"), out)
  T.ok(out:find("cache: " .. scratch .. "/listed", 1, true), out)
end)

-- libcurl, libcrypto and libarchive live in the download module, which
-- must stay unmapped until a download, hash or archive read needs it: in
-- libsymlab they made `symlab plugins` start in 36.5 ms instead of 14.9.  A fresh process
-- reports its own mappings (Linux's /proc) before and after asking.
T.test("the download libraries are mapped at first use, not at start-up", function()
  if not exists("/proc/self/maps") then T.skip("no /proc/self/maps here") end
  local script = scratch .. "/maps.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local sl = require "symlab"
local function mapped()
  local m = assert(io.open("/proc/self/maps")); local s = m:read("a"); m:close()
  return s:find("libcurl", 1, true) ~= nil, s:find("download.so", 1, true) ~= nil
end
local net = sl.nn.sequential({ sl.nn.linear(4, 2) }, { seed = 1 })
net:forward(sl.tensor.zeros({ 3, 4 }))
local curl0, module0 = mapped()
local ok = sl.data.download_supported()
local curl1, module1 = mapped()
print(("start curl=%s module=%s; supported=%s; after curl=%s module=%s")
      :format(curl0, module0, ok, curl1, module1))
]])
  f:close()
  local code, out = run(q(symlab_bin) .. " " .. q(script))
  T.eq(code, 0, out)
  T.ok(out:find("start curl=false module=false", 1, true), out)
  if out:find("supported=true", 1, true) then
    T.ok(out:find("after curl=true module=true", 1, true), out)
  end
end)

T.test("cifar10 reads a folder of binary batches", function()
  -- Record r: label (r * 3) % 10, pixel j = (r * 37 + j * 11) % 256.
  local dir = scratch .. "/cifar-10-batches-bin"
  sh("mkdir -p " .. q(dir))
  local function batch(name, first, n)
    local parts = {}
    for r = first, first + n - 1 do
      parts[#parts + 1] = string.char((r * 3) % 10)
      local px = {}
      for j = 0, 3071 do px[j + 1] = string.char((r * 37 + j * 11) % 256) end
      parts[#parts + 1] = table.concat(px)
    end
    local f = io.open(dir .. "/" .. name, "wb"); f:write(table.concat(parts)); f:close()
  end
  for b = 1, 5 do batch("data_batch_" .. b .. ".bin", b - 1, 1) end
  batch("test_batch.bin", 10, 2)
  local d = sl.data.cifar10(dir)
  T.eq(d.train:size(), 5)
  T.eq(d.test:size(), 2)
  local shape = d.test.x:shape()
  T.eq(#shape, 4); T.eq(shape[2], 3); T.eq(shape[3], 32); T.eq(shape[4], 32)
  for r = 0, 4 do T.eq(d.train.y:get(r + 1), (r * 3) % 10, "train label " .. r) end
  T.eq(d.test.y:get(2), (11 * 3) % 10)
  -- channel c, row i, column j is pixel index c*1024 + i*32 + j of the record
  T.near(d.test.x:get(2, 2, 3, 4), ((11 * 37 + (1024 + 2 * 32 + 3) * 11) % 256) / 255, 1e-7)
  T.eq(sl.data.cifar10(dir, "test"):size(), 2)
  T.raises(function() sl.data.cifar10(scratch .. "/none", "test") end, "cannot open")
end)

-- ---- through a file:// mirror of the local copy ---------------------------------

T.test("fashion-mnist through a mirror: downloaded, verified, read", function()
  needs_fashion()
  local _, url, manifest = make_mirror()
  local root = scratch .. "/cache-good"
  local done = {}
  local d = sl.data.load("fashion-mnist", { root = root, mirror = url, manifest = manifest,
    progress = function(file, got, total)
      T.ok(got <= total or total == -1, "progress beyond the total")
      if got == total then done[file] = got end
    end })
  T.eq(d.train:size(), 60000)
  T.eq(d.test:size(), 10000)
  for name, local_name in pairs(upstream) do
    local f = io.open(fashion .. "/" .. local_name, "rb")
    local size = f:seek("end"); f:close()
    T.eq(done[name], size, name .. " final progress")
    T.ok(exists(root .. "/fashion-mnist/" .. name), name .. " not in the cache")
  end
  T.ok(not listing(root .. "/fashion-mnist"):find(".tmp.", 1, true), "temporary file left")
  -- The same data as the local copy read directly.
  local ref = sl.data.idx(fashion)
  T.eq(ref.train:size(), 60000)
  local m1, s1 = d.test:stats()
  local m2, s2 = ref.test:stats()
  T.eq(m1, m2)
  T.eq(s1, s2)
  for i = 1, 100 do T.eq(d.train.y:get(i), ref.train.y:get(i), "train label " .. i) end
  -- Cached now: a dead mirror does not matter.
  local again = sl.data.load("fashion-mnist", { root = root, mirror = "file:///nowhere",
                                                manifest = manifest, split = "test" })
  T.eq(again:size(), 10000)
end)

T.test("the repaired copy fails the upstream hashes without a manifest", function()
  needs_fashion()
  local _, url = make_mirror()
  local root = scratch .. "/cache-strict"
  local want
  for _, e in ipairs(sl.data.list()) do
    if e.name == "fashion-mnist" then want = e.files[1].sha256 end
  end
  local err = T.raises(function()
    sl.data.load("fashion-mnist", { root = root, mirror = url, progress = "never" })
  end, "SHA-256 mismatch")
  T.ok(err:find(url .. "/fashion-mnist/train-images-idx3-ubyte.gz", 1, true), err)
  T.ok(err:find(want, 1, true), err)
  T.eq(listing(root .. "/fashion-mnist"), "")
end)

T.test("a corrupted mirror file is refused and nothing is cached", function()
  needs_fashion()
  local _, url, manifest = make_mirror(flip_byte("t10k-labels-idx1-ubyte.gz", 100))
  local root = scratch .. "/cache-corrupt"
  local good = io.popen("sha256sum " .. q(fashion .. "/fashion-test-labels-idx1-ubyte.gz")):read("l"):match("^%x+")
  local err = T.raises(function()
    sl.data.get("fashion-mnist", { root = root, mirror = url, manifest = manifest, progress = "never" })
  end, "SHA-256 mismatch")
  T.ok(err:find(url .. "/fashion-mnist/t10k-labels-idx1-ubyte.gz", 1, true), err)
  T.ok(err:find("expected " .. good, 1, true), err)
  T.ok(err:match("got (%x+)") and err:match("got (%x+)") ~= good, err)
  T.ok(not exists(root .. "/fashion-mnist/t10k-labels-idx1-ubyte.gz"), "corrupt file cached")
  T.ok(not listing(root .. "/fashion-mnist"):find(".tmp.", 1, true), "temporary file left")
end)

T.test("a truncated mirror file is refused and nothing is cached", function()
  needs_fashion()
  local _, url, manifest = make_mirror(truncate("train-labels-idx1-ubyte.gz", 20000))
  local root = scratch .. "/cache-truncated"
  local err = T.raises(function()
    sl.data.load("fashion-mnist", { root = root, mirror = url, manifest = manifest, progress = "never" })
  end, "SHA-256 mismatch")
  T.ok(err:find("(20000 bytes)", 1, true), err)
  T.ok(not exists(root .. "/fashion-mnist/train-labels-idx1-ubyte.gz"), "truncated file cached")
  T.ok(not listing(root .. "/fashion-mnist"):find(".tmp.", 1, true), "temporary file left")
end)

T.test("an error in the progress function cancels and is raised", function()
  needs_fashion()
  local _, url, manifest = make_mirror()
  local root = scratch .. "/cache-cancel"
  T.raises(function()
    sl.data.get("fashion-mnist", { root = root, mirror = url, manifest = manifest,
                                   progress = function() error("stop here") end })
  end, "stop here")
  T.eq(listing(root .. "/fashion-mnist"), "")
end)

T.test("symlab data get through the mirror variables", function()
  needs_fashion()
  local _, url, manifest = make_mirror()
  local env = "SYMLAB_DATA=" .. q(scratch .. "/cache-cli") .. " SYMLAB_DATA_MIRROR=" .. q(url) ..
              " SYMLAB_DATA_MANIFEST=" .. q(manifest) .. " "
  local code, out = run(env .. q(symlab_bin) .. " data get fashion-mnist mnist10k")
  T.eq(code, 0, out)
  T.ok(out:find(scratch .. "/cache-cli/fashion-mnist\n", 1, true), out)
  T.ok(out:find("mnist10k\n", 1, true), out)
  code, out = run(env .. q(symlab_bin) .. " data list")
  T.eq(code, 0, out)
  T.ok(out:find("fashion%-mnist%s+cached"), out)
  T.ok(out:find("mnist%s+%-"), out)
end)

T.test("cleanup", function() sh("rm -rf " .. q(scratch)) end)

T.run()
