#!/bin/bash
# bench/run.sh — every symlab benchmark in one command; prints the tables.
#
#   bash bench/run.sh            (from a build directory; or `make bench`)
#   REPS=5 THREADS="1 2" bash bench/run.sh
#
# Contenders: symlab (bench/mlp_symlab.lua), PyTorch (bench/mlp_torch.py,
# Debian's python3-torch under /usr/bin/python3) and the GEMM floor
# (bench/gemm_floor: only the matrix products of a training step, through
# the same OpenBLAS).  All share the process environment, so all run the
# same OpenBLAS kernel (OPENBLAS_CORETYPE, printed below) and the same
# thread count (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = symlab --threads =
# torch.set_num_threads).  The machine may be shared and noisy, so the
# contenders are interleaved (symlab, torch, floor, symlab, torch, floor,
# ...), each figure is the median of REPS processes (each itself a median of
# a few epochs), and the tables report ratios from this one run.
#
# PyTorch: if `import torch` fails and we are root on a Debian-like system,
# `apt-get install -y python3-torch` is tried once; otherwise, or if that
# fails, the PyTorch columns read "-" and everything else still runs.
# Raw key=value lines are kept in $OUT (default bench-results/raw.txt).
set -u

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$PWD}
REPS=${REPS:-3}
THREADS=${THREADS:-"1 2"}
BATCHES=${BATCHES:-16,64,256}
CONTEND=${CONTEND:-0}
SUFFIX=; [ "$CONTEND" = 1 ] && SUFFIX=-contend
OUT=${OUT:-$BUILD/bench-results/raw$SUFFIX.txt}
PY=/usr/bin/python3

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$BUILD/symlab" ] || die "no ./symlab in $BUILD: run from a configured build directory (make bench), or set BUILD"
for prog in gemm_floor qc_bench; do
  if [ ! -x "$BUILD/bench/$prog" ]; then
    (cd "$BUILD" && make "bench/$prog" >/dev/null) || die "cannot build bench/$prog"
  fi
done
[ -x "$PY" ] || die "$PY is needed for the tables (apt-get install python3)"

have_torch() { "$PY" -c "import torch" >/dev/null 2>&1; }
TORCH=1
if ! have_torch; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing python3-torch (apt-get install -y python3-torch) ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch >/dev/null 2>&1; }
  fi
  have_torch || { TORCH=0; echo "bench: PyTorch not available; its columns are skipped" >&2; }
fi

# CONTEND=1: every row runs beside one other CPU-bound process (a shell
# busy loop started here and stopped at the end), as a sweep of several
# symlab processes or another user would load the machine.  The threads
# table then says whether --threads 2 still gains, or at least does not
# lose, when one of the two cores is taken.  Raw lines go to
# bench-results/raw-contend.txt unless OUT is set.  Usage:
#   CONTEND=1 THREADS="1 2" bash bench/run.sh
if [ "$CONTEND" = 1 ]; then
  bash -c 'while :; do :; done' &
  HOG=$!
  trap 'kill "$HOG" 2>/dev/null' EXIT
  echo "bench: CONTEND=1: one CPU-bound process (pid $HOG) runs beside every row" >&2
fi

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
# Nets: name, symlab/torch argument, floor sizes (none for the CNN), samples.
NETS=("mlp 784,256,256,10 784,256,256,10 4096"
      "wide 784,1024,1024,10 784,1024,1024,10 2048"
      "cnn cnn - 4096")

{
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
       "flags: $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "os: $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), kernel $(uname -r)"
  echo "openblas: $(dpkg-query -W -f='${Package} ${Version}' 'libopenblas0-pthread' 2>/dev/null || echo '?')," \
       "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
  if [ $TORCH = 1 ]; then
    echo "torch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  else
    echo "torch: not available"
  fi
  echo "symlab: $("$BUILD/symlab" --version 2>/dev/null | head -1)"
  echo "reps: $REPS, threads: $THREADS, batches: $BATCHES, contend: $CONTEND"
} | tee "$OUT.env"

cd "$BUILD" || exit 1
for rep in $(seq "$REPS"); do
  echo "bench: repetition $rep of $REPS ..." >&2
  for t in $THREADS; do
    export OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t
    for spec in "${NETS[@]}"; do
      set -- $spec
      name=$1 arg=$2 sizes=$3 samples=$4
      ./symlab --threads "$t" "$SRC/bench/mlp_symlab.lua" "$arg" "$BATCHES" "$samples" 3 |
        sed "s/^/tool=symlab name=$name /" >>"$OUT" || die "symlab failed on $name"
      if [ $TORCH = 1 ]; then
        "$PY" "$SRC/bench/mlp_torch.py" "$t" "$arg" "$BATCHES" "$samples" 3 |
          sed "s/^/tool=torch name=$name /" >>"$OUT" || die "PyTorch failed on $name"
      fi
      if [ "$sizes" != - ]; then
        ./bench/gemm_floor --threads "$t" --reps 3 --samples "$samples" "$sizes" ${BATCHES//,/ } |
          sed "s/^/tool=floor name=$name /" >>"$OUT" || die "gemm_floor failed"
      fi
    done
  done
done
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS

# Start-up: `symlab plugins` discovers and loads every plugin on the search
# path.  In a build tree ./symlab is libtool's wrapper script (a bash that
# sets LD_LIBRARY_PATH, then execs .libs/symlab); the real executable is
# timed, as an installed symlab would run.
echo "bench: start-up time ..." >&2
exe=./symlab
[ -x .libs/symlab ] && exe=.libs/symlab
export LD_LIBRARY_PATH="$BUILD/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nplugins=$("$exe" plugins 2>/dev/null | grep -o '[^ /]*\.so$' | sort -u | grep -c .)
"$PY" - "$exe" "$nplugins" >>"$OUT" <<'PYEOF'
import subprocess, sys, time
exe, n = sys.argv[1], sys.argv[2]
ts = []
for i in range(21):
    t0 = time.perf_counter()
    subprocess.run([exe, "plugins"], stdout=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - t0)
ts.sort()
print("startup tool=symlab name=startup plugins=%s ms=%.1f" % (n, ts[len(ts) // 2] * 1e3))
PYEOF

"$PY" "$SRC/bench/tables.py" "$OUT"

# The quantum kernel (issue 6 part 3): one cost evaluation of the benchmark
# circuit with amplitude damping after every gate.  QC_SIZES="6 8 10 12" by
# default; n = 12 takes about half a minute per thread count.
echo "bench: quantum circuit ..." >&2
[ "$CONTEND" = 1 ] && exit 0 # the rows above are what contention is about
./bench/qc_bench ${QC_SIZES:-6 8 10 12} || die "qc_bench failed"
