# tests/sweep/lib.sh — shared by the sweep tests (sourced by bash).
#
# Sets SRCDIR, SYMLAB (the built executable), SWEEP (the test sweep file) and
# a temporary directory $tmp removed on exit; gives fail, run_one_process,
# and same_tables DIR1 DIR2, which compares two gathered sweeps bit for bit
# in every column except wall time.
set -u
# The tests say which task runs; a launcher's variables from outside (make
# check inside a Slurm job or under mpirun) must not.
unset SLURM_ARRAY_TASK_ID OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE PMI_RANK PMI_SIZE PMIX_RANK \
      PARALLEL_SEQ SLURM_CPUS_PER_TASK SLURM_NTASKS SLURM_STEP_NUM_TASKS
SRCDIR=${SYMLAB_TEST_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SYMLAB=${SYMLAB:-$PWD/symlab}
SWEEP=$SRCDIR/tests/sweep/tiny_mlp.lua
[ -x "$SYMLAB" ] || { echo "no symlab executable at $SYMLAB (run from the build directory)"; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/symlab-sweep.XXXXXX")
cleanup_hooks=()
cleanup() {
    local h
    for h in "${cleanup_hooks[@]}"; do $h; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

passed=0
failed=0
fail() { echo "FAIL   $*"; failed=$((failed + 1)); }
ok() { echo "ok     $*"; passed=$((passed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# The CSV file $1 without its "wall" column (found by its header).
without_wall() {
    awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "wall") w = i }
                      { if (w) { for (i = w; i < NF; i++) $i = $(i + 1); NF-- } print }' "$1"
}

# same_tables NAME DIR1 DIR2: sweep.csv (less wall time) and summary.csv equal.
same_tables() {
    local name=$1 a=$2 b=$3 f
    for f in "$a/sweep.csv" "$a/summary.csv" "$b/sweep.csv" "$b/summary.csv"; do
        [ -s "$f" ] || { fail "$name: $f is missing"; return 1; }
    done
    [ "$(wc -l < "$a/sweep.csv")" -eq 9 ] || { fail "$name: $a/sweep.csv has not 8 rows"; return 1; }
    if ! diff <(without_wall "$a/sweep.csv") <(without_wall "$b/sweep.csv") >"$tmp/diff" ||
       ! diff "$a/summary.csv" "$b/summary.csv" >>"$tmp/diff"; then
        fail "$name: the tables of $a and $b differ:"; head -n 20 "$tmp/diff"; return 1
    fi
    ok "$name"
}

# The reference: every task in one process (`symlab FILE DIR`), into $1/tiny_mlp.
run_one_process() {
    "$SYMLAB" --threads 1 "$SWEEP" "$1" >"$tmp/one.log" 2>&1 ||
        { cat "$tmp/one.log"; fail "one process: symlab $SWEEP failed"; return 1; }
}
