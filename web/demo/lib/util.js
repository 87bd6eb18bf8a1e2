// Small DOM and async helpers shared by the demo's tabs.

/**
 * Creates an element: h('div.card.wide', { title: 'x', onclick: f }, child, 'text', …).
 * Class names follow the tag after dots; props set properties (on*, dataset, style objects
 * and `attrs` for plain attributes); children may be nodes, strings, arrays or null.
 */
export function h(tagAndClasses, props, ...children) {
  const [tag, ...classes] = tagAndClasses.split('.');
  const node = document.createElement(tag || 'div');
  if (classes.length) node.className = classes.join(' ');
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'attrs') for (const [a, av] of Object.entries(v)) node.setAttribute(a, av);
    else if (k === 'style' && typeof v === 'object') Object.assign(node.style, v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : String(c));
  }
}

/** A <select> whose options are [value, label] pairs (or plain values). */
export function select(options, value, props = {}) {
  const s = h('select', props);
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    s.append(h('option', { value: String(v), selected: String(v) === String(value) }, label));
  }
  return s;
}

/** A labelled form row: <label><span>text</span>control</label>. */
export function field(label, control, hint) {
  return h('label.field', h('span.field-label', label), control, hint ? h('span.field-hint', hint) : null);
}

/** Runs async jobs one after another: the wasm Trainer refuses overlapping calls. */
export class Serial {
  #tail = Promise.resolve();
  run(job) {
    const p = this.#tail.then(job);
    this.#tail = p.catch(() => {});
    return p;
  }
}

/** Resolves on the next animation frame (or after 50 ms where frames are throttled). */
export function nextFrame() {
  return new Promise((resolve) => {
    let done = false;
    const go = () => {
      if (!done) {
        done = true;
        resolve();
      }
    };
    requestAnimationFrame(go);
    setTimeout(go, 50);
  });
}

/** The message of anything thrown (wasm-bindgen rejects with Error objects or strings). */
export function messageOf(e) {
  if (e == null) return 'unknown error';
  if (typeof e === 'string') return e;
  if (e.message) return e.message;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

export const fmt = {
  pct: (v, d = 1) => (v == null || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(d)}%`),
  num: (v, d = 3) => (v == null || !Number.isFinite(v) ? '—' : v.toFixed(d)),
  int: (v) => (v == null ? '—' : Math.round(v).toLocaleString('en-US')),
  ms: (v) => (v == null || !Number.isFinite(v) ? '—' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`),
  bytes: (n) => (n < 1e3 ? `${n} B` : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`),
  time: (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
};

/**
 * An error panel: title, message, optional hint lines. `dismissible` adds a close button.
 * Returns the element; callers place it.
 */
export function errorBox(title, message, { hints = [], dismissible = true, kind = 'error' } = {}) {
  const box = h(`div.alert.alert-${kind}`, { attrs: { role: kind === 'error' ? 'alert' : 'status' } },
    h('div.alert-body',
      h('strong.alert-title', title),
      message ? h('p.alert-text', withCode(message)) : null,
      hints.length ? h('ul.alert-hints', hints.map((t) => h('li', withCode(t)))) : null),
    dismissible ? h('button.alert-close', { type: 'button', title: 'Dismiss', attrs: { 'aria-label': 'Dismiss' }, onclick: () => box.remove() }, '×') : null);
  return box;
}

/** Text with `backticked` parts as <code> elements. */
function withCode(text) {
  return String(text).split('`').map((part, i) => (i % 2 ? h('code', part) : part));
}

/** Starts a browser download of `bytes` named `name`. */
export function download(bytes, name, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h('a', { href: url, download: name, style: { display: 'none' } });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
