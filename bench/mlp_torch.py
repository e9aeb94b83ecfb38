#!/usr/bin/python3
"""bench/mlp_torch.py — PyTorch's side of the comparison (bench/run.sh).

    /usr/bin/python3 bench/mlp_torch.py THREADS NET BATCHES [SAMPLES] [REPS]

The same experiment as bench/mlp_symlab.lua (see there): same net (NET a
list of layer sizes, or "cnn"), PyTorch's default initialisation (which is
the scheme symlab's linear and conv2d use), the first SAMPLES standardised
MNIST-10k training images read from symlab's data/mnist10k, SGD with
momentum 0.9, cross-entropy, shuffled batches with the short one dropped.
A step is timed end to end: index the shuffled batch, forward, loss,
backward, optimizer step.  One warm-up epoch, then the median of REPS.
Inference: forward + loss + argmax under torch.no_grad() over the first
2000 test images in batches of B.  Prints the same key=value lines.
"""
import gzip
import os
import resource
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("SYMLAB_DATA", os.path.join(HERE, "..", "data", "mnist10k"))


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    t = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(shape)


def build(net):
    nn = torch.nn
    if net == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    sizes = [int(s) for s in net.split(",")]
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


def main():
    threads = int(sys.argv[1])
    net_arg = sys.argv[2] if len(sys.argv) > 2 else "784,256,256,10"
    batches = [int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "16,64,256").split(",")]
    samples = int(sys.argv[4]) if len(sys.argv) > 4 else 8192
    reps = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    torch.set_num_threads(threads)
    torch.manual_seed(1)

    x = read_idx("mnist10k-train-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    y = read_idx("mnist10k-train-labels-idx1-ubyte.gz").long()
    tx = read_idx("mnist10k-test-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    ty = read_idx("mnist10k-test-labels-idx1-ubyte.gz").long()
    mean, std = x.mean().item(), x.std().item()
    x = ((x - mean) / std)[:samples].contiguous()
    y = y[:samples].contiguous()
    tx = ((tx - mean) / std)[:2000].contiguous()
    ty = ty[:2000].contiguous()
    loss_fn = torch.nn.functional.cross_entropy

    for b in batches:
        model = build(net_arg)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        steps = samples // b
        times = []
        for epoch in range(reps + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(samples)
            for s in range(steps):
                idx = perm[s * b:(s + 1) * b]
                xb, yb = x[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
            if epoch > 0:
                times.append(time.perf_counter() - t0)
        t = median(times)
        print("train net=%s batch=%d threads=%d us_step=%.1f samples_s=%.0f"
              % (net_arg, b, threads, t / steps * 1e6, steps * b / t), flush=True)
        inf = []
        with torch.no_grad():
            for rep in range(reps + 1):
                t0 = time.perf_counter()
                correct = 0
                for s in range(0, tx.shape[0], b):
                    out = model(tx[s:s + b])
                    loss_fn(out, ty[s:s + b])
                    correct += (out.argmax(1) == ty[s:s + b]).sum().item()
                if rep > 0:
                    inf.append(time.perf_counter() - t0)
        print("infer net=%s batch=%d threads=%d samples_s=%.0f"
              % (net_arg, b, threads, tx.shape[0] / median(inf)), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("rss net=%s threads=%d peak_kb=%d" % (net_arg, threads, peak))


if __name__ == "__main__":
    main()
