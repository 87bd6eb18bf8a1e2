#!/usr/bin/env python3
"""Avalanche 0.6 beside accrete on the issue's continual-learning protocol.

Class-incremental Split-Fashion-MNIST: five experiences of two classes in label order
(0-1, 2-3, ..., 8-9), one ten-way head, an MLP 784-400-400-10 (ReLU), Adam 1e-3, batch 128,
two epochs per experience, on the first --train-limit training images and the first
--test-limit test images (default: 20,000 and the full 10,000). Strategies:

  naive    Avalanche Naive                      accrete: no strategy
  ewc      EWC(ewc_lambda=100, mode=separate)   accrete: ewc = { weight = 100 }
  lwf      LwF(alpha=1, temperature=2)          accrete: lwf = { weight = 1, temperature = 2 }
  replay   Replay(mem_size=2000)                accrete: rehearsal = { size = 2000, per_batch = 128 }
  derpp    DER(mem_size=2000, batch_size_mem=128, alpha=0.1, beta=0.5)
                                                accrete: rehearsal = { .., logit_weight = 0.1, label_weight = 0.5 }
  agem     AGEM(patterns_per_exp=400, sample_size=256)
                                                accrete: agem = { size = 2000, per_batch = 256 }
  joint    JointTraining (all experiences at once, two epochs)

After every experience the model is evaluated here (not by Avalanche's metrics) on each
task's test images, giving the accuracy matrix R[i][j]; from it the final accuracy over all
classes, BWT (mean over earlier tasks of R[T-1][j] - R[j][j]) and forgetting (mean over
earlier tasks of max_{i<T-1} R[i][j] - R[T-1][j]) -- the formulas of accrete::metrics.

The accrete side is `cargo run -p accrete --example class_incremental -- TRAIN TEST
naive,ewc,lwf,replay,derpp,agem,joint` (its JSON summary lines); pass them with
--accrete FILE to print one table:

  python3 benchmarks/avalanche_compare.py --seeds 0 --accrete accrete.jsonl
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_pytorch import load  # noqa: E402  (the same IDX reader)

STRATEGIES = ["naive", "ewc", "lwf", "replay", "derpp", "agem", "joint"]


class Tensors(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x = torch.from_numpy(x.reshape(len(x), 784))
        self.y = torch.from_numpy(y)
        self.targets = [int(v) for v in y]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def mlp():
    return nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 10))


def make(name, model):
    import avalanche.training as T
    from avalanche.training.plugins import EvaluationPlugin

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    common = dict(
        model=model,
        optimizer=opt,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=128,
        train_epochs=2,
        eval_mb_size=1000,
        device="cpu",
        evaluator=EvaluationPlugin(loggers=[]),
    )
    if name == "naive":
        return T.Naive(**common)
    if name == "ewc":
        return T.EWC(ewc_lambda=100.0, mode="separate", **common)
    if name == "lwf":
        return T.LwF(alpha=1.0, temperature=2.0, **common)
    if name == "replay":
        return T.Replay(mem_size=2000, **common)
    if name == "derpp":
        return T.DER(mem_size=2000, batch_size_mem=128, alpha=0.1, beta=0.5, **common)
    if name == "agem":
        return T.AGEM(patterns_per_exp=400, sample_size=256, **common)
    if name == "joint":
        return T.JointTraining(**common)
    raise SystemExit(f"unknown strategy {name!r}; use {', '.join(STRATEGIES)}")


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    pred = model(torch.from_numpy(x.reshape(len(x), 784))).argmax(1).numpy()
    return float((pred == y).mean())


def summarise(rows):
    T = len(rows)
    if T < 2:
        return None, None
    last = rows[-1]
    bwt = float(np.mean([last[j] - rows[j][j] for j in range(T - 1)]))
    forg = float(np.mean([max(rows[i][j] for i in range(j, T - 1)) - last[j] for j in range(T - 1)]))
    return bwt, forg


def run(name, train, test, seed):
    from avalanche.benchmarks.scenarios import class_incremental_benchmark

    torch.manual_seed(seed)
    np.random.seed(seed)
    (xtr, ytr), (xte, yte) = train, test
    bench = class_incremental_benchmark(
        {"train": Tensors(xtr, ytr), "test": Tensors(xte, yte)},
        class_order=list(range(10)),
        num_experiences=5,
    )
    model = mlp()
    strategy = make(name, model)
    tasks = [(xte[(yte // 2) == k], yte[(yte // 2) == k]) for k in range(5)]
    start = time.time()
    rows = []
    if name == "joint":
        strategy.train(bench.train_stream)
        rows.append([accuracy(model, x, y) for x, y in tasks])
    else:
        for i, exp in enumerate(bench.train_stream):
            strategy.train(exp)
            rows.append([accuracy(model, x, y) for x, y in tasks[: i + 1]])
            print(json.dumps({"strategy": name, "seed": seed, "experience": i, "task_accuracy": [round(a, 4) for a in rows[-1]]}), flush=True)
    acc = accuracy(model, xte, yte)
    bwt, forg = summarise(rows)
    out = {"summary": True, "side": "avalanche", "strategy": name, "seed": seed, "test_accuracy_all": round(acc, 4),
           "bwt": bwt, "forgetting": forg, "seconds": round(time.time() - start, 1)}
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-limit", type=int, default=20000)
    ap.add_argument("--test-limit", type=int, default=10000)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--accrete", help="the accrete example's output (JSON lines) for the table")
    ap.add_argument("--results", help="earlier output of this script (JSON lines) instead of running")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.results:
        results = [json.loads(l) for l in open(a.results) if '"summary"' in l]
    else:
        train = load(a.data_dir, "train", a.train_limit)
        test = load(a.data_dir, "test", a.test_limit)
        results = [run(s, train, test, int(seed)) for s in a.strategies.split(",") for seed in a.seeds.split(",")]
    ours = {}
    if a.accrete:
        for l in open(a.accrete):
            if '"summary"' in l:
                r = json.loads(l)
                ours[r["strategy"]] = r
    fmt = lambda v: "—" if v is None else f"{v:+.3f}"
    print("\n| strategy | Avalanche acc | accrete acc | Avalanche BWT / forgetting | accrete BWT / forgetting |")
    print("|---|---|---|---|---|")
    for s in a.strategies.split(","):
        av = [r for r in results if r["strategy"] == s]
        if not av:
            continue
        acc = np.mean([r["test_accuracy_all"] for r in av])
        bwt = None if av[0]["bwt"] is None else np.mean([r["bwt"] for r in av])
        fg = None if av[0]["forgetting"] is None else np.mean([r["forgetting"] for r in av])
        o = ours.get("derpp" if s == "derpp" else s)
        oacc = f"{o['test_accuracy_all']:.3f}" if o else "—"
        ob = f"{fmt(o.get('bwt'))} / {fmt(o.get('forgetting'))}" if o else "—"
        print(f"| {s} | {acc:.3f} | {oacc} | {fmt(bwt)} / {fmt(fg)} | {ob} |")


if __name__ == "__main__":
    main()
