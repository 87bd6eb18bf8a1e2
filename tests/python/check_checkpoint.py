#!/usr/bin/env python3
"""Recompute an accrete model's predictions from its checkpoint with numpy alone.

Usage: check_checkpoint.py CHECKPOINT.safetensors INPUTS.safetensors
INPUTS holds "x" ([n, ...input shape]) and "probs" ([n, classes], accrete's predictions).
Reads the weights by their PyTorch names (layers.{i}.weight / .bias), the model spec from
the "accrete" metadata, runs the forward pass in float64 and compares the softmax
probabilities. Exit status 0 when they agree, 1 otherwise.
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def act(name, x):
    if name in (None, "identity"):
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, 0.01 * x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if name == "gelu":
        return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    raise SystemExit(f"unknown activation {name}")


def conv2d(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", patch, w) + b
    return out


def pool(x, size, stride, op):
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = op(win, axis=(2, 3))
    return out


def main():
    ckpt_path, inputs_path = sys.argv[1], sys.argv[2]
    with safe_open(ckpt_path, framework="numpy") as f:
        meta = json.loads(f.metadata()["accrete"])
    params = {k: v.astype(np.float64) for k, v in load_file(ckpt_path).items()}
    inputs = load_file(inputs_path)
    x = inputs["x"].astype(np.float64)
    for i, layer in enumerate(meta["model"]["layers"]):
        kind = layer["type"]
        if kind == "dense":
            x = act(layer.get("activation"), x @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"])
        elif kind == "conv2d":
            x = act(layer.get("activation"), conv2d(x, params[f"layers.{i}.weight"], params[f"layers.{i}.bias"], layer.get("stride", 1), layer.get("padding", 0)))
        elif kind in ("maxpool2d", "avgpool2d"):
            size = layer["size"]
            stride = layer.get("stride") or size
            x = pool(x, size, stride, np.max if kind == "maxpool2d" else np.mean)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "dropout":
            pass
        elif kind == "activation":
            x = act(layer["activation"], x)
        else:
            raise SystemExit(f"unknown layer type {kind}")
    z = x - x.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    want = inputs["probs"].astype(np.float64)
    err = np.abs(probs - want).max()
    agree = (probs.argmax(1) == want.argmax(1)).mean()
    print(json.dumps({"samples": len(x), "max_abs_error": float(err), "argmax_agreement": float(agree)}))
    return 0 if err < 1e-5 and agree == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
