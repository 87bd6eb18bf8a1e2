#!/usr/bin/env python3
"""accrete's CPU backend, scikit-learn and PyTorch (CPU) side by side in one run, on this machine.

Models (softmax cross-entropy, Adam, fp32):
  mlp:        784-512-256-10, ReLU, lr 1e-3, batch 128, the first --train-limit Fashion-MNIST
              training images (default 20000: a 6,000-image epoch is 0.15 s at two threads,
              short enough for one descheduled thread to swing it by a third) scaled to
              [0, 1]: accrete, scikit-learn, PyTorch
  cnn:        conv32-pool-conv64-pool-fc128-fc10 (3x3 convolutions, padding 1, ReLU, 2x2 max
              pooling), lr 1e-3, batch 128, the first --cnn-train-limit images (default 2000):
              accrete, PyTorch (scikit-learn has no convolutions)
  playground: the web demo's playground net 2-16-16-2 (tanh, Adam lr 0.03, batch 32; the demo's
              defaults, web/demo/lib/playground.js) on 200 standardised 2-D points (two
              spirals): accrete (`accrete train` on a CSV file), scikit-learn, PyTorch; reported
              as ms per batch (the epoch is 7 steps, the last one of 8 points)
Frameworks:
  accrete      `accrete --backend cpu bench train` (mlp, cnn) with ACCRETE_CPU_THREADS=T; it
               trains 2 epochs and the second is timed (the first is the warm-up, as for the
               others); its own samples/s (the epoch from its first step to the metrics read
               at its end). playground: `accrete --backend cpu train` on a CSV file, the median
               of its per-epoch samples/s over --playground-epochs epochs (the first dropped)
  accrete-1t   the same with ACCRETE_CPU_THREADS=1
  sklearn      MLPClassifier(hidden_layer_sizes=(512, 256), solver="adam", batch_size=128,
               learning_rate_init=1e-3, alpha=0), one partial_fit call per batch of 128 over a
               shuffled epoch, after a warm-up partial_fit call; BLAS threads limited to T
               (threadpoolctl)
  sklearn-epoch  the same model, one partial_fit call over the whole epoch (scikit-learn
               batches it itself, 128 at a time); not in the default list
  pytorch      a plain eager loop (randperm, zero_grad, forward, cross_entropy, backward,
               Adam step) with torch.set_num_threads(T), one epoch after 3 warm-up steps
  pytorch-1t   the same with torch.set_num_threads(1)
T = --threads, default os.cpu_count(). Within each of --repeat rounds every model runs every
framework once, the frameworks interleaved, so load from others on a shared machine hits them
alike; the table has the median (min-max) per framework. One JSON line per run on stdout
("bench": "cpu_compare"), then a markdown table; the load average is printed at the start and
the end (on stderr and in the summary JSON line).

Usage (after `cargo build --release`; `python3 -m pip install scikit-learn torch`):
  python3 benchmarks/cpu_compare.py                               mlp, cnn, playground; 3 rounds
  python3 benchmarks/cpu_compare.py --models mlp --train-limit 60000 --repeat 5
  python3 benchmarks/cpu_compare.py --threads 1 --frameworks accrete,pytorch
  python3 benchmarks/cpu_compare.py --accrete /path/to/accrete --data-dir DIR
"""
import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["mlp", "cnn", "playground"]
FRAMEWORKS = ["accrete", "accrete-1t", "sklearn", "sklearn-epoch", "pytorch", "pytorch-1t"]
DEFAULT_FRAMEWORKS = ["accrete", "accrete-1t", "sklearn", "pytorch", "pytorch-1t"]
INSTALL = "python3 -m pip install scikit-learn torch"
PLAYGROUND_POINTS = 200
PLAYGROUND_BATCH = 32
PLAYGROUND_UNITS = 16
PLAYGROUND_LR = 0.03


def log(msg):
    print(f"[cpu_compare] {msg}", file=sys.stderr, flush=True)


