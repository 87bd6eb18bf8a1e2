// accrete demo: an embeddable page section that trains neural networks in the browser tab
// with accrete on WebGPU, or on its CPU backend (wasm SIMD) where the browser has no usable
// WebGPU adapter. Plain ES modules, no bundler, no dependencies besides the accrete
// package built by web/build.sh.
//
//   <script type="module" src="/demo/accrete-demo.js"></script>
//   <accrete-demo></accrete-demo>
//
// or, from a module:
//
//   import { mountAccreteDemo } from '/demo/accrete-demo.js';
//   const demo = await mountAccreteDemo(document.querySelector('#here'), { tab: 'fashion' });
//
// Options (attributes on the element): pkg — URL of accrete_web.js (default ../pkg/ beside
// this file), data — URL of the folder holding the Fashion-MNIST IDX files (default data/
// beside this file), tab — 'playground' (default) or 'fashion', backend — 'auto' (default: a
// hardware WebGPU adapter, else the CPU backend), 'gpu' or 'cpu' (also ?backend= in the URL).

import { h, messageOf, errorBox } from './lib/util.js';
import { Playground } from './lib/playground.js';
import { Fashion } from './lib/fashion.js';

const DEFAULT_PKG = new URL('../pkg/accrete_web.js', import.meta.url).href;
const DEFAULT_DATA = new URL('./data/', import.meta.url).href;
const STYLESHEET = new URL('./demo.css', import.meta.url).href;

const TABS = [
  ['playground', 'Playground', 'Watch a small network draw its decision boundary; click to add points'],
  ['fashion', 'Fashion-MNIST', 'Train on 28×28 clothing images in chunks, or class-incrementally with a continual-learning strategy; save and resume checkpoints'],
];

/**
 * Renders the demo into `target` (its shadow root, so the host page's CSS does not leak in or
 * out) and resolves to the demo object ({ playground, fashion, adapter, select(tab) }) once
 * WebGPU is set up. Errors (no WebGPU, missing package) are shown in the page; the promise
 * then resolves to an object with an `error` field.
 */
export async function mountAccreteDemo(target, options = {}) {
  if (!(target instanceof Element)) throw new TypeError('mountAccreteDemo: the first argument must be an element');
  const pkgUrl = new URL(options.pkg || DEFAULT_PKG, document.baseURI).href;
  const dataUrl = new URL(options.data || DEFAULT_DATA, document.baseURI).href;
  const root = target.shadowRoot ?? target.attachShadow({ mode: 'open' });
  root.replaceChildren();

  const css = h('link', { rel: 'stylesheet', href: STYLESHEET });
  const cssLoaded = new Promise((resolve) => {
    css.onload = css.onerror = resolve;
    setTimeout(resolve, 3000);
  });
  root.append(css);

  const panels = {};
  const tabs = {};
  const tabList = h('div.tabs', { attrs: { role: 'tablist', 'aria-label': 'Demos' } });
  const alerts = h('div.alerts.global-alerts');
  const footer = h('footer.acc-foot', h('span.muted', 'Looking for a device…'));
  const shell = h('div.acc', { attrs: { 'data-state': 'loading' } },
    h('header.acc-head',
      h('div.brand',
        h('span.logo', { attrs: { 'aria-hidden': 'true' } }),
        h('div', h('h1.brand-name', 'accrete'), h('p.tagline', 'Neural networks trained incrementally — here in your browser tab, on WebGPU or on the CPU (wasm SIMD) where there is none.'))),
      tabList),
    alerts);
  for (const [id, label, blurb] of TABS) {
    tabs[id] = h('button.tab', {
      type: 'button', id: `tab-${id}`, title: blurb,
      attrs: { role: 'tab', 'aria-controls': `panel-${id}`, 'aria-selected': 'false' },
      onclick: () => demo.select(id),
    }, label);
    tabList.append(tabs[id]);
    panels[id] = h('section.panel', { id: `panel-${id}`, hidden: true, attrs: { role: 'tabpanel', 'aria-labelledby': `tab-${id}` } },
      h('p.panel-blurb', blurb));
    shell.append(panels[id]);
  }
  tabList.addEventListener('keydown', (e) => {
    const ids = TABS.map((t) => t[0]);
    const i = ids.indexOf(demo.tab);
    const next = e.key === 'ArrowRight' ? ids[(i + 1) % ids.length] : e.key === 'ArrowLeft' ? ids[(i + ids.length - 1) % ids.length] : null;
    if (next) {
      demo.select(next);
      tabs[next].focus();
    }
  });
  shell.append(footer);
  await cssLoaded;
  root.append(shell);

  const demo = {
    tab: null,
    playground: null,
    fashion: null,
    adapter: null,
    error: null,
    select(id) {
      if (!panels[id]) throw new Error(`unknown tab '${id}' (playground or fashion)`);
      for (const [k, p] of Object.entries(panels)) {
        const on = k === id;
        p.hidden = !on;
        tabs[k].setAttribute('aria-selected', String(on));
        tabs[k].tabIndex = on ? 0 : -1;
      }
      const prev = this.tab;
      this.tab = id;
      if (prev && prev !== id) this[prev === 'fashion' ? 'fashion' : 'playground']?.onHide();
      this[id === 'fashion' ? 'fashion' : 'playground']?.onShow();
    },
  };
  target.demo = demo;
  demo.select(options.tab === 'fashion' ? 'fashion' : 'playground');

  const fail = (title, e, hints) => {
    demo.error = messageOf(e);
    shell.dataset.state = 'error';
    alerts.replaceChildren(errorBox(title, demo.error, { hints, dismissible: false }));
    for (const p of Object.values(panels)) p.classList.add('is-disabled');
    footer.replaceChildren(h('span', 'The demo cannot train here.'));
    return demo;
  };

  let api;
  try {
    api = withBackend(await import(pkgUrl), options.backend || new URLSearchParams(location.search).get('backend'));
    await api.default();
  } catch (e) {
    return fail('The accrete package could not be loaded', e, [
      `It is looked for at ${pkgUrl}.`,
      'Build it with `bash web/build.sh` (writes web/pkg/), then serve web/ with `node web/demo/serve.mjs`.',
    ]);
  }
  try {
    demo.adapter = await api.adapterInfo();
  } catch (e) {
    // auto takes the CPU backend where there is no WebGPU, so this is a device that failed.
    return fail('No device to train on', e, [
      'Chrome and Edge 113+ have WebGPU on by default; Safari 26+ and Firefox 141+ (Windows) too; without it the CPU backend runs.',
      'Pages must come from https:// or http://localhost / 127.0.0.1 (a secure context).',
    ]);
  }
  shell.dataset.state = 'ready';
  footer.replaceChildren(...(await adapterLine(demo.adapter, api)));

  const onError = (e) => console.error('accrete demo:', e);
  demo.playground = new Playground(panels.playground, api, { onError });
  const slow = /cpu/i.test(String(demo.adapter?.deviceType ?? demo.adapter?.device_type ?? ''));
  demo.fashion = new Fashion(panels.fashion, api, { dataUrl, onError, slow, adapter: demo.adapter });
  demo.select(demo.tab);
  return demo;
}

