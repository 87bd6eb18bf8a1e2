// Browser tests of training control (issue #18): fitChunk's per-call hyper-parameters against
// the CLI's `resume --set`, and recovery strategies in a JS spec.

import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accrete, assert, close, SPEC, work } from "./common.mjs";
import { spirals, toCsv } from "./data.mjs";

export const controlTests = {
  async "fit-options"(page) {
    // fitChunk(x, y, { lr, epochs }) is the browser's `accrete resume --set optimizer.lr=…
    // --set train.epochs=…`: from the same CLI checkpoint (after epoch 2 of 4 in chunk 1) both
    // finish the chunk at 3 epochs with the new rate, to the same loss, and record the change.
    const dir = join(work, "fitopts");
    mkdirSync(dir, { recursive: true });
    const tr = spirals(300, { seed: 7 });
    writeFileSync(join(dir, "train.csv"), toCsv(tr.x, tr.y));
    writeFileSync(
      join(dir, "run.toml"),
      `seed = 5

[data]
format = "csv"
train_file = "train.csv"
standardize = true
validation_fraction = 0

[model]
input = [2]
layers = [
  { type = "dense", units = 16, activation = "tanh" },
  { type = "dense", units = 2 },
]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 30
epochs = 4

[incremental]
chunks = 1

[checkpoint]
every_steps = 10
keep_last = 100
`,
    );
    accrete(["train", "--config", "run.toml", "--out", "run", "--quiet"], dir);
    // The run as if killed after its step-20 checkpoint (end of epoch 2), then resumed with
    // a lower rate and 3 epochs per chunk: one more epoch at 0.005.
    cpSync(join(dir, "run"), join(dir, "changed"), { recursive: true });
    copyFileSync(join(dir, "run/checkpoints/step-20.safetensors"), join(dir, "changed/checkpoints/last.safetensors"));
    rmSync(join(dir, "changed/report"), { recursive: true, force: true });
    accrete(["resume", "changed", "--set", "optimizer.lr=0.005", "--set", "train.epochs=3", "--quiet"], dir);
    const rows = readFileSync(join(dir, "changed/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const native = rows.filter((r) => r.train_loss !== undefined);
    const nativeEval = JSON.parse(accrete(["eval", "changed/checkpoints/last.safetensors", "--csv", "train.csv"], dir));
    const r = await page.evaluate(async ({ url }) => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`fetch ${url}: ${res.status}`);
      const t = await accrete.Trainer.load(new Uint8Array(await res.arrayBuffer()));
      try {
        const tr = data.spirals(300, { seed: 7 });
        const before = { step: t.step, epoch: t.epoch };
        const fit = await t.fitChunk(tr.x, tr.y, { lr: 0.005, epochs: 3 });
        const e = await t.evaluate(tr.x, tr.y);
        return { before, fit, loss: e.loss, accuracy: e.accuracy, step: t.step, history: t.history };
      } finally {
        t.free();
      }
    }, { url: "/files/fitopts/run/checkpoints/step-20.safetensors" });
    const change = r.history.find((h) => h.event === "hyper_change");
    const epochRows = r.history.filter((h) => h.event === "epoch");
    console.log(
      `  from step ${r.before.step}: CLI resume --set epoch 3 loss ${native.at(-1).train_loss} (lr ${native.at(-1).lr}); ` +
        `browser fitChunk {lr, epochs} ${r.fit.epochs.map((e) => e.loss).join(", ")} (lr ${epochRows.at(-1).lr}); ` +
        `final train loss native ${nativeEval.loss.toFixed(6)} / browser ${r.loss.toFixed(6)}`,
    );
    assert(r.before.step === 20 && r.before.epoch === 2, `loaded at ${JSON.stringify(r.before)}`);
    assert(native.length === 3 && native.map((n) => n.lr).join() === "0.02,0.02,0.005", `CLI rows ${JSON.stringify(native)}`);
    assert(r.fit.steps === 10 && r.step === 30 && r.fit.epochs.length === 1, `browser ran ${r.fit.steps} steps to ${r.step}`);
    assert(close(native[2].train_loss, r.fit.epochs[0].loss, 1e-5),
      `epoch 3: native ${native[2].train_loss}, browser ${r.fit.epochs[0].loss}`);
    assert(close(nativeEval.loss, r.loss, 1e-4), `final loss native ${nativeEval.loss}, browser ${r.loss}`);
    assert(change && change.source === "call" && change.step === 20 && change.changes.length === 1
      && change.changes[0].key === "optimizer.lr" && change.changes[0].to === 0.005,
      `hyper_change ${JSON.stringify(change)}`);
    assert(epochRows.length === 3 && epochRows[2].lr === 0.005, `epoch rows ${JSON.stringify(epochRows)}`);
  },

  async recovery(page) {
    // recovery = { strategy } in a JS spec: last_good and anneal recover from a learning-rate
    // spike (fitChunk's lr, the browser's counterpart of the native tests' injected spike) and
    // log their rollbacks; population is accepted and trains (it does not recover from a spike
    // that stays in the base rate: its trial steps run before the rate is lowered, and the
    // winner becomes the next "last good" state — left to the recovery work of issue #18);
    // too few rollbacks allowed rejects as diverged; "best" (no validation set in the
    // browser) and unknown strategies are refused at create.
    const r = await page.evaluate(async (spec) => {
      const tr = data.spirals(240, { seed: 3 });
      const te = data.spirals(200, { seed: 2 });
      const out = {};
      const pop = await accrete.Trainer.create({ ...spec, recovery: { strategy: "population", population: 2 } });
      const popFit = await pop.fitChunk(tr.x, tr.y, { epochs: 10 });
      out.population = { loss: popFit.loss, accuracy: (await pop.evaluate(te.x, te.y)).accuracy };
      pop.free();
      for (const strategy of ["last_good", "anneal"]) {
        const t = await accrete.Trainer.create({
          ...spec,
          recovery: { strategy, lr_factor: 0.01, max_rollbacks: 5, population: 2, trial_steps: 3 },
        });
        try {
          await t.fitChunk(tr.x, tr.y, { epochs: 10 });
          const before = t.step;
          const spiked = await t.fitChunk(tr.x, tr.y, { lr: 1000, epochs: 2 });
          const e = await t.evaluate(te.x, te.y);
          out[strategy] = {
            steps: t.step - before, loss: spiked.loss, accuracy: e.accuracy,
            rollbacks: t.history.filter((h) => h.event === "rollback"),
          };
        } finally {
          t.free();
        }
      }
      const t = await accrete.Trainer.create({ ...spec, recovery: { strategy: "anneal", max_rollbacks: 1 } });
      await t.fitChunk(tr.x, tr.y, { epochs: 2 });
      out.gaveUp = await rejection(t.fitChunk(tr.x, tr.y, { lr: 1e6, epochs: 1 }));
      t.free();
      out.best = await rejection(accrete.Trainer.create({ ...spec, recovery: { strategy: "best" } }));
      out.unknown = await rejection(accrete.Trainer.create({ ...spec, recovery: { strategy: "retry" } }));
      out.badValue = await rejection(accrete.Trainer.create({ ...spec, recovery: { strategy: "anneal", cooling: 2 } }));
      return out;
    }, SPEC);
    console.log(`  population (no spike): loss ${r.population.loss.toFixed(4)}, test accuracy ${r.population.accuracy.toFixed(3)}`);
    assert(r.population.accuracy >= 0.6, `population: ${JSON.stringify(r.population)}`);
    for (const strategy of ["last_good", "anneal"]) {
      const s = r[strategy];
      console.log(
        `  ${strategy}: ${s.rollbacks.length} rollback(s) (new lr ${s.rollbacks.map((b) => b.newLr).join(", ")}; ` +
          `extra steps ${s.rollbacks.map((b) => b.extraSteps).join(", ")}), ${s.steps} steps for the chunk, ` +
          `loss ${s.loss.toFixed(4)}, test accuracy ${s.accuracy.toFixed(3)}`,
      );
      assert(s.rollbacks.length >= 1, `${strategy}: the spike was not rolled back`);
      assert(s.rollbacks.every((b) => (b.strategy ?? "last_good") === strategy), `${strategy}: ${JSON.stringify(s.rollbacks)}`);
      assert(Number.isFinite(s.loss) && s.accuracy >= 0.6, `${strategy}: did not recover (${s.loss}, ${s.accuracy})`);
    }
    const expect = {
      gaveUp: ["diverged", "rolled back"],
      best: ["recovery.strategy", "no validation set", "anneal"],
      unknown: ["recovery.strategy", "unknown variant `retry`", "population"],
      badValue: ["recovery.cooling"],
    };
    for (const [name, parts] of Object.entries(expect)) {
      const got = r[name];
      assert(got && got.isError && got.name === "AccreteError", `${name}: ${JSON.stringify(got)}`);
      assert(got.code === (name === "gaveUp" ? "diverged" : "invalid_argument"), `${name}: code ${got.code}`);
      for (const p of parts) assert(got.message.includes(p), `${name}: "${got.message}" lacks "${p}"`);
      console.log(`  ${name} [${got.code}]: ${got.message}`);
    }
  },
};
