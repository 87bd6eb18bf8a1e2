//! Browser front end of accrete: a thin wasm-bindgen layer over the `accrete` library,
//! running on WebGPU. Build it with `bash web/build.sh`; the ES module lands in `web/pkg/`.
//!
//! ```js
//! import init, { adapterInfo, Trainer } from "./pkg/accrete_web.js";
//! await init();
//! console.log(await adapterInfo());
//! const t = await Trainer.create({        // a SessionSpec (or its JSON text)
//!   seed: 0,
//!   model: { input: [2], layers: [{ type: "dense", units: 16, activation: "tanh" },
//!                                 { type: "dense", units: 2 }] },
//!   optimizer: { type: "adam", lr: 0.01 },
//!   train: { batch_size: 32, epochs: 1 },
//! });
//! const r = await t.fitChunk(x, y, { epochs: 5, onProgress: (p) => console.log(p) });
//! const e = await t.evaluate(x, y);       // { loss, accuracy, confusion, ... }
//! const p = await t.predict(x);           // Float32Array, n × classes probabilities
//! const bytes = await t.save();           // Uint8Array: the native .safetensors checkpoint
//! const { x: fx, y: fy } = datasetFromSafetensors(fileBytes); // a features + labels file
//! const t2 = await Trainer.load(bytes);   // continues where t left off
//! t.setChunkEvaluation(tx, ty, { tasks: 5 }); // class-incremental: per-task accuracy at
//!                                         // each chunk's end, in t.history's chunk_end rows
//! ```
//!
//! `x` holds n samples of `t.inputLen` features each, row-major (a `Float32Array`, or any
//! array of numbers); `y` one class index per sample (a `Uint32Array`, or any array of
//! non-negative integers). Everything that touches the GPU returns a Promise; a second call
//! on a trainer while one is running rejects with a "busy" Error. Every failure rejects with
//! an `Error` named `"AccreteError"` with a `code` ([`errors`]; `ErrorCode` in the
//! TypeScript) and a message that says what was wrong and what to do. Results, progress
//! reports, the history and `adapterInfo()` are plain objects with camelCase keys; specs
//! keep the run configuration's keys (`batch_size`), so a spec reads as its TOML does.
//!
//! The TypeScript declarations (`accrete_web.d.ts`) type the spec from the Rust types
//! (`SessionSpec`, `ModelSpec`, `LayerSpec`, `OptimizerSpec`, `TrainSpec`, `RecoverySpec`, …,
//! derived by tsify-next under core's `ts` feature; `core/src/config/ts_types.rs` checks
//! that every serde field is declared).
//!
//! All logic lives in the `accrete` crate's session layer, which the CLI calls too: the spec
//! is parsed and checked by [`accrete::config::SessionSpec`], the session built by
//! [`accrete::session::Session::from_spec`] (the same device-fit rule), the arrays by
//! [`accrete::config::dataset_for_model`], training is
//! [`accrete::session::Session::fit_chunk`] with per-call epochs in
//! [`accrete::train::ChunkOptions`], inference batches follow
//! [`accrete::train::Trainer::inference_batch`], and checkpoints are
//! [`accrete::train::Checkpoint`] bytes (the same files `accrete train` writes). This crate
//! marshals JavaScript values ([`args`]) and holds the browser's environment ([`browser`]).

mod args;
mod browser;
mod continual;
mod datasets;
mod errors;
mod types;

