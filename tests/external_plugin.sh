#!/usr/bin/env bash
# Builds a plugin outside the source tree against an installed symlab (with
# pkg-config only) and uses it from a Lua script via SYMLAB_PLUGIN_PATH; and
# checks that the installed symlab loads its installed download module.
# Usage: tests/external_plugin.sh PREFIX
set -euo pipefail
prefix=$(cd "$1" && pwd)
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PATH="$prefix/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ "$(pkg-config --variable=plugindir symlab)" = "$prefix/lib/symlab/plugins" ] ||
    { echo "external plugin: plugindir is '$(pkg-config --variable=plugindir symlab)'"; exit 1; }
echo "symlab $(pkg-config --modversion symlab), ABI $(pkg-config --variable=abi_major symlab).$(pkg-config --variable=abi_minor symlab)"

cat >"$work/halve.c" <<'C'
/* An out-of-tree plugin: module "halve" (y = x / 2), no parameters. */
#include <symlab/symlab.h>

static int shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

static int create(sl_module *m, const sl_options *o) { (void)m; (void)o; return SL_OK; }

static int forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    (void)m;
    SL_TRY(sl_tensor_copy(out, in));
    return sl_scale(0.5, out);
}

static int backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                    const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)m; (void)in; (void)out;
    if (!grad_in)
        return SL_OK;
    SL_TRY(sl_tensor_copy(grad_in, grad_out));
    return sl_scale(0.5, grad_in);
}

static const sl_module_type halve = {
    .name = "halve", .summary = "y = x / 2", .create = create, .output_shape = shape,
    .forward = forward, .backward = backward};
static const sl_module_type *const modules[] = {&halve, NULL};
static const sl_plugin plugin = {SL_PLUGIN_HEADER, .name = "halve", .version = "1",
                                 .summary = "external test plugin", .modules = modules};
SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
C

mkdir -p "$work/plugins"
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC "$work/halve.c" -o "$work/plugins/halve.so" \
    $(pkg-config --cflags --libs symlab)

cat >"$work/use.lua" <<'LUA'
local sl = require "symlab"
local net = sl.nn.sequential { sl.nn.halve() }
local y = net:forward(sl.tensor.from({ { 2, 4, 6 } }))
assert(y:get(1, 3) == 3, "halve did not halve: " .. tostring(y:get(1, 3)))
print("external plugin ok: " .. y:get(1, 1) .. " " .. y:get(1, 2) .. " " .. y:get(1, 3))
LUA
SYMLAB_PLUGIN_PATH="$work/plugins" LD_LIBRARY_PATH="$prefix/lib" symlab "$work/use.lua"
# The listings are captured before they are searched: `symlab plugins |
# grep -q` lets grep exit at its first match, and under pipefail the
# listing's SIGPIPE (exit 141) would fail the script once it is long enough.
listing=$(SYMLAB_PLUGIN_PATH="$work/plugins" LD_LIBRARY_PATH="$prefix/lib" symlab plugins)
grep -q halve <<<"$listing" || { echo "external plugin halve not listed"; exit 1; }
listing=$(LD_LIBRARY_PATH="$prefix/lib" symlab plugins)
grep -q "example" <<<"$listing" || { echo "installed example plugin not found"; exit 1; }

# A third-party weight layer (the structure tests' dense.c, public headers
# only) built here: the installed symmetry techniques must see it exactly as
# they see linear.
here=$(cd "$(dirname "$0")" && pwd)
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC "$here/plugins/dense.c" -o "$work/plugins/dense.so" \
    $(pkg-config --cflags --libs symlab)
cat >"$work/structure.lua" <<'LUA'
local sl = require "symlab"
local function net(t)
  local m = sl.nn.sequential({ sl.nn[t] { in_features = 4, out_features = 6 }, sl.nn.relu(),
                               sl.nn[t] { in_features = 6, out_features = 3 } }, { dtype = "f64" })
  for i, p in ipairs(m:parameters()) do -- the same weights in both
    local flat = {}
    for k = 1, p.tensor:numel() do flat[k] = math.sin(7 * i + k) end
    p.tensor:assign(sl.tensor.from(flat, p.tensor:shape(), "f64"))
  end
  return m
end
local a, b = net("linear"), net("dense")
assert(b:structure().hidden[1].symmetry == "permute,rescale", "dense is not a weight layer")
local ma, mb = sl.probe.symmetry_metrics(a), sl.probe.symmetry_metrics(b)
local ca, cb = sl.probe.conserved(a), sl.probe.conserved(b)
for k, v in pairs(ma) do assert(mb[k] == v, "symmetry_metrics " .. k) end
for k, v in pairs(ca) do assert(cb[k] == v, "conserved " .. k) end
print("external weight layer: symmetry_metrics and conserved as for linear")
LUA
SYMLAB_PLUGIN_PATH="$work/plugins" LD_LIBRARY_PATH="$prefix/lib" symlab "$work/structure.lua"
# Built with download support, symlab installs its download module in
# $(pkglibdir); the installed symlab must load it from there (not from a
# build tree): a file's hash must then match coreutils'.
if [ -f "$prefix/lib/symlab/download.so" ]; then
    printf 'symlab\n' >"$work/hashme"
    cat >"$work/hash.lua" <<LUA
local sl = require "symlab"
assert(sl.data.download_supported(), "the installed symlab does not load its download module")
local want = "$(sha256sum "$work/hashme" | cut -d' ' -f1)"
local got = sl.data.sha256("$work/hashme")
assert(got == want, "sha256 " .. got .. ", sha256sum " .. want)
print("installed download module: sha256 ok")
LUA
    LD_LIBRARY_PATH="$prefix/lib" symlab "$work/hash.lua"
else
    echo "installed symlab has no download module (built without download support)"
fi
echo "external plugin: passed"
