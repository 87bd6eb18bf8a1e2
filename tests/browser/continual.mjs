// Browser tests of continual learning (issue #14): a class-incremental chunk sequence with a
// strategy trains in the page to the CLI's per-chunk losses, and the per-task evaluation
// (setChunkEvaluation) gives the CLI's accuracy matrix rows and summaries.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accrete, assert, close, work } from "./common.mjs";
import { blobs, toCsv } from "./data.mjs";

/** BROWSER_WEBGPU=0: the page runs on the CPU backend, and so does the CLI here. */
const WEBGPU = process.env.BROWSER_WEBGPU !== "0";

// Ten classes in five tasks of two; DER++ (rehearsal with logit and label replay) exercises
// the buffer's sampling and its stored logits across chunk boundaries.
const DATA = { train: { n: 400, seed: 11 }, test: { n: 200, seed: 12 } };
const SPEC = {
  seed: 7,
  model: { input: [8], layers: [{ type: "dense", units: 24, activation: "relu" }, { type: "dense", units: 10 }] },
  optimizer: { type: "adam", lr: 0.01 },
  train: { batch_size: 16, epochs: 2 },
  incremental: { rehearsal: { size: 60, per_batch: 8, logit_weight: 0.5, label_weight: 0.5 } },
};
const TASKS = 5;