use accrete::config::{dataset_for_model, SessionSpec};
use accrete::session::Session;
use accrete::train::{Checkpoint, ChunkOptions, ChunkOutcome, Control, Observer, Progress, Stats};
use args::{bytes_arg, camel_keys, features_arg, fit_options, labels_arg, spec_text, to_js};
pub use browser::adapter_info;
use browser::{backend_arg, install_panic_hook, shared_device};
pub use continual::task_groups;
pub use datasets::dataset_from_safetensors;
use errors::{error, BUSY, DISPOSED};
use js_sys::{Float32Array, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// The version of this crate (and of the accrete workspace), e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Values the getters read while an operation has the session.
#[derive(Default)]
struct Info {
    model_json: String,
    classes: usize,
    input_len: usize,
    /// `"gpu"` (WebGPU) or `"cpu"` (the CPU backend).
    backend: &'static str,
    step: u64,
    epoch: u64,
    /// The history with camelCase keys (the `history` getter), and as stored.
    history_json: String,
    history_native: String,
}

struct Shared {
    /// `None` while an operation runs (it holds the session).
    session: RefCell<Option<Session>>,
    /// The operation running, if any.
    busy: Cell<Option<&'static str>>,
    /// Set by `stop()`; honoured at the next report point of `fitChunk`.
    stop: Cell<bool>,
    info: RefCell<Info>,
}

impl Shared {
    fn refresh(&self, s: &Session) {
        let t = &s.trainer;
        let mut info = self.info.borrow_mut();
        info.step = t.step;
        info.epoch = t.epoch;
        let native = serde_json::to_value(&t.history).unwrap_or_default();
        info.history_native = native.to_string();
        info.history_json = camel_keys(native).to_string();
    }
}

/// The session, lent to one operation; given back (and the counters refreshed) when
/// dropped, also on errors.
struct Lease {
    shared: Rc<Shared>,
    session: Option<Session>,
}

impl Lease {
    fn take(shared: &Rc<Shared>, op: &'static str) -> Result<Lease, JsValue> {
        if let Some(running) = shared.busy.get() {
            return Err(error(BUSY, &format!(
                "{op}: the trainer is busy with {running}; wait for its Promise to settle before calling {op} (one operation at a time per trainer)"
            )));
        }
        let session = shared.session.borrow_mut().take().ok_or_else(|| {
            error(
                DISPOSED,
                &format!("{op}: this trainer can no longer be used"),
            )
        })?;
        shared.busy.set(Some(op));
        Ok(Lease {
            shared: shared.clone(),
            session: Some(session),
        })
    }

    fn get(&mut self) -> &mut Session {
        self.session.as_mut().expect("held until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.shared.refresh(&s);
            *self.shared.session.borrow_mut() = Some(s);
        }
        self.shared.busy.set(None);
    }
}

/// A training session on the GPU: a model, its optimizer state and counters. Create one with
/// `Trainer.create(spec)` or `Trainer.load(bytes)`.
#[wasm_bindgen]
pub struct Trainer {
    shared: Rc<Shared>,
}

fn err(e: accrete::Error) -> JsValue {
    errors::core(e)
}

/// Runs `f` as a Promise that rejects with an `Error`, or the value thrown by a callback.
fn promise<F>(f: F) -> js_sys::Promise
where
    F: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
{
    future_to_promise(f)
}

#[wasm_bindgen]
impl Trainer {
    /// A fresh model from a session spec: a JSON string (or a plain object) with the run
    /// configuration's `model` (required), `optimizer`, `train`, `seed`, `recovery`,
    /// `incremental.rehearsal` and `data.standardize`. Rejects naming the key at fault.
    ///
    /// `options.backend`: `"auto"` (default: a hardware WebGPU adapter, else the CPU backend,
    /// which also runs where the browser has no WebGPU), `"gpu"` or `"cpu"`; the trainer's
    /// `backend` getter says which it runs on.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "string | SessionSpec")] spec: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DeviceOptions")] options: JsValue,
    ) -> Result<Trainer, JsValue> {
        install_panic_hook();
        let text = spec_text(&spec)?;
        let spec = SessionSpec::from_json(&text, "Trainer.create: spec").map_err(err)?;
        let gpu = shared_device(backend_arg(&options, "Trainer.create")?).await?;
        let session = Session::from_spec(&gpu, &spec).map_err(|e| {
            errors::core_with(e, |m| {
                format!("Trainer.create: {m}; use a smaller model or batch_size")
            })
        })?;
        Trainer::wrap(session)
    }

    /// A trainer that continues exactly where a checkpoint left off: bytes from `save()`, or
    /// a `.safetensors` checkpoint written by the native `accrete train` (a `Uint8Array` or
    /// `ArrayBuffer`). Its standardisation, if any, is applied to every input.
    /// `options.backend` as in `Trainer.create` (a checkpoint from either backend loads on
    /// either).
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DeviceOptions")] options: JsValue,
    ) -> Result<Trainer, JsValue> {
        install_panic_hook();
        let bytes = bytes_arg(&bytes)?;
        let ckpt = Checkpoint::from_bytes(&bytes, "Trainer.load: checkpoint").map_err(err)?;
        let gpu = shared_device(backend_arg(&options, "Trainer.load")?).await?;
        let session = Session::from_checkpoint(&gpu, &ckpt)
            .map_err(|e| errors::core_with(e, |m| format!("Trainer.load: checkpoint: {m}")))?;
        Trainer::wrap(session)
    }

    fn wrap(s: Session) -> Result<Trainer, JsValue> {
        let spec = &s.trainer.model.spec;
        let info = Info {
            model_json: serde_json::to_string(spec)
                .map_err(|e| error("internal", &e.to_string()))?,
            classes: spec.outputs().map_err(err)?,
            input_len: spec.input_len(),
            backend: if s.trainer.model.gpu().is_cpu() {
                "cpu"
            } else {
                "gpu"
            },
            ..Info::default()
        };
        let shared = Rc::new(Shared {
            session: RefCell::new(None),
            busy: Cell::new(None),
            stop: Cell::new(false),
            info: RefCell::new(info),
        });
        shared.refresh(&s);
        *shared.session.borrow_mut() = Some(s);
        Ok(Trainer { shared })
    }

    /// Trains on one chunk of data, continuing from the current weights, optimizer moments
    /// and counters, for `options.epochs` epochs (default: the spec's `train.epochs`).
    /// `options.onProgress(p)` is called at report points. Resolves to the last epoch's loss
    /// and accuracy, the steps taken and per-epoch statistics.
    #[wasm_bindgen(js_name = fitChunk, unchecked_return_type = "Promise<FitResult>")]
    pub fn fit_chunk(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | number[]")] x: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint32Array | number[]")] y: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "FitOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let lease = Lease::take(&self.shared, "fitChunk");
        if lease.is_ok() {
            // Cleared now, not when the future starts: a stop() right after this call counts.
            self.shared.stop.set(false);
        }
        promise(async move {
            let mut lease = lease?;
            fit(&mut lease, x, y, options).await
        })
    }

    /// Asks a running `fitChunk` to stop at its next report point; it then resolves with
    /// `stopped: true` and calling it again with the same data continues exactly. Returns
    /// whether a `fitChunk` was running.
    pub fn stop(&self) -> bool {
        let running = self.shared.busy.get() == Some("fitChunk");
        if running {
            self.shared.stop.set(true);
        }
        running
    }

    /// Loss, accuracy, confusion matrix and per-class scores on labelled data (dropout off),
    /// computed as the native `accrete eval` computes them.
    #[wasm_bindgen(unchecked_return_type = "Promise<EvaluateResult>")]
    pub fn evaluate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | number[]")] x: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint32Array | number[]")] y: JsValue,
    ) -> js_sys::Promise {
        let lease = Lease::take(&self.shared, "evaluate");
        promise(async move {
            let mut lease = lease?;
            evaluate(&mut lease, x, y).await
        })
    }

    /// Class probabilities for every sample: a `Float32Array` of n × classes values.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn predict(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | number[]")] x: JsValue,
    ) -> js_sys::Promise {
        let lease = Lease::take(&self.shared, "predict");
        promise(async move {
            let mut lease = lease?;
            let s = lease.get();
            let xs = features_arg(&x, "predict")?;
            let data = prepare(s, xs, None, "predict")?;
            let probs = s.predict(&data).await.map_err(err)?;
            Ok(Float32Array::from(probs.as_slice()).into())
        })
    }

    /// A checkpoint of everything needed to continue exactly: the `.safetensors` bytes the
    /// native CLI writes and reads (`accrete eval`, `accrete predict`, `[finetune] from`).
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn save(&self) -> js_sys::Promise {
        let lease = Lease::take(&self.shared, "save");
        promise(async move {
            let mut lease = lease?;
            let s = lease.get();
            let bytes = s
                .checkpoint()
                .await
                .and_then(|c| c.to_bytes())
                .map_err(err)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// The model spec (`{input: [...], layers: [...]}`), with the spec's own keys (as
    /// `Trainer.create` takes them), a fresh object on every read.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelSpec")]
    pub fn spec(&self) -> JsValue {
        js_sys::JSON::parse(&self.shared.info.borrow().model_json).unwrap_or(JsValue::NULL)
    }

    /// The model spec as a JSON string (the `spec` getter's value, serialised).
    #[wasm_bindgen(getter, js_name = specJson)]
    pub fn spec_json(&self) -> String {
        self.shared.info.borrow().model_json.clone()
    }

    /// Where this trainer's kernels run: `"gpu"` (WebGPU) or `"cpu"` (the CPU backend).
    #[wasm_bindgen(getter, unchecked_return_type = "\"gpu\" | \"cpu\"")]
    pub fn backend(&self) -> String {
        self.shared.info.borrow().backend.to_string()
    }

    /// Number of classes (outputs of the last layer).
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> u32 {
        self.shared.info.borrow().classes as u32
    }

    /// Features per sample (the product of the model's input shape).
    #[wasm_bindgen(getter, js_name = inputLen)]
    pub fn input_len(&self) -> u32 {
        self.shared.info.borrow().input_len as u32
    }

    /// Optimizer steps taken so far (as of the last finished operation).
    #[wasm_bindgen(getter)]
    pub fn step(&self) -> f64 {
        self.shared.info.borrow().step as f64
    }

    /// Epochs completed so far (as of the last finished operation).
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> f64 {
        self.shared.info.borrow().epoch as f64
    }

    /// The history: one object per event (camelCase keys), tagged by `event` — `"epoch"`
    /// (chunk, epoch, epochInChunk, step, trainLoss, trainAccuracy, valLoss, valAccuracy,
    /// lr, samplesPerSec), `"rollback"`, `"early_stop"`, `"early_stop_chunk"`,
    /// `"hyper_change"` (a `fitChunk` option that changed lr or epochs). A fresh array on
    /// every read.
    #[wasm_bindgen(getter, unchecked_return_type = "HistoryEvent[]")]
    pub fn history(&self) -> JsValue {
        js_sys::JSON::parse(&self.shared.info.borrow().history_json).unwrap_or(JsValue::NULL)
    }

    /// The history as the checkpoint stores it: a JSON string with the native `snake_case`
    /// keys (`metrics.jsonl`'s rows).
    #[wasm_bindgen(getter, js_name = historyJson)]
    pub fn history_json(&self) -> String {
        self.shared.info.borrow().history_native.clone()
    }

    /// Whether an operation is running (its name), or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn busy(&self) -> Option<String> {
        self.shared.busy.get().map(String::from)
    }
}

/// A dataset for the session's model from the arrays, prepared as the session prepares
/// inputs (standardised when it standardises; `fitChunk` fits a pending standardizer).
fn prepare(
    s: &mut Session,
    x: Vec<f32>,
    y: Option<Vec<u32>>,
    op: &str,
) -> Result<accrete::data::Dataset, JsValue> {
    let data = dataset_for_model(&s.trainer.model.spec, x, y, op).map_err(err)?;
    s.prepare(data, op == "fitChunk", op).map_err(err)
}

async fn evaluate(lease: &mut Lease, x: JsValue, y: JsValue) -> Result<JsValue, JsValue> {
    let s = lease.get();
    let xs = features_arg(&x, "evaluate")?;
    let ys = labels_arg(&y, "evaluate")?;
    let data = prepare(s, xs, Some(ys), "evaluate")?;
    let classes = data.classes;
    let e = s.evaluate(&data).await.map_err(err)?;
    let confusion: Vec<Vec<u64>> = (0..classes)
        .map(|t| (0..classes).map(|p| e.confusion.get(t, p)).collect())
        .collect();
    to_js(&camel_keys(serde_json::json!({
        "samples": e.samples,
        "loss": e.loss,
        "accuracy": e.accuracy,
        "confusion": confusion,
        "perClass": e.per_class,
        "macroF1": e.macro_f1,
        "macroAuc": e.macro_auc,
    })))
}

/// Sends progress to the JS callback and honours `stop()`.
struct JsObserver<'a> {
    shared: &'a Shared,
    callback: Option<js_sys::Function>,
    epochs: usize,
    /// What the callback threw (training stops, the Promise rejects with it).
    thrown: Option<JsValue>,
    last: Option<Progress>,
    stats: Vec<Stats>,
}

