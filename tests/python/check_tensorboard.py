#!/usr/bin/env python3
"""Read a run's TensorBoard event files with TensorBoard's own loader and compare them
with the run's metrics.jsonl.

Usage: check_tensorboard.py RUN_DIR
RUN_DIR/tensorboard/ is loaded with tensorboard's EventAccumulator (what `tensorboard
--logdir` uses, restart purges included). Every scalar derived from metrics.jsonl (epochs:
train/val loss and accuracy, learning rate, epoch, loss scale; rollbacks; chunk_end
metrics) must be there at its event's step with the float32 value of the JSON number,
exactly, and there must be no other point under those tags; no tag may repeat a step; the
progress reports (progress/loss) must lie within the run's steps. Exit status 0 when all
agree.
"""
import json
import math
import os
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
acc = EventAccumulator(os.path.join(run, "tensorboard"), size_guidance={"scalars": 0})
acc.Reload()
tags = acc.Tags()["scalars"]
got = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags}

want = {}


def put(tag, step, value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return
    want.setdefault(tag, {})[step] = float(np.float32(value))


rollbacks = 0
events = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
for e in events:
    kind, s = e["event"], e["step"]
    if kind == "epoch":
        put("train/loss", s, e["train_loss"])
        put("train/accuracy", s, e["train_accuracy"])
        put("val/loss", s, e.get("val_loss"))
        put("val/accuracy", s, e.get("val_accuracy"))
        put("train/learning_rate", s, e["lr"])
        put("train/epoch", s, e["epoch"])
        put("train/samples_per_sec", s, e["samples_per_sec"])
        put("train/loss_scale", s, e.get("loss_scale"))
        put("train/skipped_steps", s, e.get("skipped_steps"))
    elif kind == "rollback":
        rollbacks += 1
        put("recovery/rollbacks", s, rollbacks)
        put("recovery/new_lr", s, e["new_lr"])
    elif kind == "chunk_end":
        put("chunk_end/accuracy", s, e["accuracy"])
        for j, a in enumerate(e.get("task_accuracy", [])):
            put(f"chunk_end/task_{j}", s, a)
        for k in ("average_accuracy", "bwt", "forgetting"):
            put(f"chunk_end/{k}", s, e.get(k))

bad = []
for tag, points in got.items():
    steps = [s for s, _ in points]
    if len(set(steps)) != len(steps) or steps != sorted(steps):
        bad.append(f"{tag}: steps repeat or go back: {steps}")
for tag, by_step in want.items():
    have = dict(got.get(tag, []))
    if sorted(have) != sorted(by_step):
        bad.append(f"{tag}: steps {sorted(have)} but metrics.jsonl has {sorted(by_step)}")
        continue
    for s, v in by_step.items():
        if have[s] != v:
            bad.append(f"{tag} at step {s}: {have[s]!r} but metrics.jsonl says {v!r}")
last = max(e["step"] for e in events)
progress = got.get("progress/loss", [])
if not progress or not all(0 < s <= last for s, _ in progress):
    bad.append(f"progress/loss steps {[s for s, _ in progress]} not within 1..{last}")
files = sorted(f for f in os.listdir(os.path.join(run, "tensorboard")) if "tfevents" in f)
points = sum(len(v) for v in want.values())
print(f"{len(files)} event files, {len(tags)} tags; {points} points from {len(events)} "
      f"metrics.jsonl events match; {len(progress)} progress points")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
