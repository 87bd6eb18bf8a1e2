#!/usr/bin/env python3
"""Train the reference models in PyTorch exactly as `accrete bench train` does, and compare.

Models (Fashion-MNIST, Adam lr 1e-3, fp32 with TF32 off, softmax cross-entropy):
  mlp: 784-512-256-10, ReLU
  cnn: conv32(3x3, pad 1)-ReLU-maxpool2 - conv64(3x3, pad 1)-ReLU-maxpool2 - fc128-ReLU - fc10

For each model and batch size this prints one JSON line per epoch for PyTorch (eager, and
with the whole training step captured in a CUDA graph when --cuda-graph and CUDA are
available), then runs `accrete bench train` with the same settings and prints a summary line
with the time and accuracy ratios.

With --matmul-sizes it first times torch.matmul on square matrices (float32 with TF32 off,
and float16) and prints one JSON line per (dtype, size) ("bench": "matmul", "framework":
"pytorch"), the counterpart of `accrete bench matmul`.

Usage (on a machine with torch and a built accrete):
  python3 benchmarks/compare_pytorch.py --models mlp,cnn --batches 128,1024 --epochs 10
  python3 benchmarks/compare_pytorch.py --epochs 1 --train-limit 6000 --device cpu
  python3 benchmarks/compare_pytorch.py --models '' --matmul-sizes 1024,8192   matmul only
(benchmarks/gpu_run.sh runs this together with the accrete benchmarks.)
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4 : 4 + 4 * nd])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def idx_path(data_dir, name):
    """The IDX file `name`, gzip-compressed or not (like accrete's loader)."""
    for candidate in (name + ".gz", name):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{data_dir}: neither {name}.gz nor {name} exists (Fashion-MNIST IDX files expected)")


def load(data_dir, split, limit):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(idx_path(data_dir, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(idx_path(data_dir, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y


def model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def evaluate(net, x, y, device):
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            logits = net(x[i : i + 1000])
            loss += nn.functional.cross_entropy(logits, y[i : i + 1000], reduction="sum").item()
            correct += (logits.argmax(1) == y[i : i + 1000]).sum().item()
    net.train()
    return loss / len(x), correct / len(x)


def run_torch(kind, batch, epochs, data, device, cuda_graph, seed):
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data
    shape = (-1, 1, 28, 28)
    xtr = torch.tensor(xtr).reshape(shape).to(device)
    ytr = torch.tensor(ytr).to(device)
    xte = torch.tensor(xte).reshape(shape).to(device)
    yte = torch.tensor(yte).to(device)
    net = model(kind).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=cuda_graph)
    loss_fn = nn.CrossEntropyLoss()
    n = len(xtr)
    full = n // batch * batch
    step = None
    if cuda_graph:
        # Capture one whole step (forward, backward, update) on static buffers; the ragged
        # last batch runs eagerly.
        sx = torch.zeros((batch, 1, 28, 28), device=device)
        sy = torch.zeros((batch,), dtype=torch.int64, device=device)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                opt.zero_grad(set_to_none=False)
                loss_fn(net(sx), sy).backward()
                opt.step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=False)
        with torch.cuda.graph(g):
            static_loss = loss_fn(net(sx), sy)
            static_loss.backward()
            opt.step()

        def step(xb, yb):
            sx.copy_(xb)
            sy.copy_(yb)
            g.replay()

    lines = []
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, device=device)
        sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            xb, yb = xtr[idx], ytr[idx]
            if step is not None and i < full:
                step(xb, yb)
            else:
                opt.zero_grad(set_to_none=True)
                loss_fn(net(xb), yb).backward()
                opt.step()
        sync(device)
        seconds = time.perf_counter() - t0
        test_loss, test_acc = evaluate(net, xte, yte, device)
        line = {
            "bench": "train", "framework": "pytorch-cuda-graph" if cuda_graph else "pytorch-eager",
            "model": kind, "batch": batch, "epoch": epoch, "train_samples": n, "seconds": seconds,
            "samples_per_sec": n / seconds, "test_loss": test_loss, "test_accuracy": test_acc,
            "device": str(device), "torch": torch.__version__,
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines


def run_matmul(sizes, dtypes, device, reps):
    """Seconds per n×n×n torch.matmul (CUDA events on a GPU, else the host clock)."""
    for n in sizes:
        for name in dtypes:
            dtype = getattr(torch, name)
            gen = torch.Generator(device="cpu").manual_seed(n)
            a = (torch.rand((n, n), generator=gen) * 2 - 1).to(device=device, dtype=dtype)
            b = (torch.rand((n, n), generator=gen) * 2 - 1).to(device=device, dtype=dtype)
            c = torch.matmul(a, b)  # warm-up (cuBLAS handle, heuristics)
            sync(device)
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(reps):
                    torch.matmul(a, b, out=c)
                end.record()
                torch.cuda.synchronize()
                seconds = start.elapsed_time(end) / 1e3 / reps
                timing = "cuda_event"
            else:
                t0 = time.perf_counter()
                for _ in range(reps):
                    torch.matmul(a, b, out=c)
                seconds = (time.perf_counter() - t0) / reps
                timing = "wall"
            line = {
                "bench": "matmul", "framework": "pytorch", "dtype": name, "m": n, "n": n, "k": n,
                "seconds": seconds, "gflops": 2 * n**3 / seconds / 1e9, "reps": reps, "timing": timing,
                "tf32": torch.backends.cuda.matmul.allow_tf32, "device": str(device), "torch": torch.__version__,
            }
            print(json.dumps(line), flush=True)
            del a, b, c


def run_accrete(binary, kind, batch, epochs, args):
    cmd = [binary, "bench", "train", "--model", kind, "--batch", str(batch), "--epochs", str(epochs),
           "--eval-every", "1", "--data-dir", args.data_dir]
    if args.accrete_eval_batch:
        cmd += ["--eval-batch", str(args.accrete_eval_batch)]
    if args.train_limit:
        cmd += ["--train-limit", str(args.train_limit)]
    if args.test_limit:
        cmd += ["--test-limit", str(args.test_limit)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr.strip()}")
    out = run.stdout
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    for l in lines:
        l["framework"] = "accrete"
        print(json.dumps(l), flush=True)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--batches", default="128,1024")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cuda-graph", action="store_true", help="also time the step captured in a CUDA graph")
    p.add_argument("--accrete", default="target/release/accrete", help="accrete binary ('' to skip)")
    p.add_argument("--accrete-eval-batch", type=int, default=0, help="--eval-batch for accrete (0: its default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--matmul-sizes", default="", help="also time torch.matmul at these square sizes, e.g. 1024,8192")
    p.add_argument("--matmul-dtypes", default="float32,float16")
    p.add_argument("--matmul-reps", type=int, default=5)
    args = p.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    if args.matmul_sizes:
        sizes = [int(n) for n in args.matmul_sizes.split(",") if n]
        run_matmul(sizes, [d for d in args.matmul_dtypes.split(",") if d], device, args.matmul_reps)
    models = [m for m in args.models.split(",") if m]
    if not models:
        return
    data = (load(args.data_dir, "train", args.train_limit), load(args.data_dir, "test", args.test_limit))
    for kind in models:
        for batch in (int(b) for b in args.batches.split(",")):
            eager = run_torch(kind, batch, args.epochs, data, device, False, args.seed)
            graph = run_torch(kind, batch, args.epochs, data, device, True, args.seed) if args.cuda_graph and device.type == "cuda" else None
            if not args.accrete:
                continue
            ours = run_accrete(args.accrete, kind, batch, args.epochs, args)
            best = lambda ls: min(l["seconds"] for l in ls)
            summary = {
                "bench": "compare", "model": kind, "batch": batch, "epochs": args.epochs,
                "accrete_epoch_s": best(ours), "pytorch_eager_epoch_s": best(eager),
                "speedup_vs_eager": best(eager) / best(ours),
                "accrete_test_accuracy": ours[-1].get("test_accuracy"),
                "pytorch_test_accuracy": eager[-1]["test_accuracy"],
                "accuracy_gap_points": 100 * (ours[-1].get("test_accuracy", 0) - eager[-1]["test_accuracy"]),
            }
            if graph:
                summary["pytorch_graph_epoch_s"] = best(graph)
                summary["speedup_vs_graph"] = best(graph) / best(ours)
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.exit(main())
