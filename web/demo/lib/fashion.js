// The Fashion-MNIST tab: loads the IDX files served beside the page, trains an MLP or a CNN
// on them in chunks (each chunk continues from the previous one's weights and optimizer
// state), and shows accuracy, a confusion matrix and predictions on test images. Checkpoints
// go to IndexedDB or a .safetensors download, and load back from either (or from the
// native CLI's runs/NNN/last.safetensors).

import { h, select, Serial, nextFrame, messageOf, fmt, errorBox, download } from './util.js';
import { LineChart } from './chart.js';
import { fetchIdx } from './idx.js';
import { saveRecord, loadRecord } from './store.js';
import { readMeta, describeModel, outputUnits } from './checkpoint.js';
import { rng } from './datasets.js';
import { ClassIncremental } from './continual.js';
import { CLASS_NAMES, renderConfusion, renderSamples } from './fashion-view.js';

export { CLASS_NAMES };

const PIXELS = 784;
const TEST_SUBSET = 1000; // test images evaluated after every chunk (half that on CPU adapters)
const SAMPLES = 12; // test images shown with their predicted labels
const STORE_KEY = 'fashion';

const relu = (units) => ({ type: 'dense', units, activation: 'relu' });
const conv = (filters) => ({ type: 'conv2d', filters, kernel: 3, padding: 1, activation: 'relu' });
const MODELS = {
  mlp: {
    label: 'MLP',
    model: { input: [PIXELS], layers: [relu(256), { type: 'dense', units: 10 }] },
    note: 'Dense 784 → 256 → 10 (ReLU): the native CLI’s default model.',
  },
  cnn: {
    label: 'CNN',
    model: {
      input: [1, 28, 28],
      layers: [conv(8), { type: 'maxpool2d', size: 2 }, conv(16), { type: 'maxpool2d', size: 2 }, { type: 'flatten' }, relu(64), { type: 'dense', units: 10 }],
    },
    note: 'conv 8 → pool → conv 16 → pool → dense 64 → 10 (3×3 kernels, ReLU): slower per image, learns more per image.',
  },
};
const OPTIMIZER = { type: 'adam', lr: 0.001 };
const BATCH = 64;

export class Fashion {
  constructor(panel, api, { dataUrl, onError, slow = false, adapter = null } = {}) {
    this.api = api;
    this.adapter = adapter; // adapterInfo(): what the trainers run on
    this.slow = slow; // a CPU (software) adapter: smaller test subset and CNN chunks
    this.testSubset = slow ? TEST_SUBSET / 2 : TEST_SUBSET;
    this.panel = panel;
    this.dataUrl = dataUrl;
    this.onError = onError;
    this.kind = 'mlp';
    this.chunkSize = 1000;
    this.data = null;
    this.trainer = null;
    this.lock = new Serial();
    this.gen = 0;
    this.running = false;
    this.source = null; // where the current model came from, when loaded
    this.meta = null; // metadata of a loaded checkpoint
    this.resetState();
    this.build();
  }

  resetState() {
    this.history = [];
    this.nextChunk = 0;
    this.pass = 1;
    this.seen = 0;
    this.steps = 0;
    this.last = null;
    this.confusion = null;
    this.sampleProbs = null;
  }

