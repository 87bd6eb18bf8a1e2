// Browser tests of the accrete wasm package (web/pkg) in headless Chromium (WebGPU on
// SwiftShader without a GPU), checked against the native CLI:
//
//   adapter       adapterInfo() describes the WebGPU adapter (SwiftShader here)
//   spirals       a 2-32-32-2 tanh net (PyTorch-default init) learns 2-D spirals in the browser
//                 to ≥ 0.95 held-out accuracy; results, getters and history are camelCase objects
//   save-eval     t.save() bytes evaluated by `accrete eval` give the browser's accuracy
//   cli-resume    a checkpoint of `accrete train` loads in the browser and trains on
//   fit-options   fitChunk(x, y, { lr, epochs }) from a CLI checkpoint trains to the losses of
//                 `accrete resume --set optimizer.lr=… --set train.epochs=…`, recorded in the history
//   recovery      recovery = { strategy } specs: anneal/population/last_good accepted and recover
//                 from a learning-rate spike (fitChunk's lr); best and unknown strategies refused
//   conv-parity   a CNN with dropout trains to the same losses in the browser and in the CLI
//   mlp-parity    MLPs with tanh, sigmoid and ELU hidden layers train to the CLI's losses
//   mixed-precision  train.mixed_precision: with shader-f16, the browser trains to the CLI's
//                 losses and reports the loss scale; without it, a clear Error
//   errors        bad specs, arrays, options and checkpoint bytes reject with clear Errors
//                 (name "AccreteError" and a code)
//   busy-stop     concurrent calls reject as busy; stop() ends fitChunk early, resumably
//   class-incremental  five class-incremental chunks with DER++ train to the CLI's per-chunk
//                 losses (same backend kind), and setChunkEvaluation gives its accuracy matrix
//   safetensors-dataset  datasetFromSafetensors reads a features/labels file written here into
//                 the arrays fitChunk trains on (bit for bit); bad files and options throw clearly
//
// Usage: node tests/browser/run.mjs [name …]     (run.sh builds what is missing first)
// Environment: CHROMIUM (browser binary), ACCRETE_BIN (native CLI; default target/debug/accrete).

import { readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { open } from "./browser.mjs";
import { accrete, assert, close, EPOCHS, nativeLosses, SPEC, TEST, TRAIN, work } from "./common.mjs";
import { continualTests } from "./continual.mjs";
import { controlTests } from "./control.mjs";
import { bars, spirals, toCsv } from "./data.mjs";

/** In the page: a base64 string of a Uint8Array. */
const PAGE_HELPERS = () => {
  window.toBase64 = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  };
  /** Awaits `promise`, returning { message, isError, name, code } of its rejection (or null if it resolved). */
  window.rejection = async (promise) => {
    try {
      await promise;
      return null;
    } catch (e) {
      return { message: String(e && e.message), isError: e instanceof Error, name: e && e.name, code: e && e.code };
    }
  };
};

/** BROWSER_WEBGPU=0: Chromium without WebGPU, where every trainer runs on the CPU backend. */
const WEBGPU = process.env.BROWSER_WEBGPU !== "0";

