#!/usr/bin/env node
// Training throughput of the accrete wasm package in headless Chromium (WebGPU; SwiftShader
// when there is no GPU) on Fashion-MNIST, for comparison with `accrete bench train` (native).
// Prints one JSON object per timed epoch: samples_per_sec and ms_per_step.
//
// Usage (after `bash web/build.sh` and `npm ci` in tests/browser/):
//   node benchmarks/browser_bench.mjs [--model mlp,cnn] [--batch 128] [--train-limit N]
//                                     [--epochs 1] [--warmup-steps 2] [--backend gpu|cpu|auto]
// --backend is Trainer.create's: gpu (default: the WebGPU adapter, SwiftShader included —
// `auto` would take the CPU backend over a software adapter), cpu, or auto.
// Default train limits: mlp 1280 samples (10 steps of 128), cnn 384 (3 steps): SwiftShader is
// slow. The models are those of `accrete bench train` (MLP 784-512-256-10 ReLU; CNN
// conv32-pool-conv64-pool-fc128-fc10), Adam at lr 1e-3. A warm-up chunk (pipeline compilation)
// runs first and is not timed. The data are the first N training images of
// /usr/share/datasets/fashion-mnist (gzip IDX, decompressed in the page).
//
// The native counterpart: accrete bench train --model mlp --batch 128 --train-limit 1280 --epochs 2
// (its first epoch includes pipeline compilation; compare with the second).

import { existsSync } from "node:fs";
import { open } from "../tests/browser/browser.mjs";

const DATA_DIR = process.env.FASHION_MNIST_DIR || "/usr/share/datasets/fashion-mnist";
const DEFAULT_LIMIT = { mlp: 1280, cnn: 384 };

function parseArgs(argv) {
  const args = { model: ["mlp", "cnn"], batch: 128, trainLimit: null, epochs: 1, warmupSteps: 2, backend: "gpu" };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    const int = (name) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${name} takes a non-negative integer, got ${value}`);
      i++;
      return n;
    };
    switch (key) {
      case "--model":
        args.model = String(value).split(",");
        i++;
        for (const m of args.model) if (!(m in DEFAULT_LIMIT)) throw new Error(`unknown model ${m}; use mlp or cnn`);
        break;
      case "--batch": args.batch = int(key); break;
      case "--train-limit": args.trainLimit = int(key); break;
      case "--epochs": args.epochs = int(key); break;
      case "--warmup-steps": args.warmupSteps = int(key); break;
      case "--backend":
        if (!["gpu", "cpu", "auto"].includes(value)) throw new Error(`--backend takes gpu, cpu or auto, got ${value}`);
        args.backend = value;
        i++;
        break;
      case "-h":
      case "--help":
        console.log("node benchmarks/browser_bench.mjs [--model mlp,cnn] [--batch 128] [--train-limit N] [--epochs 1] [--warmup-steps 2] [--backend gpu|cpu|auto]");
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${key}; see --help`);
    }
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(`${DATA_DIR}/train-images-idx3-ubyte.gz`)) {
    throw new Error(`no Fashion-MNIST in ${DATA_DIR}: apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR`);
  }
  const session = await open("/benchmarks/browser_bench.html", {
    extra: { "/datasets/fashion-mnist/": DATA_DIR },
    timeout: 600_000,
  });
  try {
    for (const model of args.model) {
      const samples = args.trainLimit ?? DEFAULT_LIMIT[model];
      const r = await session.page.evaluate((o) => window.runBench(o), {
        model,
        batch: args.batch,
        samples,
        epochs: args.epochs,
        warmupSteps: args.warmupSteps,
        backend: args.backend === "auto" ? undefined : args.backend,
      });
      const adapter = r.adapter.name || r.adapter.driver;
      for (const run of r.runs) {
        if (run.warmup) {
          console.error(`[browser_bench] ${model}: warm-up ${run.steps} steps in ${run.seconds.toFixed(2)} s`);
          continue;
        }
        console.log(JSON.stringify({
          bench: "browser_train",
          model,
          batch: args.batch,
          epoch: run.epoch,
          train_samples: run.samples,
          steps: run.steps,
          seconds: run.seconds,
          wall_seconds: run.wallSeconds,
          samples_per_sec: run.samplesPerSec,
          ms_per_step: run.msPerStep,
          train_loss: run.loss,
          train_accuracy: run.accuracy,
          adapter,
          backend: r.adapter.backend,
          accrete_web: r.version,
        }));
      }
    }
  } finally {
    const errors = session.console.filter((m) => /^(error|pageerror)/.test(m));
    if (errors.length) console.error(`[browser_bench] browser console:\n  ${errors.join("\n  ")}`);
    await session.close();
  }
}

main().catch((e) => {
  console.error(`[browser_bench] error: ${e.stack || e.message}`);
  process.exit(1);
});
