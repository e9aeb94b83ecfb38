#!/usr/bin/env python3
"""tests/torch_batchnorm.py: PyTorch's side of the batch-norm interop tests.

  torch_batchnorm.py generate DIR
      writes DIR/torch_batchnorm.safetensors, the state_dict of
      Sequential(Linear(4, 3), BatchNorm1d(3)) after 5 training batches
      (so num_batches_tracked is 5), and DIR/torch_batchnorm.txt, every
      tensor's values plus an input and the model's output on it in
      evaluation mode, computed in float64.
  torch_batchnorm.py roundtrip IN OUT
      loads symlab's checkpoint IN into the same architecture with
      load_state_dict(strict=True), prints num_batches_tracked and the
      evaluation output on the fixed input, trains on 2 more batches, saves
      the state_dict to OUT and prints the same two things again.

Files are written in the safetensors layout as safetensors.torch.save_file
writes them (entries sorted by alignment, then name; header padded to 8
bytes); that package is not in Debian, so the layout is written here from
the format's specification.  Exits 77 (the tests' "skip") without PyTorch.
"""
import json
import struct
import sys

try:
    import torch
except ImportError:
    sys.exit(77)

DTYPES = {torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.int64: ("I64", 8)}
BY_NAME = {name: dt for dt, (name, _) in DTYPES.items()}


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def fixed_input():
    return torch.tensor([[0.5, -1.0, 2.0, 0.25], [-0.75, 0.125, 1.5, -2.0]], dtype=torch.float64)


def save(state, path):
    items = sorted(state.items(), key=lambda kv: (-DTYPES[kv[1].dtype][1], kv[0]))
    header, blobs, offset = {}, [], 0
    for name, t in items:
        data = t.detach().contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    state = {}
    for name, v in header.items():
        begin, end = v["data_offsets"]
        buf = bytearray(raw[8 + n + begin:8 + n + end])
        state[name] = torch.frombuffer(buf, dtype=BY_NAME[v["dtype"]]).reshape(v["shape"]).clone()
    return state


def values(t):
    return " ".join(repr(float(x)) if t.is_floating_point() else str(int(x))
                    for x in t.reshape(-1).tolist())


def report(m, label):
    bn = m[1]
    print(label + "_count", int(bn.num_batches_tracked))
    m.eval()
    with torch.no_grad():
        print(label + "_output", values(m.double()(fixed_input())))
    m.float()
    m.train()


def train(m, batches, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(batches):
            m(torch.randn(8, 4, generator=g))


def generate(outdir):
    m = model()
    with torch.no_grad():
        m[1].weight.copy_(torch.tensor([0.5, 1.25, 2.0]))
        m[1].bias.copy_(torch.tensor([-0.25, 0.0, 0.75]))
    m.train()
    train(m, 5, 1)
    state = m.state_dict()
    save(state, outdir + "/torch_batchnorm.safetensors")
    with open(outdir + "/torch_batchnorm.txt", "w") as f:
        f.write("# written by tests/torch_batchnorm.py generate (PyTorch %s)\n" % torch.__version__)
        for name, t in state.items():
            f.write("%s %s\n" % (name, values(t)))
        f.write("input %s\n" % values(fixed_input()))
        m.eval()
        with torch.no_grad():
            f.write("output %s\n" % values(m.double()(fixed_input())))


def roundtrip(inpath, outpath):
    m = model()
    m.load_state_dict(load(inpath), strict=True)
    report(m, "loaded")
    train(m, 2, 2)
    save(m.state_dict(), outpath)
    report(m, "trained")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        generate(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "roundtrip":
        roundtrip(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