def need(module, what):
    try:
        return __import__(module)
    except ImportError as e:
        raise SystemExit(f"cpu_compare: {what} needs the Python package {module!r} ({e}); install it with `{INSTALL}`"
                         " or leave the framework out with --frameworks")


# ------------------------------------------------------------------------------------- data

def read_idx(path, limit):
    import numpy as np

    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:3] != b"\x00\x00\x08":
        raise SystemExit(f"cpu_compare: {path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4 : 4 + 4 * nd])
    a = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
    return a[:limit]


def idx_path(data_dir, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"cpu_compare: no {name}(.gz) in {data_dir}: Fashion-MNIST's IDX files are expected there "
                     "(`apt-get install dataset-fashion-mnist`, or pass --data-dir)")


def fashion(data_dir, n):
    import numpy as np

    x = read_idx(idx_path(data_dir, "train-images-idx3-ubyte"), n).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(idx_path(data_dir, "train-labels-idx1-ubyte"), n).astype(np.int64)
    if len(x) < n:
        raise SystemExit(f"cpu_compare: {data_dir} has only {len(x)} training images, asked for {n}")
    return x, y


def spirals(n=PLAYGROUND_POINTS, seed=1):
    """Two interleaved spirals (like the demo's), standardised to zero mean and unit variance."""
    import numpy as np

    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    t = (np.arange(n) // 2) / math.ceil(n / 2) * 0.92 + 0.08 * rng.random(n)
    angle = t * 3.2 * math.pi + label * math.pi
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) + 0.15 * 0.12 * rng.standard_normal((n, 2))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return x, label.astype(np.int64)


# ---------------------------------------------------------------------------------- accrete

def accrete_bench(args, model, n, threads):
    """`accrete --backend cpu bench train`, 2 epochs; the second epoch's line."""
    cmd = [args.accrete, "--backend", "cpu", "bench", "train", "--model", model, "--batch", "128",
           "--epochs", "2", "--train-limit", str(n), "--test-limit", "128", "--eval-batch", "128",
           "--data-dir", args.data_dir]
    env = dict(os.environ, ACCRETE_CPU_THREADS=str(threads), ACCRETE_BACKEND="cpu")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    lines = [l for l in lines if l.get("bench") == "train"]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON line with \"bench\": \"train\": {p.stdout[-500:]}")
    last = lines[-1]
    return {
        "samples_per_sec": last["samples_per_sec"],
        "seconds": last["seconds"],
        "samples": last["train_samples"],
        "steps": math.ceil(last["train_samples"] / 128),
        "loss": last["train_loss"],
        "first_epoch_samples_per_sec": lines[0]["samples_per_sec"] if len(lines) > 1 else None,
        "process_seconds": wall,
        "adapter": last.get("adapter"),
    }


PLAYGROUND_TOML = """seed = 1
[data]
format = "csv"
train_file = "{csv}"
label_column = "label"
standardize = true
validation_fraction = 0.0
[model]
input = [2]
layers = [{{ type = "dense", units = {u}, activation = "tanh" }}, {{ type = "dense", units = {u}, activation = "tanh" }}, {{ type = "dense", units = 2 }}]
[optimizer]
type = "adam"
lr = {lr}
[train]
batch_size = {b}
epochs = {epochs}
[incremental]
chunks = 1
[checkpoint]
every_steps = 0
"""


