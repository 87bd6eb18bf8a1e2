// A small line chart on a canvas: one x axis, a left and an optional right y axis, crisp on
// high-DPI screens, redrawn on resize. No dependencies.

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

function ticks(min, max, count) {
  if (!(max > min)) return [min];
  const step = niceStep(max - min, count);
  const out = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas sized by CSS (width and height)
   * @param {object} opts
   *   series: [{ key, color, axis: 'left' | 'right', dash?: number[] }]
   *   left/right: { min?, max?, format(v) } (missing min/max: fitted to the data)
   *   xFormat(v), empty: text shown before there is data
   */
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts;
    this.data = [];
    this.colors = {};
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** `markers`: [{ x, label }] drawn as dashed vertical lines (events such as added data). */
  setData(data, markers = []) {
    this.data = data;
    this.markers = markers;
    this.draw();
  }

  #range(axis) {
    const cfg = this.opts[axis];
    const keys = this.opts.series.filter((s) => s.axis === axis).map((s) => s.key);
    let lo = Infinity;
    let hi = -Infinity;
    for (const d of this.data) {
      for (const k of keys) {
        const v = d[k];
        if (Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    if (cfg.min != null) lo = cfg.min;
    if (cfg.max != null) hi = cfg.max;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
    if (hi - lo < 1e-9) hi = lo + (Math.abs(lo) || 1) * 0.1;
    if (cfg.min == null) lo = Math.max(cfg.floor ?? -Infinity, lo - (hi - lo) * 0.05);
    if (cfg.max == null) hi += (hi - lo) * 0.08;
    return [lo, hi];
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth;
    const hgt = c.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    g.font = FONT;
    const style = getComputedStyle(c);
    const muted = style.getPropertyValue('--chart-muted').trim() || '#8a94a6';
    const grid = style.getPropertyValue('--chart-grid').trim() || '#eceff3';
    const hasRight = this.opts.series.some((s) => s.axis === 'right');
    const pad = { l: 46, r: hasRight ? 46 : 14, t: 10, b: 24 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    if (pw < 20 || ph < 20) return;

    const xs = this.data.map((d) => d.x);
    let x0 = xs.length ? Math.min(...xs) : 0;
    let x1 = xs.length ? Math.max(...xs) : 1;
    if (this.opts.xMin != null) x0 = Math.min(x0, this.opts.xMin);
    if (x1 <= x0) x1 = x0 + 1;
    const X = (v) => pad.l + ((v - x0) / (x1 - x0)) * pw;
    const axes = { left: this.#range('left') };
    if (hasRight) axes.right = this.#range('right');
    const Y = (axis, v) => pad.t + ph - ((v - axes[axis][0]) / (axes[axis][1] - axes[axis][0])) * ph;

    // grid and y labels (left axis drives the grid lines)
    g.lineWidth = 1;
    g.textBaseline = 'middle';
    for (const [axis, align, xText] of [['left', 'right', pad.l - 8], ['right', 'left', w - pad.r + 8]]) {
      if (!axes[axis]) continue;
      const [lo, hi] = axes[axis];
      g.textAlign = align;
      for (const t of ticks(lo, hi, Math.max(2, Math.floor(ph / 34)))) {
        const y = Math.round(Y(axis, t)) + 0.5;
        if (axis === 'left') {
          g.strokeStyle = grid;
          g.beginPath();
          g.moveTo(pad.l, y);
          g.lineTo(w - pad.r, y);
          g.stroke();
        }
        g.fillStyle = this.#color(this.#axisColor(axis), style) ?? muted;
        g.fillText(this.opts[axis].format(t), xText, y);
      }
    }
    // x labels
    g.fillStyle = muted;
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const xf = this.opts.xFormat ?? ((v) => String(v));
    const xTicks = this.data.length ? ticks(x0, x1, Math.max(2, Math.floor(pw / 70))) : [];
    for (const t of xTicks) {
      if (t < x0 || t > x1 || (this.opts.xInteger && !Number.isInteger(t))) continue;
      g.fillText(xf(t), X(t), pad.t + ph + 7);
    }

    if (!this.data.length) {
      g.fillStyle = muted;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.font = '13px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
      g.fillText(this.opts.empty ?? 'No data yet', pad.l + pw / 2, pad.t + ph / 2);
      return;
    }

    g.save();
    g.beginPath();
    g.rect(pad.l, pad.t - 2, pw, ph + 4);
    g.clip();
    for (const s of this.opts.series) {
      const pts = this.data.filter((d) => Number.isFinite(d[s.key]));
      if (!pts.length) continue;
      const color = this.#color(s.color, style);
      g.strokeStyle = color;
      g.fillStyle = color;
      g.lineWidth = 2;
      g.lineJoin = 'round';
      g.lineCap = 'round';
      g.setLineDash(s.dash ?? []);
      g.beginPath();
      pts.forEach((d, i) => (i ? g.lineTo(X(d.x), Y(s.axis, d[s.key])) : g.moveTo(X(d.x), Y(s.axis, d[s.key]))));
      g.stroke();
      g.setLineDash([]);
      if (pts.length < 40 || s.dots) {
        for (const d of pts) {
          g.beginPath();
          g.arc(X(d.x), Y(s.axis, d[s.key]), pts.length < 40 ? 2.5 : 1.5, 0, 2 * Math.PI);
          g.fill();
        }
      }
      const last = pts[pts.length - 1];
      g.beginPath();
      g.arc(X(last.x), Y(s.axis, last[s.key]), 3.5, 0, 2 * Math.PI);
      g.fill();
    }
    g.restore();
    for (const m of this.markers ?? []) {
      if (m.x < x0 || m.x > x1) continue;
      const x = Math.round(X(m.x)) + 0.5;
      g.strokeStyle = muted;
      g.lineWidth = 1;
      g.setLineDash([3, 3]);
      g.beginPath();
      g.moveTo(x, pad.t);
      g.lineTo(x, pad.t + ph);
      g.stroke();
      g.setLineDash([]);
      if (m.label) {
        // mid-height, on a white tag: curves of training runs rarely sit there for long
        const tw = g.measureText(m.label).width + 8;
        const right = x + tw + 4 > pad.l + pw;
        const tx = right ? x - tw - 3 : x + 3;
        const ty = Math.round(pad.t + ph * 0.5 - 8);
        g.fillStyle = 'rgba(255, 255, 255, 0.92)';
        g.fillRect(tx, ty, tw, 16);
        g.fillStyle = muted;
        g.textBaseline = 'middle';
        g.textAlign = 'left';
        g.fillText(m.label, tx + 4, ty + 8);
      }
    }
  }

  /** Resolves 'var(--name)' against the canvas's computed style (canvas needs real colours). */
  #color(c, style) {
    const m = /^var\((--[\w-]+)\)$/.exec(c ?? '');
    return m ? style.getPropertyValue(m[1]).trim() || '#888' : c;
  }

  #axisColor(axis) {
    const own = this.opts.series.filter((s) => s.axis === axis);
    return own.length === 1 ? own[0].color : null;
  }
}
