// The Fashion-MNIST tab's class-incremental mode: five tasks of two classes (0-1, 2-3, …, 8-9)
// arrive one after another as chunks, trained with a continual-learning strategy of the spec
// (none, rehearsal, DER++, LwF, EWC, A-GEM). After every chunk the trainer evaluates each task
// seen so far on the test subset (Trainer.setChunkEvaluation); the accuracy matrix, average
// accuracy, backward transfer and forgetting come from core, in the history's chunk_end
// events — this file only draws them. Forgetting made visible: without a strategy the earlier
// tasks' accuracies fall to zero as later ones arrive.

import { h, select, Serial, nextFrame, messageOf, fmt, errorBox } from './util.js';
import { LineChart } from './chart.js';
import { SHORT } from './fashion-view.js';

const TASKS = 5;
const CLASSES = 10;
const TASK_COLORS = ['#2563eb', '#db2777', '#16a34a', '#ea580c', '#7c3aed'];

/** The strategies of the JS spec's `incremental` table; settings left out take core's defaults. */
export const STRATEGIES = {
  none: { label: 'None (fine-tuning)', incremental: {}, note: 'Plain fine-tuning on each new task: the earlier tasks are forgotten.' },
  rehearsal: {
    label: 'Rehearsal',
    incremental: { rehearsal: { size: 2000 } },
    note: 'Reservoir rehearsal: 2,000 earlier samples kept, 128 replayed in every batch (rehearsal = { size = 2000 }).',
  },
  derpp: {
    label: 'DER++',
    incremental: { rehearsal: { size: 2000, logit_weight: 0.5, label_weight: 0.5 } },
    note: 'DER++: the buffer keeps each sample’s logits; replayed rows add 0.5·MSE(logits) + 0.5·CE(labels).',
  },
  lwf: { label: 'LwF', incremental: { lwf: {} }, note: 'Learning without Forgetting: distils from the model as it was at the chunk’s start (weight 1, temperature 2).' },
  ewc: { label: 'EWC', incremental: { ewc: {} }, note: 'Elastic Weight Consolidation: a diagonal-Fisher penalty toward each chunk’s end weights (weight 100).' },
  agem: { label: 'A-GEM', incremental: { agem: { size: 2000 } }, note: 'A-GEM: steps that would raise the loss on 2,000 remembered samples are projected (256 per reference gradient).' },
};

export class ClassIncremental {
  /** `fashion`: the tab (its dataset, pixel scaling, model and optimizer settings). */
  constructor(panel, api, fashion, { onError } = {}) {
    this.api = api;
    this.fashion = fashion;
    this.panel = panel;
    this.onError = onError;
    this.strategy = 'none';
    this.perTask = fashion.slow ? 1000 : 6000; // a software WebGPU adapter is slow; elsewhere all of each task
    this.epochs = 2;
    this.trainer = null;
    this.lock = new Serial();
    this.gen = 0;
    this.running = false;
    this.resetState();
    this.build();
  }

  resetState() {
    this.nextTask = 0;
    this.ends = []; // the history's chunk_end events, one per chunk trained
    this.losses = []; // per chunk: the per-epoch training losses
  }

