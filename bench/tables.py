#!/usr/bin/python3
"""bench/tables.py — turns bench/run.sh's raw key=value lines into tables.

    /usr/bin/python3 bench/tables.py bench-results/raw.txt

Every figure is the median over the repetitions (processes) of one
configuration; ratios are formed from those medians, so they come from the
same run.  Prints Markdown tables (pasted as they are into
docs/performance.md)."""
import collections
import statistics
import sys


def load(path):
    rows = collections.defaultdict(list)
    for line in open(path):
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        kind = [w for w in line.split() if "=" not in w]
        if not kind:
            continue
        key = (kind[0], f.get("tool"), f.get("name"), int(f.get("threads", 0)),
               int(f.get("batch", 0)))
        for k, v in f.items():
            try:
                x = float(v)
            except ValueError:
                continue
            rows[key + (k,)].append(x)
    return {k: statistics.median(v) for k, v in rows.items()}


def fmt(x, spec="%.0f"):
    return "-" if x is None else spec % x


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    m = load(sys.argv[1])
    g = m.get
    names = [n for n in ("mlp", "wide", "cnn") if any(k[2] == n for k in m)]
    threads = sorted({k[3] for k in m if k[0] == "train"})
    batches = sorted({k[4] for k in m if k[0] == "train"})
    label = {"mlp": "MLP 784-256-256-10", "wide": "MLP 784-1024-1024-10",
             "cnn": "CNN conv8-pool-conv16-pool-linear"}

    print("\n### Training (samples/s, one SGD step = batch + forward + loss + backward + update)\n")
    print("| net | threads | batch | symlab | PyTorch | symlab/PyTorch | symlab µs/step "
          "| GEMM floor µs/step | symlab/floor | GEMM+update floor µs/step "
          "| symlab/(GEMM+update) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        for t in threads:
            for b in batches:
                s = g(("train", "symlab", n, t, b, "samples_s"))
                p = g(("train", "torch", n, t, b, "samples_s"))
                us = g(("train", "symlab", n, t, b, "us_step"))
                fl = g(("gemm", "floor", n, t, b, "us_step"))
                fu = g(("gemm", "floor", n, t, b, "us_step_sgd"))
                print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    label[n], t, b, fmt(s), fmt(p), fmt(ratio(s, p), "%.2f"), fmt(us),
                    fmt(fl), fmt(ratio(us, fl), "%.2f"), fmt(fu), fmt(ratio(us, fu), "%.2f")))

    if len(threads) > 1:
        print("\n### Threads: training throughput with %d threads over 1 thread\n" % threads[-1])
        print("| net | batch | symlab | PyTorch | GEMM floor |")
        print("|---|---|---|---|---|")
        for n in names:
            for b in batches:
                def sp(tool, kind, key):
                    a = g((kind, tool, n, threads[-1], b, key))
                    o = g((kind, tool, n, 1, b, key))
                    if key == "us_step":
                        a, o = o, a
                    return fmt(ratio(a, o), "%.2f")
                print("| %s | %d | %s | %s | %s |" % (
                    label[n], b, sp("symlab", "train", "samples_s"),
                    sp("torch", "train", "samples_s"), sp("floor", "gemm", "us_step")))

    print("\n### Inference (samples/s: forward + loss + accuracy over 2000 test images)\n")
    print("| net | threads | batch | symlab | PyTorch | symlab/PyTorch |")
    print("|---|---|---|---|---|---|")
    for n in names:
        for t in threads:
            for b in batches:
                s = g(("infer", "symlab", n, t, b, "samples_s"))
                p = g(("infer", "torch", n, t, b, "samples_s"))
                print("| %s | %d | %d | %s | %s | %s |" % (
                    label[n], t, b, fmt(s), fmt(p), fmt(ratio(s, p), "%.2f")))

    print("\n### Peak memory (RSS of the whole process, MB; all batch sizes of one net)\n")
    print("| net | threads | symlab | PyTorch |")
    print("|---|---|---|---|")
    for n in names:
        for t in threads:
            s = g(("rss", "symlab", n, t, 0, "peak_kb"))
            p = g(("rss", "torch", n, t, 0, "peak_kb"))
            print("| %s | %d | %s | %s |" % (label[n], t, fmt(s and s / 1024, "%.1f"),
                                            fmt(p and p / 1024, "%.1f")))

    st = g(("startup", "symlab", "startup", 0, 0, "ms"))
    sp = g(("startup", "symlab", "startup", 0, 0, "plugins"))
    if st is not None:
        print("\n### Start-up\n")
        print("`symlab plugins` (discovers and loads every plugin: %s): median %.1f ms "
              "over 21 runs" % (fmt(sp), st))


if __name__ == "__main__":
    main()
