#!/usr/bin/env node
// accrete, TF.js 4.22 and jax-js 0.1.25 side by side in one headless Chromium: the same MLP
// 784-512-256-10 and CNN, Adam, batch 128, on Fashion-MNIST (page.mjs). Prints one JSON line
// per run and a table of samples/s (median over --repeat rounds; the frameworks alternate
// within a round, so load on a shared machine affects them alike).
//
//   --backend webgpu (default): accrete on WebGPU, TF.js's webgpu backend, jax-js's webgpu
//     device, in a Chromium with WebGPU (SwiftShader when there is no GPU).
//   --backend cpu: accrete's CPU backend (the wasm package's, Trainer.create(spec,
//     { backend: "cpu" })), TF.js's wasm backend (@tensorflow/tfjs-backend-wasm, SIMD) and
//     jax-js's wasm device, in a Chromium started without WebGPU. The page is not cross-origin
//     isolated, so there is no SharedArrayBuffer and all three run on one thread (the JSON
//     lines say so: crossOriginIsolated, and TF.js's wasmSimd / wasmThreads). TF.js 4.22's wasm
//     backend has no Conv2DBackpropFilter, so its CNN fails (listed under the table); jax-js's
//     wasm CNN takes seconds per step (3 steps + 2 warm-up: about a minute).
//
// Usage (after `bash web/build.sh`, `npm ci` in tests/browser/ and `npm install` here):
//   node benchmarks/browser/bench.mjs [--backend webgpu|cpu] [--model mlp,cnn]
//                                     [--framework accrete,tfjs,jaxjs] [--batch 128]
//                                     [--steps 10] [--warmup-steps 2] [--repeat 1]
//                                     [--dump-shaders DIR]
//   node benchmarks/browser/bench.mjs --backend cpu --repeat 3        the CPU comparison
// With --backend webgpu each line also has the dispatches per timed step and a summary of the
// WGSL modules the framework created (count, how many use workgroupBarrier / workgroup
// memory, workgroup sizes), from a probe on the page's WebGPU API; --dump-shaders writes the
// modules to DIR/<framework>_<model>/NNN.wgsl.
// Default steps: mlp 10, cnn 3 (SwiftShader and single-threaded wasm are slow).

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { open } from "../../tests/browser/browser.mjs";

const DATA_DIR = process.env.FASHION_MNIST_DIR || "/usr/share/datasets/fashion-mnist";
const DEFAULT_STEPS = { mlp: 10, cnn: 3 };
const FRAMEWORKS = ["accrete", "tfjs", "jaxjs"];

