// DEV ONLY mock of the accrete Trainer API (layout work before the real package exists).
export default async function init() {}
export function version() { return '0.0.0-mock'; }
export async function adapterInfo() { return { name: '', backend: 'BrowserWebGpu', deviceType: 'Cpu' }; }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export class Trainer {
  constructor(spec) { this.spec = spec; this.k = spec.model.layers.at(-1).units; this.f = spec.model.input.reduce((a, b) => a * b, 1); this._step = 0; this.cent = null; this.cnt = null; this.x = null; this.y = null; }
  static async create(s) { await sleep(50); return new Trainer(JSON.parse(s)); }
  static async load(bytes) { await sleep(50); const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)); const m = JSON.parse(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))).__metadata__.accrete); const t = new Trainer(m); t._step = m.step; return t; }
  async fitChunk(x, y, { epochs = 1, onProgress } = {}) {
    const n = y.length; const f = this.f;
    if (f === 2) { this.x = x; this.y = y; await sleep(20 * epochs); }
    else {
      this.cent ??= new Float64Array(this.k * f); this.cnt ??= new Float64Array(this.k);
      for (let i = 0; i < n; i++) { const c = y[i]; this.cnt[c]++; for (let j = 0; j < f; j++) this.cent[c * f + j] += x[i * f + j]; }
      for (let s = 0; s < 10; s++) { await sleep(30); onProgress?.({ epoch: 1, epochs: 1, stepInEpoch: s + 1, stepsInEpoch: 10 }); }
    }
    const steps = Math.ceil(n / this.spec.train.batch_size) * epochs; this._step += steps;
    const acc = Math.min(0.97, 0.5 + 0.1 * Math.log1p(this._step / 10));
    return { loss: 1 / (1 + this._step / 50), accuracy: acc, steps };
  }
  async predict(x) {
    const f = this.f, k = this.k, n = x.length / f, out = new Float32Array(n * k);
    for (let i = 0; i < n; i++) {
      const s = new Float64Array(k);
      if (f === 2) { if (!this.x) { s.fill(1); } else for (let j = 0; j < this.y.length; j++) { const dx = x[2 * i] - this.x[2 * j], dy = x[2 * i + 1] - this.x[2 * j + 1]; s[this.y[j]] += Math.exp(-(dx * dx + dy * dy) / 0.01) + 1e-9; } }
      else for (let c = 0; c < k; c++) { let d = 0; const m = this.cnt?.[c] || 1; for (let j = 0; j < f; j++) { const v = x[i * f + j] - (this.cent ? this.cent[c * f + j] / m : 0); d += v * v; } s[c] = Math.exp(-d / 20); }
      const tot = s.reduce((a, b) => a + b, 0) || 1; for (let c = 0; c < k; c++) out[i * k + c] = s[c] / tot;
    }
    await sleep(10); return out;
  }
  async evaluate(x, y) {
    const p = await this.predict(x), k = this.k, conf = Array.from({ length: k }, () => new Array(k).fill(0)); let ok = 0;
    for (let i = 0; i < y.length; i++) { let b = 0; for (let c = 1; c < k; c++) if (p[i * k + c] > p[i * k + b]) b = c; conf[y[i]][b]++; if (b === y[i]) ok++; }
    return { loss: 0.5, accuracy: ok / y.length, confusion: conf };
  }
  async save() {
    const meta = JSON.stringify({ ...this.spec, format_version: 1, step: this._step, epoch: 0, seed: 0 });
    const hdr = new TextEncoder().encode(JSON.stringify({ __metadata__: { accrete: meta } }));
    const b = new Uint8Array(8 + hdr.length); new DataView(b.buffer).setBigUint64(0, BigInt(hdr.length), true); b.set(hdr, 8); return b;
  }
  free() {}
  get step() { return this._step; }
  stop() { return false; }
}