  build() {
    this.alerts = h('div.alerts');
    this.strategySel = select(Object.entries(STRATEGIES).map(([id, s]) => [id, s.label]), this.strategy, {
      onchange: (e) => {
        this.strategy = e.target.value;
        this.reset();
      },
    });
    this.perTaskSel = select([[500, '500 images'], [1000, '1,000 images'], [2000, '2,000 images'], [6000, 'all 6,000']], this.perTask, {
      onchange: (e) => {
        this.perTask = +e.target.value;
        this.reset();
      },
    });
    this.epochSel = select([[1, '1 epoch'], [2, '2 epochs'], [3, '3 epochs']], this.epochs, {
      onchange: (e) => {
        this.epochs = +e.target.value;
        this.reset();
      },
    });
    this.note = h('p.small.muted.arch');
    this.runBtn = h('button.btn.btn-primary', { type: 'button', onclick: () => (this.running ? this.pause() : this.start()) }, 'Train 5 tasks');
    this.resetBtn = h('button.btn', { type: 'button', onclick: () => this.reset() }, 'Reset');
    this.status = h('span.status.muted.small', 'Press Train: the tasks arrive one chunk at a time.');
    this.backendEl = h('p.small.ci-backend');
    this.bar = h('div.progress-fill');
    this.metric = {};
    const metric = (key, label, title) => h('div.metric', { title }, h('span.metric-label', label), (this.metric[key] = h('span.metric-value', '—')));
    this.matrixEl = h('div.ci-matrix');
    const chartCanvas = h('canvas.chart.chart-tall');
    this.chart = new LineChart(chartCanvas, {
      series: TASK_COLORS.map((color, j) => ({ key: `t${j}`, color, axis: 'left' })),
      left: { format: (v) => `${Math.round(v * 100)}%`, min: 0, max: 1 },
      xFormat: (v) => (Number.isInteger(v) ? String(v) : ''),
      empty: 'Per-task accuracies appear after the first chunk',
    });
    const legend = h('div.legend', TASK_COLORS.map((c, j) => h('span.key.ci-key', { attrs: { style: `--key: ${c}` } }, `task ${j + 1}`)));
    this.panel.append(
      this.alerts,
      h('div.fm',
        h('section.card.ci-train',
          h('div.card-head', h('h3', 'Class-incremental learning'), h('span.small.muted', 'Five tasks of two classes, one after another, one 10-way head')),
          h('div.fm-options',
            h('label.field', h('span.field-label', 'Strategy'), this.strategySel),
            h('label.field', h('span.field-label', 'Images per task'), this.perTaskSel),
            h('label.field', h('span.field-label', 'Epochs per task'), this.epochSel)),
          this.note,
          h('div.run-bar', this.runBtn, this.resetBtn, this.status),
          h('div.progress', { attrs: { role: 'progressbar', 'aria-label': 'Progress through the five tasks', 'aria-valuemin': '0', 'aria-valuemax': '100' } }, this.bar),
          this.backendEl,
          h('div.metrics',
            metric('avg', 'Average accuracy', 'mean accuracy over the tasks seen, after the last chunk'),
            metric('bwt', 'Backward transfer', 'BWT: mean over earlier tasks of final minus just-learnt accuracy (Lopez-Paz & Ranzato 2017)'),
            metric('forgetting', 'Forgetting', 'mean over earlier tasks of best earlier minus final accuracy (Chaudhry et al. 2018)'),
            metric('all', 'All 10 classes', 'accuracy on the whole test subset'))),
        h('section.card.ci-mat',
          h('div.card-head', h('h3', 'Accuracy matrix'), h('span.small.muted', 'row: after chunk i · column: task j')),
          this.matrixEl),
        h('section.card.ci-chart',
          h('div.card-head', h('h3', 'Accuracy on each task after chunk 1, 2, … 5'), legend),
          chartCanvas)));
    this.render();
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  showError(title, e) {
    this.alerts.replaceChildren(errorBox(title, messageOf(e), { hints: e?.hints ?? [] }));
    this.onError?.(e);
  }

  spec() {
    const c = this.fashion.ciSettings();
    return { seed: 0, model: c.model, optimizer: c.optimizer, train: { batch_size: c.batch, epochs: this.epochs }, incremental: STRATEGIES[this.strategy].incremental };
  }

  reset() {
    this.running = false;
    this.gen += 1;
    const old = this.trainer;
    if (old) this.lock.run(() => old.free());
    this.trainer = null;
    this.lock = new Serial();
    this.resetState();
    this.alerts.replaceChildren();
    this.setStatus('Press Train: the tasks arrive one chunk at a time.');
    this.render();
  }

  /** The training images of task `j`: the first `perTask` of its classes, in file order. */
  taskData(j) {
    const d = this.fashion.data;
    const [lo, hi] = this.groups[j];
    const idx = [];
    for (let i = 0; i < d.trainCount && idx.length < this.perTask; i++) if (d.trainY[i] >= lo && d.trainY[i] < hi) idx.push(i);
    const px = new Uint8Array(idx.length * 784);
    idx.forEach((i, k) => px.set(d.trainX.subarray(i * 784, (i + 1) * 784), k * 784));
    return { x: this.fashion.features(px), y: Uint32Array.from(idx, (i) => d.trainY[i]) };
  }

  async start() {
    if (this.running) return;
    const f = this.fashion;
    if (f.running) f.pause();
    await f.ensureData();
    if (!f.data) return;
    if (this.nextTask >= TASKS) this.reset();
    this.alerts.replaceChildren();
    this.running = true;
    this.render();
    const gen = this.gen;
    try {
      if (!this.trainer) {
        this.setStatus('Creating the model…');
        this.groups = this.api.taskGroups(CLASSES, TASKS);
        const t = await this.api.Trainer.create(this.spec());
        if (gen !== this.gen) return t.free();
        t.setChunkEvaluation(f.testFeatures(), f.data.testY, { tasks: TASKS });
        this.trainer = t;
      }
      await this.loop(gen);
    } catch (e) {
      if (gen !== this.gen) return;
      this.running = false;
      this.setStatus('Stopped by an error.');
      this.render();
      this.showError('Class-incremental training stopped', e);
    }
  }

  pause() {
    this.running = false;
    this.trainer?.stop();
    this.setStatus('Pausing…');
    this.render();
  }

  async loop(gen) {
    const t = this.trainer;
    while (this.running && gen === this.gen && this.nextTask < TASKS) {
      const j = this.nextTask;
      const { x, y } = this.taskData(j);
      const [lo, hi] = this.groups[j];
      this.setStatus(`Task ${j + 1}: ${SHORT.slice(lo, hi).join(' + ')} — ${fmt.int(y.length)} images…`);
      const r = await this.lock.run(() => t.fitChunk(x, y, {
        onProgress: (p) => {
          if (gen === this.gen && p.stepsInEpoch > 0) this.progress(j + Math.min(1, (p.epoch - 1 + p.stepInEpoch / p.stepsInEpoch) / p.epochs));
        },
      }));
      if (gen !== this.gen) return;
      if (r.stopped) break;
      this.losses.push(r.epochs.map((e) => e.loss));
      this.ends = t.history.filter((e) => e.event === 'chunk_end');
      this.nextTask += 1;
      this.render();
      await nextFrame();
    }
    if (gen !== this.gen) return;
    this.running = false;
    const last = this.ends.at(-1);
    this.setStatus(this.nextTask >= TASKS
      ? `All five tasks trained: ${fmt.pct(last?.averageAccuracy)} average accuracy. Pick another strategy to compare.`
      : 'Paused. Continue picks up exactly where it stopped.');
    this.render();
  }

  progress(tasksDone) {
    this.bar.style.width = `${(100 * tasksDone) / TASKS}%`;
    this.bar.parentElement?.setAttribute('aria-valuenow', String(Math.round((100 * tasksDone) / TASKS)));
  }

  render() {
    this.note.textContent = `${STRATEGIES[this.strategy].note} ${this.fashion.ciSettings().note}`;
    this.runBtn.textContent = this.running ? 'Pause' : this.nextTask >= TASKS ? 'Train again' : this.nextTask || this.trainer ? 'Continue' : 'Train 5 tasks';
    this.runBtn.classList.toggle('is-running', this.running);
    this.runBtn.disabled = !this.fashion.data && !this.fashion.loading;
    for (const s of [this.strategySel, this.perTaskSel, this.epochSel]) s.disabled = this.running;
    this.backendEl.textContent = this.trainer ? `Runs on ${backendText(this.trainer.backend, this.fashion.adapter)}.` : '';
    this.progress(this.nextTask);
    const last = this.ends.at(-1);
    this.metric.avg.textContent = fmt.pct(last?.averageAccuracy);
    this.metric.bwt.textContent = signedPct(last?.bwt);
    this.metric.forgetting.textContent = Number.isFinite(last?.forgetting) ? `${(100 * last.forgetting).toFixed(1)} pt` : '—';
    this.metric.all.textContent = fmt.pct(last?.accuracy);
    this.renderMatrix();
    this.chart.setData(this.ends.map((e, i) => Object.fromEntries([['x', i + 1], ...e.taskAccuracy.map((a, j) => [`t${j}`, a])])));
  }

  renderMatrix() {
    const head = h('tr', h('th.cm-corner', ''), [...Array(TASKS).keys()].map((j) => h('th.cm-col', { title: `classes ${2 * j}–${2 * j + 1}` },
      h('span.ci-task', `task ${j + 1}`), h('span.ci-classes', `${SHORT[2 * j]} · ${SHORT[2 * j + 1]}`))));
    const body = h('tbody');
    for (let i = 0; i < TASKS; i++) {
      const row = this.ends[i]?.taskAccuracy ?? [];
      body.append(h('tr', h('th.cm-row', `after ${i + 1}`), [...Array(TASKS).keys()].map((j) => {
        const v = row[j];
        const cell = h(`td${i === j ? '.ci-diag' : ''}`, v == null ? (j <= i ? '…' : '') : fmt.pct(v, 0));
        if (v != null) {
          cell.style.background = `rgba(var(--diag-rgb), ${(0.08 + 0.82 * v).toFixed(3)})`;
          if (v > 0.6) cell.classList.add('cm-dark');
        } else cell.classList.add('cm-zero');
        return cell;
      })));
    }
    this.matrixEl.replaceChildren(h('table.cm.ci-table', h('thead', head), body));
  }

  /** For tests and check.mjs: what the mode shows. */
  snapshot() {
    return {
      running: this.running, strategy: this.strategy, tasksDone: this.nextTask, backend: this.trainer?.backend ?? null,
      losses: this.losses, ends: this.ends, status: this.status.textContent, backendText: this.backendEl.textContent,
    };
  }

  onShow() {
    this.chart.draw();
  }
}

function signedPct(v) {
  if (v == null || !Number.isFinite(v)) return '—';
  return `${v > 0 ? '+' : v < 0 ? '−' : ''}${(100 * Math.abs(v)).toFixed(1)} pt`;
}

/** "the CPU backend (wasm SIMD)" or "WebGPU: <adapter>". */
export function backendText(backend, adapter) {
  if (backend === 'cpu') return 'the CPU backend (Rust kernels in wasm SIMD)';
  const name = adapter?.name || adapter?.browser?.description || 'the WebGPU adapter';
  return `WebGPU: ${name}`;
}