  // ---------------------------------------------------------------- UI
  build() {
    this.alerts = h('div.alerts');
    this.modelSeg = h('div.seg', { attrs: { role: 'radiogroup', 'aria-label': 'Model' } },
      Object.entries(MODELS).map(([id, m]) => h('button.seg-btn', {
        type: 'button', dataset: { id }, attrs: { role: 'radio' },
        onclick: () => this.chooseModel(id),
      }, m.label)));
    this.modelNote = h('p.small.muted.arch');
    this.chunkSel = select([[250, '250 images'], [500, '500 images'], [1000, '1,000 images'], [2000, '2,000 images'], [5000, '5,000 images']], this.chunkSize, {
      onchange: (e) => {
        const seen = this.nextChunk * this.chunkSize;
        this.chunkChosen = true;
        this.chunkSize = +e.target.value;
        this.nextChunk = Math.floor(seen / this.chunkSize);
        this.updateProgress(0);
      },
    });
    this.trainBtn = h('button.btn.btn-primary', { type: 'button', disabled: true, onclick: () => (this.running ? this.pause() : this.start()) }, 'Train');
    this.resetBtn = h('button.btn', { type: 'button', onclick: () => this.reset(), title: 'A fresh model of the selected kind' }, 'Reset');
    this.status = h('span.status.muted.small', 'Loading the dataset…');
    this.bar = h('div.progress-fill');
    this.progressText = h('span.small.muted');
    this.metric = {};
    const metric = (key, label) => h('div.metric', h('span.metric-label', label), (this.metric[key] = h('span.metric-value', '—')));

    const file = h('input', { type: 'file', accept: '.safetensors,application/octet-stream', hidden: true });
    file.addEventListener('change', () => {
      if (file.files[0]) this.loadFile(file.files[0]);
      file.value = '';
    });
    this.fileInput = file;
    this.saveBtn = h('button.btn', { type: 'button', disabled: true, onclick: () => this.saveToBrowser() }, 'Save in browser');
    this.downloadBtn = h('button.btn', { type: 'button', disabled: true, onclick: () => this.download() }, 'Download .safetensors');
    this.restoreBtn = h('button.btn', { type: 'button', disabled: true, onclick: () => this.restoreFromBrowser() }, 'Restore saved');
    this.loadBtn = h('button.btn', { type: 'button', disabled: true, onclick: () => file.click() }, 'Load file…');
    this.ckptInfo = h('p.small.muted.ckpt-info', 'No checkpoint saved in this browser yet.');
    this.modelInfo = h('p.small.model-info');

    const chartCanvas = h('canvas.chart.chart-tall');
    this.chart = new LineChart(chartCanvas, {
      series: [
        { key: 'train', color: 'var(--acc-train)', axis: 'left' },
        { key: 'test', color: 'var(--acc)', axis: 'left' },
      ],
      left: { format: (v) => `${Math.round(v * 100)}%`, floor: 0 },
      xFormat: (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v)),
      empty: 'Accuracy appears after the first chunk',
    });
    this.confusionEl = h('div.confusion');
    this.samplesEl = h('div.samples');

