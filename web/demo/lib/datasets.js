// Seeded 2-D toy datasets for the playground. Coordinates lie roughly in [-1, 1]².

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
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

function gauss(r) {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/**
 * The datasets: id → { name, classes, make(n, noise, seed) → [{x, y, label}] }.
 * `noise` is in [0, 1].
 */
export const DATASETS = {
  spirals: {
    name: 'Spirals',
    classes: 2,
    make(n, noise, seed) {
      const r = rng(seed);
      const pts = [];
      for (let i = 0; i < n; i++) {
        const label = i % 2;
        const t = (Math.floor(i / 2) / Math.ceil(n / 2)) * 0.92 + 0.08 * r();
        const angle = t * 3.2 * Math.PI + label * Math.PI;
        const radius = 0.1 + 0.85 * t;
        pts.push({
          x: radius * Math.cos(angle) + noise * 0.12 * gauss(r),
          y: radius * Math.sin(angle) + noise * 0.12 * gauss(r),
          label,
        });
      }
      return pts;
    },
  },
  circles: {
    name: 'Circles',
    classes: 2,
    make(n, noise, seed) {
      const r = rng(seed);
      const pts = [];
      for (let i = 0; i < n; i++) {
        const label = i % 2;
        const radius = label === 0 ? 0.42 * Math.sqrt(r()) : 0.62 + 0.3 * r();
        const angle = 2 * Math.PI * r();
        pts.push({
          x: radius * Math.cos(angle) + noise * 0.15 * gauss(r),
          y: radius * Math.sin(angle) + noise * 0.15 * gauss(r),
          label,
        });
      }
      return pts;
    },
  },
  xor: {
    name: 'XOR',
    classes: 2,
    make(n, noise, seed) {
      const r = rng(seed);
      const pts = [];
      for (let i = 0; i < n; i++) {
        const away = (v) => Math.sign(v - 0.5 || 1) * (0.06 + 0.86 * Math.abs(2 * v - 1));
        const x = away(r());
        const y = away(r());
        pts.push({
          x: x + noise * 0.15 * gauss(r),
          y: y + noise * 0.15 * gauss(r),
          label: x * y > 0 ? 0 : 1,
        });
      }
      return pts;
    },
  },
  blobs: {
    name: 'Blobs',
    classes: 3,
    make(n, noise, seed) {
      const r = rng(seed);
      const pts = [];
      const sd = 0.12 + 0.25 * noise;
      for (let i = 0; i < n; i++) {
        const label = i % 3;
        const angle = Math.PI / 2 + (label * 2 * Math.PI) / 3;
        pts.push({
          x: 0.52 * Math.cos(angle) + sd * gauss(r),
          y: 0.52 * Math.sin(angle) + sd * gauss(r),
          label,
        });
      }
      return pts;
    },
  },
};
