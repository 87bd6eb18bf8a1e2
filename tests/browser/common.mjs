// What the browser tests share: the CLI runner, the scratch folder, the spiral spec, asserts.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ROOT } from "./browser.mjs";

export const ACCRETE = resolve(process.env.ACCRETE_BIN || join(ROOT, "target/debug/accrete"));
export const work = mkdtempSync(join(tmpdir(), "accrete-browser-"));

// The spiral model of the tests: 2 → 32 → 32 → 2, tanh, Adam.
export const SPEC = {
  seed: 0,
  data: { standardize: true },
  model: {
    input: [2],
    layers: [
      { type: "dense", units: 32, activation: "tanh" },
      { type: "dense", units: 32, activation: "tanh" },
      { type: "dense", units: 2 },
    ],
  },
  optimizer: { type: "adam", lr: 0.02 },
  train: { batch_size: 32, epochs: 1 },
};
export const TRAIN = { n: 400, seed: 1 };
export const TEST = { n: 200, seed: 2 };
export const EPOCHS = 40;

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function close(a, b, tol) {
  return Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Runs the native CLI; returns stdout (throws with stderr on failure). */
export function accrete(args, cwd) {
  try {
    return execFileSync(ACCRETE, args, {
      cwd,
      encoding: "utf8",
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    throw new Error(`accrete ${args.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

/**
 * Trains `spec` (seed, model, adam optimizer, train) with the CLI on `dir`/../train.csv in
 * `dir`, one chunk without validation or checkpoints; returns the per-epoch training losses.
 */
export function nativeLosses(dir, spec) {
  mkdirSync(dir, { recursive: true });
  const layer = (l) =>
    "{ " + Object.entries(l).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ") + " }";
  writeFileSync(
    join(dir, "run.toml"),
    `seed = ${spec.seed}

[data]
format = "csv"
train_file = "../train.csv"
validation_fraction = 0

[model]
input = ${JSON.stringify(spec.model.input)}
layers = [
${spec.model.layers.map((l) => "  " + layer(l) + ",").join("\n")}
]

[optimizer]
type = "${spec.optimizer.type}"
lr = ${spec.optimizer.lr}

[train]
batch_size = ${spec.train.batch_size}
epochs = ${spec.train.epochs}
${spec.train.mixed_precision ? "mixed_precision = true" : ""}

[incremental]
chunks = 1

[checkpoint]
every_steps = 0
`,
  );
  accrete(["train", "--config", "run.toml", "--out", "run", "--quiet"], dir);
  return readFileSync(join(dir, "run/metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).train_loss);
}
