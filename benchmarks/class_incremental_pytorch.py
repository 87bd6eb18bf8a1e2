#!/usr/bin/env python3
"""Class-incremental Fashion-MNIST in PyTorch, set up as accrete's example
`cargo run --release -p accrete --example class_incremental [-- TRAIN_LIMIT TEST_LIMIT]`:

  five chunks of two classes (0-1, 2-3, ..., 8-9), an MLP 784-400-400-10 (ReLU) with one
  ten-way head, Adam 1e-3, batch 128, two epochs per chunk; with rehearsal, a 2,000-sample
  reservoir (Algorithm R over every sample seen) of which 128 samples, drawn with
  replacement, join every batch of 128 new samples.

Prints one JSON line per chunk (accuracy over all ten classes and on the first chunk's
classes, on the test set) and a summary, for side-by-side runs with the accrete example on
the same subset.

Usage:
  python3 benchmarks/class_incremental_pytorch.py [--train-limit 20000] [--test-limit 5000] [--seeds 0,1,2]
"""
import argparse
import json
import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_pytorch import load  # noqa: E402  (the same IDX reader)


def run(rehearse, train, test, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    (xtr, ytr), (xte, yte) = train, test
    net = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    buf_x, buf_y, seen = [], [], 0
    first = yte < 2
    lines = []
    for c in range(5):
        mask = (ytr == 2 * c) | (ytr == 2 * c + 1)
        cx, cy = xtr[mask], ytr[mask]
        n = len(cx)
        for _epoch in range(2):
            perm = torch.randperm(n)
            for i in range(0, n, 128):
                idx = perm[i : i + 128]
                xb, yb = cx[idx], cy[idx]
                if rehearse and buf_x:
                    k = torch.randint(len(buf_x), (128,))
                    bx = torch.stack([buf_x[j] for j in k.tolist()])
                    by = torch.stack([buf_y[j] for j in k.tolist()])
                    xb, yb = torch.cat([xb, bx]), torch.cat([yb, by])
                opt.zero_grad(set_to_none=True)
                loss_fn(net(xb), yb).backward()
                opt.step()
        if rehearse:
            for i in range(n):  # Algorithm R over every sample seen
                if len(buf_x) < 2000:
                    buf_x.append(cx[i])
                    buf_y.append(cy[i])
                else:
                    j = rng.randint(0, seen)
                    if j < 2000:
                        buf_x[j], buf_y[j] = cx[i], cy[i]
                seen += 1
        with torch.no_grad():
            pred = net(xte).argmax(1)
        acc_all = (pred == yte).float().mean().item()
        acc_first = (pred[first] == yte[first]).float().mean().item()
        line = {"framework": "pytorch", "seed": seed, "rehearsal": rehearse, "chunk": c,
                "test_accuracy_all": round(acc_all, 4), "test_accuracy_first_chunk": round(acc_first, 4)}
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines[-1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--seeds", default="0")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    xtr, ytr = load(args.data_dir, "train", args.train_limit)
    xte, yte = load(args.data_dir, "test", args.test_limit)
    train = (torch.tensor(xtr).reshape(-1, 784), torch.tensor(ytr))
    test = (torch.tensor(xte).reshape(-1, 784), torch.tensor(yte))
    for rehearse in (False, True):
        finals = [run(rehearse, train, test, int(s)) for s in args.seeds.split(",")]
        all_ = [f["test_accuracy_all"] for f in finals]
        first = [f["test_accuracy_first_chunk"] for f in finals]
        print(json.dumps({"summary": True, "framework": "pytorch", "rehearsal": rehearse,
                          "train_samples": len(xtr), "test_samples": len(xte), "seeds": len(finals),
                          "test_accuracy_all_mean": round(float(np.mean(all_)), 4),
                          "test_accuracy_all_min": min(all_), "test_accuracy_all_max": max(all_),
                          "test_accuracy_first_chunk_mean": round(float(np.mean(first)), 4)}), flush=True)


if __name__ == "__main__":
    main()
