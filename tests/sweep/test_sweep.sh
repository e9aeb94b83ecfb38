#!/usr/bin/env bash
# tests/sweep/test_sweep.sh — sweeps on this machine (run by `make check`):
# one process vs `sweep run --jobs 2` give the same tables; a SIGKILLed sweep
# resumes with only its missing tasks and ends with the same table; a task
# that raises a Lua error leaves an error row, fails `sweep run` and is
# reported by gather and status.
. "${SYMLAB_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/sweep/lib.sh"

# ---- one process vs --jobs 2
run_one_process "$tmp/one"
"$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/jobs" >"$tmp/jobs.log" 2>&1 &&
    "$SYMLAB" sweep gather "$tmp/jobs" >>"$tmp/jobs.log" 2>&1 ||
    { cat "$tmp/jobs.log"; fail "sweep run --jobs 2 failed"; }
same_tables "one process = sweep run --jobs 2" "$tmp/one/tiny_mlp" "$tmp/jobs"
grep -q "^0,1,8,0.050000000000000003," "$tmp/jobs/sweep.csv" ||
    fail "task 0 is not (hidden 8, lr 0.05, seed 1): $(sed -n 2p "$tmp/jobs/sweep.csv")"

# A second run finds every row and runs nothing.
out=$("$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/jobs" 2>&1)
case $out in *"ran 0 of 8 tasks"*) ok "a finished sweep runs no task again" ;;
             *) fail "re-running a finished sweep: $out" ;; esac

# A grid changed under a directory: status warns, and rows of other configs are stale.
out=$(SWEEP_TEST_SEEDS=3 "$SYMLAB" sweep status "$tmp/jobs" 2>&1); rc=$?
[ "$rc" -eq 1 ] && grep -q "was run with 8 tasks, .*tiny_mlp.lua now defines 12" <<<"$out" &&
    grep -q "12 tasks: 2 done, 0 failed, 4 missing, 6 stale" <<<"$out" &&
    ok "a changed grid: status warns and counts stale rows" || fail "changed grid (exit $rc): $out"

# ---- SIGKILL mid-run, then resume
export SWEEP_TEST_EPOCHS=4000
run_one_process "$tmp/long"
setsid "$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/kill" >"$tmp/kill.log" 2>&1 &
pid=$!
for _ in $(seq 600); do   # at most 60 s
    n=$(ls "$tmp/kill/rows" 2>/dev/null | grep -c '\.lua$' || true)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
kill -KILL -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null
before=$(ls "$tmp/kill/rows" | grep -c '\.lua$' || true)
if [ "$before" -lt 2 ] || [ "$before" -ge 8 ]; then
    fail "kill: wanted a sweep killed with 2..7 of 8 rows, got $before (tasks too fast or too slow?)"
else
    (cd "$tmp/kill/rows" && md5sum task-*.lua) > "$tmp/kill.sums"
    out=$("$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/kill" 2>&1)
    case $out in *"ran $((8 - before)) of 8 tasks, 0 failed"*) ok "resume runs only the $((8 - before)) missing tasks" ;;
                 *) fail "resume after kill with $before rows: $out" ;; esac
    (cd "$tmp/kill/rows" && md5sum -c --quiet "$tmp/kill.sums") ||
        fail "resume rewrote rows that existed before"
    "$SYMLAB" sweep gather "$tmp/kill" >/dev/null 2>&1 || fail "gather after resume failed"
    same_tables "killed and resumed = uninterrupted" "$tmp/long/tiny_mlp" "$tmp/kill"
fi
unset SWEEP_TEST_EPOCHS

# ---- a task raising a Lua error
SWEEP_TEST_FAIL=16:2 "$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/err" >"$tmp/err.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && ok "sweep run exits non-zero ($rc) when a task fails" ||
    fail "sweep run exited 0 with failing tasks"
for t in 5 7; do
    row=$tmp/err/rows/task-00000$t.lua
    grep -q '\["status"\] = "error"' "$row" && grep -q 'task asked to fail by SWEEP_TEST_FAIL' "$row" &&
        grep -q 'tiny_mlp.lua:[0-9]' "$row" && ok "task $t left an error row with the message and line" ||
        fail "task $t: no error row: $(cat "$row" 2>&1)"
done
out=$("$SYMLAB" sweep gather "$tmp/err" 2>&1); rc=$?
[ "$rc" -ne 0 ] && grep -q "^failed: task 5 (hidden=16 lr=0.05, seed 2): .*task asked to fail" <<<"$out" &&
    grep -q "^failed: task 7 " <<<"$out" && [ "$(wc -l < "$tmp/err/sweep.csv")" -eq 7 ] &&
    ok "gather reports the failed tasks, tabulates the other 6, exits $rc" ||
    fail "gather of a failed sweep (exit $rc): $out"
out=$("$SYMLAB" sweep status "$tmp/err" 2>&1); rc=$?
[ "$rc" -ne 0 ] && grep -q "8 tasks: 6 done, 2 failed, 0 missing" <<<"$out" &&
    ok "status counts done and failed" || fail "status (exit $rc): $out"
out=$("$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/err" 2>&1)
case $out in *"ran 2 of 8 tasks, 0 failed"*) ok "a re-run retries only the failed tasks" ;;
             *) fail "re-run after fixing: $out" ;; esac