    this.modeSeg = h('div.seg', { attrs: { role: 'radiogroup', 'aria-label': 'Mode' } },
      [['stream', 'Stream of chunks'], ['classes', 'Class-incremental']].map(([id, label]) => h('button.seg-btn', {
        type: 'button', dataset: { id }, attrs: { role: 'radio', 'aria-checked': String(id === 'stream') }, onclick: () => this.chooseMode(id),
      }, label)));
    this.ciEl = h('div.fm-ci', { hidden: true });
    this.panel.append(
      h('div.fm-mode', this.modeSeg, h('span.small.muted', 'Class-incremental: the classes arrive two at a time — watch the earlier ones being forgotten')),
      this.alerts,
      this.ciEl,
      this.streamEl = h('div.fm',
        h('section.card.fm-train',
          h('div.card-head', h('h3', 'Incremental training'), h('span.small.muted', 'Each chunk continues from the last one’s weights and optimizer state')),
          h('div.fm-options',
            h('div.field', h('span.field-label', 'Model'), this.modelSeg),
            h('label.field', h('span.field-label', 'Chunk size'), this.chunkSel)),
          this.modelNote,
          h('div.run-bar', this.trainBtn, this.resetBtn, this.status),
          h('div.progress', { attrs: { role: 'progressbar', 'aria-label': 'Progress through the training set', 'aria-valuemin': '0', 'aria-valuemax': '100' } }, this.bar),
          this.progressText,
          h('div.metrics',
            metric('test', 'Test accuracy'),
            metric('train', 'Train accuracy'),
            metric('rate', 'Images / s'),
            metric('step', 'Time / step'))),
        h('section.card.fm-ckpt',
          h('div.card-head', h('h3', 'Checkpoint')),
          this.modelInfo,
          h('div.btn-grid', this.saveBtn, this.downloadBtn, this.restoreBtn, this.loadBtn),
          this.ckptInfo,
          h('div.cli',
            h('p', 'Native CLI: ', h('code', 'accrete eval FILE.safetensors'), ' scores a downloaded checkpoint; ', h('code', 'accrete predict'), ' runs it.'),
            h('p', 'Load ', h('code', 'runs/NNN/checkpoints/last.safetensors'), ' from ', h('code', 'accrete train'), ' to keep training it here.')),
          file),
        h('section.card.fm-chart',
          h('div.card-head', h('h3', 'Accuracy per chunk'),
            h('div.legend', h('span.key.key-train', 'training chunk'), h('span.key.key-test', `test subset (${fmt.int(this.testSubset)} images)`))),
          chartCanvas),
        h('section.card.fm-confusion',
          h('div.card-head', h('h3', 'Confusion matrix'), h('span.small.muted', 'rows: true class · columns: predicted')),
          this.confusionEl),
        h('section.card.fm-samples',
          h('div.card-head', h('h3', 'Test images'), h('button.btn.btn-small.btn-ghost', { type: 'button', onclick: () => this.shuffleSamples() }, 'Other images')),
          this.samplesEl)));
    this.ci = new ClassIncremental(this.ciEl, this.api, this, { onError: this.onError });
    this.updateModelChoice();
    this.renderConfusion();
    this.renderSamples();
    this.updateProgress(0);
    this.updateButtons();
    this.refreshStoredInfo();
  }

  /** 'stream' (chunks of all classes) or 'classes' (the class-incremental mode); pauses the other. */
  chooseMode(mode) {
    this.mode = mode;
    this.modeSeg.querySelectorAll('.seg-btn').forEach((b) => b.setAttribute('aria-checked', String(b.dataset.id === mode)));
    const classes = mode === 'classes';
    if (classes && this.running) this.pause();
    if (!classes && this.ci.running) this.ci.pause();
    this.streamEl.hidden = classes;
    this.alerts.hidden = classes;
    this.ciEl.hidden = !classes;
    if (classes) this.ci.onShow();
    else this.chart.draw();
  }

  /** What the class-incremental mode trains: the MLP with this tab's optimizer, in batches of
   * 128 as the continual-learning benchmarks do (benchmarks/: Split-Fashion-MNIST). */
  ciSettings() {
    return { model: MODELS.mlp.model, optimizer: OPTIMIZER, batch: 128, note: `${MODELS.mlp.note} Adam, learning rate ${OPTIMIZER.lr}, batch 128.` };
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  showError(title, e, hints = []) {
    this.alerts.replaceChildren(errorBox(title, messageOf(e), { hints: e?.hints ?? hints }));
    this.onError?.(e);
  }

  updateButtons() {
    const ready = !!this.data;
    this.trainBtn.disabled = !ready;
    this.trainBtn.textContent = this.running ? 'Pause' : this.seen || this.meta ? 'Continue' : 'Train';
    this.trainBtn.classList.toggle('is-running', this.running);
    this.resetBtn.disabled = !ready;
    this.saveBtn.disabled = this.downloadBtn.disabled = !this.trainer;
    this.loadBtn.disabled = !ready;
    this.modelSeg.querySelectorAll('button').forEach((b) => (b.disabled = this.running));
    this.chunkSel.disabled = this.running;
  }

  updateModelChoice() {
    this.modelSeg.querySelectorAll('.seg-btn').forEach((b) => b.setAttribute('aria-checked', String(!this.meta && b.dataset.id === this.kind)));
    if (this.meta) {
      this.modelNote.textContent = `Loaded from ${this.source}: ${describeModel(this.meta.model)}. Pick MLP or CNN to start a fresh model instead.`;
    } else {
      const slow = this.slow && this.kind === 'cnn' ? ' On this CPU adapter a CNN step takes seconds: be patient.' : '';
      this.modelNote.textContent = `${MODELS[this.kind].note} Adam, learning rate ${OPTIMIZER.lr}, batch ${BATCH}.${slow}`;
    }
    const model = this.meta?.model ?? MODELS[this.kind].model;
    this.modelInfo.replaceChildren(
      h('span.chip', this.meta ? this.source : `new ${MODELS[this.kind].label}`),
      ' ', describeModel(model),
      ...(this.trainer ? [h('span.muted', ` · step ${fmt.int(this.currentStep())}`)] : []));
  }

  currentStep() {
    return this.trainer?.step ?? 0;
  }

  updateProgress(fraction) {
    const total = this.data ? this.data.trainCount : 60000;
    const chunks = Math.ceil(total / this.chunkSize);
    const done = Math.min(total, this.nextChunk * this.chunkSize + fraction * this.chunkSize);
    this.bar.style.width = `${(100 * done) / total}%`;
    this.bar.parentElement?.setAttribute('aria-valuenow', String(Math.round((100 * done) / total)));
    const chunk = Math.min(chunks, this.nextChunk + (this.running ? 1 : 0));
    this.progressText.textContent = `Pass ${this.pass}: chunk ${chunk} of ${chunks} — ${fmt.int(done)} of ${fmt.int(total)} training images`;
  }

  // ---------------------------------------------------------------- data
  async ensureData() {
    if (this.data || this.loading) return this.loading;
    this.loading = (async () => {
      this.alerts.replaceChildren();
      const files = {
        trainX: 'train-images-idx3-ubyte', trainY: 'train-labels-idx1-ubyte',
        testX: 't10k-images-idx3-ubyte', testY: 't10k-labels-idx1-ubyte',
      };
      const out = {};
      try {
        for (const [key, name] of Object.entries(files)) {
          out[key] = await fetchIdx(this.dataUrl, name, (got, total) => {
            this.setStatus(`Loading ${name}.gz — ${fmt.bytes(got)}${total ? ' of ' + fmt.bytes(total) : ''}`);
          });
        }
        checkShapes(out);
      } catch (e) {
        this.setStatus('The dataset could not be loaded.');
        const retry = h('button.btn.btn-small', { type: 'button', onclick: () => { this.loading = null; this.ensureData(); } }, 'Retry');
        this.showError('Fashion-MNIST is not available', e);
        this.alerts.firstChild?.querySelector('.alert-body')?.append(retry);
        this.loading = null;
        return;
      }
      const n = Math.min(this.testSubset, out.testY.dims[0]);
      this.data = {
        trainX: out.trainX.data, trainY: out.trainY.data, trainCount: out.trainY.dims[0],
        testX: out.testX.data.subarray(0, n * PIXELS), testY: new Uint32Array(out.testY.data.subarray(0, n)), testCount: n,
      };
      this.testCache = null;
      this.shuffleSamples(7);
      this.setStatus(`Ready: ${fmt.int(this.data.trainCount)} training images, ${fmt.int(out.testY.dims[0])} test images.`);
      this.updateProgress(0);
      this.updateButtons();
      this.ci?.render();
    })();
    return this.loading;
  }

  /**
   * Pixels as the native CLI feeds them: /255. (A checkpoint's standardisation, when it has
   * one, is applied by the Trainer itself.)
   */
  features(u8) {
    const x = new Float32Array(u8.length);
    for (let i = 0; i < u8.length; i++) x[i] = u8[i] / 255;
    return x;
  }

  testFeatures() {
    this.testCache ??= this.features(this.data.testX);
    return this.testCache;
  }

  shuffleSamples(seed = Date.now()) {
    if (!this.data) return;
    const r = rng(seed);
    const idx = new Set();
    while (idx.size < Math.min(SAMPLES, this.data.testCount)) idx.add(Math.floor(r() * this.data.testCount));
    this.sampleIdx = [...idx];
    this.sampleProbs = null;
    this.renderSamples();
    if (this.trainer && !this.running) this.predictSamples(this.gen).catch((e) => this.showError('Prediction failed', e));
  }

  // ---------------------------------------------------------------- model lifecycle
  chooseModel(id) {
    if (this.running) return;
    this.kind = id;
    if (this.slow && !this.chunkChosen) {
      // On a CPU adapter a CNN step is several times an MLP step: smaller chunks keep the
      // page lively.
      this.chunkSize = id === 'cnn' ? 250 : 1000;
      this.chunkSel.value = String(this.chunkSize);
    }
    this.reset();
  }

  reset() {
    this.running = false;
    this.gen += 1;
    const old = this.trainer;
    if (old) this.lock.run(() => old.free());
    this.trainer = null;
    this.lock = new Serial();
    this.meta = null;
    this.source = null;
    this.resetState();
    this.chart.setData([]);
    for (const m of Object.values(this.metric)) m.textContent = '—';
    this.renderConfusion();
    this.renderSamples();
    this.updateModelChoice();
    this.updateProgress(0);
    this.updateButtons();
    if (this.data) this.setStatus(`Fresh ${MODELS[this.kind].label}: press Train.`);
  }

  /** Replaces the current model with one loaded from checkpoint bytes. */
  async adopt(bytes, source, context = {}) {
    const meta = readMeta(bytes, source);
    const inputs = (meta.model?.input ?? []).reduce((a, b) => a * b, 1);
    const classes = outputUnits(meta.model);
    if (inputs !== PIXELS || classes !== 10) {
      throw new Error(`${source} holds a model for [${meta.model?.input}] inputs and ${classes} classes (${describeModel(meta.model)}); this tab needs 784 inputs (28×28 pixels) and 10 classes.`);
    }
    if (this.running) this.pause();
    const t = await this.api.Trainer.load(bytes);
    this.reset();
    this.trainer = t;
    this.meta = meta;
    this.source = source;
    if (context.history) {
      this.history = context.history;
      this.nextChunk = context.nextChunk ?? 0;
      this.pass = context.pass ?? 1;
      this.seen = context.seen ?? 0;
      this.chunkSize = context.chunkSize ?? this.chunkSize;
      this.chunkSel.value = String(this.chunkSize);
      // the record's step counts are in meta.step already
    }
    this.updateModelChoice();
    this.updateButtons();
    this.updateProgress(0);
    await this.evaluateNow(this.gen, !context.history);
    this.setStatus(`Loaded ${source} (step ${fmt.int(meta.step)}): press Continue to keep training it.`);
    this.updateButtons();
  }

  async loadFile(file) {
    this.alerts.replaceChildren();
    this.setStatus(`Reading ${file.name}…`);
    try {
      await this.ensureData();
      const bytes = new Uint8Array(await file.arrayBuffer());
      await this.adopt(bytes, file.name);
    } catch (e) {
      this.setStatus('');
      this.showError(`Could not load ${file.name}`, e);
    }
  }

  async saveToBrowser() {
    try {
      const bytes = await this.checkpointBytes();
      const record = {
        bytes, savedAt: Date.now(), model: describeModel(this.meta?.model ?? MODELS[this.kind].model),
        step: readMeta(bytes).step, nextChunk: this.nextChunk, pass: this.pass, seen: this.seen,
        chunkSize: this.chunkSize, history: this.history,
      };
      await saveRecord(STORE_KEY, record);
      this.setStatus(`Saved in this browser (IndexedDB, ${fmt.bytes(bytes.length)}).`);
      await this.refreshStoredInfo();
    } catch (e) {
      this.showError('Could not save the checkpoint', e);
    }
  }

  async download() {
    try {
      const bytes = await this.checkpointBytes();
      const kind = this.meta ? 'loaded' : this.kind;
      download(bytes, `accrete-fashion-${kind}-step${readMeta(bytes).step}.safetensors`);
      this.setStatus(`Downloaded ${fmt.bytes(bytes.length)}: continue it here with Load file…, or natively with accrete eval / predict.`);
    } catch (e) {
      this.showError('Could not create the checkpoint', e);
    }
  }

  async checkpointBytes() {
    if (!this.trainer) throw new Error('There is no model yet: train or load one first.');
    const t = this.trainer;
    return this.lock.run(() => t.save());
  }

  async restoreFromBrowser() {
    try {
      const rec = await loadRecord(STORE_KEY);
      if (!rec) throw new Error('Nothing is saved in this browser yet.');
      await this.ensureData();
      await this.adopt(new Uint8Array(rec.bytes), 'browser storage', rec);
    } catch (e) {
      this.showError('Could not restore the saved checkpoint', e);
    }
  }

  async refreshStoredInfo() {
    try {
      const rec = await loadRecord(STORE_KEY);
      this.restoreBtn.disabled = !rec;
      this.ckptInfo.textContent = rec
        ? `Saved in this browser: ${rec.model}, step ${fmt.int(rec.step)}, ${fmt.bytes(rec.bytes.byteLength ?? rec.bytes.length)}, ${new Date(rec.savedAt).toLocaleString()}.`
        : 'Nothing saved in this browser yet. Checkpoints are .safetensors files, the same format as the native CLI writes.';
    } catch (e) {
      this.restoreBtn.disabled = true;
      this.ckptInfo.textContent = `Browser storage is unavailable: ${messageOf(e)}`;
    }
  }

  // ---------------------------------------------------------------- training
  async start() {
    if (this.running) return;
    await this.ensureData();
    if (!this.data) return;
    this.alerts.replaceChildren();
    this.running = true;
    this.updateButtons();
    const gen = this.gen;
    try {
      if (!this.trainer) {
        this.setStatus('Creating the model…');
        const spec = { seed: 0, model: MODELS[this.kind].model, optimizer: OPTIMIZER, train: { batch_size: BATCH, epochs: 1 } };
        const t = await this.api.Trainer.create(JSON.stringify(spec));
        if (gen !== this.gen) return t.free();
        this.trainer = t;
        this.updateModelChoice();
      }
      await this.loop(gen);
    } catch (e) {
      if (gen !== this.gen) return;
      this.running = false;
      this.updateButtons();
      this.setStatus('Stopped by an error.');
      this.showError('Training stopped', e);
    }
  }

  /** Stops at the chunk's next report point; Continue resumes that chunk exactly. */
  pause() {
    this.running = false;
    this.updateButtons();
    try {
      this.trainer?.stop();
    } catch {
      // an older package without stop(): the chunk then finishes first
    }
    this.setStatus('Pausing…');
  }

  async loop(gen) {
    const t = this.trainer;
    const d = this.data;
    const chunks = Math.ceil(d.trainCount / this.chunkSize);
    while (this.running && gen === this.gen) {
      if (this.nextChunk >= chunks) {
        this.nextChunk = 0;
        this.pass += 1;
      }
      const start = this.nextChunk * this.chunkSize;
      const n = Math.min(this.chunkSize, d.trainCount - start);
      const x = this.features(d.trainX.subarray(start * PIXELS, (start + n) * PIXELS));
      const y = new Uint32Array(d.trainY.subarray(start, start + n));
      this.setStatus(`Training on images ${fmt.int(start + 1)}–${fmt.int(start + n)}…`);
      this.updateProgress(0);
      const t0 = performance.now();
      const r = await this.lock.run(() => t.fitChunk(x, y, {
        epochs: 1,
        onProgress: (p) => {
          const f = progressFraction(p);
          if (f != null && gen === this.gen) this.updateProgress(f);
        },
      }));
      const trainMs = performance.now() - t0;
      if (gen !== this.gen) return;
      if (r.stopped) {
        // Paused mid-chunk: the trainer keeps its place; the same chunk goes on next time.
        this.steps += r.steps;
        this.updateModelChoice();
        break;
      }
      this.nextChunk += 1;
      this.seen += n;
      this.steps += r.steps;
      this.last = { trainMs, steps: r.steps, images: n, msPerStep: trainMs / Math.max(1, r.steps), imagesPerSec: (1000 * n) / trainMs };
      this.metric.train.textContent = fmt.pct(r.accuracy);
      this.metric.rate.textContent = fmt.int(this.last.imagesPerSec);
      this.metric.step.textContent = fmt.ms(this.last.msPerStep);
      this.history.push({ x: this.seen, train: r.accuracy, trainLoss: r.loss });
      this.updateProgress(0);
      this.updateModelChoice();
      await this.evaluateNow(gen, false);
      if (gen !== this.gen) return;
      if (this.nextChunk >= chunks) {
        this.running = false;
        this.setStatus(`Pass ${this.pass} over all ${fmt.int(d.trainCount)} images done. Continue for another pass.`);
      }
      this.updateButtons();
      await nextFrame();
    }
    if (gen === this.gen && !this.status.textContent.startsWith('Pass')) this.setStatus('Paused. Continue picks up exactly where it stopped.');
  }

  /** Evaluates the test subset and refreshes the chart, matrix and sample predictions. */
  async evaluateNow(gen, addPoint) {
    const t = this.trainer;
    const x = this.testFeatures();
    const e0 = performance.now();
    const e = await this.lock.run(() => t.evaluate(x, this.data.testY));
    const evalMs = performance.now() - e0;
    if (gen !== this.gen) return;
    if (this.last) this.last.evalMs = evalMs;
    this.confusion = e.confusion;
    const lastPoint = this.history.at(-1);
    if (addPoint || !lastPoint) this.history.push({ x: this.seen, test: e.accuracy, testLoss: e.loss });
    else Object.assign(lastPoint, { test: e.accuracy, testLoss: e.loss });
    this.metric.test.textContent = fmt.pct(e.accuracy);
    this.chart.setData(this.history);
    this.renderConfusion();
    await this.predictSamples(gen);
  }

  async predictSamples(gen) {
    const t = this.trainer;
    const px = new Uint8Array(this.sampleIdx.length * PIXELS);
    this.sampleIdx.forEach((i, k) => px.set(this.data.testX.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS));
    const probs = await this.lock.run(() => t.predict(this.features(px)));
    if (gen !== this.gen) return;
    this.sampleProbs = probs;
    this.renderSamples();
  }

  // ---------------------------------------------------------------- rendering
  renderConfusion() {
    renderConfusion(this.confusionEl, this.confusion);
  }

  renderSamples() {
    renderSamples(this.samplesEl, this.data, this.sampleIdx, this.sampleProbs);
  }

  snapshot() {
    return {
      running: this.running, loaded: !!this.data, seen: this.seen, steps: this.steps, step: this.currentStep(),
      nextChunk: this.nextChunk, pass: this.pass, source: this.source, last: this.last,
      history: this.history, status: this.status.textContent, mode: this.mode ?? 'stream', classIncremental: this.ci.snapshot(),
    };
  }

  onShow() {
    this.ensureData();
    this.chart.draw();
  }

  onHide() {}
}

function checkShapes(d) {
  const bad = (what) => {
    throw new Error(`The Fashion-MNIST files do not fit together: ${what}.`);
  };
  for (const k of ['trainX', 'testX']) if (d[k].dims.length !== 3 || d[k].dims[1] !== 28 || d[k].dims[2] !== 28) bad(`${k === 'trainX' ? 'train' : 't10k'}-images holds ${d[k].dims.join('×')}, not N×28×28`);
  if (d.trainX.dims[0] !== d.trainY.dims[0]) bad(`${d.trainX.dims[0]} training images but ${d.trainY.dims[0]} labels`);
  if (d.testX.dims[0] !== d.testY.dims[0]) bad(`${d.testX.dims[0]} test images but ${d.testY.dims[0]} labels`);
  for (const k of ['trainY', 'testY']) if (d[k].data.some((v) => v > 9)) bad('a label is above 9');
}

/** The fraction of the fitChunk call done, from a progress report (FitProgress). */
function progressFraction(p) {
  if (!p || !(p.stepsInEpoch > 0) || !(p.epochs > 0)) return null;
  return Math.min(1, (p.epoch - 1 + p.stepInEpoch / p.stepsInEpoch) / p.epochs);
}