def accrete_playground(args, threads, tmp):
    """`accrete --backend cpu train` on the spirals CSV; ms per batch from its per-epoch samples/s."""
    import re

    x, y = spirals()
    csv = os.path.join(tmp, "spirals.csv")
    if not os.path.exists(csv):
        with open(csv, "w") as f:
            f.write("x0,x1,label\n")
            for (a, b), l in zip(x, y):
                f.write(f"{a:.6f},{b:.6f},{l}\n")
    cfg = os.path.join(tmp, "playground.toml")
    with open(cfg, "w") as f:
        f.write(PLAYGROUND_TOML.format(csv=csv, u=PLAYGROUND_UNITS, lr=PLAYGROUND_LR, b=PLAYGROUND_BATCH,
                                       epochs=args.playground_epochs))
    out = tempfile.mkdtemp(prefix="run-", dir=tmp)
    cmd = [args.accrete, "--backend", "cpu", "train", "--config", cfg, "--out", out]
    env = dict(os.environ, ACCRETE_CPU_THREADS=str(threads), ACCRETE_BACKEND="cpu")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-800:]}")
    # The run directory's metrics.jsonl has one {"event": "epoch", "samples_per_sec", …} line per
    # epoch; the text output's "| N samples/s" epoch lines are the fallback.
    rates, loss, source = [], [], "metrics.jsonl"
    metrics = os.path.join(out, "metrics.jsonl")
    if os.path.exists(metrics):
        with open(metrics) as f:
            for l in f:
                e = json.loads(l) if l.startswith("{") else {}
                if e.get("event") == "epoch" and "samples_per_sec" in e:
                    rates.append(e["samples_per_sec"])
                    loss.append(e.get("train_loss"))
    if len(rates) < 2:
        text = p.stdout + "\n" + p.stderr
        rates = [float(m) for m in re.findall(r"\|\s*([0-9.]+)\s*samples/s", text)]
        loss = [float(m) for m in re.findall(r"train loss ([0-9.]+)", text)]
        source = "text output"
    shutil.rmtree(out, ignore_errors=True)
    if len(rates) < 2:
        raise RuntimeError(f"{' '.join(cmd)}: found {len(rates)} epochs with samples/s in {metrics} or its output")
    sps = statistics.median(rates[1:])
    steps = math.ceil(PLAYGROUND_POINTS / PLAYGROUND_BATCH)
    return {
        "samples_per_sec": sps,
        "ms_per_batch": 1000 * PLAYGROUND_POINTS / sps / steps,
        "epochs_timed": len(rates) - 1,
        "loss": loss[-1] if loss else None,
        "process_seconds": wall,
        "note": f"median of accrete train's per-epoch samples/s ({source}), first epoch dropped",
    }


# ---------------------------------------------------------------------------------- sklearn

def sklearn_run(model, x, y, threads, per_batch):
    import numpy as np

    need("sklearn", "the sklearn framework")
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits, threadpool_info

    import warnings
    warnings.filterwarnings("ignore")
    if model == "playground":
        hidden, act, batch, lr, classes = (PLAYGROUND_UNITS, PLAYGROUND_UNITS), "tanh", PLAYGROUND_BATCH, PLAYGROUND_LR, [0, 1]
    else:
        hidden, act, batch, lr, classes = (512, 256), "relu", 128, 1e-3, list(range(10))
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation=act, solver="adam", batch_size=batch,
                        learning_rate_init=lr, alpha=0.0, random_state=0)
    n = len(x)
    rng = np.random.default_rng(0)
    epochs = 1
    with threadpool_limits(limits=threads):
        blas = [{k: i.get(k) for k in ("internal_api", "num_threads", "architecture")} for i in threadpool_info()]
        clf.partial_fit(x[:batch], y[:batch], classes=classes)  # warm-up (allocates the weights)
        if model == "playground":
            epochs = max(1, 400 // math.ceil(n / batch))  # ~400 steps
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = rng.permutation(n)
            if per_batch:
                for i in range(0, n, batch):
                    idx = perm[i : i + batch]
                    clf.partial_fit(x[idx], y[idx])
            else:
                clf.partial_fit(x[perm], y[perm])
        seconds = time.perf_counter() - t0
    steps = epochs * math.ceil(n / batch)
    return {"samples_per_sec": epochs * n / seconds, "seconds": seconds, "samples": epochs * n, "steps": steps,
            "ms_per_batch": 1000 * seconds / steps, "loss": float(clf.loss_), "blas": blas}


# ---------------------------------------------------------------------------------- pytorch

def torch_net(model):
    import torch.nn as nn

    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    if model == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )
    u = PLAYGROUND_UNITS
    return nn.Sequential(nn.Linear(2, u), nn.Tanh(), nn.Linear(u, u), nn.Tanh(), nn.Linear(u, 2))