SWEEP_TEST_FAIL=8:1 "$SYMLAB" --threads 1 "$SWEEP" "$tmp/err1" >"$tmp/err1.log" 2>&1 &&
    fail "symlab FILE exited 0 with failing tasks" || ok "symlab FILE exits non-zero when a task fails"

# ---- where a task index comes from (the launchers' variables, set by hand)
rows_of() { ls "$1/rows" 2>/dev/null | sed -n 's/^task-0*\([0-9][0-9]*\)\.lua$/\1/p' | sort -n | tr '\n' ' '; }
index_case() {   # index_case WANT NAME VAR=VALUE... -- symlab sweep task options
    local want=$1 name=$2 dir=$tmp/index$((++index_n)); shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    env "${envs[@]}" "$SYMLAB" --threads 1 sweep task "$SWEEP" --dir "$dir" "$@" >"$tmp/index.log" 2>&1 ||
        { fail "$name: exit $?: $(cat "$tmp/index.log")"; return; }
    [ "$(rows_of "$dir")" = "$want" ] && ok "$name runs tasks $want" ||
        fail "$name: ran tasks '$(rows_of "$dir")', wanted '$want'"
}
index_n=0
index_case "3 " "--task 3" -- --task 3
index_case "5 " "SLURM_ARRAY_TASK_ID=5" SLURM_ARRAY_TASK_ID=5 -- 
index_case "2 " "--task before SLURM_ARRAY_TASK_ID" SLURM_ARRAY_TASK_ID=5 -- --task 2
index_case "1 4 7 " "OMPI rank 1 of 3" OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3 --
index_case "0 5 " "PMI rank 0 of 5" PMI_RANK=0 PMI_SIZE=5 --
index_case "2 6 " "PMIX rank 2 with SLURM_NTASKS 4" PMIX_RANK=2 SLURM_NTASKS=4 --
index_case "6 " "SLURM_ARRAY_TASK_ID before the MPI rank" SLURM_ARRAY_TASK_ID=6 OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3 --
index_case "0 " "PARALLEL_SEQ=1 (GNU parallel counts from 1)" PARALLEL_SEQ=1 --
SLURM_CPUS_PER_TASK=3 "$SYMLAB" sweep task "$SWEEP" --task 0 --dir "$tmp/cpus" >/dev/null 2>&1 &&
    grep -q '\["threads"\] = 3,' "$tmp/cpus/rows/task-000000.lua" &&
    ok "SLURM_CPUS_PER_TASK is the default thread count" ||
    fail "SLURM_CPUS_PER_TASK=3: $(cat "$tmp/cpus/rows/task-000000.lua" 2>&1)"
"$SYMLAB" sweep task "$SWEEP" --dir "$tmp/none" 2>"$tmp/bad.log"; rc=$?
[ "$rc" -eq 2 ] && grep -q "no task index" "$tmp/bad.log" && ok "no task index is a usage error" ||
    fail "no task index: exit $rc, $(cat "$tmp/bad.log")"
OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_SIZE=3 "$SYMLAB" sweep task "$SWEEP" --dir "$tmp/none" 2>"$tmp/bad.log"; rc=$?
[ "$rc" -eq 2 ] && grep -q "OMPI_COMM_WORLD_SIZE: expected the world size (> the rank), got '3'" "$tmp/bad.log" &&
    ok "a rank outside its world is refused" || fail "rank 3 of 3: exit $rc, $(cat "$tmp/bad.log")"

# ---- bad command lines
"$SYMLAB" sweep run "$SWEEP" --jobs 0 2>"$tmp/bad.log"; rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--jobs: expected a positive integer, got '0'" "$tmp/bad.log" &&
    ok "--jobs 0 is a usage error" || fail "--jobs 0: exit $rc, $(cat "$tmp/bad.log")"
"$SYMLAB" sweep task "$SWEEP" --task 8 --dir "$tmp/range" 2>"$tmp/bad.log"; rc=$?
[ "$rc" -eq 1 ] && grep -q "task 8 out of range: it has 8 tasks (0..7)" "$tmp/bad.log" &&
    ok "a task index out of range is refused" || fail "--task 8: exit $rc, $(cat "$tmp/bad.log")"
SLURM_ARRAY_TASK_ID=x "$SYMLAB" sweep task "$SWEEP" --dir "$tmp/range" 2>"$tmp/bad.log"; rc=$?
[ "$rc" -eq 2 ] && grep -q "SLURM_ARRAY_TASK_ID: expected a non-negative integer, got 'x'" "$tmp/bad.log" &&
    ok "a bad SLURM_ARRAY_TASK_ID is refused" || fail "SLURM_ARRAY_TASK_ID=x: exit $rc, $(cat "$tmp/bad.log")"
"$SYMLAB" sweep gather "$tmp/nowhere" 2>"$tmp/bad.log"; rc=$?
[ "$rc" -ne 0 ] && grep -q "is not a sweep directory" "$tmp/bad.log" &&
    ok "gather of a non-sweep directory is refused" || fail "gather nowhere: exit $rc, $(cat "$tmp/bad.log")"

finish
