// In the page: the same training run — Fashion-MNIST, Adam (lr 1e-3, β 0.9/0.999, ε 1e-8),
// softmax cross-entropy, the MLP 784-512-256-10 (ReLU) or the CNN conv32-pool-conv64-pool-
// fc128-fc10 (3×3 convolutions, padding 1, ReLU, 2×2 max pooling) — in accrete (web/pkg),
// TF.js 4.22 and jax-js 0.1.25, on WebGPU (backend "webgpu": accrete's WebGPU backend, TF.js's
// webgpu backend, jax-js's webgpu device) or on the CPU (backend "cpu": accrete's CPU backend
// compiled to wasm, TF.js's wasm backend, jax-js's wasm device; single-threaded all three, as
// the page is not cross-origin isolated: no SharedArrayBuffer, so no wasm threads). Each
// framework runs `warmupSteps` steps first (shader compilation, not timed), then `steps` timed
// steps over the first samples, and waits until the device is done before stopping the clock.

import { setUp as accreteSetUp, fashion } from "/benchmarks/browser_bench_page.mjs";
import * as jax from "/benchmarks/browser/node_modules/@jax-js/jax/dist/index.js";

// A probe on the WebGPU API itself, the same for the three frameworks: dispatches encoded and
// shader modules created (their WGSL, summarised by `shaderStats`).
const probe = { dispatches: 0, shaders: [] };
if (globalThis.GPUComputePassEncoder) {
  const enc = GPUComputePassEncoder.prototype;
  for (const name of ["dispatchWorkgroups", "dispatchWorkgroupsIndirect"]) {
    const f = enc[name];
    enc[name] = function (...a) {
      probe.dispatches++;
      return f.apply(this, a);
    };
  }
  const create = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (desc) {
    probe.shaders.push(String(desc.code));
    return create.call(this, desc);
  };
}

/** Workgroup sizes, barriers and workgroup memory in a list of WGSL modules. */
function shaderStats(codes) {
  const sizes = {};
  let barriers = 0;
  let shared = 0;
  for (const c of codes) {
    for (const m of c.matchAll(/@workgroup_size\(([^)]*)\)/g)) {
      const k = m[1].replace(/\s+/g, "");
      sizes[k] = (sizes[k] || 0) + 1;
    }
    if (/workgroupBarrier\s*\(/.test(c)) barriers++;
    if (/var\s*<\s*workgroup\s*>/.test(c)) shared++;
  }
  return { modules: codes.length, withBarriers: barriers, withWorkgroupMemory: shared, workgroupSizes: sizes };
}

const LR = 1e-3;
const B1 = 0.9;
const B2 = 0.999;
const EPS = 1e-8;

/** He-uniform-ish weights from a seeded generator (the frameworks' own inits differ anyway). */
function weights(n, fanIn, seed) {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  const a = Math.sqrt(6 / fanIn);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * a;
  }
  return out;
}

function oneHot(y, classes) {
  const out = new Float32Array(y.length * classes);
  for (let i = 0; i < y.length; i++) out[i * classes + y[i]] = 1;
  return out;
}

// ---------------------------------------------------------------- TF.js (WebGPU or wasm backend)

/** TF.js's wasm backend loads its .wasm files from the test server's node_modules. */
const TFJS_WASM_DIR = "/benchmarks/browser/node_modules/@tensorflow/tfjs-backend-wasm/dist/";

