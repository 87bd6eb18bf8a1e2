#!/usr/bin/env node
// Drives the demo in headless Chromium (WebGPU on SwiftShader where there is no GPU), the way a
// user would: trains the playground, adds points by clicking, trains Fashion-MNIST in chunks,
// round-trips a checkpoint through IndexedDB and a .safetensors download, optionally loads a
// checkpoint from the native CLI, and takes screenshots. Prints what it saw as JSON lines and
// exits non-zero when something does not hold.
//
//   npm install --prefix web/demo          # playwright-core (git-ignored node_modules)
//   node web/demo/check.mjs [--shots DIR] [--cli-checkpoint FILE] [--playground-seconds N]
//                           [--chunks N] [--cnn-chunks N] [--page PATH] [--only playground|fashion|classes]
//                           [--strategy none|rehearsal|derpp|lwf|ewc|agem] [--per-task N] [--no-webgpu]
//                           (--page 'index.html?backend=gpu' keeps WebGPU on a software adapter)
//
// --only classes trains the Fashion-MNIST tab's class-incremental mode through its five tasks
// with --strategy (default derpp) and screenshots it as classes-STRATEGY-webgpu.png (or
// -nowebgpu.png: --no-webgpu starts Chromium without --enable-unsafe-webgpu, no adapter, so
// the demo runs on the CPU backend).
//
// Environment: CHROMIUM (default /usr/lib/chromium/chromium), PLAYWRIGHT_CORE (path to a
// playwright-core package when it is not installed in web/demo/node_modules).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const opts = { shots: null, cli: null, pgSeconds: 25, chunks: 3, cnnChunks: 0, page: 'index.html', only: null, strategy: 'derpp', perTask: null, webgpu: true };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => argv[++i] ?? die(`${a} needs a value`);
  if (a === '--shots') opts.shots = path.resolve(next());
  else if (a === '--cli-checkpoint') opts.cli = path.resolve(next());
  else if (a === '--playground-seconds') opts.pgSeconds = Number(next());
  else if (a === '--chunks') opts.chunks = Number(next());
  else if (a === '--cnn-chunks') opts.cnnChunks = Number(next());
  else if (a === '--page') opts.page = next();
  else if (a === '--only') opts.only = next();
  else if (a === '--strategy') opts.strategy = next();
  else if (a === '--no-webgpu') opts.webgpu = false;
  else if (a === '--per-task') opts.perTask = next();
  else die(`unknown argument ${a}`);
}

function die(msg) {
  console.error(`check.mjs: ${msg}`);
  process.exit(2);
}
const log = (what, data = {}) => console.log(JSON.stringify({ what, ...data }));
const failures = [];
function expect(ok, message, data) {
  log(ok ? 'ok' : 'FAIL', { message, ...(data ?? {}) });
  if (!ok) failures.push(message);
}

async function loadPlaywright() {
  const where = process.env.PLAYWRIGHT_CORE;
  if (where) return import(pathToFileURL(path.join(where, 'index.mjs')).href);
  try {
    return await import('playwright-core');
  } catch {
    die('playwright-core is missing: npm install --prefix web/demo (or set PLAYWRIGHT_CORE=/path/to/node_modules/playwright-core)');
  }
}

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'serve.mjs'), '0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (m) resolve({ child, origin: `http://127.0.0.1:${m[1]}` });
    });
    child.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
  });
}

const { chromium } = await loadPlaywright();
const server = await startServer();
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'accrete-demo-chromium-'));
const downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'accrete-demo-downloads-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
  viewport: { width: 1280, height: 900 },
  acceptDownloads: true,
  downloadsPath: downloads,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu-sandbox', ...(opts.webgpu ? ['--enable-unsafe-webgpu'] : []), '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const page = ctx.pages()[0] ?? (await ctx.newPage());
page.setDefaultTimeout(10 * 60_000);
page.on('pageerror', (e) => log('pageerror', { message: e.message }));
page.on('console', (m) => m.type() === 'error' && !/favicon/.test(m.text()) && log('console.error', { text: m.text() }));