/** The package with `{ backend }` as the default device option of adapterInfo, Trainer.create and Trainer.load. */
function withBackend(pkg, backend) {
  if (!backend) return pkg;
  const o = (given) => given ?? { backend };
  const Trainer = new Proxy(pkg.Trainer, {
    get(target, key, receiver) {
      if (key === 'create') return (spec, opts) => target.create(spec, o(opts));
      if (key === 'load') return (bytes, opts) => target.load(bytes, o(opts));
      return Reflect.get(target, key, receiver);
    },
  });
  return { ...pkg, Trainer, adapterInfo: (opts) => pkg.adapterInfo(o(opts)) };
}

/** Footer contents: the adapter's name, type and backend (or the CPU backend), and the package version. */
async function adapterLine(info, api) {
  let version = '';
  try {
    version = api.version?.() ?? '';
  } catch {
    // optional
  }
  if (info?.backend === 'Cpu') {
    const webgpu = 'gpu' in navigator ? 'no hardware WebGPU adapter here' : 'this browser has no WebGPU';
    return [
      h('span.dot', { attrs: { 'aria-hidden': 'true' } }),
      h('span', h('strong', 'CPU backend'), ' (Rust kernels in wasm SIMD)'),
      h('span.muted', info.name),
      h('span.muted', webgpu),
      version ? h('span.muted', `accrete-web ${version}`) : null,
    ];
  }
  const pick = (...keys) => keys.map((k) => info?.[k]).find((v) => v != null && v !== '');
  let name = pick('name');
  let detail = '';
  try {
    // wgpu's adapter name can be empty in browsers; the browser's own GPUAdapterInfo has more.
    const a = await navigator.gpu?.requestAdapter();
    const ai = a?.info;
    if (ai) {
      detail = [ai.vendor, ai.architecture].filter(Boolean).join(' ');
      name ||= ai.description || detail;
    }
  } catch {
    // the wasm side already has a device; this is only for the label
  }
  const type = String(pick('deviceType', 'device_type') ?? '');
  const backend = String(pick('backend') ?? 'WebGPU');
  const cpu = /cpu/i.test(type);
  const typeText = { Cpu: 'software (CPU)', DiscreteGpu: 'discrete GPU', IntegratedGpu: 'integrated GPU', VirtualGpu: 'virtual GPU' }[type] ?? type;
  return [
    h('span.dot', { attrs: { 'aria-hidden': 'true' } }),
    h('span', h('strong', name || 'WebGPU adapter'), detail && detail !== name ? ` (${detail})` : ''),
    typeText ? h('span.muted', typeText) : null,
    h('span.muted', backend === 'BrowserWebGpu' ? 'WebGPU' : backend),
    version ? h('span.muted', `accrete-web ${version}`) : null,
    cpu ? h('span.foot-note', 'A CPU adapter: training works, but slowly — the page keeps the models small.') : null,
  ];
}

class AccreteDemoElement extends HTMLElement {
  connectedCallback() {
    if (this.ready) return;
    this.ready = mountAccreteDemo(this, {
      pkg: this.getAttribute('pkg'),
      data: this.getAttribute('data'),
      tab: this.getAttribute('tab'),
      backend: this.getAttribute('backend'),
    }).catch((e) => {
      console.error('accrete demo:', e);
      return { error: messageOf(e) };
    });
  }
}

if (!customElements.get('accrete-demo')) customElements.define('accrete-demo', AccreteDemoElement);
