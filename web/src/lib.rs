//! Browser front end of accrete: a thin wasm-bindgen layer over the `accrete` library,
//! running on WebGPU. Build it with `bash web/build.sh`; the ES module lands in `web/pkg/`.
//!
//! ```js
//! import init, { adapterInfo, Trainer } from "./pkg/accrete_web.js";
//! await init();
//! console.log(await adapterInfo());
//! const t = await Trainer.create(JSON.stringify({
//!   seed: 0,
//!   model: { input: [2], layers: [{ type: "dense", units: 16, activation: "tanh" },
//!                                 { type: "dense", units: 2 }] },
//!   optimizer: { type: "adam", lr: 0.01 },
//!   train: { batch_size: 32, epochs: 1 },
//! }));
//! const r = await t.fitChunk(x, y, { epochs: 5, onProgress: (p) => console.log(p) });
//! const e = await t.evaluate(x, y);       // { loss, accuracy, confusion, ... }
//! const p = await t.predict(x);           // Float32Array, n × classes probabilities
//! const bytes = await t.save();           // Uint8Array: the native .safetensors checkpoint
//! const t2 = await Trainer.load(bytes);   // continues where t left off
//! ```
//!
//! `x` holds n samples of `t.inputLen` features each, row-major (a `Float32Array`, or any
//! array of numbers); `y` one class index per sample (a `Uint32Array`, or any array of
//! non-negative integers). Everything that touches the GPU returns a Promise; a second call
//! on a trainer while one is running rejects with a "busy" Error. Every failure rejects with
//! an `Error` whose message says what was wrong and what to do.
//!
//! All logic lives in the `accrete` crate: the spec is parsed and checked by
//! [`accrete::config::SessionSpec`], the arrays by [`accrete::config::dataset_for_model`],
//! training is [`accrete::train::Trainer::fit_chunk_with`], checkpoints are
//! [`accrete::checkpoint::Checkpoint`] bytes (the same files `accrete train` writes).