async function tfjsRun({ model, batch, steps, warmupSteps, backend }, data) {
  const tf = window.tf;
  const name = backend === "cpu" ? "wasm" : "webgpu";
  if (name === "wasm") tf.wasm.setWasmPaths(TFJS_WASM_DIR);
  if (!(await tf.setBackend(name))) throw new Error(`TF.js: the ${name} backend did not initialise`);
  await tf.ready();
  const m = tf.sequential();
  if (model === "mlp") {
    m.add(tf.layers.dense({ inputShape: [784], units: 512, activation: "relu" }));
    m.add(tf.layers.dense({ units: 256, activation: "relu" }));
    m.add(tf.layers.dense({ units: 10, activation: "softmax" }));
  } else {
    const conv = (filters, extra = {}) =>
      tf.layers.conv2d({ filters, kernelSize: 3, padding: "same", activation: "relu", dataFormat: "channelsLast", ...extra });
    m.add(conv(32, { inputShape: [28, 28, 1] }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(conv(64));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 128, activation: "relu" }));
    m.add(tf.layers.dense({ units: 10, activation: "softmax" }));
  }
  m.compile({ optimizer: tf.train.adam(LR, B1, B2, EPS), loss: "categoricalCrossentropy" });
  const shape = model === "mlp" ? [batch, 784] : [batch, 28, 28, 1];
  const batches = [];
  for (let s = 0; s < warmupSteps + steps; s++) {
    const at = (s * batch) % (data.n - batch + 1);
    batches.push([
      tf.tensor(data.x.subarray(at * 784, (at + batch) * 784), shape),
      tf.tensor(oneHot(data.y.subarray(at, at + batch), 10), [batch, 10]),
    ]);
  }
  let loss = NaN;
  const run = async (from, to) => {
    let last;
    for (let s = from; s < to; s++) last = await m.trainOnBatch(batches[s][0], batches[s][1]);
    loss = Array.isArray(last) ? last[0] : last;
  };
  await run(0, warmupSteps);
  const d0 = probe.dispatches;
  const t0 = performance.now();
  await run(warmupSteps, warmupSteps + steps);
  const seconds = (performance.now() - t0) / 1000;
  const timedDispatches = probe.dispatches - d0;
  for (const [x, y] of batches) { x.dispose(); y.dispose(); }
  m.dispose();
  const extra = name === "wasm"
    ? { wasmSimd: await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"), wasmThreads: await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT") }
    : {};
  return { seconds, loss, backend: tf.getBackend(), timedDispatches, ...extra };
}

// ---------------------------------------------------------------- jax-js (WebGPU or wasm)

const { numpy: np, nn, lax } = jax;

/** Parameters as a flat list [w, b, w, b, …] (dense w: [in, out]; conv w: [out, in, 3, 3]). */
function jaxParams(model) {
  const shapes = model === "mlp"
    ? [[784, 512], [512], [512, 256], [256], [256, 10], [10]]
    : [[32, 1, 3, 3], [32], [64, 32, 3, 3], [64], [3136, 128], [128], [128, 10], [10]];
  return shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    const fanIn = s.length === 4 ? s[1] * 9 : s[0];
    const v = s.length === 1 ? new Float32Array(n) : weights(n, fanIn, 17 + i);
    return np.array(v).reshape(s);
  });
}

function pool2(x) {
  // [B, C, H, W] → [B, C, H/2, W/2] by the maximum of each 2×2 window.
  const [b, c, h, w] = x.shape;
  return np.max(x.reshape([b, c, h / 2, 2, w / 2, 2]), [3, 5]);
}

function jaxLoss(model, p, x, y) {
  let h;
  if (model === "mlp") {
    const [w1, b1, w2, b2, w3, b3] = p;
    h = nn.relu(np.matmul(x, w1).add(b1));
    h = nn.relu(np.matmul(h, w2).add(b2));
    h = np.matmul(h, w3).add(b3);
  } else {
    const [c1, cb1, c2, cb2, w3, b3, w4, b4] = p;
    const bsz = x.shape[0];
    h = x.reshape([bsz, 1, 28, 28]);
    h = pool2(nn.relu(lax.conv(h, c1, [1, 1], "SAME").add(cb1.reshape([1, 32, 1, 1]))));
    h = pool2(nn.relu(lax.conv(h, c2, [1, 1], "SAME").add(cb2.reshape([1, 64, 1, 1]))));
    h = h.reshape([bsz, 3136]);
    h = nn.relu(np.matmul(h, w3).add(b3));
    h = np.matmul(h, w4).add(b4);
  }
  const n = y.shape[0];
  return nn.logSoftmax(h, -1).mul(y).sum().mul(-1 / n);
}

