#!/bin/bash
# bench/sweep_speedup.sh — wall time of a sweep run serially (one process,
# `symlab FILE DIR`) against `symlab sweep run FILE --jobs J`, both at one
# thread per task, and a check that both gathered the same tables.
#
#   bash bench/sweep_speedup.sh [SWEEP_FILE]     (from a build directory)
#   JOBS=2 REPS=3 bash bench/sweep_speedup.sh scripts/repro/syre.lua
#   SWEEP_TEST_EPOCHS=5 bash bench/sweep_speedup.sh tests/sweep/tiny_mlp.lua   (a smoke run)
#
# Default sweep: scripts/repro/syre.lua (90 tasks).  Each figure is the
# median of REPS runs, serial and parallel interleaved; the goal on two idle
# cores is a speed-up of at least 1.7.  Run it on an otherwise idle machine.
set -eu

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYMLAB=${SYMLAB:-$PWD/symlab}
FILE=${1:-$SRC/scripts/repro/syre.lua}
JOBS=${JOBS:-2}
REPS=${REPS:-3}
[ -x "$SYMLAB" ] || { echo "no symlab at $SYMLAB: run from a build directory or set SYMLAB"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for ((r = 1; r <= REPS; r++)); do
    rm -rf "$tmp/serial" "$tmp/jobs"
    t0=$(now)
    "$SYMLAB" --threads 1 "$FILE" "$tmp/serial" >"$tmp/serial.log" 2>&1 ||
        { cat "$tmp/serial.log"; exit 1; }
    t1=$(now)
    "$SYMLAB" --threads 1 sweep run "$FILE" --jobs "$JOBS" --dir "$tmp/jobs" >"$tmp/jobs.log" 2>&1 &&
        "$SYMLAB" sweep gather "$tmp/jobs" >>"$tmp/jobs.log" 2>&1 || { cat "$tmp/jobs.log"; exit 1; }
    t2=$(now)
    echo "$t0 $t1" | awk '{ print $2 - $1 }' >>"$tmp/serial.times"
    echo "$t1 $t2" | awk '{ print $2 - $1 }' >>"$tmp/jobs.times"
    name=$(ls "$tmp/serial")
    cmp -s "$tmp/serial/$name/summary.csv" "$tmp/jobs/summary.csv" ||
        { echo "the serial and --jobs $JOBS summaries differ"; diff "$tmp/serial/$name/summary.csv" "$tmp/jobs/summary.csv" | head; exit 1; }
done
serial=$(median <"$tmp/serial.times")
jobs=$(median <"$tmp/jobs.times")
printf 'sweep %s, %d reps (median), %s cores\n' "$(basename "$FILE")" "$REPS" "$(nproc)"
printf '  serial (one process)       %8.2f s\n' "$serial"
printf '  sweep run --jobs %-2d        %8.2f s\n' "$JOBS" "$jobs"
printf '  speed-up                   %8.2f x   (same summary.csv: yes)\n' \
    "$(echo "$serial $jobs" | awk '{ print $1 / $2 }')"
