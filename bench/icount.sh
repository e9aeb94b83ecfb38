#!/bin/bash
# bench/icount.sh — a performance regression guard that noise cannot move:
# instruction counts of the hot paths, compared with a committed baseline.
#
#   make bench-icount                     (from a configured build directory)
#   ICOUNT_UPDATE=1 make bench-icount     rewrite the baseline (commit it with
#                                         the change that earns it)
#
# Timings on shared machines swing by 30 % or more; the number of
# instructions a run executes does not.  As SQLite guards its speed with
# cachegrind, this counts instructions under valgrind (cachegrind without
# cache simulation, the cheapest tool that counts) for each workload of
# bench/icount.lua, run twice with LO and HI repetitions after the same
# set-up: (count(HI) - count(LO)) / ((HI - LO) * units) is the steady-state
# cost of one unit (one training step, one evaluation, one circuit cost)
# with start-up, data loading and buffer growth cancelled out.
#
# A row fails when it executes more than ICOUNT_TOLERANCE percent (default 5)
# more instructions than its baseline; a row more than that below its
# baseline only prints a hint to update it.  Exit status: 0 all rows within
# tolerance (or baseline written), 1 a regression, 2 the guard could not run.
#
# What makes the counts repeatable across machines: one thread everywhere
# (symlab --threads 1, OPENBLAS_NUM_THREADS=1), and one OpenBLAS kernel
# (OPENBLAS_CORETYPE=Haswell, the AVX2 kernels every x86-64 CI machine here
# can run; valgrind does not emulate AVX-512, so under valgrind symlab's own
# target_clones kernels pick their AVX2 clones too).  The counts do depend on
# the compiler and its flags: the baseline records both, and a build whose
# compiler differs from the baseline's is refused with exit 2 rather than
# compared.
set -u

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$PWD}
BASELINE=${ICOUNT_BASELINE:-$SRC/bench/icount-baseline.txt}
TOL=${ICOUNT_TOLERANCE:-5}
UPDATE=${ICOUNT_UPDATE:-0}

die() { echo "bench-icount: $*" >&2; exit 2; }

[ -x "$BUILD/symlab" ] && [ -x "$BUILD/libtool" ] || die "no ./symlab in $BUILD: run from a configured build directory (make bench-icount), or set BUILD"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install -y valgrind)"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell

# The build's compiler, as the baseline records it: the first line of
# $CC --version from config.status (the compiler configure chose).
CC_USED=$(sed -n 's/^S\["CC"\]="\(.*\)"$/\1/p' "$BUILD/config.status" 2>/dev/null)
COMPILER=$(${CC_USED:-cc} --version 2>/dev/null | head -n 1)
[ -n "$COMPILER" ] || die "cannot tell the compiler from $BUILD/config.status"

# instructions WHAT REPS: the I refs of one run of bench/icount.lua.
instructions() {
  local out
  # ./symlab in a build tree is libtool's wrapper script: libtool runs
  # valgrind on the real executable with the uninstalled library path.
  out=$(cd "$BUILD" && ./libtool --mode=execute valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
          ./symlab --threads 1 "$SRC/bench/icount.lua" "$1" "$2" 2>&1) ||
    { printf '%s\n' "$out" | tail -n 5 >&2; die "bench/icount.lua $1 $2 failed under valgrind"; }
  printf '%s\n' "$out" | awk '/I[ ]+refs:/ { gsub(",", "", $NF); n = $NF } END { if (n == "") exit 1; print n }' ||
    die "no instruction count in valgrind's output for $1 $2"
}

# Rows: name, workload, units per repetition, unit, LO, HI.
ROWS=("mlp_step mlp 16 step 1 2"
      "cnn_step cnn 16 step 1 2"
      "mlp_infer infer 1 evaluation_of_1024 1 2"
      "qc_cost qc 1 cost_n8 1 2")

declare -A base
if [ "$UPDATE" != 1 ]; then
  [ -r "$BASELINE" ] || die "no baseline $BASELINE (ICOUNT_UPDATE=1 make bench-icount writes one)"
  base_compiler=$(sed -n 's/^# compiler: //p' "$BASELINE")
  [ "$base_compiler" = "$COMPILER" ] ||
    die "the baseline was counted with '$base_compiler', this build uses '$COMPILER': counts are not comparable (ICOUNT_UPDATE=1 to recount)"
  while read -r name count _; do
    case $name in ''|'#'*) continue ;; esac
    base[$name]=$count
  done <"$BASELINE"
fi

echo "bench-icount: instructions per unit, valgrind $(valgrind --version | sed 's/valgrind-//'), $COMPILER, tolerance ${TOL} %"
printf '%-10s %-20s %15s %15s %8s  %s\n' row unit instructions baseline change verdict
tmp=$(mktemp -d) || die "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT
status=0
new=()
for row in "${ROWS[@]}"; do
  read -r name what units unit lo hi <<<"$row"
  # The two runs are independent processes: run them side by side.
  instructions "$what" "$lo" >"$tmp/lo" & lo_pid=$!
  instructions "$what" "$hi" >"$tmp/hi" & hi_pid=$!
  wait "$lo_pid" && wait "$hi_pid" || exit 2
  a=$(cat "$tmp/lo") b=$(cat "$tmp/hi")
  per=$(( (b - a) / ((hi - lo) * units) ))
  new+=("$name $per $unit")
  if [ "$UPDATE" = 1 ]; then
    printf '%-10s %-20s %15d %15s %8s  %s\n' "$name" "$unit" "$per" - - recorded
    continue
  fi
  ref=${base[$name]:-}
  if [ -z "$ref" ]; then
    printf '%-10s %-20s %15d %15s %8s  %s\n' "$name" "$unit" "$per" - - "FAIL: not in the baseline"
    status=1
    continue
  fi
  change=$(awk -v p="$per" -v r="$ref" 'BEGIN { printf "%+.2f%%", 100 * (p - r) / r }')
  verdict=$(awk -v p="$per" -v r="$ref" -v t="$TOL" 'BEGIN {
    if (p > r * (1 + t / 100)) print "FAIL: more instructions than the baseline allows";
    else if (p < r * (1 - t / 100)) print "ok (faster: ICOUNT_UPDATE=1 to lower the baseline)";
    else print "ok" }')
  case $verdict in FAIL*) status=1 ;; esac
  printf '%-10s %-20s %15d %15d %8s  %s\n' "$name" "$unit" "$per" "$ref" "$change" "$verdict"
done

if [ "$UPDATE" = 1 ]; then
  {
    echo "# bench/icount-baseline.txt — instructions per unit, written by"
    echo "# ICOUNT_UPDATE=1 make bench-icount (bench/icount.sh); update it in the"
    echo "# commit that earns the change.  Columns: row, instructions, unit."
    echo "# compiler: $COMPILER"
    echo "# valgrind: $(valgrind --version)"
    printf '%s\n' "${new[@]}"
  } >"$BASELINE.tmp" && mv "$BASELINE.tmp" "$BASELINE" || die "cannot write $BASELINE"
  echo "bench-icount: wrote $BASELINE"
fi
exit $status