const demo = (fn, arg) => page.evaluate(`(${fn})(document.querySelector('accrete-demo').demo, ${JSON.stringify(arg ?? null)})`);
const pg = () => demo((d) => d.playground.snapshot());
const fm = () => demo((d) => {
  const s = d.fashion.snapshot();
  s.history = s.history.slice(-3);
  return s;
});
const alerts = () => page.$$eval('accrete-demo >> .alert', (els) => els.map((e) => e.innerText.replace(/\s+/g, ' ').trim()));

try {
  await page.goto(`${server.origin}/demo/${opts.page}`);
  await page.waitForFunction(() => {
    const d = document.querySelector('accrete-demo')?.demo;
    return d && (d.playground || d.error);
  }, null, { timeout: 120_000 });
  const setup = await demo((d) => ({ error: d.error, adapter: d.adapter }));
  log('adapter', setup);
  if (setup.error) throw new Error(`the demo could not start: ${setup.error}`);

  // ------------------------------------------------------------ playground
  if (opts.only === 'classes') await classIncremental();
  else {
    if (opts.only !== 'fashion') await playground();
    if (opts.only !== 'playground') await fashion();
  }
} catch (e) {
  failures.push(e.message);
  log('FAIL', { message: e.message, alerts: await alerts().catch(() => []) });
  if (opts.shots) await page.screenshot({ path: path.join(opts.shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  server.child.kill();
  fs.rmSync(profile, { recursive: true, force: true });
}
log(failures.length ? 'failed' : 'passed', { failures });
process.exit(failures.length ? 1 : 0);

async function playground() {
  await page.click('.pg-run .btn-primary');
  await page.waitForFunction(() => document.querySelector('accrete-demo').demo.playground.epoch > 0, null, { timeout: 180_000 });
  await page.waitForTimeout(opts.pgSeconds * 1000);
  const before = await pg();
  log('playground', before);
  const box = await page.locator('accrete-demo >> canvas.pg-canvas').boundingBox();
  // Two points of the selected class (blue) in the bottom-right corner, which the spirals
  // leave orange, and one of the other class (shift-click) in the top-left, which they leave
  // blue: the boundary has to bend to take them in.
  await page.mouse.click(box.x + box.width * 0.9, box.y + box.height * 0.9);
  await page.mouse.click(box.x + box.width * 0.84, box.y + box.height * 0.93);
  await page.keyboard.down('Shift');
  await page.mouse.click(box.x + box.width * 0.1, box.y + box.height * 0.1);
  await page.keyboard.up('Shift');
  const added = await pg();
  expect(added.points === before.points + 3 && added.added === 3, 'clicks add labelled points', { points: added.points });
  await page.waitForFunction(() => {
    const s = document.querySelector('accrete-demo').demo.playground.snapshot();
    return s.pending === 0 && s.running;
  }, null, { timeout: 120_000 });
  // The model keeps training on the accumulated points; wait (up to 4 minutes) until it gives
  // every added point its own class.
  const ownClass = () => demo(async (d) => {
    const p = d.playground;
    const mine = p.points.filter((q) => q.user);
    const x = new Float32Array(mine.flatMap((q) => [q.x, q.y]));
    const probs = await p.lock.run(() => p.trainer.predict(x));
    const k = probs.length / mine.length;
    return mine.map((q, i) => +probs[i * k + q.label].toFixed(3));
  });
  const t0 = Date.now();
  let learned = await ownClass();
  while (!learned.every((v) => v > 0.5) && Date.now() - t0 < 240_000) {
    await page.waitForTimeout(5000);
    learned = await ownClass();
  }
  const after = await pg();
  expect(after.epoch > added.epoch && after.steps > added.steps, 'training continues from the current weights after adding points (no restart)', { epochBefore: added.epoch, epochAfter: after.epoch });
  const labels = await demo((d) => d.playground.points.filter((p) => p.user).map((p) => p.label));
  expect(labels.length === 3 && labels[0] === labels[1] && labels[2] !== labels[0], 'shift-click adds the other class', { labels });
  expect(learned.every((v) => v > 0.5), 'the added points are learned: the model gives each its own class', {
    probabilityOfOwnClass: learned, seconds: Math.round((Date.now() - t0) / 1000), epochs: after.epoch - added.epoch,
  });
  await page.waitForTimeout(3000); // let the map catch up before the screenshot
  log('playground', await pg());
  if (opts.shots) {
    fs.mkdirSync(opts.shots, { recursive: true });
    await page.screenshot({ path: path.join(opts.shots, 'playground.png'), fullPage: true });
  }
  await page.click('.pg-run .btn-primary'); // pause
}

// -------------------------------------------------------------- Fashion-MNIST
async function fashion() {
  await page.click('role=tab[name="Fashion-MNIST"]');
  await page.waitForFunction(() => document.querySelector('accrete-demo').demo.fashion.snapshot().loaded, null, { timeout: 300_000 });
  const trainChunks = async (n) => {
    const target = (await fm()).seen + n * (await demo((d) => d.fashion.chunkSize));
    await page.click('.fm-train .btn-primary');
    await page.waitForFunction((t) => document.querySelector('accrete-demo').demo.fashion.snapshot().seen >= t, target, { timeout: 20 * 60_000 });
    await page.click('.fm-train .btn-primary'); // pause (stops mid-chunk)
    await page.waitForFunction(() => /^(Paused|Pass)/.test(document.querySelector('accrete-demo').demo.fashion.snapshot().status), null, { timeout: 600_000 });
  };
  if (opts.cnnChunks > 0) {
    await page.click('.fm-train .seg-btn[data-id="cnn"]');
    await trainChunks(opts.cnnChunks);
    log('fashion-cnn', await fm());
    await page.click('.fm-train .seg-btn[data-id="mlp"]');
  }
  await trainChunks(opts.chunks);
  const trained = await fm();
  log('fashion-mlp', trained);
  const acc = (s) => s.history.at(-1)?.test;
  expect(acc(trained) > 0.6, 'the MLP learns Fashion-MNIST in chunks', { testAccuracy: acc(trained) });
  // Paused mid-chunk, the weights are past the last chunk-end evaluation: score them now, as
  // restoring does (else the comparison below depends on where the pause landed).
  trained.history.push({ test: await demo(async (d) => {
    const f = d.fashion;
    return (await f.lock.run(() => f.trainer.evaluate(f.testFeatures(), f.data.testY))).accuracy;
  }) });

  // save → IndexedDB, download, reset, restore; the same test accuracy must come back
  await page.click('text=Save in browser');
  await page.waitForFunction(() => /Saved in this browser/.test(document.querySelector('accrete-demo').demo.fashion.snapshot().status));
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('text=Download .safetensors')]);
  const file = path.join(downloads, dl.suggestedFilename());
  await dl.saveAs(file);
  log('download', { file, bytes: fs.statSync(file).size });
  await page.click('.fm-train >> text=Reset');
  await page.click('text=Restore saved');
  await page.waitForFunction(() => document.querySelector('accrete-demo').demo.fashion.snapshot().source === 'browser storage');
  await page.waitForFunction(() => /Loaded/.test(document.querySelector('accrete-demo').demo.fashion.snapshot().status));
  const restored = await fm();
  expect(Math.abs(acc(restored) - acc(trained)) < 1e-9 && restored.step === trained.step, 'a checkpoint restored from IndexedDB has the same step and test accuracy', { before: acc(trained), after: acc(restored), step: restored.step });
  await page.setInputFiles('accrete-demo >> .fm-ckpt input[type=file]', file);
  await page.waitForFunction((name) => document.querySelector('accrete-demo').demo.fashion.snapshot().source === name, path.basename(file));
  await page.waitForFunction(() => /Loaded/.test(document.querySelector('accrete-demo').demo.fashion.snapshot().status));
  const reloaded = await fm();
  expect(Math.abs(acc(reloaded) - acc(trained)) < 1e-9 && reloaded.step === trained.step, 'the downloaded .safetensors loads back with the same step and test accuracy', { after: acc(reloaded) });
  await trainChunks(1);
  const continued = await fm();
  expect(continued.step > reloaded.step, 'training continues from the loaded checkpoint', { from: reloaded.step, to: continued.step });

  if (opts.cli) {
    await page.setInputFiles('accrete-demo >> .fm-ckpt input[type=file]', opts.cli);
    await page.waitForFunction((name) => document.querySelector('accrete-demo').demo.fashion.snapshot().source === name, path.basename(opts.cli));
    await page.waitForFunction(() => /Loaded/.test(document.querySelector('accrete-demo').demo.fashion.snapshot().status));
    const cli = await fm();
    log('cli-checkpoint', { file: opts.cli, step: cli.step, testAccuracy: acc(cli) });
    expect(acc(cli) > 0.7, 'a checkpoint from the native CLI loads and scores the test subset', { testAccuracy: acc(cli) });
    await trainChunks(opts.chunks);
    const cont = await fm();
    expect(cont.step > cli.step, 'a CLI checkpoint keeps training in the browser', { from: cli.step, to: cont.step, testAccuracy: acc(cont) });
  }
  if (opts.shots) await page.screenshot({ path: path.join(opts.shots, 'fashion.png'), fullPage: true });

  // a file that is not a checkpoint: a clear error in the page
  await page.setInputFiles('accrete-demo >> .fm-ckpt input[type=file]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a checkpoint') });
  await page.waitForFunction(() => document.querySelector('accrete-demo').shadowRoot.querySelector('.alert'));
  const shown = await alerts();
  expect(shown.some((t) => /notes\.txt/.test(t) && /not a \.safetensors checkpoint/.test(t)), 'a bad file shows an error naming it', { alerts: shown });
}