function parseArgs(argv) {
  const a = { backend: "webgpu", model: ["mlp", "cnn"], framework: FRAMEWORKS, batch: 128, steps: null, warmupSteps: 2, repeat: 1, shaders: null };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[++i];
    const int = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${key} takes a non-negative integer, got ${value}`);
      return n;
    };
    const list = (allowed) => {
      const l = String(value).split(",");
      for (const x of l) if (!allowed.includes(x)) throw new Error(`${key}: unknown ${x}; use ${allowed.join(", ")}`);
      return l;
    };
    switch (key) {
      case "--backend":
        if (value !== "webgpu" && value !== "cpu") throw new Error(`--backend takes webgpu or cpu, got ${value}`);
        a.backend = value;
        break;
      case "--model": a.model = list(["mlp", "cnn"]); break;
      case "--framework": a.framework = list(FRAMEWORKS); break;
      case "--batch": a.batch = int(); break;
      case "--steps": a.steps = int(); break;
      case "--warmup-steps": a.warmupSteps = int(); break;
      case "--repeat": a.repeat = Math.max(1, int()); break;
      case "--dump-shaders": a.shaders = String(value); break;
      default: throw new Error(`unknown argument ${key}; see the header of bench.mjs`);
    }
  }
  return a;
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(`${DATA_DIR}/train-images-idx3-ubyte.gz`)) {
    throw new Error(`no Fashion-MNIST in ${DATA_DIR}: apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR`);
  }
  if (!existsSync(new URL("./node_modules/@jax-js/jax/package.json", import.meta.url))) {
    throw new Error("benchmarks/browser/node_modules is missing: run `npm install` in benchmarks/browser/");
  }
  if (args.backend === "cpu" && !existsSync(new URL("./node_modules/@tensorflow/tfjs-backend-wasm/package.json", import.meta.url))) {
    throw new Error("@tensorflow/tfjs-backend-wasm is missing: run `npm install` in benchmarks/browser/");
  }
  const session = await open("/benchmarks/browser/index.html", {
    extra: { "/datasets/fashion-mnist/": DATA_DIR },
    timeout: 900_000,
    // The CPU comparison runs where a page has no WebGPU at all.
    webgpu: args.backend === "webgpu",
  });
  const page = await session.page.evaluate(async () => ({
    crossOriginIsolated: globalThis.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer !== "undefined",
    hardwareConcurrency: navigator.hardwareConcurrency,
    // navigator.gpu exists even without --enable-unsafe-webgpu; the adapter does not.
    webgpuAdapter: Boolean(await navigator.gpu?.requestAdapter().catch(() => null)),
    userAgent: navigator.userAgent,
  }));
  console.error(`[bench] backend ${args.backend}; page: ${JSON.stringify(page)}`);
  const results = {};
  const errors = {};
  try {
    for (let round = 0; round < args.repeat; round++) {
      for (const model of args.model) {
        for (const framework of args.framework) {
          const steps = args.steps ?? DEFAULT_STEPS[model];
          let r;
          try {
            r = await session.page.evaluate((o) => window.runFramework(o), {
              framework, model, batch: args.batch, steps, warmupSteps: args.warmupSteps,
              keepShaders: Boolean(args.shaders), backend: args.backend,
            });
          } catch (e) {
            r = { error: String(e.message || e).split("\n")[0] };
          }
          if (r.shaderCode) {
            const dir = `${args.shaders}/${framework}_${model}`;
            mkdirSync(dir, { recursive: true });
            r.shaderCode.forEach((c, i) => writeFileSync(`${dir}/${String(i).padStart(3, "0")}.wgsl`, c));
            delete r.shaderCode;
          }
          if (args.backend === "cpu") {
            r.crossOriginIsolated = page.crossOriginIsolated;
            delete r.timedDispatches; delete r.dispatchesPerStep; delete r.shaders; // no WebGPU here
          }
          console.log(JSON.stringify({ bench: "browser_side_by_side", round, framework, model, batch: args.batch, requested: args.backend, ...r }));
          if (r.samplesPerSec) (results[`${model} ${framework}`] ??= []).push(r.samplesPerSec);
          if (r.error) errors[`${model} ${framework}`] = r.error;
        }
      }
    }
  } finally {
    const errors = session.console.filter((m) => /^(error|pageerror)/.test(m));
    if (errors.length) console.error(`[bench] browser console:\n  ${errors.slice(0, 20).join("\n  ")}`);
    await session.close();
  }
  const names = args.framework.map((f) => `${f} (${args.backend === "cpu" ? { accrete: "cpu", tfjs: "wasm", jaxjs: "wasm" }[f] : "webgpu"})`);
  console.log(`\n| model | ${names.join(" | ")} |  (samples/s, median of ${args.repeat}; batch ${args.batch})`);
  console.log(`|---|${args.framework.map(() => "---").join("|")}|`);
  for (const model of args.model) {
    const cells = args.framework.map((f) => {
      const xs = results[`${model} ${f}`];
      return xs ? `${median(xs).toFixed(1)}${xs.length > 1 ? ` (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})` : ""}` : "failed";
    });
    console.log(`| ${model} | ${cells.join(" | ")} |`);
  }
  for (const [k, e] of Object.entries(errors)) console.log(`failed: ${k}: ${e.replace(/^page\.evaluate: /, "")}`);
}

main().catch((e) => {
  console.error(`[bench] error: ${e.stack || e.message}`);
  process.exit(1);
});
