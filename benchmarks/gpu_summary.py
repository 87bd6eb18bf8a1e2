#!/usr/bin/env python3
"""Summarise the JSON lines of benchmarks/gpu_run.sh as the issue's table (Markdown).

Rows: f32 matmul at the big and small size (best correct f32 variant, TFLOP/s), MLP and CNN
epoch seconds at each batch size (best epoch), f16 matmul at the big size (best correct f16
variant); each with PyTorch's figure (matmul: torch.matmul, float32 with TF32 off / float16;
epochs: eager and, when measured, the step captured in a CUDA graph) and the speed ratio
accrete / PyTorch (> 1: accrete is faster). Then the per-kernel profile of each training step
(`accrete bench train --profile`): the step time and the kernels that take most of it.

Usage: python3 benchmarks/gpu_summary.py OUT/bench.jsonl [--big 8192] [--small 1024]
           [--json OUT/summary.json]
"""
import argparse
import json
import sys


def read(path):
    lines = []
    with open(path) as f:
        for raw in f:
            raw = raw.strip()
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    pass
    return lines


def best(values, key=max):
    values = [v for v in values if v is not None]
    return key(values) if values else None


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jsonl")
    p.add_argument("--big", type=int, default=8192)
    p.add_argument("--small", type=int, default=1024)
    p.add_argument("--json", help="also write the rows here as JSON")
    p.add_argument("--top", type=int, default=5, help="kernels listed per profiled step")
    args = p.parse_args()
    lines = read(args.jsonl)

    def accrete_tflops(precision, n):
        return best(
            l["gflops"] / 1e3
            for l in lines
            if l.get("bench") == "matmul" and "framework" not in l and l.get("precision") == precision
            and l.get("m") == n and l.get("correct") and "gflops" in l
        )

    def accrete_variant(precision, n):
        ms = [l for l in lines if l.get("bench") == "matmul" and "framework" not in l
              and l.get("precision") == precision and l.get("m") == n and l.get("correct") and "gflops" in l]
        return max(ms, key=lambda l: l["gflops"])["variant"] if ms else None

    def torch_tflops(dtype, n):
        return best(
            l["gflops"] / 1e3
            for l in lines
            if l.get("bench") == "matmul" and l.get("framework") == "pytorch" and l.get("dtype") == dtype and l.get("m") == n
        )

    def epoch_s(framework, model, batch):
        return best(
            (l["seconds"] for l in lines
             if l.get("bench") == "train" and l.get("framework", "accrete") == framework
             and l.get("model") == model and l.get("batch") == batch and not l.get("mixed_precision")),
            key=min,
        )

    rows = []

    def matmul_row(label, precision, dtype, n):
        ours, theirs = accrete_tflops(precision, n), torch_tflops(dtype, n)
        rows.append({
            "metric": label, "unit": "TFLOP/s", "accrete": ours, "pytorch": theirs, "pytorch_graph": None,
            "ratio": ours / theirs if ours and theirs else None, "ratio_graph": None,
            "note": accrete_variant(precision, n),
        })

    matmul_row(f"f32 matmul {args.big}³", "f32", "float32", args.big)
    if args.small != args.big:
        matmul_row(f"f32 matmul {args.small}³", "f32", "float32", args.small)
    batches = sorted({l["batch"] for l in lines if l.get("bench") == "train" and "batch" in l})
    for model in ("mlp", "cnn"):
        for batch in batches:
            ours = epoch_s("accrete", model, batch)
            eager = epoch_s("pytorch-eager", model, batch)
            graph = epoch_s("pytorch-cuda-graph", model, batch)
            if ours is None and eager is None:
                continue
            samples = best((l.get("train_samples") for l in lines if l.get("bench") == "train"
                            and l.get("model") == model and l.get("batch") == batch), key=max)
            rows.append({
                "metric": f"{model.upper()} epoch, batch {batch}", "unit": "s", "accrete": ours,
                "pytorch": eager, "pytorch_graph": graph,
                "ratio": eager / ours if ours and eager else None,
                "ratio_graph": graph / ours if ours and graph else None,
                "note": f"{samples} samples" if samples else None,
            })
    matmul_row(f"f16 matmul {args.big}³", "f16", "float16", args.big)

    # Mixed precision: the last epoch's test accuracy of the --mixed-precision run next to the
    # f32 run of the same model, batch and epoch count (the gpu_run.sh "mixed" stages).
    for model in ("mlp", "cnn"):
        mixed = [l for l in lines if l.get("bench") == "train" and l.get("mixed_precision")
                 and l.get("model") == model and l.get("test_accuracy") is not None]
        if not mixed:
            continue
        last = max(mixed, key=lambda l: l["epoch"])
        f32 = [l for l in lines if l.get("bench") == "train" and l.get("mixed_precision") is False
               and l.get("framework", "accrete") == "accrete" and l.get("model") == model
               and l.get("batch") == last["batch"] and l.get("epoch") == last["epoch"]
               and l.get("test_accuracy") is not None]
        ref = f32[-1]["test_accuracy"] if f32 else None
        delta = 100 * (last["test_accuracy"] - ref) if ref is not None else None
        rows.append({
            "metric": f"{model.upper()} mixed precision, batch {last['batch']}: test accuracy after {last['epoch']} epochs",
            "unit": "%", "accrete": 100 * last["test_accuracy"], "pytorch": None, "pytorch_graph": None,
            "ratio": None, "ratio_graph": None,
            "note": (f"f32 {100 * ref:.2f}%, Δ {delta:+.2f} points (target: within 0.3)" if ref is not None else "no f32 run")
                    + f"; mixed epoch {fmt(best((l['seconds'] for l in mixed), key=min))} s",
        })

    out = sys.stdout
    adapters = sorted({l["adapter"] for l in lines if l.get("adapter")})
    torch_devices = sorted({f"{l['device']} (torch {l['torch']})" for l in lines if l.get("framework", "").startswith("pytorch")})
    out.write(f"accrete adapter: {', '.join(adapters) or 'n/a'}; PyTorch: {', '.join(torch_devices) or 'not run'}\n\n")
    out.write("| metric | accrete | PyTorch eager | PyTorch CUDA graph | ratio vs eager | ratio vs graph | note |\n")
    out.write("|---|---|---|---|---|---|---|\n")
    for r in rows:
        out.write(
            f"| {r['metric']} ({r['unit']}) | {fmt(r['accrete'])} | {fmt(r['pytorch'])} | {fmt(r['pytorch_graph'])} "
            f"| {fmt(r['ratio'])} | {fmt(r['ratio_graph'])} | {r['note'] or ''} |\n"
        )
    out.write("\nratio = accrete speed / PyTorch speed (TFLOP/s ratio, or PyTorch seconds / accrete seconds): > 1 means accrete is faster.\n")
    out.write("Matmul PyTorch columns: torch.matmul (float32 with TF32 off; float16) in the eager column.\n")

    steps = [l for l in lines if l.get("bench") == "train_step"]
    if steps:
        out.write("\nPer-kernel GPU time of one training step (accrete bench train --profile):\n\n")
        out.write("| model | batch | kernels | step µs (one pass) | Σ kernels µs | source | dispatches | top kernels (µs per step, share) |\n")
        out.write("|---|---|---|---|---|---|---|---|\n")
        for s in steps:
            kinds = [l for l in lines if l.get("bench") == "train_kernels" and l.get("model") == s["model"]
                     and l.get("batch") == s["batch"] and l.get("conv") == s.get("conv") and l.get("update") == s.get("update")]
            kinds.sort(key=lambda l: -l["mean_us"])
            top = "; ".join(f"{k['name']} ×{k['count']}: {fmt(k['mean_us'])}, {100 * k['share']:.0f}%" for k in kinds[: args.top])
            out.write(f"| {s['model']} | {s['batch']} | {s.get('conv')}, {s.get('update')} | {fmt(s['step_us'])} | {fmt(s['sum_us'])} | {s['source']} "
                      f"| {s['dispatches_per_step']} | {top} |\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "steps": steps, "adapters": adapters}, f, indent=1)


if __name__ == "__main__":
    main()