def torch_run(model, x, y, threads):
    torch = need("torch", "the pytorch frameworks")
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    xt = torch.from_numpy(x)
    if model == "cnn":
        xt = xt.reshape(-1, 1, 28, 28)
    yt = torch.from_numpy(y)
    net = torch_net(model)
    batch, lr = (PLAYGROUND_BATCH, PLAYGROUND_LR) if model == "playground" else (128, 1e-3)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = len(xt)

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        return loss

    for i in range(3):  # warm-up
        step(xt[i * batch : (i + 1) * batch], yt[i * batch : (i + 1) * batch])
    epochs = max(1, 400 // math.ceil(n / batch)) if model == "playground" else 1
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = step(xt[idx], yt[idx])
    last = loss.item()
    seconds = time.perf_counter() - t0
    steps = epochs * math.ceil(n / batch)
    return {"samples_per_sec": epochs * n / seconds, "seconds": seconds, "samples": epochs * n, "steps": steps,
            "ms_per_batch": 1000 * seconds / steps, "loss": last, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the header of this file.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accrete", default=os.path.join(ROOT, "target", "release", "accrete"),
                   help="the accrete binary (default: target/release/accrete of this repository)")
    p.add_argument("--data-dir", default=os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--train-limit", type=int, default=20000, help="mlp: the first N training images (default 20000)")
    p.add_argument("--cnn-train-limit", type=int, default=2000, help="cnn: the first N training images (default 2000)")
    p.add_argument("--playground-epochs", type=int, default=60,
                   help="playground, accrete: epochs of `accrete train` (7 steps each; default 60)")
    p.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: mlp,cnn,playground")
    p.add_argument("--frameworks", default=",".join(DEFAULT_FRAMEWORKS),
                   help=f"comma-separated, of {','.join(FRAMEWORKS)} (default {','.join(DEFAULT_FRAMEWORKS)})")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="T: accrete's ACCRETE_CPU_THREADS, torch.set_num_threads, the BLAS limit of "
                        "scikit-learn (default os.cpu_count())")
    a = p.parse_args()
    a.models = [m for m in a.models.split(",") if m]
    a.frameworks = [f for f in a.frameworks.split(",") if f]
    for m in a.models:
        if m not in MODELS:
            p.error(f"--models: unknown {m!r}; use {', '.join(MODELS)}")
    for f in a.frameworks:
        if f not in FRAMEWORKS:
            p.error(f"--frameworks: unknown {f!r}; use {', '.join(FRAMEWORKS)}")
    if a.repeat < 1 or a.threads < 1 or a.train_limit < 1 or a.cnn_train_limit < 1 or a.playground_epochs < 2:
        p.error("--repeat, --threads, --train-limit and --cnn-train-limit must be at least 1, --playground-epochs at least 2")
    return a


def supported(framework, model):
    return not (framework.startswith("sklearn") and model == "cnn")


def check(args):
    need("numpy", "reading the data")
    if any(f.startswith("accrete") for f in args.frameworks):
        if not (os.path.isfile(args.accrete) and os.access(args.accrete, os.X_OK)):
            raise SystemExit(f"cpu_compare: no accrete binary at {args.accrete}: build it with `cargo build --release`, "
                             "pass --accrete PATH, or leave accrete out with --frameworks")
    if any(f.startswith("sklearn") for f in args.frameworks):
        need("sklearn", "the sklearn framework")
        need("threadpoolctl", "the sklearn framework")
    if any(f.startswith("pytorch") for f in args.frameworks):
        need("torch", "the pytorch frameworks")
    if any(m in ("mlp", "cnn") for m in args.models):
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            idx_path(args.data_dir, name)


def main():
    args = parse_args()
    check(args)
    load0 = os.getloadavg()
    log(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} CPUs, T = {args.threads})")
    data = {}
    if "mlp" in args.models:
        data["mlp"] = fashion(args.data_dir, args.train_limit)
    if "cnn" in args.models:
        data["cnn"] = fashion(args.data_dir, args.cnn_train_limit)
    if "playground" in args.models:
        data["playground"] = spirals()
    results = {}
    tmp = tempfile.mkdtemp(prefix="cpu_compare-")  # the playground's CSV, config and run directories
    for rnd in range(args.repeat):
        for model in args.models:
            x, y = data[model]
            # Interleaved, and rotated each round, so no framework always runs first.
            order = args.frameworks[rnd % len(args.frameworks):] + args.frameworks[: rnd % len(args.frameworks)]
            for fw in order:
                if not supported(fw, model):
                    continue
                threads = 1 if fw.endswith("-1t") else args.threads
                try:
                    if fw.startswith("accrete"):
                        r = accrete_playground(args, threads, tmp) if model == "playground" else \
                            accrete_bench(args, model, len(x), threads)
                    elif fw.startswith("sklearn"):
                        r = sklearn_run(model, x, y, threads, per_batch=(fw == "sklearn"))
                    else:
                        r = torch_run(model, x, y, threads)
                except Exception as e:  # one failed run should not lose the others
                    r = {"error": str(e)[-1000:]}
                line = {"bench": "cpu_compare", "round": rnd, "model": model, "framework": fw, "threads": threads,
                        "batch": PLAYGROUND_BATCH if model == "playground" else 128, "train_samples": len(x), **r,
                        "load_avg_1m": round(os.getloadavg()[0], 2)}
                print(json.dumps(line), flush=True)
                if "error" not in r:
                    results.setdefault((model, fw), []).append(r)
    shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    log(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")

    def cell(model, fw, key, fmt):
        rs = results.get((model, fw))
        if not supported(fw, model):
            return "n/a"
        if not rs:
            return "failed"
        xs = [r[key] for r in rs]
        m = statistics.median(xs)
        return f"{fmt(m)}" + (f" ({fmt(min(xs))}–{fmt(max(xs))})" if len(xs) > 1 else "")

    names = [f"{fw} ({1 if fw.endswith('-1t') else args.threads}t)" for fw in args.frameworks]
    print()
    print(f"| model | {' | '.join(names)} |")
    print(f"|---|{'|'.join('---' for _ in names)}|")
    for model in args.models:
        if model == "playground":
            cells = [cell(model, fw, "ms_per_batch", lambda v: f"{v:.3f} ms") for fw in args.frameworks]
            label = f"playground 2-{PLAYGROUND_UNITS}-{PLAYGROUND_UNITS}-2, batch {PLAYGROUND_BATCH} (ms/batch)"
        else:
            cells = [cell(model, fw, "samples_per_sec", lambda v: f"{v:.0f}") for fw in args.frameworks]
            label = f"{model}, {len(data[model][0])} samples, batch 128 (samples/s)"
        print(f"| {label} | {' | '.join(cells)} |")
    print(f"\nMedian (min–max) of {args.repeat} round(s); {os.cpu_count()} CPUs; load average "
          f"{load0[0]:.2f} at the start, {load1[0]:.2f} at the end.")
    summary = {"bench": "cpu_compare_summary", "cpus": os.cpu_count(), "threads": args.threads, "repeat": args.repeat,
               "load_avg_start": [round(v, 2) for v in load0], "load_avg_end": [round(v, 2) for v in load1],
               "median": {f"{m} {fw}": statistics.median(r["ms_per_batch" if m == "playground" else "samples_per_sec"]
                                                         for r in rs) for (m, fw), rs in results.items()}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