use accrete::checkpoint::Checkpoint;
use accrete::config::{check_fits, dataset_for_model, SessionSpec};
use accrete::data::{Dataset, Standardizer};
use accrete::train::{
    ChunkOptions, ChunkOutcome, Control, GpuDataset, Observer, Progress, Stats,
    Trainer as CoreTrainer,
};
use accrete::Gpu;
use js_sys::{Array, ArrayBuffer, Float32Array, Float64Array, Object, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

/// The version of this crate (and of the accrete workspace), e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Opens the preferred GPU adapter and resolves to a plain object describing it
/// (name, backend, device type, driver, limits, features).
///
/// Rejects with an `Error` whose message says what to do when WebGPU is unavailable
/// (no `navigator.gpu`, or no adapter) or the device cannot be created.
///
/// wgpu leaves the name and driver empty on WebGPU; they are filled from the browser's own
/// `GPUAdapter.info` (vendor, architecture, device, description), also given as `browser`.
#[wasm_bindgen(js_name = adapterInfo)]
pub async fn adapter_info() -> Result<JsValue, JsError> {
    let gpu = shared_gpu().await?;
    let mut out = serde_json::to_value(gpu.summary()).map_err(|e| JsError::new(&e.to_string()))?;
    if let Some(info) = browser_adapter_info().await {
        let field = |k: &str| {
            info.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let (vendor, arch, device, description) = (
            field("vendor"),
            field("architecture"),
            field("device"),
            field("description"),
        );
        let join = |parts: &[&String]| {
            parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if out["name"].as_str().is_none_or(str::is_empty) {
            let name = if description.is_empty() {
                join(&[&vendor, &arch, &device])
            } else {
                description.clone()
            };
            out["name"] = name.into();
        }
        if out["driver"].as_str().is_none_or(str::is_empty) {
            out["driver"] = join(&[&vendor, &arch]).into();
        }
        out["browser"] = info;
    }
    to_js(&out)
}

/// The browser's description of its preferred adapter (`GPUAdapter.info`), if it gives one.
async fn browser_adapter_info() -> Option<serde_json::Value> {
    let get = |o: &JsValue, k: &str| {
        Reflect::get(o, &k.into())
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let navigator = get(&js_sys::global().into(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request = get(&gpu, "requestAdapter")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise = request
        .call0(&gpu)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
    let mut out = serde_json::Map::new();
    for k in ["vendor", "architecture", "device", "description"] {
        if let Some(v) = get(&info, k).and_then(|v| v.as_string()) {
            out.insert(k.into(), v.into());
        }
    }
    Some(out.into())
}

thread_local! {
    /// One device for every trainer of the page (opening one per trainer costs time and
    /// memory, and tensors of different trainers never meet).
    static GPU: RefCell<Option<Gpu>> = const { RefCell::new(None) };
}

async fn shared_gpu() -> Result<Gpu, JsError> {
    install_panic_hook();
    if let Some(problem) = webgpu_problem() {
        return Err(JsError::new(problem));
    }
    if let Some(gpu) = GPU.with(|g| g.borrow().clone()) {
        return Ok(gpu);
    }
    let gpu = Gpu::new()
        .await
        .map_err(|e| JsError::new(&format!("could not open a WebGPU device: {e}")))?;
    GPU.with(|g| *g.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Called by fitChunk at report points (every `reportEvery` steps and at each epoch's end). */
export interface FitProgress {
  /** Epoch of this call, 1-based, and the epochs it runs. */
  epoch: number; epochs: number;
  /** Steps done in this epoch, of stepsInEpoch. */
  stepInEpoch: number; stepsInEpoch: number;
  /** Optimizer steps taken by the trainer so far. */
  step: number;
  /** Running mean loss and accuracy of the current epoch. */
  loss: number; accuracy: number; samplesPerSec: number;
  /** Chunks completed before this one. */
  chunk: number;
}
export interface FitOptions {
  /** Epochs over this chunk (default: the spec's train.epochs). */
  epochs?: number;
  /** Progress callback; throwing from it stops training and rejects fitChunk. */
  onProgress?: (p: FitProgress) => void;
  /** Steps between progress reports (default: about 10 per epoch; 0 = only at epoch ends). */
  reportEvery?: number;
}
export interface EpochStats { loss: number; accuracy: number; samples: number; seconds: number; samplesPerSec: number; }
export interface FitResult {
  /** The last epoch's mean training loss and accuracy. */
  loss: number; accuracy: number;
  /** Steps taken by this call, and the trainer's step and epoch counters after it. */
  steps: number; step: number; epoch: number;
  epochs: EpochStats[];
  seconds: number; samplesPerSec: number;
  /** True when stop() ended the call early (call fitChunk with the same data to go on). */
  stopped: boolean;
}
export interface ClassScores { class: number; precision: number; recall: number; f1: number; support: number; auc: number | null; }
export interface EvaluateResult {
  samples: number; loss: number; accuracy: number;
  /** confusion[true class][predicted class] = count. */
  confusion: number[][];
  perClass: ClassScores[]; macroF1: number; macroAuc: number | null;
}
"#;

/// What one trainer holds: the core trainer and the input preprocessing.
struct Session {
    trainer: CoreTrainer,
    standardizer: Option<Standardizer>,
    /// `data.standardize` was asked for and nothing has been trained yet: the first chunk
    /// fits the standardizer.
    fit_standardizer: bool,
    gpu: Gpu,
}

/// Values the getters read while an operation has the session.
#[derive(Default)]
struct Info {
    model_json: String,
    classes: usize,
    input_len: usize,
    step: u64,
    epoch: u64,
    history_json: String,
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
        info.history_json = serde_json::to_string(&t.history).unwrap_or_else(|_| "[]".into());
    }
}

/// The session, lent to one operation; given back (and the counters refreshed) when
/// dropped, also on errors.
struct Lease {
    shared: Rc<Shared>,
    session: Option<Session>,
}

impl Lease {
    fn take(shared: &Rc<Shared>, op: &'static str) -> Result<Lease, JsError> {
        if let Some(running) = shared.busy.get() {
            return Err(JsError::new(&format!(
                "{op}: the trainer is busy with {running}; wait for its Promise to settle before calling {op} (one operation at a time per trainer)"
            )));
        }
        let session =
            shared.session.borrow_mut().take().ok_or_else(|| {
                JsError::new(&format!("{op}: this trainer can no longer be used"))
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

fn err(e: accrete::Error) -> JsError {
    JsError::new(&e.to_string())
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
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "string | object")] spec: JsValue,
    ) -> Result<Trainer, JsError> {
        install_panic_hook();
        let text = spec_text(&spec)?;
        let spec = SessionSpec::from_json(&text, "Trainer.create: spec").map_err(err)?;
        let gpu = shared_gpu().await?;
        let mut trainer = CoreTrainer::new(
            &gpu,
            spec.model.clone(),
            spec.optimizer.clone(),
            spec.train.clone(),
            spec.seed,
        )
        .map_err(err)?;
        trainer.recovery = spec.recovery.clone();
        if let Some(r) = &spec.incremental.rehearsal {
            trainer.enable_rehearsal(r.clone());
        }
        check_device(&trainer, &gpu, "Trainer.create")?;
        Trainer::wrap(Session {
            trainer,
            standardizer: None,
            fit_standardizer: spec.data.standardize,
            gpu,
        })
    }

    /// A trainer that continues exactly where a checkpoint left off: bytes from `save()`, or
    /// a `.safetensors` checkpoint written by the native `accrete train` (a `Uint8Array` or
    /// `ArrayBuffer`). Its standardisation, if any, is applied to every input.
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    ) -> Result<Trainer, JsError> {
        install_panic_hook();
        let bytes = bytes_arg(&bytes)?;
        let ckpt = Checkpoint::from_bytes(&bytes, "Trainer.load: checkpoint").map_err(err)?;
        let standardizer = match &ckpt.meta.preprocessing {
            Some(p) => Some(
                Standardizer::from_json(p)
                    .map_err(|e| JsError::new(&format!("Trainer.load: checkpoint: {e}")))?,
            ),
            None => None,
        };
        let gpu = shared_gpu().await?;
        let trainer = CoreTrainer::from_checkpoint(&gpu, &ckpt)
            .map_err(|e| JsError::new(&format!("Trainer.load: checkpoint: {e}")))?;
        check_device(&trainer, &gpu, "Trainer.load")?;
        Trainer::wrap(Session {
            trainer,
            standardizer,
            fit_standardizer: false,
            gpu,
        })
    }

    fn wrap(s: Session) -> Result<Trainer, JsError> {
        let spec = &s.trainer.model.spec;
        let info = Info {
            model_json: serde_json::to_string(spec).map_err(|e| JsError::new(&e.to_string()))?,
            classes: spec.outputs().map_err(err)?,
            input_len: spec.input_len(),
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
            evaluate(&mut lease, x, y).await.map_err(Into::into)
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
            let probs = probabilities(s, &data).await?;
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
            let mut ckpt = s.trainer.checkpoint().await.map_err(err)?;
            ckpt.meta.preprocessing = s.standardizer.as_ref().map(|st| st.to_json());
            let bytes = ckpt.to_bytes().map_err(err)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// The model spec as JSON (`{"input": [...], "layers": [...]}`).
    #[wasm_bindgen(getter)]
    pub fn spec(&self) -> String {
        self.shared.info.borrow().model_json.clone()
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

    /// The metrics history as JSON: one object per epoch (chunk, epoch, step, train_loss,
    /// train_accuracy, samples_per_sec, lr), and rollbacks when recovery is on.
    #[wasm_bindgen(getter)]
    pub fn history(&self) -> String {
        self.shared.info.borrow().history_json.clone()
    }

    /// Whether an operation is running (its name), or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn busy(&self) -> Option<String> {
        self.shared.busy.get().map(String::from)
    }
}

/// Refuses a model whose training batch would not fit the device's buffers.
fn check_device(t: &CoreTrainer, gpu: &Gpu, op: &str) -> Result<(), JsError> {
    let rows = t.train.batch_size + t.rehearsal.as_ref().map_or(0, |r| r.spec.per_batch);
    check_fits(&t.model.spec, rows, gpu.max_binding_bytes())
        .map_err(|e| JsError::new(&format!("{op}: {e}; use a smaller model or batch_size")))
}

/// The spec argument as JSON text: a string, or a plain object (stringified).
fn spec_text(spec: &JsValue) -> Result<String, JsError> {
    if let Some(s) = spec.as_string() {
        return Ok(s);
    }
    if spec.is_object() && !Array::is_array(spec) {
        if let Ok(s) = js_sys::JSON::stringify(spec) {
            if let Some(s) = s.as_string() {
                return Ok(s);
            }
        }
    }
    Err(JsError::new(&format!(
        "Trainer.create: spec must be a JSON string (or a plain object) with at least a \"model\" key, e.g. {{\"model\":{{\"input\":[2],\"layers\":[{{\"type\":\"dense\",\"units\":2}}]}}}}; got {}",
        describe(spec)
    )))
}

/// A short description of a JS value's type for messages.
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    if v.is_null() {
        return "null".into();
    }
    if Array::is_array(v) {
        return "an Array".into();
    }
    if v.is_object() {
        let ctor = Reflect::get(v, &"constructor".into())
            .ok()
            .and_then(|c| Reflect::get(&c, &"name".into()).ok())
            .and_then(|n| n.as_string());
        return match ctor {
            Some(name) => format!("a {name}"),
            None => "an object".into(),
        };
    }
    v.js_typeof()
        .as_string()
        .unwrap_or_else(|| "a value".into())
}

fn is_bigint_array(v: &JsValue) -> bool {
    v.is_instance_of::<js_sys::BigInt64Array>() || v.is_instance_of::<js_sys::BigUint64Array>()
}

/// Typed arrays (not DataView, not BigInt arrays) and plain Arrays.
fn is_array_like(v: &JsValue) -> bool {
    Array::is_array(v)
        || (ArrayBuffer::is_view(v)
            && !v.is_instance_of::<js_sys::DataView>()
            && !is_bigint_array(v))
}

fn features_arg(x: &JsValue, op: &str) -> Result<Vec<f32>, JsError> {
    if let Some(a) = x.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    if is_array_like(x) {
        // Numbers convert exactly as JS converts them; anything else becomes NaN and is
        // refused by the finite check.
        return Ok(Float32Array::new(x).to_vec());
    }
    Err(JsError::new(&format!(
        "{op}: x must be a Float32Array (or an array of numbers) of n × features values, row-major; got {}",
        describe(x)
    )))
}

fn labels_arg(y: &JsValue, op: &str) -> Result<Vec<u32>, JsError> {
    if let Some(a) = y.dyn_ref::<js_sys::Uint32Array>() {
        return Ok(a.to_vec());
    }
    if is_array_like(y) {
        let v = Float64Array::new(y).to_vec();
        return v
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                if l >= 0.0 && l.fract() == 0.0 && l <= u32::MAX as f64 {
                    Ok(l as u32)
                } else {
                    Err(JsError::new(&format!(
                        "{op}: label of sample {i} is {l}; labels must be class indices 0, 1, 2, … (non-negative integers)"
                    )))
                }
            })
            .collect();
    }
    Err(JsError::new(&format!(
        "{op}: y must be a Uint32Array (or an array of non-negative integers) with one class index per sample; got {}",
        describe(y)
    )))
}

fn bytes_arg(b: &JsValue) -> Result<Vec<u8>, JsError> {
    if let Some(a) = b.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if b.is_instance_of::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    if ArrayBuffer::is_view(b) {
        // Another typed array or a DataView: its bytes.
        let get = |k: &str| Reflect::get(b, &k.into()).unwrap_or(JsValue::UNDEFINED);
        let at = |k: &str| get(k).as_f64().unwrap_or(0.0) as u32;
        let view = Uint8Array::new_with_byte_offset_and_length(
            &get("buffer"),
            at("byteOffset"),
            at("byteLength"),
        );
        return Ok(view.to_vec());
    }
    Err(JsError::new(&format!(
        "Trainer.load: bytes must be a Uint8Array or ArrayBuffer holding a .safetensors checkpoint (from save() or accrete train); got {}",
        describe(b)
    )))
}

/// A dataset for the session's model from the arrays, standardised when the session
/// standardises (fitting the standardizer on it when `fit` and none is fitted yet).
fn prepare(
    s: &mut Session,
    x: Vec<f32>,
    y: Option<Vec<u32>>,
    op: &str,
) -> Result<Dataset, JsError> {
    let mut data = dataset_for_model(&s.trainer.model.spec, x, y, op).map_err(err)?;
    if s.fit_standardizer && s.standardizer.is_none() {
        if op != "fitChunk" {
            return Err(JsError::new(&format!(
                "{op}: the spec asks for data.standardize, which is fitted on the first chunk trained; call fitChunk first"
            )));
        }
        s.standardizer = Some(Standardizer::fit(&data));
    }
    if let Some(st) = &s.standardizer {
        st.apply(&mut data)
            .map_err(|e| JsError::new(&format!("{op}: {e}")))?;
    }
    Ok(data)
}

/// A batch size for inference: up to 256 samples, halved until the widest activation fits.
fn inference_batch(s: &Session, n: usize) -> usize {
    let limit = s.gpu.max_binding_bytes();
    let mut b = n.clamp(1, 256);
    while b > 1 && check_fits(&s.trainer.model.spec, b, limit).is_err() {
        b /= 2;
    }
    b
}

async fn probabilities(s: &mut Session, data: &Dataset) -> Result<Vec<f32>, JsError> {
    let d = GpuDataset::upload(&s.gpu, data).map_err(err)?;
    let batch = inference_batch(s, data.len());
    s.trainer.predict(&d, batch).await.map_err(err)
}

async fn evaluate(lease: &mut Lease, x: JsValue, y: JsValue) -> Result<JsValue, JsError> {
    let s = lease.get();
    let xs = features_arg(&x, "evaluate")?;
    let ys = labels_arg(&y, "evaluate")?;
    let data = prepare(s, xs, Some(ys), "evaluate")?;
    let probs = probabilities(s, &data).await?;
    let classes = data.classes;
    let e = accrete::report::evaluate(&data.labels, &probs, classes).map_err(err)?;
    let confusion: Vec<Vec<u64>> = (0..classes)
        .map(|t| (0..classes).map(|p| e.confusion.get(t, p)).collect())
        .collect();
    to_js(&serde_json::json!({
        "samples": e.samples,
        "loss": e.loss,
        "accuracy": e.accuracy,
        "confusion": confusion,
        "perClass": e.per_class,
        "macroF1": e.macro_f1,
        "macroAuc": e.macro_auc,
    }))
}

/// The `fitChunk` options: `epochs`, `onProgress`, `reportEvery`.
struct FitOptions {
    epochs: Option<usize>,
    on_progress: Option<js_sys::Function>,
    report_every: Option<u64>,
}

fn fit_options(o: &JsValue) -> Result<FitOptions, JsError> {
    let mut out = FitOptions {
        epochs: None,
        on_progress: None,
        report_every: None,
    };
    if o.is_undefined() || o.is_null() {
        return Ok(out);
    }
    if !o.is_object() || Array::is_array(o) {
        return Err(JsError::new(&format!(
            "fitChunk: options must be an object like {{epochs: 5, onProgress: (p) => …, reportEvery: 10}}; got {}",
            describe(o)
        )));
    }
    let count = |key: &str, min: f64| -> Result<Option<f64>, JsError> {
        let v = Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            return Ok(None);
        }
        match v.as_f64() {
            Some(n) if n >= min && n.fract() == 0.0 && n <= 1e9 => Ok(Some(n)),
            _ => Err(JsError::new(&format!(
                "fitChunk: options.{key} must be an integer ≥ {min}; got {}",
                v.as_f64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| describe(&v))
            ))),
        }
    };
    for key in Object::keys(o.unchecked_ref::<Object>()).iter() {
        let k = key.as_string().unwrap_or_default();
        if !["epochs", "onProgress", "reportEvery"].contains(&k.as_str()) {
            return Err(JsError::new(&format!(
                "fitChunk: unknown option `{k}`; the options are epochs, onProgress and reportEvery"
            )));
        }
    }
    out.epochs = count("epochs", 1.0)?.map(|n| n as usize);
    out.report_every = count("reportEvery", 0.0)?.map(|n| n as u64);
    let f = Reflect::get(o, &"onProgress".into()).unwrap_or(JsValue::UNDEFINED);
    if !f.is_undefined() && !f.is_null() {
        out.on_progress = Some(f.dyn_into::<js_sys::Function>().map_err(|v| {
            JsError::new(&format!(
                "fitChunk: options.onProgress must be a function; got {}",
                describe(&v)
            ))
        })?);
    }
    Ok(out)
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
    let t = &mut s.trainer;
    let configured = t.train.epochs;
    let epochs = opts.epochs.unwrap_or(configured);
    // A chunk stopped under another epoch count may be past this one's end: start over.
    if t.cursor.epoch_in_chunk as usize >= epochs {
        t.cursor.epoch_in_chunk = 0;
        t.cursor.step_in_epoch = 0;
        t.cursor.metrics = None;
    }
    let steps_per_epoch = data.len().div_ceil(t.train.batch_size) as u64;
    let report_every = match opts.report_every {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(steps_per_epoch.div_ceil(10).max(1)),
    };
    let chunk_opts = ChunkOptions {
        // Without mid-epoch reports progress still comes at every epoch's end.
        report_every_steps: Some(report_every.unwrap_or(u64::MAX)),
        checkpoint_every_steps: None,
    };
    let mut obs = JsObserver {
        shared: &shared,
        callback: opts.on_progress,
        epochs,
        thrown: None,
        last: None,
        stats: Vec::new(),
    };
    let step0 = t.step;
    let start = accrete::clock::now_seconds();
    t.train.epochs = epochs;
    let outcome = t.fit_chunk_with(&data, &chunk_opts, &mut obs).await;
    t.train.epochs = configured;
    shared.stop.set(false);
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
    .map_err(Into::into)
}

/// Converts any serialisable value to a plain JS object (through JSON, which keeps the
/// dependency list short; the values here are small). Non-finite numbers become `null`.
fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| {
        JsError::new(&format!(
            "JSON.parse failed: {}",
            e.as_string().unwrap_or_else(|| format!("{e:?}"))
        ))
    })
}

const NO_WEBGPU: &str = "WebGPU is not available here (navigator.gpu is missing). Use a browser \
    with WebGPU enabled (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows, or Chromium with \
    --enable-unsafe-webgpu) and serve the page over https or from localhost.";

const NOT_WINDOW_OR_WORKER: &str = "WebGPU can only be used in a browser, from a page's main \
    thread or a dedicated worker (this global scope is neither a Window nor a worker).";

/// Why WebGPU cannot be used from this global scope, if it cannot. wgpu itself panics (an
/// opaque `unreachable` in wasm) when the global is neither a `Window` nor a worker scope.
fn webgpu_problem() -> Option<&'static str> {
    let global: JsValue = js_sys::global().into();
    let has = |target: &JsValue, key: &str| {
        js_sys::Reflect::get(target, &JsValue::from_str(key))
            .map(|v| !v.is_undefined() && !v.is_null())
            .unwrap_or(false)
    };
    if !has(&global, "Window") && !has(&global, "WorkerGlobalScope") {
        return Some(NOT_WINDOW_OR_WORKER);
    }
    let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator"))
        .unwrap_or(JsValue::UNDEFINED);
    if navigator.is_undefined() || navigator.is_null() || !has(&navigator, "gpu") {
        return Some(NO_WEBGPU);
    }
    None
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Sends Rust panics to `console.error` (wasm aborts with a bare `unreachable` otherwise).
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                console_error(&format!("accrete-web: {info}"))
            }));
        });
    }
}
