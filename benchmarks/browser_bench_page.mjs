// In the page: Fashion-MNIST from the IDX files (gzip, through DecompressionStream) and the
// timed training runs of browser_bench.mjs.

import init, { adapterInfo, Trainer, version } from "/web/pkg/accrete_web.js";

const DATA = "/datasets/fashion-mnist";

/** The first `limit` records of a gzipped IDX file: { dims, bytes } (reads no further). */
async function readIdx(url, limit) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new DecompressionStream("gzip")).getReader();
  let buf = new Uint8Array(1 << 20);
  let len = 0;
  let need = Infinity;
  let dims = null;
  let header = 0;
  while (len < need) {
    const { done, value } = await reader.read();
    if (done) break;
    if (len + value.length > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, len + value.length));
      bigger.set(buf.subarray(0, len));
      buf = bigger;
    }
    buf.set(value, len);
    len += value.length;
    if (!dims && len >= 4) {
      const rank = buf[3];
      header = 4 + 4 * rank;
      if (len >= header) {
        const view = new DataView(buf.buffer, 0, header);
        dims = [...Array(rank).keys()].map((i) => view.getUint32(4 + 4 * i));
        const n = Math.min(dims[0], limit);
        need = header + n * dims.slice(1).reduce((a, b) => a * b, 1);
      }
    }
  }
  await reader.cancel().catch(() => {});
  if (!dims || len < need) throw new Error(`${url}: truncated IDX file`);
  const n = Math.min(dims[0], limit);
  return { dims: [n, ...dims.slice(1)], bytes: buf.subarray(header, need) };
}

/** The first `n` Fashion-MNIST training samples: x in [0, 1] (n × 784), y. */
export async function fashion(n) {
  const [images, labels] = await Promise.all([
    readIdx(`${DATA}/train-images-idx3-ubyte.gz`, n),
    readIdx(`${DATA}/train-labels-idx1-ubyte.gz`, n),
  ]);
  const x = new Float32Array(images.bytes.length);
  for (let i = 0; i < x.length; i++) x[i] = images.bytes[i] / 255;
  return { x, y: Uint32Array.from(labels.bytes), n: images.dims[0] };
}

const dense = (units, activation) => ({ type: "dense", units, ...(activation ? { activation } : {}) });
const conv = (filters) => ({ type: "conv2d", filters, kernel: 3, padding: 1, activation: "relu" });

/** The reference models of `accrete bench train` (core's presets fashion_mlp / fashion_cnn). */
export const MODELS = {
  mlp: { input: [784], layers: [dense(512, "relu"), dense(256, "relu"), dense(10)] },
  cnn: {
    input: [1, 28, 28],
    layers: [
      conv(32),
      { type: "maxpool2d", size: 2 },
      conv(64),
      { type: "maxpool2d", size: 2 },
      { type: "flatten" },
      dense(128, "relu"),
      dense(10),
    ],
  },
};

export async function setUp() {
  await init();
  const info = await adapterInfo();
  /**
   * Trains `model` with Adam (lr) at `batch` for `epochs` epochs over the first `samples`
   * training samples after a warm-up chunk of `warmupSteps` steps (pipeline compilation);
   * returns one result per timed epoch.
   */
  // backend: Trainer.create's options.backend ("auto" when undefined, "gpu" or "cpu").
  return async ({ model, batch = 128, samples, epochs = 1, warmupSteps = 2, lr = 1e-3, seed = 0, backend }) => {
    const data = await fashion(Math.max(samples, warmupSteps * batch));
    const spec = {
      seed,
      model: MODELS[model],
      optimizer: { type: "adam", lr },
      train: { batch_size: batch, epochs: 1 },
    };
    const t = await Trainer.create(JSON.stringify(spec), backend ? { backend } : undefined);
    const trainerBackend = t.backend;
    const out = [];
    try {
      const d = t.inputLen;
      if (warmupSteps > 0) {
        const w = warmupSteps * batch;
        const warm = await t.fitChunk(data.x.subarray(0, w * d), data.y.subarray(0, w), { reportEvery: 0 });
        out.push({ warmup: true, steps: warm.steps, seconds: warm.seconds });
      }
      const x = data.x.subarray(0, samples * d);
      const y = data.y.subarray(0, samples);
      for (let e = 1; e <= epochs; e++) {
        const r = await t.fitChunk(x, y, { reportEvery: 0 });
        // The epoch's own time (as `accrete bench train` reports it: from the first step's
        // recording to the metrics read at its end); wallSeconds adds the upload of the chunk.
        const ep = r.epochs[0];
        out.push({
          epoch: e,
          steps: r.steps,
          seconds: ep.seconds,
          wallSeconds: r.seconds,
          samples: ep.samples,
          samplesPerSec: ep.samples / ep.seconds,
          msPerStep: (1000 * ep.seconds) / r.steps,
          loss: r.loss,
          accuracy: r.accuracy,
        });
      }
    } finally {
      t.free();
    }
    const adapter = backend ? await adapterInfo({ backend }) : info;
    return { adapter, trainerBackend, version: version(), runs: out };
  };
}
