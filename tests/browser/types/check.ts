// Type-checked (never run) by tests/browser/typecheck.mjs with `tsc --noEmit`, importing the
// package as a user would ("accrete-web", through web/pkg/package.json's exports map). The
// lines marked to expect an error must be errors: if the declarations fell back to `any`, or
// a spec type stopped refusing unknown keys and values, tsc reports the directive as unused.

import init, {
  adapterInfo,
  datasetFromSafetensors,
  taskGroups,
  Trainer,
  version,
  type AccreteError,
  type AdapterInfo,
  type ArrayDataset,
  type ChunkEvaluationOptions,
  type ErrorCode,
  type EvaluateResult,
  type FitProgress,
  type FitResult,
  type HistoryEvent,
  type LayerSpec,
  type ModelSpec,
  type SessionSpec,
} from "accrete-web";

const layers: LayerSpec[] = [
  { type: "conv2d", filters: 4, kernel: 3, padding: 1, activation: "relu", init: "he_uniform" },
  { type: "maxpool2d", size: 2 },
  { type: "flatten" },
  { type: "dropout", rate: 0.25 },
  { type: "dense", units: 32, activation: "tanh", bias_init: "uniform", trainable: false },
  { type: "activation", activation: "gelu" },
  { type: "dense", units: 10 },
];

const spec: SessionSpec = {
  seed: 7,
  data: { standardize: true },
  model: { input: [1, 6, 6], layers, init: "torch" },
  optimizer: {
    type: "adamw",
    lr: 1e-3,
    weight_decay: 0.01,
    clip_norm: 1,
    schedule: { type: "cosine", warmup_steps: 10, cycle: "chunk" },
    layer_lr: { "0": 0.1 },
  },
  train: {
    batch_size: 32,
    epochs: 2,
    label_smoothing: 0.1,
    early_stopping: { patience: 3, monitor: "val_accuracy" },
    mixed_precision: true,
  },
  incremental: { rehearsal: { size: 500, per_batch: 8 }, lwf: { weight: 1, temperature: 2 } },
  recovery: { strategy: "population", population: 4, trial_steps: 10, lr_factor: 0.5 },
};
const minimal: SessionSpec = { model: { input: [2], layers: [{ type: "dense", units: 2 }] } };
const withTable: SessionSpec["train"] = { mixed_precision: { init_scale: 1024, growth_interval: 500 } };

// @ts-expect-error: an unknown layer type
const badLayer: LayerSpec = { type: "dense2", units: 2 };
// @ts-expect-error: a misspelt key
const badKey: SessionSpec = { model: minimal.model, train: { batch_sise: 32 } };
// @ts-expect-error: not a recovery strategy
const badStrategy: SessionSpec = { model: minimal.model, recovery: { strategy: "retry" } };
// @ts-expect-error: the model is required
const noModel: SessionSpec = { seed: 1 };
// @ts-expect-error: not an activation
const badActivation: LayerSpec = { type: "dense", units: 2, activation: "swish" };

async function main(x: Float32Array, y: Uint32Array): Promise<number> {
  await init();
  const file: ArrayDataset = datasetFromSafetensors(new Uint8Array(8), { features: "x", labels: "y" });
  const fromFile: Float32Array = file.x;
  // @ts-expect-error: not an option of datasetFromSafetensors
  datasetFromSafetensors(new Uint8Array(8), { feature: "x" });
  console.log(fromFile.length, file.y.length, file.sampleShape, datasetFromSafetensors(new ArrayBuffer(8)).classes);
  const info: AdapterInfo = await adapterInfo();
  const onCpu: AdapterInfo = await adapterInfo({ backend: "cpu" });
  const where: "gpu" | "cpu" = (await Trainer.create(minimal, { backend: "auto" })).backend as "gpu" | "cpu";
  console.log(onCpu.backend, where);
  // @ts-expect-error: not a backend
  await adapterInfo({ backend: "tpu" });
  const slow: boolean = /cpu/i.test(info.deviceType) || info.maxStorageBufferBindingSize < 1 << 27;
  const t = await Trainer.create(slow ? minimal : spec);
  const t2 = await Trainer.create(JSON.stringify(spec));
  const fit: FitResult = await t.fitChunk(x, y, {
    lr: 1e-4,
    epochs: 3,
    reportEvery: 5,
    onProgress: (p: FitProgress) => console.log(p.epoch, p.stepInEpoch, p.loss),
  });
  // @ts-expect-error: not an option of fitChunk
  await t.fitChunk(x, y, { learningRate: 1e-4 });
  const e: EvaluateResult = await t.evaluate(x, [0, 1, 1]);
  const probs: Float32Array = await t.predict(x);
  const bytes: Uint8Array = await t.save();
  const again = await Trainer.load(bytes);
  const model: ModelSpec = t.spec;
  const groups: [number, number][] = taskGroups(10, 5);
  const ce: ChunkEvaluationOptions = { tasks: groups.length };
  t.setChunkEvaluation(x, y, ce);
  t.setChunkEvaluation(null);
  // @ts-expect-error: not an option of setChunkEvaluation
  t.setChunkEvaluation(x, y, { task: 5 });
  const history: HistoryEvent[] = t.history;
  let lr = 0;
  for (const h of history) {
    if (h.event === "epoch") lr = h.lr + (h.valLoss ?? 0) + (h.trainLoss ?? 0);
    else if (h.event === "hyper_change") lr = h.changes.length;
    else if (h.event === "rollback") lr = h.newLr + h.extraSteps;
    else if (h.event === "chunk_end") lr = (h.averageAccuracy ?? 0) + (h.bwt ?? 0) + (h.forgetting ?? 0) + h.taskAccuracy.length;
  }
  try {
    await Trainer.create({ ...minimal, recovery: { strategy: "best" } });
  } catch (err) {
    const a = err as AccreteError;
    const code: ErrorCode = a.code;
    if (a.name === "AccreteError" && code === "invalid_argument") console.warn(a.message);
  }
  const busy: string | undefined = t.busy;
  const stopped: boolean = t.stop();
  const json: string = t.specJson + t.historyJson + version();
  for (const tr of [t, t2, again]) tr.free();
  return fit.loss + e.macroF1 + probs.length + model.layers.length + lr + t.step + t.epoch + t.classes
    + t.inputLen + json.length + (busy ? 1 : 0) + (stopped ? 1 : 0) + withTable!.epochs!
    + [badLayer, badKey, badStrategy, noModel, badActivation].length;
}

export { main };