const tests = {
  async adapter(page) {
    const info = await page.evaluate(() => accrete.adapterInfo());
    console.log(`  adapter: ${info.name} (${info.backend}, ${info.deviceType}, driver ${info.driver})`);
    if (!WEBGPU) {
      assert(info.backend === "Cpu" && /accrete CPU backend/.test(info.name), `expected the CPU backend, got ${JSON.stringify(info)}`);
      const r = await page.evaluate(async () => ({
        gpu: await rejection(accrete.adapterInfo({ backend: "gpu" })),
        bad: await rejection(accrete.adapterInfo({ backend: "tpu" })),
      }));
      // No adapter (navigator.gpu exists, requestAdapter gives none) or no navigator.gpu at all.
      assert(r.gpu && ["no_adapter", "no_webgpu"].includes(r.gpu.code) && /backend/.test(r.gpu.message),
        `backend "gpu" without WebGPU: ${JSON.stringify(r.gpu)}`);
      assert(r.bad && /auto, gpu or cpu/.test(r.bad.message), `backend "tpu": ${JSON.stringify(r.bad)}`);
      return;
    }
    const text = `${info.name} ${info.driver} ${info.driverInfo}`;
    assert(/swiftshader/i.test(text), `expected SwiftShader, got ${JSON.stringify(info)}`);
    assert(info.backend.toLowerCase().includes("browser") || info.backend.toLowerCase().includes("webgpu"),
      `expected the browser's WebGPU backend, got ${info.backend}`);
    assert(info.maxStorageBufferBindingSize > 0, "no storage buffer limit reported");
    assert(!Object.keys(info).some((k) => k.includes("_")), `snake_case keys: ${Object.keys(info)}`);
  },

  async "auto-backend"(page) {
    // auto takes the CPU backend on SwiftShader (a software adapter) and without WebGPU;
    // "gpu" keeps WebGPU where there is one.
    const r = await page.evaluate(async (webgpu) => {
      const spec = { model: { input: [2], layers: [{ type: "dense", units: 2 }] } };
      const auto = await accrete.Trainer.create(spec, { backend: "auto" });
      const out = { auto: auto.backend, info: (await accrete.adapterInfo({ backend: "auto" })).backend };
      auto.free();
      if (webgpu) {
        const gpu = await accrete.Trainer.create(spec, { backend: "gpu" });
        out.gpu = gpu.backend;
        gpu.free();
      }
      return out;
    }, WEBGPU);
    const want = WEBGPU ? { auto: "cpu", info: "Cpu", gpu: "gpu" } : { auto: "cpu", info: "Cpu" };
    assert(JSON.stringify(r) === JSON.stringify(want), `backends: ${JSON.stringify(r)}, expected ${JSON.stringify(want)}`);
  },

  async spirals(page, state) {
    const r = await page.evaluate(
      async ({ spec, train, test, epochs }) => {
        const tr = data.spirals(train.n, { seed: train.seed });
        const te = data.spirals(test.n, { seed: test.seed });
        const t = await accrete.Trainer.create(JSON.stringify(spec));
        window.spiral = t;
        const progress = [];
        const first = await t.fitChunk(tr.x, tr.y, {
          epochs: epochs / 2,
          onProgress: (p) => progress.push(p),
        });
        // A second chunk (the same distribution, as data arriving later) continues training.
        const second = await t.fitChunk(tr.x, tr.y, { epochs: epochs / 2, reportEvery: 0 });
        const after = await t.evaluate(te.x, te.y);
        const probs = await t.predict(te.x);
        let agree = 0;
        let rowsSumToOne = true;
        for (let i = 0; i < te.y.length; i++) {
          const p0 = probs[2 * i], p1 = probs[2 * i + 1];
          if (Math.abs(p0 + p1 - 1) > 1e-5) rowsSumToOne = false;
          if ((p1 > p0 ? 1 : 0) === te.y[i]) agree++;
        }
        const bytes = await t.save();
        return {
          first, second, after, progress,
          probsLength: probs.length, probsIsFloat32: probs instanceof Float32Array,
          predictAccuracy: agree / te.y.length, rowsSumToOne,
          step: t.step, epoch: t.epoch, classes: t.classes, inputLen: t.inputLen,
          spec: t.spec, specJson: t.specJson, history: t.history,
          historyNative: JSON.parse(t.historyJson),
          checkpoint: toBase64(bytes),
        };
      },
      { spec: SPEC, train: TRAIN, test: TEST, epochs: EPOCHS },
    );
    const stepsPerEpoch = Math.ceil(TRAIN.n / SPEC.train.batch_size);
    console.log(
      `  training loss ${r.first.epochs[0].loss.toFixed(4)} (epoch 1) → ${r.second.loss.toFixed(4)} ` +
        `(epoch ${r.epoch}); test accuracy ${r.after.accuracy.toFixed(3)} after ${r.step} steps ` +
        `(${r.first.seconds.toFixed(1)} s + ${r.second.seconds.toFixed(1)} s, ` +
        `${r.first.samplesPerSec.toFixed(0)} samples/s)`,
    );
    assert(r.after.accuracy >= 0.95, `spiral test accuracy ${r.after.accuracy} < 0.95`);
    assert(r.first.steps === (EPOCHS / 2) * stepsPerEpoch, `first chunk took ${r.first.steps} steps`);
    assert(r.second.step === EPOCHS * stepsPerEpoch && r.step === r.second.step, `step counter ${r.step}`);
    assert(r.epoch === EPOCHS && r.second.epoch === EPOCHS, `epoch counter ${r.epoch}`);
    assert(r.first.epochs.length === EPOCHS / 2 && !r.first.stopped, "per-epoch stats missing");
    assert(r.second.loss < r.first.epochs[0].loss, "the training loss did not fall");
    assert(r.history.length === EPOCHS, `history has ${r.history.length} rows`);
    assert(r.progress.length >= EPOCHS / 2, `only ${r.progress.length} progress reports`);
    const p = r.progress.at(-1);
    for (const key of ["epoch", "epochs", "step", "stepInEpoch", "stepsInEpoch", "loss", "accuracy"]) {
      assert(typeof p[key] === "number", `progress lacks ${key}: ${JSON.stringify(p)}`);
    }
    assert(p.epoch === EPOCHS / 2 && p.stepInEpoch === p.stepsInEpoch, `last progress ${JSON.stringify(p)}`);
    assert(r.probsIsFloat32 && r.probsLength === TEST.n * 2 && r.rowsSumToOne, "predict's output");
    assert(Math.abs(r.predictAccuracy - r.after.accuracy) < 1e-9, "predict and evaluate disagree");
    assert(r.after.confusion.length === 2 && r.after.confusion.flat().reduce((a, b) => a + b) === TEST.n,
      `confusion ${JSON.stringify(r.after.confusion)}`);
    assert(r.classes === 2 && r.inputLen === 2 && r.spec.input[0] === 2, "getters");
    assert(r.spec.layers[0].activation === "tanh" && JSON.stringify(r.spec) === r.specJson, "spec getter");
    const row = r.history.at(-1);
    assert(row.event === "epoch" && typeof row.trainLoss === "number" && typeof row.samplesPerSec === "number"
      && row.epochInChunk === EPOCHS / 2 && !Object.keys(row).some((k) => k.includes("_")),
      `history row ${JSON.stringify(row)}`);
    assert(r.historyNative.at(-1).train_loss === row.trainLoss, "historyJson keeps the native keys");
    assert(!Object.keys(r.after).some((k) => k.includes("_")) && typeof r.after.macroF1 === "number"
      && typeof r.after.perClass[0].f1 === "number", `evaluate keys ${Object.keys(r.after)}`);
    state.spiral = r;
  },

  async "save-eval"(page, state) {
    assert(state.spiral, "needs the spirals test");
    const dir = join(work, "save-eval");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "browser.safetensors"), Buffer.from(state.spiral.checkpoint, "base64"));
    const te = spirals(TEST.n, { seed: TEST.seed });
    writeFileSync(join(dir, "test.csv"), toCsv(te.x, te.y));
    const native = JSON.parse(accrete(["eval", "browser.safetensors", "--csv", "test.csv"], dir));
    const browser = state.spiral.after;
    console.log(
      `  browser accuracy ${browser.accuracy} loss ${browser.loss.toFixed(7)}; ` +
        `native accrete eval accuracy ${native.accuracy} loss ${native.loss.toFixed(7)}`,
    );
    assert(native.samples === TEST.n, `native evaluated ${native.samples} samples`);
    assert(Math.abs(native.accuracy - browser.accuracy) <= 1 / TEST.n + 1e-12,
      `accuracy differs: native ${native.accuracy}, browser ${browser.accuracy}`);
    assert(close(native.loss, browser.loss, 1e-4), `loss differs: native ${native.loss}, browser ${browser.loss}`);
    // The browser-saved checkpoint also loads back in the browser and predicts the same.
    const again = await page.evaluate(
      async ({ b64, test }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const t2 = await accrete.Trainer.load(bytes);
        const te = data.spirals(test.n, { seed: test.seed });
        const e = await t2.evaluate(te.x, te.y);
        const out = { accuracy: e.accuracy, loss: e.loss, step: t2.step, epoch: t2.epoch };
        t2.free();
        return out;
      },
      { b64: state.spiral.checkpoint, test: TEST },
    );
    assert(again.step === state.spiral.step && again.epoch === state.spiral.epoch, "counters after load");
    assert(again.accuracy === browser.accuracy && again.loss === browser.loss,
      `reloaded: ${JSON.stringify(again)} vs ${JSON.stringify({ a: browser.accuracy, l: browser.loss })}`);
  },

  async "cli-resume"(page) {
    const dir = join(work, "cli");
    mkdirSync(dir, { recursive: true });
    const tr = spirals(300, { seed: 5 });
    const te = spirals(TEST.n, { seed: TEST.seed });
    writeFileSync(join(dir, "train.csv"), toCsv(tr.x, tr.y));
    writeFileSync(join(dir, "test.csv"), toCsv(te.x, te.y));
    writeFileSync(
      join(dir, "run.toml"),
      `seed = 3

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
standardize = true
validation_fraction = 0

[model]
input = [2]
layers = [
  { type = "dense", units = 32, activation = "tanh" },
  { type = "dense", units = 32, activation = "tanh" },
  { type = "dense", units = 2 },
]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 30
epochs = 3

[incremental]
chunks = 1

[checkpoint]
every_steps = 0
`,
    );
    accrete(["train", "--config", "run.toml", "--out", "run", "--quiet"], dir);
    const ckpt = "run/checkpoints/last.safetensors";
    const native = JSON.parse(accrete(["eval", ckpt, "--csv", "test.csv"], dir));
    const cliSteps = 3 * 10;
    const r = await page.evaluate(
      async ({ url, test, epochs }) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`fetch ${url}: ${res.status}`);
        const t = await accrete.Trainer.load(new Uint8Array(await res.arrayBuffer()));
        const tr = data.spirals(300, { seed: 5 });
        const te = data.spirals(test.n, { seed: test.seed });
        const epochRows = () => t.history.filter((h) => h.event === "epoch");
        const loaded = { step: t.step, epoch: t.epoch, history: epochRows().length };
        const before = await t.evaluate(te.x, te.y);
        const beforeTrain = await t.evaluate(tr.x, tr.y);
        const fit = await t.fitChunk(tr.x, tr.y, { epochs });
        const after = await t.evaluate(te.x, te.y);
        const out = { loaded, before, beforeTrain, fit, after, step: t.step, history: epochRows() };
        t.free();
        return out;
      },
      { url: `/files/cli/${ckpt}`, test: TEST, epochs: 30 },
    );
    console.log(
      `  CLI checkpoint: step ${r.loaded.step}, test accuracy native ${native.accuracy} / browser ${r.before.accuracy}; ` +
        `after 30 more epochs in the browser: step ${r.step}, train loss ${r.beforeTrain.loss.toFixed(4)} → ` +
        `${r.fit.loss.toFixed(4)}, test accuracy ${r.after.accuracy.toFixed(3)}`,
    );
    assert(r.loaded.step === cliSteps && r.loaded.epoch === 3 && r.loaded.history === 3,
      `loaded counters ${JSON.stringify(r.loaded)}`);
    assert(Math.abs(native.accuracy - r.before.accuracy) <= 1 / TEST.n + 1e-12 && close(native.loss, r.before.loss, 1e-4),
      `the CLI checkpoint evaluates differently: native ${native.accuracy}/${native.loss}, browser ${r.before.accuracy}/${r.before.loss}`);
    assert(r.fit.steps === 300 && r.step === cliSteps + 300, `steps ${r.fit.steps}, step ${r.step}`);
    assert(r.history.length === 33 && r.history[3].step === cliSteps + 10, "history continues the CLI's");
    assert(r.fit.loss < r.beforeTrain.loss, `training loss did not fall: ${r.beforeTrain.loss} → ${r.fit.loss}`);
    assert(r.after.accuracy >= 0.9, `test accuracy after continuing: ${r.after.accuracy}`);
  },

  ...controlTests,
  ...continualTests,

  async "conv-parity"(page) {
    // A small CNN with dropout trained by the CLI and in the browser from the same seed and
    // data: the epochs' training losses agree (same kernels, same shuffles and dropout masks).
    const dir = join(work, "conv");
    mkdirSync(dir, { recursive: true });
    const n = 96;
    const d = bars(n, { seed: 4 });
    writeFileSync(join(dir, "train.csv"), toCsv(d.x, d.y));
    const spec = {
      seed: 11,
      model: {
        input: [1, 6, 6],
        layers: [
          { type: "conv2d", filters: 4, kernel: 3, padding: 1, activation: "relu" },
          { type: "maxpool2d", size: 2 },
          { type: "flatten" },
          { type: "dropout", rate: 0.25 },
          { type: "dense", units: 2 },
        ],
      },
      optimizer: { type: "adam", lr: 0.02 },
      train: { batch_size: 16, epochs: 3 },
    };
    const layer = (l) =>
      "{ " + Object.entries(l).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ") + " }";
    writeFileSync(
      join(dir, "run.toml"),
      `seed = ${spec.seed}

[data]
format = "csv"
train_file = "train.csv"
validation_fraction = 0

[model]
input = [1, 6, 6]
layers = [
${spec.model.layers.map((l) => "  " + layer(l) + ",").join("\n")}
]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 16
epochs = 3

[incremental]
chunks = 1

[checkpoint]
every_steps = 0
`,
    );
    accrete(["train", "--config", "run.toml", "--out", "run", "--quiet"], dir);
    const native = readFileSync(join(dir, "run/metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).train_loss);
    const browser = await page.evaluate(
      async ({ spec, n }) => {
        const t = await accrete.Trainer.create(spec);
        const d = data.bars(n, { seed: 4 });
        const r = await t.fitChunk(d.x, d.y);
        t.free();
        return r.epochs.map((e) => e.loss);
      },
      { spec, n },
    );
    console.log(`  training losses per epoch: native ${native.join(", ")}; browser ${browser.join(", ")}`);
    assert(native.length === 3 && browser.length === 3, "three epochs each");
    for (let i = 0; i < 3; i++) {
      assert(close(native[i], browser[i], 1e-5), `epoch ${i + 1}: native ${native[i]}, browser ${browser[i]}`);
    }
    assert(browser[2] < browser[0], "the loss did not fall");
  },

  async "mlp-parity"(page) {
    // MLPs whose hidden activations (tanh, sigmoid, ELU; fused into dense layers and as
    // activation layers) keep a pre-activation for the backward: the CLI and the browser give
    // the same per-epoch training losses (a partial last batch included), and the losses fall.
    const dir = join(work, "mlp");
    mkdirSync(dir, { recursive: true });
    const n = 200;
    const d = spirals(n, { seed: 5 });
    writeFileSync(join(dir, "train.csv"), toCsv(d.x, d.y));
    const models = {
      mixed: [
        { type: "dense", units: 12, activation: "tanh" },
        { type: "dense", units: 12, activation: "sigmoid" },
        { type: "dense", units: 12, activation: "elu" },
        { type: "dense", units: 2 },
      ],
      layers: [
        { type: "dense", units: 12 },
        { type: "activation", activation: "tanh" },
        { type: "dense", units: 12 },
        { type: "activation", activation: "elu" },
        { type: "dense", units: 12 },
        { type: "activation", activation: "sigmoid" },
        { type: "dense", units: 2 },
      ],
    };
    const epochs = 4;
    for (const [name, layers] of Object.entries(models)) {
      const spec = {
        seed: 3,
        model: { input: [2], layers },
        optimizer: { type: "adam", lr: 0.03 },
        train: { batch_size: 32, epochs },
      };
      const native = nativeLosses(join(dir, name), spec);
      const browser = await page.evaluate(
        async ({ spec, n }) => {
          const t = await accrete.Trainer.create(spec);
          try {
            const d = data.spirals(n, { seed: 5 });
            const r = await t.fitChunk(d.x, d.y);
            return r.epochs.map((e) => e.loss);
          } finally {
            t.free();
          }
        },
        { spec, n },
      );
      console.log(`  ${name}: training losses per epoch: native ${native.join(", ")}; browser ${browser.join(", ")}`);
      assert(native.length === epochs && browser.length === epochs, `${name}: ${epochs} epochs each`);
      for (let i = 0; i < epochs; i++) {
        assert(
          close(native[i], browser[i], 1e-5),
          `${name} epoch ${i + 1}: native ${native[i]}, browser ${browser[i]}`,
        );
      }
      assert(browser[epochs - 1] < browser[0], `${name}: the loss did not fall`);
    }
  },

  async "mixed-precision"(page) {
    // train.mixed_precision (f16 GEMM operands, f32 sums, dynamic loss scaling) where the
    // browser offers shader-f16: the same per-epoch losses as the CLI on lavapipe (f16
    // rounding is exact IEEE on both, so the 1e-5 of the f32 parity tests applies), and the
    // history carries the loss scale. Without shader-f16 the spec is refused, naming it.
    const info = await page.evaluate(() => accrete.adapterInfo());
    const f16 = (info.features || []).includes("SHADER_F16");
    console.log(`  adapter features: ${(info.features || []).join(", ") || "none"}`);
    const dir = join(work, "mixed");
    mkdirSync(dir, { recursive: true });
    const n = 200;
    const d = spirals(n, { seed: 6 });
    writeFileSync(join(dir, "train.csv"), toCsv(d.x, d.y));
    const spec = {
      seed: 4,
      model: {
        input: [2],
        layers: [
          { type: "dense", units: 32, activation: "relu" },
          { type: "dense", units: 32, activation: "tanh" },
          { type: "dense", units: 2 },
        ],
      },
      optimizer: { type: "adam", lr: 0.02 },
      train: { batch_size: 32, epochs: 4, mixed_precision: true },
    };
    if (!f16) {
      const message = await page.evaluate(async (spec) => {
        try {
          (await accrete.Trainer.create(spec)).free();
          return null;
        } catch (e) {
          return String(e.message || e);
        }
      }, spec);
      assert(message && message.includes("SHADER_F16") && message.includes("mixed_precision"),
        `expected a SHADER_F16 refusal, got ${message}`);
      console.log(`  no shader-f16 here: refused with "${message}"`);
      return;
    }
    const native = nativeLosses(join(dir, "run"), spec);
    const browser = await page.evaluate(
      async ({ spec, n }) => {
        const t = await accrete.Trainer.create(spec);
        try {
          const d = data.spirals(n, { seed: 6 });
          const r = await t.fitChunk(d.x, d.y);
          return { losses: r.epochs.map((e) => e.loss), history: t.history };
        } finally {
          t.free();
        }
      },
      { spec, n },
    );
    console.log(`  training losses per epoch: native ${native.join(", ")}; browser ${browser.losses.join(", ")}`);
    assert(native.length === 4 && browser.losses.length === 4, "four epochs each");
    for (let i = 0; i < 4; i++) {
      assert(close(native[i], browser.losses[i], 1e-5),
        `epoch ${i + 1}: native ${native[i]}, browser ${browser.losses[i]}`);
    }
    const rows = browser.history.filter((h) => h.trainLoss !== undefined);
    assert(rows.length === 4 && rows.every((h) => h.lossScale === 65536 && h.skippedSteps === 0),
      `history without the loss scale: ${JSON.stringify(rows)}`);
  },

  async errors(page) {
    const r = await page.evaluate(async (spec) => {
      const T = accrete.Trainer;
      const s = (patch) => JSON.stringify({ ...spec, ...patch });
      const layers = spec.model.layers;
      const out = {};
      out.unknownLayer = await rejection(T.create(s({
        model: { input: [2], layers: [layers[0], { type: "dense2", units: 2 }] },
      })));
      out.unknownKey = await rejection(T.create(s({ colour: 3 })));
      out.unknownLayerKey = await rejection(T.create(s({
        model: { input: [2], layers: [{ type: "dense", units: 2, activaton: "relu" }] },
      })));
      out.badJson = await rejection(T.create('{"model": {"input": [2],'));
      out.badValue = await rejection(T.create(s({ train: { batch_size: 0 } })));
      out.notJson = await rejection(T.create(42));
      out.corrupt = await rejection(T.load(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])));
      const good = await window.spiral.save();
      const flipped = good.slice();
      flipped[flipped.length - 3] ^= 0x40;
      out.flipped = await rejection(T.load(flipped));
      out.notBytes = await rejection(T.load("last.safetensors"));
      const t = await T.create(JSON.stringify({ ...spec, data: {} }));
      const x4 = new Float32Array([0, 0, 1, 1]);
      out.xLength = await rejection(t.fitChunk(new Float32Array(5), new Uint32Array(2)));
      out.labelRange = await rejection(t.fitChunk(x4, new Uint32Array([0, 2])));
      out.mismatch = await rejection(t.fitChunk(x4, new Uint32Array([0, 1, 1])));
      out.nan = await rejection(t.fitChunk(new Float32Array([0, 0, NaN, 1]), new Uint32Array([0, 1])));
      out.empty = await rejection(t.fitChunk(new Float32Array(0), new Uint32Array(0)));
      out.negativeLabel = await rejection(t.fitChunk(x4, [0, -1]));
      out.xType = await rejection(t.fitChunk("0,0,1,1", [0, 1]));
      out.option = await rejection(t.fitChunk(x4, [0, 1], { epoch: 2 }));
      out.epochs = await rejection(t.fitChunk(x4, [0, 1], { epochs: 0 }));
      out.predictLength = await rejection(t.predict(new Float32Array(3)));
      out.thrown = await rejection(t.fitChunk(x4, [0, 1], { onProgress: () => { throw new Error("stop here"); } }));
      // After all that the trainer still works, and plain arrays are accepted.
      const ok = await t.fitChunk([0, 0, 1, 1, 0.5, -0.5], [0, 1, 1], { epochs: 2 });
      out.stillWorks = ok.steps === 2 && Number.isFinite(ok.loss);
      const st = await T.create(JSON.stringify(spec));
      out.standardizeFirst = await rejection(st.evaluate(x4, [0, 1]));
      t.free();
      st.free();
      return out;
    }, SPEC);
    const expect = {
      unknownLayer: ["model.layers[1]", "unknown variant `dense2`", "dense"],
      unknownKey: ["unknown field `colour`", "model"],
      unknownLayerKey: ["model.layers[0]", "unknown field `activaton`", "activation"],
      badJson: ["Trainer.create: spec: EOF while parsing", "line 1 column 24"],
      badValue: ["train.batch_size: must be at least 1"],
      notJson: ["spec must be a JSON string", "got number"],
      corrupt: ["Trainer.load: checkpoint", "not a valid safetensors file"],
      flipped: ["checksum mismatch", "corrupted"],
      notBytes: ["bytes must be a Uint8Array or ArrayBuffer"],
      xLength: ["fitChunk", "5 feature values are not a whole number of samples", "n × 2"],
      labelRange: ["label 2 of sample 1 is outside the model's 2 classes"],
      mismatch: ["3 labels for 2 samples", "one label per sample"],
      nan: ["feature 0 of sample 1 is NaN"],
      empty: ["no samples"],
      negativeLabel: ["label of sample 1 is -1", "non-negative integers"],
      xType: ["x must be a Float32Array", "got string"],
      option: ["unknown option `epoch`", "epochs"],
      epochs: ["options.epochs must be an integer ≥ 1"],
      predictLength: ["predict", "3 feature values are not a whole number of samples"],
      thrown: ["stop here"],
      standardizeFirst: ["data.standardize", "call fitChunk first"],
    };
    // Codes: the spec and JS-argument checks say invalid_argument; the rest are bad input
    // of some kind (data, shape, …); what onProgress threw comes back unchanged.
    const INVALID = ["unknownLayer", "unknownKey", "unknownLayerKey", "badJson", "badValue", "notJson",
      "notBytes", "xType", "option", "epochs", "negativeLabel"];
    const BAD_INPUT = ["invalid_argument", "shape", "data", "over_limit", "io"];
    const problems = [];
    for (const [name, parts] of Object.entries(expect)) {
      const got = r[name];
      if (!got) {
        problems.push(`${name}: resolved instead of rejecting`);
        continue;
      }
      if (!got.isError) problems.push(`${name}: rejected with a non-Error: ${got.message}`);
      if (name === "thrown") {
        if (got.name !== "Error" || got.code !== undefined) problems.push(`thrown: not passed on unchanged: ${JSON.stringify(got)}`);
      } else if (got.name !== "AccreteError") {
        problems.push(`${name}: name ${got.name}, not AccreteError`);
      } else if (INVALID.includes(name) ? got.code !== "invalid_argument" : !BAD_INPUT.includes(got.code)) {
        problems.push(`${name}: code ${got.code}`);
      }
      for (const p of parts) {
        if (!got.message.includes(p)) problems.push(`${name}: "${got.message}" lacks "${p}"`);
      }
      console.log(`  ${name} [${got.code ?? got.name}]: ${got.message}`);
    }
    assert(r.stillWorks, "the trainer did not work after the rejected calls");
    assert(problems.length === 0, problems.join("\n"));
  },

  async "safetensors-dataset"(page) {
    // A safetensors file written here: F32 features [n, 2] and I64 labels [n] named x, y.
    const { x, y } = spirals(200, { seed: 5 });
    const header = JSON.stringify({
      x: { dtype: "F32", shape: [200, 2], data_offsets: [0, 1600] },
      y: { dtype: "I64", shape: [200], data_offsets: [1600, 3200] },
    });
    const h = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8, " "));
    const labels = new BigInt64Array([...y].map((v) => BigInt(v)));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    const file = Buffer.concat([len, h, Buffer.from(x.buffer), Buffer.from(labels.buffer)]);
    const r = await page.evaluate(async ({ b64, spec }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const d = accrete.datasetFromSafetensors(bytes, { features: "x", labels: "y" });
      const t = await accrete.Trainer.create(JSON.stringify({ ...spec, data: {} }));
      const fit = await t.fitChunk(d.x, d.y, { epochs: 1 });
      t.free();
      const thrown = (f) => { try { f(); return null; } catch (e) { return { message: e.message, name: e.name, code: e.code }; } };
      return {
        n: d.n, classes: d.classes, shape: d.sampleShape, isF32: d.x instanceof Float32Array,
        x: Array.from(d.x), y: Array.from(d.y), steps: fit.steps,
        missing: thrown(() => accrete.datasetFromSafetensors(bytes)),
        truncated: thrown(() => accrete.datasetFromSafetensors(bytes.slice(0, 100), { features: "x", labels: "y" })),
        badOption: thrown(() => accrete.datasetFromSafetensors(bytes, { features: 3 })),
        notBytes: thrown(() => accrete.datasetFromSafetensors("data.safetensors")),
      };
    }, { b64: file.toString("base64"), spec: SPEC });
    assert(r.n === 200 && r.classes === 2 && r.shape.join() === "2" && r.isF32, JSON.stringify(r.shape));
    assert(r.x.every((v, i) => Object.is(v, x[i])) && r.y.every((v, i) => v === y[i]), "values differ");
    assert(r.steps > 0, `fitChunk took ${r.steps} steps`);
    const has = (e, code, ...parts) => {
      assert(e && e.name === "AccreteError" && e.code === code, `expected ${code}: ${JSON.stringify(e)}`);
      for (const p of parts) assert(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${p}`);
    };
    has(r.missing, "data", 'no array named "features"', '"x", "y"');
    has(r.truncated, "data", "not a valid safetensors file");
    has(r.badOption, "invalid_argument", "options.features must be the name of a tensor");
    has(r.notBytes, "invalid_argument", "Uint8Array or ArrayBuffer");
  },

  async "busy-stop"(page) {
    const r = await page.evaluate(async (spec) => {
      const t = await accrete.Trainer.create(JSON.stringify({ ...spec, data: {} }));
      const tr = data.spirals(320, { seed: 9 });
      const reports = [];
      let stopAsked = false;
      const running = t.fitChunk(tr.x, tr.y, {
        epochs: 3,
        reportEvery: 2,
        onProgress: (p) => {
          reports.push(p.step);
          if (p.step >= 4 && !stopAsked) stopAsked = t.stop();
        },
      });
      const busyName = t.busy;
      const busy = {
        evaluate: await rejection(t.evaluate(tr.x, tr.y)),
        fit: await rejection(t.fitChunk(tr.x, tr.y)),
        save: await rejection(t.save()),
        predict: await rejection(t.predict(tr.x)),
      };
      const stepWhileRunning = t.step;
      const stopped = await running;
      const afterStop = t.step;
      // The same chunk again continues the stopped epoch and finishes the 3 epochs.
      const rest = await t.fitChunk(tr.x, tr.y, { epochs: 3 });
      // stop() right after the call stops at the first report point (step 30 + 2).
      const early = t.fitChunk(tr.x, tr.y, { epochs: 1, reportEvery: 2 });
      const stopEarly = t.stop();
      const earlyResult = await early;
      const out = { busyName, busy, stepWhileRunning, stopped, afterStop, rest, step: t.step,
        epoch: t.epoch, busyAfter: t.busy ?? null, stopIdle: t.stop(), reports, stopEarly, earlyResult };
      t.free();
      return out;
    }, SPEC);
    console.log(`  stopped at step ${r.afterStop} (reports at ${r.reports.join(",")}); resumed to step ${r.rest.step}`);
    assert(r.busyName === "fitChunk", `busy getter: ${r.busyName}`);
    for (const [op, got] of Object.entries(r.busy)) {
      assert(got && got.isError && got.message.includes("busy with fitChunk") && got.code === "busy"
        && got.name === "AccreteError",
        `${op} during fitChunk: ${JSON.stringify(got)}`);
    }
    assert(r.stepWhileRunning === 0, "step getter while running");
    assert(r.stopped.stopped === true && r.afterStop === 4, `stop: ${JSON.stringify(r.stopped)} at ${r.afterStop}`);
    assert(r.rest.stopped === false && r.rest.step === 30 && r.rest.epoch === 3,
      `resume: step ${r.rest.step} epoch ${r.rest.epoch}`);
    assert(r.stopEarly === true && r.earlyResult.stopped === true && r.step === 32,
      `stop right after fitChunk: ${JSON.stringify(r.earlyResult)}, step ${r.step}`);
    assert(r.busyAfter === null && r.stopIdle === false, "busy after");
  },
};

async function main() {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !(n in tests));
  if (unknown.length) {
    console.error(`unknown test(s) ${unknown.join(", ")}; the tests are ${Object.keys(tests).join(", ")}`);
    process.exit(2);
  }
  const started = Date.now();
  const page = WEBGPU ? "/tests/browser/index.html?backend=gpu" : "/tests/browser/index.html";
  console.log(WEBGPU ? "browser tests on WebGPU (backend: \"gpu\")" : "browser tests without WebGPU (auto: the CPU backend)");
  const session = await open(page, { extra: { "/files/": work }, webgpu: WEBGPU });
  const failures = [];
  try {
    await session.page.evaluate(PAGE_HELPERS);
    const state = {};
    for (const [name, test] of Object.entries(tests)) {
      if (only.length && !only.includes(name)) continue;
      const t0 = Date.now();
      const seen = session.console.length;
      try {
        await test(session.page, state);
        const panics = session.console.slice(seen).filter((m) => /panicked|unreachable|RuntimeError/.test(m));
        assert(panics.length === 0, `the wasm module panicked:\n${panics.join("\n")}`);
        console.log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failures.push(name);
        console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e.message}`);
        const tail = session.console.slice(seen).slice(-20);
        if (tail.length) console.log(`  browser console:\n    ${tail.join("\n    ")}`);
      }
    }
  } finally {
    await session.close();
  }
  const total = ((Date.now() - started) / 1000).toFixed(1);
  if (failures.length) {
    console.log(`browser tests: ${failures.length} failed (${failures.join(", ")}) in ${total} s; scratch files in ${work}`);
    process.exit(1);
  }
  rmSync(work, { recursive: true, force: true });
  console.log(`browser tests: all passed in ${total} s`);
}

main().catch((e) => {
  console.log(`FAIL browser tests: ${e.stack || e.message}`);
  process.exit(1);
});