impl Observer for JsObserver<'_> {
    fn progress(&mut self, p: &Progress) -> Control {
        self.last = Some(*p);
        if let Some(f) = &self.callback {
            let obj = to_js(&serde_json::json!({
                "epoch": p.epoch_in_chunk + 1,
                "epochs": self.epochs,
                "stepInEpoch": p.step_in_epoch,
                "stepsInEpoch": p.steps_in_epoch,
                "step": p.global_step,
                "loss": p.loss,
                "accuracy": p.accuracy,
                "samplesPerSec": p.samples_per_sec,
                "chunk": p.chunk,
            }));
            if let Ok(obj) = obj {
                if let Err(e) = f.call1(&JsValue::NULL, &obj) {
                    self.thrown = Some(e);
                    return Control::Stop;
                }
            }
        }
        if self.shared.stop.get() {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn epoch_end(&mut self, stats: &Stats) {
        self.stats.push(*stats);
    }
}

async fn fit(
    lease: &mut Lease,
    x: JsValue,
    y: JsValue,
    options: JsValue,
) -> Result<JsValue, JsValue> {
    let shared = lease.shared.clone();
    let s = lease.get();
    let opts = fit_options(&options)?;
    let xs = features_arg(&x, "fitChunk")?;
    let ys = labels_arg(&y, "fitChunk")?;
    let data = prepare(s, xs, Some(ys), "fitChunk")?;
    let epochs = opts.epochs.unwrap_or(s.trainer.train.epochs);
    let steps_per_epoch = s.trainer.train.steps_per_epoch(data.len());
    let report_every = match opts.report_every {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(steps_per_epoch.div_ceil(10).max(1)),
    };
    let chunk_opts = ChunkOptions {
        // Without mid-epoch reports progress still comes at every epoch's end.
        report_every_steps: Some(report_every.unwrap_or(u64::MAX)),
        checkpoint_every_steps: None,
        epochs: Some(epochs),
        lr: opts.lr,
    };
    let mut obs = JsObserver {
        shared: &shared,
        callback: opts.on_progress,
        epochs,
        thrown: None,
        last: None,
        stats: Vec::new(),
    };
    let step0 = s.trainer.step;
    let start = accrete::clock::now_seconds();
    let outcome = s.fit_chunk(&data, &chunk_opts, &mut obs).await;
    shared.stop.set(false);
    let t = &s.trainer;
    let outcome = outcome.map_err(err)?;
    if let Some(thrown) = obs.thrown {
        return Err(thrown);
    }
    let seconds = accrete::clock::now_seconds() - start;
    let stopped = matches!(outcome, ChunkOutcome::Stopped);
    let (loss, accuracy) = match (obs.stats.last(), &obs.last) {
        (Some(st), _) if !stopped => (st.loss, st.accuracy),
        (_, Some(p)) => (p.loss, p.accuracy),
        (Some(st), None) => (st.loss, st.accuracy),
        (None, None) => (f64::NAN, f64::NAN),
    };
    let samples: usize = obs.stats.iter().map(|s| s.samples).sum();
    let epochs_json: Vec<serde_json::Value> = obs
        .stats
        .iter()
        .map(|s| {
            serde_json::json!({
                "loss": s.loss,
                "accuracy": s.accuracy,
                "samples": s.samples,
                "seconds": s.seconds,
                "samplesPerSec": s.samples_per_second(),
            })
        })
        .collect();
    to_js(&serde_json::json!({
        "loss": loss,
        "accuracy": accuracy,
        "steps": t.step - step0,
        "step": t.step,
        "epoch": t.epoch,
        "epochs": epochs_json,
        "seconds": seconds,
        "samplesPerSec": samples as f64 / seconds.max(1e-9),
        "stopped": stopped,
    }))
}
