#!/bin/sh
# tests/fuzz/run.sh SRCDIR BUILDDIR SECONDS [HARNESS...] — `make fuzz`.
#
# Builds each harness with clang and libFuzzer, AddressSanitizer and UBSan,
# compiling libsymlab's sources into it (instrumented for coverage, which a
# prebuilt libsymlab.so is not), then runs it for SECONDS on a scratch copy
# of its corpus with the seeds in tests/fuzz/corpus/<name>/.  New inputs stay
# in the scratch copy; an input that crashes is written as
# tests/fuzz/findings/<name>-crash-<hash>: once the bug is fixed, move it
# into tests/fuzz/corpus/<name>/ so that `make check` replays it for ever.
set -eu
src=$1 build=$2 seconds=$3
shift 3
harnesses=${*:-idx csv safetensors options qcircuit}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "make fuzz: needs clang (apt-get install clang)"; exit 1; }
# The harnesses rewrite a temporary file per input: in memory (/dev/shm)
# that runs some 30 times faster than on ext4, which flushes on truncation.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && TMPDIR=/dev/shm && export TMPDIR
out=$build/tests/fuzz/bin
mkdir -p "$out" "$src/tests/fuzz/findings"
pkgs="openblas lapacke zlib"
# libsymlab built with dataset downloads links these too (configure's choice)
grep -q '^#define SL_HAVE_DOWNLOAD 1' "$build/config.h" && pkgs="$pkgs libcurl libcrypto libarchive"
# shellcheck disable=SC2086
libs=$(pkg-config --libs $pkgs)
# shellcheck disable=SC2086
cflags=$(pkg-config --cflags $pkgs)
# libsymlab's sources: everything in core/ but the executable's own files
core=$(ls "$src"/core/*.c "$src"/core/data/*.c "$src"/core/nn/*.c |
       grep -v -e '/core/main\.c$' -e '/core/datacmd\.c$')
qc=$(ls "$src"/plugins/qcircuit/*.c | grep -v -e '/qcircuit\.c$' -e '/symh\.c$')
for h in $harnesses; do
    extra=
    [ "$h" = qcircuit ] && extra="$qc -I$src/plugins/qcircuit -lpthread"
    echo "== fuzz_$h: building"
    # shellcheck disable=SC2086
    "$CLANG" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -I"$build" -I"$build/include" -I"$src/include" -I"$src/core" $cflags \
        -DSL_BUILD_LIBDIR='"/nonexistent"' -DSL_BUILD_PLUGINDIR='"/nonexistent"' \
        -DSL_BUILD_LUADIR='"/nonexistent"' -DSL_BUILD_DATADIR='"/nonexistent"' \
        -DSL_PLUGINDIR='"/nonexistent"' -DSL_LUADIR='"/nonexistent"' -DSL_DATADIR='"/nonexistent"' \
        "$src/tests/fuzz/fuzz_$h.c" $core $extra $libs -ldl -lm -o "$out/fuzz_$h"
    scratch=$build/tests/fuzz/corpus-$h
    mkdir -p "$scratch"
    echo "== fuzz_$h: ${seconds}s"
    (cd "$out" && SYMLAB_PLUGIN_PATH= ./"fuzz_$h" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$src/tests/fuzz/findings/$h-" "$scratch" "$src/tests/fuzz/corpus/$h")
done
