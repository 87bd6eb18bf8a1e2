// The Fashion-MNIST tab's views: the confusion matrix and the test images with their
// predicted labels.

import { h } from './util.js';

export const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const SHORT = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Boot'];
const PIXELS = 784;

/** The confusion matrix `m` (m[true][predicted], or null before any evaluation) into `el`. */
export function renderConfusion(el, m) {
  const table = h('table.cm');
  // Narrow containers show class numbers as column headers (CSS picks one of the two).
  table.append(h('thead', h('tr', h('th.cm-corner', ''), SHORT.map((s, j) => h('th.cm-col', { title: `predicted ${CLASS_NAMES[j]}` },
    h('span.cm-name', s), h('span.cm-num', String(j)))))));
  const body = h('tbody');
  for (let i = 0; i < 10; i++) {
    const row = m?.[i] ?? new Array(10).fill(null);
    const total = row.reduce((a, b) => a + (b ?? 0), 0);
    body.append(h('tr', h('th.cm-row', { title: CLASS_NAMES[i] }, h('span.cm-num', `${i} `), CLASS_NAMES[i]), row.map((v, j) => {
      const share = total ? v / total : 0;
      const cell = h('td', { title: v == null ? '' : `${CLASS_NAMES[i]} → ${CLASS_NAMES[j]}: ${v} of ${total}` }, v == null ? '' : v ? String(v) : '·');
      if (v) {
        const a = i === j ? 0.12 + 0.88 * share : Math.min(0.85, 0.1 + 2.2 * share);
        cell.style.background = i === j ? `rgba(var(--diag-rgb), ${a.toFixed(3)})` : `rgba(var(--off-rgb), ${a.toFixed(3)})`;
        if (a > 0.55) cell.classList.add('cm-dark');
      } else cell.classList.add('cm-zero');
      return cell;
    })));
  }
  table.append(body);
  el.replaceChildren(table);
}

/** Test images `sampleIdx` of `data` with their predictions `p` (n × 10 probabilities, or null). */
export function renderSamples(el, data, sampleIdx, p) {
  if (!data) {
    el.replaceChildren(h('p.muted.small', 'Test images appear once the dataset has loaded.'));
    return;
  }
  el.replaceChildren(...sampleIdx.map((idx, k) => {
    const canvas = h('canvas.sample-img', { width: 28, height: 28 });
    const g = canvas.getContext('2d');
    const img = g.createImageData(28, 28);
    const px = data.testX.subarray(idx * PIXELS, (idx + 1) * PIXELS);
    for (let i = 0; i < PIXELS; i++) {
      const v = 255 - px[i]; // dark garment on a light tile
      img.data.set([v, v, v, 255], 4 * i);
    }
    g.putImageData(img, 0, 0);
    const truth = data.testY[idx];
    let label = h('span.sample-pred.muted', '—');
    let detail = h('span.sample-true', CLASS_NAMES[truth]);
    let cls = '';
    if (p) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (p[k * 10 + c] > p[k * 10 + best]) best = c;
      const ok = best === truth;
      cls = ok ? '.ok' : '.bad';
      label = h('span.sample-pred', { title: `predicted ${CLASS_NAMES[best]}` }, CLASS_NAMES[best]);
      const pct = `${Math.round(100 * p[k * 10 + best])}%`;
      detail = ok
        ? h('span.sample-true', { title: 'correct' }, '✓ ', h('span.sample-conf', pct))
        : h('span.sample-true', { title: `wrong: it is ${CLASS_NAMES[truth]}` }, `✗ is ${CLASS_NAMES[truth]}`, h('span.sample-conf', ` · ${pct}`));
    }
    return h(`figure.sample${cls}`, canvas, h('figcaption', label, detail));
  }));
}