// -------------------------------------------------------------- class-incremental mode
async function classIncremental() {
  const ci = () => demo((d) => d.fashion.ci.snapshot());
  await page.click('role=tab[name="Fashion-MNIST"]');
  await page.waitForFunction(() => document.querySelector('accrete-demo').demo.fashion.snapshot().loaded, null, { timeout: 300_000 });
  await page.click('.fm-mode .seg-btn[data-id="classes"]');
  await page.selectOption('accrete-demo >> .ci-train select >> nth=0', opts.strategy);
  if (opts.perTask) await page.selectOption('accrete-demo >> .ci-train select >> nth=1', opts.perTask);
  await page.click('.ci-train .btn-primary');
  await page.waitForFunction(() => {
    const s = document.querySelector('accrete-demo').demo.fashion.ci.snapshot();
    return s.tasksDone === 5 && !s.running;
  }, null, { timeout: 20 * 60_000 });
  const s = await ci();
  log('class-incremental', { strategy: s.strategy, backend: s.backend, backendText: s.backendText, matrix: s.ends.map((e) => e.taskAccuracy), last: s.ends.at(-1), status: s.status });
  const last = s.ends.at(-1);
  expect(s.ends.length === 5 && s.ends.every((e, i) => e.taskAccuracy.length === i + 1), 'the accuracy matrix fills in, one row per chunk', {});
  expect(Number.isFinite(last.averageAccuracy) && Number.isFinite(last.bwt) && Number.isFinite(last.forgetting), 'average accuracy, BWT and forgetting are shown', {});
  expect(opts.webgpu || s.backend === 'cpu', opts.webgpu ? 'the demo trains (WebGPU present)' : 'without WebGPU the demo trains on the CPU backend', { backend: s.backend });
  const footer = await page.$eval('accrete-demo >> .acc-foot', (e) => e.innerText.replace(/\s+/g, ' ').trim());
  expect(/CPU backend|WebGPU/.test(footer), 'the footer says which backend the demo runs on', { footer });
  if (opts.shots) {
    fs.mkdirSync(opts.shots, { recursive: true });
    await page.screenshot({ path: path.join(opts.shots, `classes-${opts.strategy}-${opts.webgpu ? 'webgpu' : 'nowebgpu'}${s.backend === 'gpu' ? '-gpu' : ''}.png`), fullPage: true });
  }
}
