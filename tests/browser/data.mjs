// Deterministic test data, shared by the test page (in the browser) and the test runner (in
// Node, which writes the same samples as CSV for the native CLI).

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Two (or more) interleaved spirals in the plane: `n` samples, labels alternating 0, 1, …
 * Arm k of `classes` is the curve r = t, angle = turns·2π·t + 2πk/classes for t in (0.05, 1],
 * with uniform noise of ±`noise` on each coordinate. Features lie in about [-1, 1].
 * Returns { x: Float32Array(n × 2), y: Uint32Array(n) }.
 */
export function spirals(n, { seed = 1, classes = 2, turns = 1, noise = 0.04 } = {}) {
  const r = rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    const t = 0.05 + 0.95 * r();
    const a = turns * 2 * Math.PI * t + (2 * Math.PI * k) / classes;
    x[2 * i] = t * Math.cos(a) + noise * (2 * r() - 1);
    x[2 * i + 1] = t * Math.sin(a) + noise * (2 * r() - 1);
    y[i] = k;
  }
  return { x, y };
}

/**
 * The samples as a CSV table with a header row `x0,x1,…,label`. Each float32 is written as
 * JavaScript prints its (exact) double value, which parses back to the same float32, so the
 * CLI sees exactly the inputs the browser saw.
 */
export function toCsv(x, y) {
  const d = x.length / y.length;
  const header = [...Array(d).keys()].map((j) => `x${j}`).concat("label").join(",");
  const rows = [header];
  for (let i = 0; i < y.length; i++) {
    const cells = [];
    for (let j = 0; j < d; j++) cells.push(String(x[i * d + j]));
    cells.push(String(y[i]));
    rows.push(cells.join(","));
  }
  return rows.join("\n") + "\n";
}

/**
 * Tiny images for convolution tests: `n` samples of 1 × size × size, class 0 a horizontal
 * bar, class 1 a vertical bar (at a random row / column), plus uniform noise of ±`noise`.
 * Returns { x: Float32Array(n × size²), y: Uint32Array(n) }.
 */
export function bars(n, { seed = 1, size = 6, noise = 0.1 } = {}) {
  const r = rng(seed);
  const d = size * size;
  const x = new Float32Array(n * d);
  const y = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 2;
    const at = Math.floor(r() * size);
    for (let p = 0; p < d; p++) {
      const row = Math.floor(p / size);
      const col = p % size;
      const on = k === 0 ? row === at : col === at;
      x[i * d + p] = (on ? 1 : 0) + noise * (2 * r() - 1);
    }
    y[i] = k;
  }
  return { x, y };
}

/**
 * Gaussian-ish blobs for class-incremental tests: `n` samples of `dims` features, labels
 * alternating 0 … classes − 1; class k's centre has coordinates uniform in [-1, 1], each sample
 * adds uniform noise of ±`noise` per coordinate. Returns { x: Float32Array(n × dims), y: Uint32Array(n) }.
 */
export function blobs(n, { seed = 1, classes = 10, dims = 8, noise = 0.6, centreSeed = 99 } = {}) {
  const c = rng(centreSeed);
  const centres = Array.from({ length: classes * dims }, () => 2 * c() - 1);
  const r = rng(seed);
  const x = new Float32Array(n * dims);
  const y = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    for (let j = 0; j < dims; j++) x[i * dims + j] = centres[k * dims + j] + noise * (2 * r() - 1);
    y[i] = k;
  }
  return { x, y };
}