export const continualTests = {
  async "class-incremental"(page) {
    // The CLI's class-incremental run (split_by = "class", 5 chunks, file order kept) and the
    // same chunks handed to fitChunk one by one, on the same backend kind as the page: the
    // per-epoch training losses of every chunk agree within 1e-5 relative — the tolerance of
    // the f32 parity tests (mlp-parity), since both run the same kernels on the same data
    // order; only the two WebGPU drivers (SwiftShader / lavapipe), or native versus wasm
    // SIMD CPU kernels, may round a sum differently. The accuracy matrix rows are then equal
    // (each task's 40 test samples; a loss within 1e-5 leaves every argmax where it was).
    const dir = join(work, "continual");
    mkdirSync(dir, { recursive: true });
    const tr = blobs(DATA.train.n, { seed: DATA.train.seed });
    const te = blobs(DATA.test.n, { seed: DATA.test.seed });
    writeFileSync(join(dir, "train.csv"), toCsv(tr.x, tr.y));
    writeFileSync(join(dir, "test.csv"), toCsv(te.x, te.y));
    const r = SPEC.incremental.rehearsal;
    writeFileSync(
      join(dir, "run.toml"),
      `seed = ${SPEC.seed}

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
validation_fraction = 0
standardize = false

[model]
input = [8]
layers = [
  { type = "dense", units = 24, activation = "relu" },
  { type = "dense", units = 10 },
]

[optimizer]
type = "adam"
lr = ${SPEC.optimizer.lr}

[train]
batch_size = ${SPEC.train.batch_size}
epochs = ${SPEC.train.epochs}

[incremental]
chunks = ${TASKS}
split_by = "class"
rehearsal = { size = ${r.size}, per_batch = ${r.per_batch}, logit_weight = ${r.logit_weight}, label_weight = ${r.label_weight} }

[checkpoint]
every_steps = 0
`,
    );
    const backend = WEBGPU ? "gpu" : "cpu";
    accrete(["--backend", backend, "train", "--config", "run.toml", "--out", "run", "--quiet"], dir);
    const rows = readFileSync(join(dir, "run/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const native = [...Array(TASKS).keys()].map((c) => rows.filter((x) => x.train_loss !== undefined && x.chunk === c).map((x) => x.train_loss));
    const nativeEnds = rows.filter((x) => x.event === "chunk_end");

    const b = await page.evaluate(async ({ spec, data, tasks }) => {
      const tr = window.data.blobs(data.train.n, { seed: data.train.seed });
      const te = window.data.blobs(data.test.n, { seed: data.test.seed });
      const groups = accrete.taskGroups(10, tasks);
      const t = await accrete.Trainer.create(spec);
      try {
        t.setChunkEvaluation(te.x, te.y, { tasks });
        const losses = [];
        for (const [lo, hi] of groups) {
          const idx = [...tr.y.keys()].filter((i) => tr.y[i] >= lo && tr.y[i] < hi);
          const x = new Float32Array(idx.length * 8);
          idx.forEach((i, k) => x.set(tr.x.subarray(i * 8, i * 8 + 8), k * 8));
          const r = await t.fitChunk(x, Uint32Array.from(idx, (i) => tr.y[i]));
          losses.push(r.epochs.map((e) => e.loss));
        }
        const bad = {
          tasks: await rejection((async () => t.setChunkEvaluation(te.x, te.y, { tasks: 11 }))()),
          zero: await rejection((async () => t.setChunkEvaluation(te.x, te.y, { tasks: 0 }))()),
          labels: await rejection((async () => t.setChunkEvaluation(te.x, [1, 2]))()),
          groups: await rejection((async () => accrete.taskGroups(10, 0))()),
        };
        return { groups, losses, backend: t.backend, ends: t.history.filter((e) => e.event === "chunk_end"), bad };
      } finally {
        t.free();
      }
    }, { spec: SPEC, data: DATA, tasks: TASKS });

    console.log(`  page on ${b.backend}, CLI --backend ${backend}; per-chunk training losses (DER++):`);
    for (let c = 0; c < TASKS; c++) {
      console.log(`    chunk ${c + 1}: CLI ${native[c].map((v) => v.toFixed(6)).join(", ")}; browser ${b.losses[c].map((v) => v.toFixed(6)).join(", ")}`);
    }
    const rel = native.flat().map((v, i) => Math.abs(v - b.losses.flat()[i]) / Math.max(1, Math.abs(v)));
    console.log(`  largest relative difference ${Math.max(...rel).toExponential(2)} (${rel.filter((d) => d === 0).length} of ${rel.length} epoch losses bit-equal)`);
    const last = b.ends.at(-1);
    console.log(`  final task accuracies ${last.taskAccuracy.map((v) => v.toFixed(3)).join(", ")}; average ${last.averageAccuracy.toFixed(3)}, ` +
      `BWT ${last.bwt.toFixed(3)}, forgetting ${last.forgetting.toFixed(3)}`);
    assert(b.backend === backend, `the page ran on ${b.backend}, expected ${backend}`);
    assert(JSON.stringify(b.groups) === "[[0,2],[2,4],[4,6],[6,8],[8,10]]", `taskGroups(10, 5): ${JSON.stringify(b.groups)}`);
    for (let c = 0; c < TASKS; c++) {
      assert(native[c].length === SPEC.train.epochs && b.losses[c].length === SPEC.train.epochs,
        `chunk ${c + 1}: ${native[c].length} CLI epochs, ${b.losses[c].length} browser epochs; expected ${SPEC.train.epochs}`);
      for (let e = 0; e < SPEC.train.epochs; e++) {
        assert(close(native[c][e], b.losses[c][e], 1e-5), `chunk ${c + 1} epoch ${e + 1}: CLI ${native[c][e]}, browser ${b.losses[c][e]}`);
      }
    }
    assert(nativeEnds.length === TASKS && b.ends.length === TASKS, `chunk_end rows: CLI ${nativeEnds.length}, browser ${b.ends.length}`);
    for (let c = 0; c < TASKS; c++) {
      const n = nativeEnds[c];
      const w = b.ends[c];
      assert(w.chunk === c && w.taskAccuracy.length === c + 1, `browser chunk_end ${c}: ${JSON.stringify(w)}`);
      assert(JSON.stringify(w.taskAccuracy) === JSON.stringify(n.task_accuracy) && w.accuracy === n.accuracy,
        `chunk ${c + 1} task accuracies: CLI ${JSON.stringify(n.task_accuracy)} (${n.accuracy}), browser ${JSON.stringify(w.taskAccuracy)} (${w.accuracy})`);
      for (const [k, nk] of [["averageAccuracy", "average_accuracy"], ["bwt", "bwt"], ["forgetting", "forgetting"]]) {
        assert((w[k] ?? null) === (n[nk] ?? null), `chunk ${c + 1} ${k}: CLI ${n[nk]}, browser ${w[k]}`);
      }
    }
    // The summaries against an independent recomputation from the rows (Lopez-Paz & Ranzato's
    // BWT, Chaudhry et al.'s forgetting), after every chunk from the second on.
    for (let t = 2; t <= TASKS; t++) {
      const R = b.ends.slice(0, t).map((e) => e.taskAccuracy);
      const fin = R[t - 1];
      const mean = (v) => v.reduce((a, x) => a + x, 0) / v.length;
      const earlier = [...Array(t - 1).keys()];
      const want = {
        averageAccuracy: mean(fin),
        bwt: mean(earlier.map((j) => fin[j] - R[j][j])),
        forgetting: mean(earlier.map((j) => Math.max(...R.slice(j, t - 1).map((r) => r[j])) - fin[j])),
      };
      for (const [k, v] of Object.entries(want)) {
        assert(Math.abs(b.ends[t - 1][k] - v) <= 1e-12, `after chunk ${t}: ${k} ${b.ends[t - 1][k]}, recomputed ${v}`);
      }
    }
    assert(b.ends[0].bwt === undefined && b.ends[0].forgetting === undefined, `BWT/forgetting after one chunk: ${JSON.stringify(b.ends[0])}`);
    // Bad arguments name what to pass.
    assert(b.bad.tasks?.code === "invalid_argument" && /options\.tasks/.test(b.bad.tasks.message) && /between 1 and 10/.test(b.bad.tasks.message),
      `tasks: 11: ${JSON.stringify(b.bad.tasks)}`);
    assert(b.bad.zero?.code === "invalid_argument" && /whole number ≥ 1/.test(b.bad.zero.message), `tasks: 0: ${JSON.stringify(b.bad.zero)}`);
    assert(b.bad.labels && /setChunkEvaluation/.test(b.bad.labels.message), `2 labels for 200 samples: ${JSON.stringify(b.bad.labels)}`);
    assert(b.bad.groups && /between 1 and 10 tasks/.test(b.bad.groups.message), `taskGroups(10, 0): ${JSON.stringify(b.bad.groups)}`);
  },
};
