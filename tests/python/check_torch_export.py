#!/usr/bin/env python3
"""Check an `accrete export --format pytorch` state dict against the nn.Sequential convention.

Usage: check_torch_export.py STATE_DICT.safetensors MODEL.py INPUTS.safetensors
MODEL.py is the module source accrete printed; INPUTS holds "x" and "probs" (accrete's
predictions). With numpy alone: every module of MODEL.py is numbered as nn.Sequential
numbers it, the expected parameter names and shapes are derived from the constructor
arguments (Linear(i, o): o×i and o; Conv2d(c, f, k): f×c×k×k and f) and must equal the
file's exactly; then the forward pass of Linear/activation/Flatten/Dropout models is
recomputed in float64 and compared with accrete's probabilities. Where torch is installed,
MODEL.py is executed, `load_state_dict(strict=True)` must succeed and torch's predictions
must match too. Tied weights (`model[j].weight = model[i].weight`, `TransposedLinear`) must
appear under both names with equal values (and, with torch, share storage). Exit status 0
when all agree.
"""
import re
import sys

import numpy as np
from safetensors.numpy import load_file

sd_path, py_path, inputs_path = sys.argv[1:4]
sd = load_file(sd_path)
src = open(py_path).read()
mods = re.findall(r"^    (nn\.\w+)\((.*)\),$", src, re.M)
expected = {}
for i, (kind, args) in enumerate(mods):
    nums = [int(a) for a in re.findall(r"(?<![=\w.])(\d+)(?![\w.])", args.split("stride")[0])]
    if kind == "nn.Linear":
        expected[f"{i}.weight"] = (nums[1], nums[0])
        expected[f"{i}.bias"] = (nums[1],)
    elif kind == "nn.Conv2d":
        expected[f"{i}.weight"] = (nums[1], nums[0], nums[2], nums[2])
        expected[f"{i}.bias"] = (nums[1],)
got = {k: tuple(v.shape) for k, v in sd.items()}
if got != expected:
    print(f"names/shapes differ:\n file     {sorted(got.items())}\n expected {sorted(expected.items())}")
    sys.exit(1)
print(f"{len(mods)} modules, {len(got)} tensors: names and shapes follow nn.Sequential")

# Tied weights (accrete's `share`): MODEL.py assigns one Linear's Parameter to another
# (`model[j].weight = model[i].weight`) or wraps it transposed (`model[j] =
# TransposedLinear(model[i], out)`); the file lists the weight under both names, the second
# equal to the first (transposed).
ties = [(int(j), int(i), False) for j, i in re.findall(r"^model\[(\d+)\]\.weight = model\[(\d+)\]\.weight", src, re.M)]
ties += [(int(j), int(i), True) for j, i in re.findall(r"^model\[(\d+)\] = TransposedLinear\(model\[(\d+)\], \d+\)", src, re.M)]
for j, i, transposed in ties:
    a, b = sd[f"{i}.weight"], sd[f"{j}.weight"]
    if not np.array_equal(a.T if transposed else a, b):
        print(f"tied weight {j}.weight differs from {i}.weight{'ᵀ' if transposed else ''}")
        sys.exit(1)
if ties:
    print(f"{len(ties)} tied weight(s): {', '.join(f'{j}.weight = {i}.weight' + ('ᵀ' if t else '') for j, i, t in ties)}")

inputs = load_file(inputs_path)
x, want = inputs["x"].astype(np.float64), inputs["probs"].astype(np.float64)
ACT = {
    "nn.ReLU": lambda v: np.maximum(v, 0),
    "nn.Tanh": np.tanh,
    "nn.Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "nn.ELU": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
    "nn.LeakyReLU": lambda v: np.where(v > 0, v, 0.01 * v),
    "nn.Identity": lambda v: v,
    "nn.Dropout": lambda v: v,
    "nn.Flatten": lambda v: v.reshape(v.shape[0], -1),
}
if all(k == "nn.Linear" or k in ACT for k, _ in mods):
    h = x.reshape(x.shape[0], -1)
    for i, (kind, _) in enumerate(mods):
        if kind == "nn.Linear":
            h = h @ sd[f"{i}.weight"].astype(np.float64).T + sd[f"{i}.bias"].astype(np.float64)
        else:
            h = ACT[kind](h)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    err = np.abs(p - want).max()
    print(f"numpy forward: max |p - accrete| = {err:.2e}")
    if not err < 1e-5:
        sys.exit(1)

try:
    import torch
except ModuleNotFoundError:
    print("torch not installed: strict load not checked")
    sys.exit(0)
from safetensors.torch import load_file as torch_load

scope = {}
exec(src, scope)
model = scope["model"].double().eval()
model.load_state_dict({k: v.double() for k, v in torch_load(sd_path).items()}, strict=True)
state = model.state_dict()
for j, i, _ in ties:
    # One Parameter behind both names (a transposed view of the same storage).
    if state[f"{j}.weight"].data_ptr() != state[f"{i}.weight"].data_ptr():
        print(f"{j}.weight is not tied to {i}.weight after loading")
        sys.exit(1)
with torch.no_grad():
    p = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
err = np.abs(p - want).max()
print(f"torch {torch.__version__}: load_state_dict(strict=True) ok; max |p - accrete| = {err:.2e}")
sys.exit(0 if err < 1e-5 else 1)
