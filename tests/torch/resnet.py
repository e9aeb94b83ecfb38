"""The ResNet of scripts/lib/symlab/resnet.lua in PyTorch, and a checkpoint
round trip with symlab.

    python3 tests/torch/resnet.py names                 # "name shape" per tensor
    python3 tests/torch/resnet.py check IN.safetensors OUTPUTS.txt OUT.safetensors

`check` loads symlab's checkpoint into the PyTorch model by name
(load_state_dict, strict=True), compares the model's evaluation-mode outputs
on the fixed input batch of probe_input() with the outputs symlab printed
(OUTPUTS.txt, one number per line; f64 models, so to 1e-9), and writes
PyTorch's state_dict back as OUT.safetensors for symlab to load.  The safetensors format is read and
written here directly (an 8-byte little-endian header length, a JSON header,
raw little-endian data), so only torch is needed.
"""
import json
import math
import struct
import sys

import torch
from torch import nn


class Residual(nn.Module):
    """y = body(x) + shortcut(x); the shortcut is the identity when empty."""

    def __init__(self, body, shortcut=()):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=tuple(range(2, x.dim())))


def conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


def resnet_cifar(depth=20, width=16, in_channels=1, classes=10):
    n = (depth - 2) // 6
    layers = [conv(in_channels, width, 3, 1), nn.BatchNorm2d(width), nn.ReLU()]
    channels = width
    for stage in range(3):
        cout = width * 2 ** stage
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            body = [conv(channels, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU(),
                    conv(cout, cout, 3, 1), nn.BatchNorm2d(cout)]
            shortcut = []
            if stride != 1 or channels != cout:
                shortcut = [conv(channels, cout, 1, stride), nn.BatchNorm2d(cout)]
            layers += [Residual(body, shortcut), nn.ReLU()]
            channels = cout
    layers += [GlobalAvgPool(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def probe_input(batch=4):
    """x[b, 0, i, j] = sin(0.01 * (784 b + 28 i + j)): the same in symlab."""
    x = torch.empty(batch, 1, 28, 28, dtype=torch.float64)
    for b in range(batch):
        for i in range(28):
            for j in range(28):
                x[b, 0, i, j] = math.sin(0.01 * (784 * b + 28 * i + j))
    return x


DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "I64": (torch.int64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = DTYPES[info["dtype"]]
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtype).reshape(info["shape"])
        out[name] = t.clone()
    return out


def write_safetensors(path, tensors):
    names = sorted(tensors)
    header, offset, blobs = {}, 0, []
    for name in names:
        t = tensors[name].contiguous()
        code = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}[t.dtype]
        blob = t.numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    model = resnet_cifar()
    if sys.argv[1] == "names":
        for name, t in model.state_dict().items():
            print(name, "x".join(str(s) for s in t.shape) or "scalar")
        return 0
    _, _, ckpt, outputs, back = sys.argv
    state = read_safetensors(ckpt)
    model = model.double()  # before loading, so f64 weights arrive unrounded
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        y = model(probe_input()).flatten()
    theirs = torch.tensor([float(v) for v in open(outputs).read().split()], dtype=torch.float64)
    if theirs.numel() != y.numel():
        print(f"resnet.py: {theirs.numel()} outputs from symlab, {y.numel()} here")
        return 1
    err = (theirs - y).abs().max().item() / max(1.0, y.abs().max().item())
    print(f"resnet.py: loaded {len(state)} tensors with strict=True; max rel output gap {err:.2e}")
    if not err < 1e-9:
        return 1
    write_safetensors(back, dict(model.state_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