async function jaxRun({ model, batch, steps, warmupSteps, backend }, data) {
  const device = backend === "cpu" ? "wasm" : "webgpu";
  const devices = await jax.init(device);
  if (!devices.includes(device)) throw new Error(`jax-js: no ${device} device`);
  jax.defaultDevice(device);
  let p = jaxParams(model);
  let m = p.map((a) => np.zerosLike(a.ref));
  let v = p.map((a) => np.zerosLike(a.ref));
  const vg = jax.valueAndGrad((params, x, y) => jaxLoss(model, params, x, y));
  // One jitted step: loss, gradients and the Adam update (lrT: the bias-corrected rate).
  const step = jax.jit((params, ms, vs, x, y, lrT) => {
    const [loss, grads] = vg(params.map((a) => a.ref), x, y);
    const np2 = [], nm = [], nv = [];
    for (let i = 0; i < params.length; i++) {
      const g = grads[i];
      const m2 = ms[i].mul(B1).add(g.ref.mul(1 - B1));
      const v2 = vs[i].mul(B2).add(g.ref.mul(g).mul(1 - B2));
      np2.push(params[i].sub(m2.ref.mul(lrT.ref).div(np.sqrt(v2.ref).add(EPS))));
      nm.push(m2);
      nv.push(v2);
    }
    lrT.dispose();
    return [loss, np2, nm, nv];
  });
  const inputs = [];
  for (let s = 0; s < warmupSteps + steps; s++) {
    const at = (s * batch) % (data.n - batch + 1);
    inputs.push([
      np.array(data.x.slice(at * 784, (at + batch) * 784)).reshape([batch, 784]),
      np.array(oneHot(data.y.subarray(at, at + batch), 10)).reshape([batch, 10]),
    ]);
  }
  let t = 0;
  let lossValue = NaN;
  const run = async (from, to) => {
    let loss = null;
    for (let s = from; s < to; s++) {
      t += 1;
      const lrT = (LR * Math.sqrt(1 - B2 ** t)) / (1 - B1 ** t);
      if (loss) loss.dispose();
      [loss, p, m, v] = step(p, m, v, inputs[s][0], inputs[s][1], np.array([lrT]));
    }
    lossValue = (await loss.data())[0];
    await jax.blockUntilReady(p);
  };
  await run(0, warmupSteps);
  const d0 = probe.dispatches;
  const t0 = performance.now();
  await run(warmupSteps, warmupSteps + steps);
  const seconds = (performance.now() - t0) / 1000;
  const timedDispatches = probe.dispatches - d0;
  for (const a of [...p, ...m, ...v]) a.dispose();
  return { seconds, loss: lossValue, backend: device, timedDispatches };
}

// ---------------------------------------------------------------- accrete

export async function setUp() {
  const accrete = await accreteSetUp();
  const dataCache = new Map();
  const dataFor = async (n) => {
    if (!dataCache.has(n)) dataCache.set(n, await fashion(n));
    return dataCache.get(n);
  };
  /** One framework's timed run: { samplesPerSec, msPerStep, seconds, loss, … }. */
  /** backend: "webgpu" (default) or "cpu" (see the header). */
  return async ({ framework, model, batch = 128, steps = 10, warmupSteps = 2, keepShaders = false, backend = "webgpu" }) => {
    if (backend !== "webgpu" && backend !== "cpu") throw new Error(`backend must be "webgpu" or "cpu", got ${backend}`);
    // accrete's own names for its backends: "gpu" explicitly, as "auto" would take the CPU
    // backend on a software adapter such as SwiftShader.
    const accreteBackend = backend === "cpu" ? "cpu" : "gpu";
    const samples = steps * batch;
    const shaders0 = probe.shaders.length;
    let r;
    if (framework === "accrete") {
      // The warm-up chunk and the timed epoch in one call: count the epoch's dispatches as
      // (all − warm-up), the warm-up being counted by a run of its own first.
      const w0 = probe.dispatches;
      await accrete({ model, batch, samples: warmupSteps * batch, epochs: 1, warmupSteps: 0, backend: accreteBackend });
      const perWarm = probe.dispatches - w0;
      const d0 = probe.dispatches;
      const out = await accrete({ model, batch, samples, epochs: 1, warmupSteps, backend: accreteBackend });
      const run = out.runs.find((x) => !x.warmup);
      r = {
        seconds: run.seconds,
        loss: run.loss,
        backend: out.trainerBackend === "cpu" ? "cpu" : out.adapter.backend,
        adapter: out.adapter.name || out.adapter.driver,
        timedDispatches: probe.dispatches - d0 - perWarm,
      };
    } else {
      const data = await dataFor(Math.max(samples, warmupSteps * batch) + batch);
      r = framework === "tfjs"
        ? await tfjsRun({ model, batch, steps, warmupSteps, backend }, data)
        : await jaxRun({ model, batch, steps, warmupSteps, backend }, data);
    }
    const codes = probe.shaders.slice(shaders0);
    return {
      ...r,
      steps,
      samplesPerSec: samples / r.seconds,
      msPerStep: (1000 * r.seconds) / steps,
      dispatchesPerStep: r.timedDispatches / steps,
      shaders: shaderStats(codes),
      ...(keepShaders ? { shaderCode: codes } : {}),
    };
  };
}
