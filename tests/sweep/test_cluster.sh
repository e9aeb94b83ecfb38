#!/usr/bin/env bash
# tests/sweep/test_cluster.sh — the test sweep four ways, with the real
# engines (run by `make check-cluster`): in one process, `sweep run --jobs
# 2`, under OpenMPI's mpirun (3 ranks striding over 8 tasks), under GNU
# parallel when it is installed, and as a Slurm
# job array plus dependent gather job on a single-node cluster this test
# starts and stops itself.  The gathered tables must be identical in every
# column but wall time.  A part whose engine is not installed is skipped with
# the reason; exit 77 when both are.
. "${SYMLAB_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/sweep/lib.sh"
. "$SRCDIR/tests/sweep/slurm_cluster.sh"

run_one_process "$tmp/one"
ref=$tmp/one/tiny_mlp
"$SYMLAB" --threads 1 sweep run "$SWEEP" --jobs 2 --dir "$tmp/jobs" >"$tmp/jobs.log" 2>&1 &&
    "$SYMLAB" sweep gather "$tmp/jobs" >>"$tmp/jobs.log" 2>&1 || { cat "$tmp/jobs.log"; fail "sweep run --jobs 2"; }
same_tables "one process = sweep run --jobs 2" "$ref" "$tmp/jobs"
skipped=0

# ---- mpirun: symlab links no MPI; each rank reads OMPI_COMM_WORLD_RANK/SIZE.
if command -v mpirun >/dev/null 2>&1; then
    root=()
    [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
    if mpirun "${root[@]}" --oversubscribe -np 3 "$SYMLAB" --threads 1 sweep task "$SWEEP" \
           --dir "$tmp/mpi" >"$tmp/mpi.log" 2>&1 &&
       "$SYMLAB" sweep gather "$tmp/mpi" >>"$tmp/mpi.log" 2>&1; then
        same_tables "one process = mpirun -np 3" "$ref" "$tmp/mpi"
    else
        cat "$tmp/mpi.log"; fail "mpirun -np 3 symlab sweep task"
    fi
else
    echo "skip   mpirun: not installed (Debian: openmpi-bin)"; skipped=$((skipped + 1))
fi

# ---- GNU parallel: task PARALLEL_SEQ - 1 per job.
if command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q "GNU parallel"; then
    if seq 8 | parallel -N0 -j2 "$SYMLAB" --threads 1 sweep task "$SWEEP" --dir "$tmp/parallel" \
           >"$tmp/parallel.log" 2>&1 &&
       "$SYMLAB" sweep gather "$tmp/parallel" >>"$tmp/parallel.log" 2>&1; then
        same_tables "one process = GNU parallel -j2" "$ref" "$tmp/parallel"
    else
        cat "$tmp/parallel.log"; fail "GNU parallel symlab sweep task"
    fi
else
    echo "skip   GNU parallel: not installed (Debian: parallel)"
fi

# ---- Slurm: a job array and a dependent gather job.
if why=$(cluster_why_not); then
    echo "skip   slurm: $why"; skipped=$((skipped + 1))
elif ! chmod 0755 "$tmp" ||   # munged runs as munge and must reach its socket in there
     ! cluster_start "$tmp/cluster" >"$tmp/cluster.log" 2>&1; then
    cleanup_hooks+=(cluster_stop)
    cat "$tmp/cluster.log"; fail "slurm: the test cluster did not start"
else
    cleanup_hooks+=(cluster_stop)
    t0=$(date +%s)
    if ! "$SYMLAB" --threads 1 sweep slurm "$SWEEP" --dir "$tmp/slurm" >"$tmp/submit.log" 2>&1; then
        cat "$tmp/submit.log"; fail "slurm: sweep slurm did not submit"
    elif ! cluster_wait '[ -z "$(squeue -h)" ]' 1800; then
        squeue; fail "slurm: the jobs did not finish in 180 s"
    else
        cat "$tmp/submit.log"
        echo "       (jobs done in $(( $(date +%s) - t0 )) s)"
        grep -q "tasks done" "$tmp"/slurm/logs/slurm-gather-*.log 2>/dev/null ||
            fail "slurm: the gather job left no report: $(cat "$tmp"/slurm/logs/slurm-gather-*.log 2>&1)"
        same_tables "one process = Slurm array + gather job" "$ref" "$tmp/slurm"
    fi
    cluster_stop
fi

finish || exit 1
[ "$skipped" -lt 2 ] || exit 77
