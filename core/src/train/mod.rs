//! Training on the GPU: whole epochs recorded as repeated step programs with no host work or
//! read-back inside the step loop.
//!
//! One step = gather batch (by the epoch's shuffled index buffer) → forward → loss →
//! accumulate metrics → backward → (clip) → update → advance the step counter. Every
//! per-step value lives on the GPU: the batch offset and schedule row come from the step
//! counter, dropout masks are keyed by it, and loss/accuracy accumulate in a small buffer
//! read once per report point.

use crate::checkpoint::{
    state_names, Checkpoint, Cursor, Meta, NamedTensor, RehearsalState, FORMAT_VERSION,
};
use crate::clock;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Gpu, Tensor};
use crate::kernels::elementwise::scale_into;
use crate::kernels::gather::{gather_stepped_into, PAD_INDEX};
use crate::kernels::loss::{distill_into, mse_masked_into, softmax_xent_into, GradScale};
use crate::kernels::matmul::Precision;
use crate::kernels::optim::{schedule_row, Rule};
use crate::kernels::rng::{words, RngKey};
use crate::kernels::softmax::softmax_into;
use crate::kernels::{loss_scale, metrics, step};
use crate::nn::{Graph, Model, ModelSpec};
use crate::optim::{LrState, OptimizerSpec};
use serde::{Deserialize, Serialize};

mod distill;
mod early_stop;
mod incremental;
mod mixed;
mod observe;
mod recovery;
mod transfer;
mod update;
pub use distill::DistillSpec;
use early_stop::BEST_PREFIX;
pub use early_stop::{EarlyStopping, FitReport, Monitor};
pub use incremental::{RehearsalSpec, Reservoir};
pub use mixed::{LossScaleState, MixedPrecision};
pub(crate) use observe::EpochOutcome;
pub use observe::{ChunkOptions, ChunkOutcome, Control, NoObserver, Observer, Progress};
pub use recovery::RecoverySpec;
pub use transfer::TransferReport;
pub use update::StepKernels;

/// Stream offset separating the epoch shuffles from other uses of the seed.
const SHUFFLE_STREAM: u32 = 0x3000;
/// Steps recorded into one command buffer (bounds encoder memory; no read-back between).
const STEPS_PER_SUBMIT: usize = 64;

fn default_batch() -> usize {
    128
}
fn default_epochs() -> usize {
    1
}

/// Loss functions for classification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Softmax cross-entropy on class labels (`"softmax_cross_entropy"`).
    #[default]
    SoftmaxCrossEntropy,
    /// Mean squared error on real-valued regression targets (`"mse"`); the model's outputs
    /// are the predictions (no softmax) and there is no accuracy.
    Mse,
}

/// How to train: batch size, epochs per chunk, loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Samples per step (default 128).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Epochs per chunk of data (default 1).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Loss (default softmax_cross_entropy).
    #[serde(default)]
    pub loss: LossKind,
    /// Label smoothing ε for cross-entropy (default 0).
    #[serde(default)]
    pub label_smoothing: f32,
    /// Stop a chunk's epochs early when the validation metric stops improving (needs a
    /// validation set: [`Trainer::set_validation`]; the CLI's `data.validation_fraction`),
    /// e.g. `early_stopping = { patience = 3, monitor = "val_accuracy" }` (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Mixed precision: GEMM operands in f16 with f32 sums, f32 master weights, dynamic loss
    /// scaling ([`MixedPrecision`]; needs `SHADER_F16`). In TOML `mixed_precision = true` or
    /// `mixed_precision = { init_scale = 65536, growth_interval = 2000 }` (default: off, f32).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "mixed::deserialize_opt"
    )]
    pub mixed_precision: Option<MixedPrecision>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch_size: default_batch(),
            epochs: default_epochs(),
            loss: LossKind::default(),
            label_smoothing: 0.0,
            early_stopping: None,
            mixed_precision: None,
        }
    }
}

/// A dataset uploaded to the GPU: features [n, ...sample], labels [n] and, for regression,
/// targets [n, target_dim].
pub struct GpuDataset {
    pub features: Tensor,
    pub labels: Tensor,
    pub targets: Option<Tensor>,
    pub len: usize,
}

impl GpuDataset {
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<GpuDataset> {
        let mut shape = vec![data.len()];
        shape.extend_from_slice(&data.sample_shape);
        let targets = match data.target_dim {
            0 => None,
            t => Some(Tensor::from_f32(gpu, &[data.len(), t], &data.targets)?),
        };
        Ok(GpuDataset {
            features: Tensor::from_f32(gpu, &shape, &data.features)?,
            labels: Tensor::from_u32(gpu, &[data.len()], &data.labels)?,
            targets,
            len: data.len(),
        })
    }
}

/// Loss and accuracy over a pass.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub loss: f64,
    pub accuracy: f64,
    pub samples: usize,
    pub seconds: f64,
    /// Host time spent recording the steps and finishing their command buffers (the
    /// per-step CPU cost that whole-epoch recording keeps small; not the queue submission,
    /// which may wait for the GPU), in seconds; 0 for evaluation.
    #[serde(default)]
    pub host_seconds: f64,
}

impl Stats {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-9)
    }
}

/// The step program for one batch size.
struct Program {
    graph: Graph,
    /// The teacher's forward pass on the same batch, when distilling.
    teacher: Option<Graph>,
    /// [B] labels of the current batch.
    labels: Tensor,
    /// [B, outputs] regression targets of the current batch (loss = mse).
    targets: Option<Tensor>,
    step: Vec<Dispatch>,
}

/// A model with its optimizer and the GPU-side step machinery.
pub struct Trainer {
    pub model: Model,
    pub optimizer: OptimizerSpec,
    pub train: TrainSpec,
    pub seed: u64,
    /// Steps taken so far (Adam's t counts from here + 1).
    pub step: u64,
    /// Epochs completed so far.
    pub epoch: u64,
    pub lr_state: LrState,
    /// Where an incremental run is in its data (saved in checkpoints).
    pub cursor: Cursor,
    /// Metrics history, one JSON object per report point (saved in checkpoints).
    pub history: Vec<serde_json::Value>,
    /// Rehearsal buffer of earlier chunks, when enabled.
    pub rehearsal: Option<Reservoir>,
    /// Divergence recovery policy (off when `None`).
    pub recovery: Option<RecoverySpec>,
    /// Loss of the last epoch the recovery policy accepted.
    pub last_good_loss: Option<f64>,
    /// Evaluated after every epoch of a chunk when set: feeds reduce-on-plateau and early
    /// stopping, and adds val_loss / val_accuracy to the history.
    validation: Option<GpuDataset>,
    /// Weights and optimizer state of this chunk's best epoch so far (early stopping with
    /// restore_best); saved in checkpoints as `early_stopping.best.*`.
    pub(crate) best_snapshot: Option<Vec<NamedTensor>>,
    /// Fault injection for drills and tests: multiply the next `.1` steps' learning rate by `.0`.
    lr_spike: Option<(f32, u64)>,
    /// Set when the observer asked to stop at an epoch's last report point.
    stop_requested: bool,
    /// Teacher model and settings when distilling.
    teacher: Option<(Model, DistillSpec)>,
    rule: Rule,
    /// Which kernels the step programs are built from.
    kernels: StepKernels,
    /// Dispatches in the last training step list built (0 before the first epoch).
    step_dispatches: usize,
    counter: Tensor,
    metrics: Tensor,
    /// Mixed precision's settings, fixed when the trainer is made (`train.mixed_precision`
    /// then; changing that field later has no effect), and the loss scaler's GPU state.
    mixed: Option<(MixedPrecision, Tensor)>,
    program: Option<Program>,
    eval_program: Option<Program>,
}

impl Trainer {
    /// A fresh model from `spec` with seeded weights and zeroed optimizer state.
    pub fn new(
        gpu: &Gpu,
        spec: ModelSpec,
        optimizer: OptimizerSpec,
        train: TrainSpec,
        seed: u64,
    ) -> Result<Trainer> {
        let rule = optimizer.rule()?;
        if train.batch_size == 0 {
            return Err(Error::invalid("train.batch_size", "must be ≥ 1"));
        }
        if !(0.0..1.0).contains(&train.label_smoothing) {
            return Err(Error::invalid(
                "train.label_smoothing",
                format!("{} must be in [0, 1)", train.label_smoothing),
            ));
        }
        let layers = spec.layers.len();
        for i in 0..layers {
            optimizer.lr_scale(i, layers)?;
        }
        let mixed = match &train.mixed_precision {
            Some(mp) => {
                mp.validate(gpu)?;
                Some((mp.clone(), loss_scale::scaler(gpu, mp.init_scale, 0, 0)?))
            }
            None => None,
        };
        let mut model = Model::new(gpu, spec, seed)?;
        model.reset_state(rule.state_count())?;
        Ok(Trainer {
            model,
            optimizer,
            train,
            seed,
            step: 0,
            epoch: 0,
            lr_state: LrState::default(),
            cursor: Cursor::default(),
            history: Vec::new(),
            rehearsal: None,
            recovery: None,
            last_good_loss: None,
            validation: None,
            best_snapshot: None,
            lr_spike: None,
            stop_requested: false,
            teacher: None,
            rule,
            kernels: StepKernels::default(),
            step_dispatches: 0,
            counter: step::counter(gpu, 0)?,
            metrics: Tensor::zeros(gpu, &[4])?,
            mixed,
            program: None,
            eval_program: None,
        })
    }

    pub fn gpu(&self) -> &Gpu {
        self.model.gpu()
    }

    /// The precision of the GEMMs: f16 operands under mixed precision, else f32.
    pub fn precision(&self) -> Precision {
        if self.mixed.is_some() {
            Precision::F16
        } else {
            Precision::F32
        }
    }

    /// The loss scaler's current state (mixed precision only).
    pub async fn loss_scale(&self) -> Result<Option<LossScaleState>> {
        match &self.mixed {
            Some((_, s)) => Ok(Some(LossScaleState::from_words(&s.read_u32().await?))),
            None => Ok(None),
        }
    }

    /// The kernels the step programs are built from.
    pub fn step_kernels(&self) -> StepKernels {
        self.kernels
    }

    /// Chooses the kernels of the step programs (rebuilt at the next epoch). Every choice
    /// trains the same model; the per-tensor update is bit-identical to the multi-tensor one.
    pub fn set_step_kernels(&mut self, kernels: StepKernels) {
        if kernels != self.kernels {
            self.kernels = kernels;
            self.program = None;
            self.eval_program = None;
        }
    }

    /// Dispatches (= bind groups set) per training step in the last epoch's step list:
    /// gathers, forward, loss, metrics, backward, clipping, updates and the counter advance.
    pub fn dispatches_per_step(&self) -> usize {
        self.step_dispatches
    }

    /// One training step's dispatches over `data`, as an epoch records them, each with its
    /// phase (gather, forward, teacher, loss, metrics, backward, clip, update, advance), for
    /// per-kernel profiling (`accrete bench train --profile`). The list may be recorded
    /// `steps` times from now: its batches walk `data` in order (wrapping) at the base
    /// learning rate. Running it trains this trainer, so profile a throwaway one.
    pub async fn profile_step(
        &mut self,
        data: &GpuDataset,
        steps: usize,
    ) -> Result<Vec<(&'static str, Dispatch)>> {
        self.check_data(data)?;
        let b = self.train.batch_size;
        if self.program.as_ref().is_none_or(|p| p.graph.batch != b) {
            self.tune_program(b, true).await;
            self.program = Some(self.build_program(b, true)?);
        }
        let (steps, n) = (steps.max(1), data.len.max(1));
        let idx: Vec<u32> = (0..steps * b).map(|i| (i % n) as u32).collect();
        let idx = Tensor::from_u32(self.gpu(), &[steps * b], &idx)?;
        let table: Vec<f32> = (0..steps as u64)
            .flat_map(|k| schedule_row(&self.rule, self.optimizer.lr, self.step + k + 1))
            .collect();
        let sched = Tensor::from_f32(self.gpu(), &[steps, 4], &table)?;
        step::reset(&self.counter, self.step)?;
        let list = self.step_list(data, b, &idx, &sched)?;
        self.step_dispatches = list.len();
        // The list is [gathers | program step | updates | advance]; the program step is
        // [forward | teacher forward | loss | metrics | backward | clip]. Under mixed
        // precision the loss-scaling dispatches (scale after the loss, unscale after the
        // backward, the scale update after the updates) are named by their label.
        let is_ls = |d: &Dispatch| d.label().starts_with("loss_scale::");
        let p = self.program.as_ref().expect("built above");
        let ls_step = p.step.iter().filter(|d| is_ls(d)).count();
        let ls_after = list.iter().filter(|d| is_ls(d)).count() - ls_step;
        let (fwd, bwd) = (p.graph.forward.len(), p.graph.backward.len());
        let teacher = p.teacher.as_ref().map_or(0, |t| t.forward.len());
        let gathers = list
            .iter()
            .take_while(|d| d.label().starts_with("gather::"))
            .count();
        let clip = p
            .step
            .len()
            .saturating_sub(fwd + teacher + 2 + bwd + ls_step);
        let updates = list
            .len()
            .saturating_sub(gathers + p.step.len() + 1 + ls_after);
        let phases = [
            ("gather", gathers),
            ("forward", fwd),
            ("teacher", teacher),
            ("loss", 1),
            ("metrics", 1),
            ("backward", bwd),
            ("clip", clip),
            ("update", updates),
            ("advance", 1),
        ];
        let mut names = phases
            .iter()
            .flat_map(|&(name, count)| std::iter::repeat_n(name, count));
        Ok(list
            .into_iter()
            .map(|d| {
                let phase = if is_ls(&d) {
                    "loss_scale"
                } else {
                    names.next().unwrap_or("step")
                };
                (phase, d)
            })
            .collect())
    }

    pub(crate) fn check_data(&self, data: &GpuDataset) -> Result<()> {
        let want = &self.model.spec.input;
        if &data.features.shape()[1..] != want.as_slice()
            && data.features.len() != data.len * self.model.spec.input_len()
        {
            return Err(Error::shape(
                "training data",
                format!(
                    "samples are {:?} but the model expects {want:?}",
                    &data.features.shape()[1..]
                ),
            ));
        }
        let outputs = self.model.spec.outputs()?;
        match (self.train.loss, &data.targets) {
            (LossKind::SoftmaxCrossEntropy, Some(_)) => {
                return Err(Error::data(
                    "training data",
                    "the data has regression targets but train.loss is softmax_cross_entropy; set train.loss = \"mse\"",
                ))
            }
            (LossKind::Mse, None) => {
                return Err(Error::data(
                    "training data",
                    "train.loss = \"mse\" needs regression targets (Dataset::regression); for class labels use softmax_cross_entropy",
                ))
            }
            (LossKind::Mse, Some(t)) if t.shape().get(1) != Some(&outputs) => {
                return Err(Error::shape(
                    "training data",
                    format!(
                        "targets have {} values per sample but the model has {outputs} outputs",
                        t.shape().get(1).copied().unwrap_or(0)
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The autotuning pass for the `batch` program, awaited before [`Self::build_program`]:
    /// the GEMMs of the model's graph and of a teacher's forward (nothing unless autotuning
    /// is on; see [`crate::nn::graph::tune_gemms`]).
    async fn tune_program(&self, batch: usize, train: bool) {
        let conv = self.kernels.conv;
        crate::nn::graph::tune_gemms(&self.model, batch, train, conv, self.precision()).await;
        if let (Some((teacher, _)), true) = (&self.teacher, train) {
            crate::nn::graph::tune_gemms(teacher, batch, false, conv, Precision::F32).await;
        }
    }

    fn build_program(&self, batch: usize, train: bool) -> Result<Program> {
        let gpu = self.gpu();
        let graph = Graph::build(
            &self.model,
            batch,
            train,
            &self.counter,
            self.seed,
            self.kernels.conv,
            self.precision(),
        )?;
        let labels = Tensor::uninit(gpu, &[batch], DType::U32)?;
        let loss_rows = Tensor::uninit(gpu, &[batch], DType::F32)?;
        let logits = graph.output()?;
        let dlogits = match graph.output_grad() {
            Some(g) => g,
            None => Tensor::uninit(gpu, logits.shape(), DType::F32)?,
        };
        let mut step = Vec::new();
        // Gathers are appended by the caller (they depend on the dataset); the rest is fixed.
        step.extend(graph.forward.iter().cloned());
        let mut targets = None;
        let teacher = match (&self.teacher, train) {
            (Some(_), true) if self.train.loss == LossKind::Mse => {
                return Err(Error::invalid(
                    "distillation",
                    "distilling needs train.loss = softmax_cross_entropy (soft targets are class probabilities)",
                ))
            }
            (Some((model, spec)), true) => {
                let tg =
                    Graph::with_conv(model, batch, false, &self.counter, self.seed, self.kernels.conv)?;
                step.extend(tg.forward.iter().cloned());
                let t_logits = tg.output()?;
                step.push(distill_into(
                    &logits,
                    &t_logits,
                    &labels,
                    &loss_rows,
                    &dlogits,
                    spec.alpha,
                    spec.temperature,
                )?);
                Some(tg)
            }
            _ if self.train.loss == LossKind::Mse => {
                let t = Tensor::uninit(gpu, logits.shape(), DType::F32)?;
                step.push(mse_masked_into(&logits, &t, &labels, &loss_rows, &dlogits)?);
                targets = Some(t);
                None
            }
            _ => {
                step.push(softmax_xent_into(
                    &logits,
                    &labels,
                    &loss_rows,
                    &dlogits,
                    self.train.label_smoothing,
                    GradScale::MeanOverValid,
                )?);
                None
            }
        };
        step.push(match self.train.loss {
            LossKind::Mse => metrics::regress_labelled_into(&loss_rows, &labels, &self.metrics)?,
            LossKind::SoftmaxCrossEntropy => {
                metrics::classify_into(&loss_rows, &logits, &labels, &self.metrics)?
            }
        });
        if train {
            if let Some((_, scaler)) = &self.mixed {
                step.push(loss_scale::scale_into(&dlogits, scaler)?);
            }
            step.extend(graph.backward.iter().cloned());
            if let Some((_, scaler)) = &self.mixed {
                step.extend(update::unscale_dispatches(
                    &self.model,
                    &self.optimizer,
                    scaler,
                    &self.counter,
                )?);
            }
            step.extend(update::clip_dispatches(
                &self.model,
                &self.optimizer,
                &self.kernels,
            )?);
        }
        Ok(Program {
            graph,
            teacher,
            labels,
            targets,
            step,
        })
    }

    /// Index buffer for one epoch: a seeded permutation (Fisher–Yates on Philox draws, the
    /// same on every platform) padded with PAD_INDEX to whole batches.
    pub(crate) fn epoch_indices(&self, n: usize, batch: usize, shuffle: bool) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        if shuffle {
            let key = RngKey {
                seed: self.seed,
                stream: SHUFFLE_STREAM,
                offset: self.epoch as u32,
            };
            for i in (1..n).rev() {
                let w = words(key, i as u32);
                let r = ((w[0] as u64) << 32 | w[1] as u64) % (i as u64 + 1);
                idx.swap(i, r as usize);
            }
        }
        idx.resize(n.div_ceil(batch) * batch, PAD_INDEX);
        idx
    }

    /// Trains one epoch on `data`; returns its mean training loss and accuracy (computed on
    /// the GPU during the epoch, read once at the end).
    pub async fn fit_epoch(&mut self, data: &GpuDataset) -> Result<Stats> {
        self.check_data(data)?;
        if data.len == 0 {
            return Err(Error::data("training data", "the chunk is empty"));
        }
        let b = self.train.batch_size;
        let idx = self.epoch_indices(data.len, b, true);
        match self
            .run_epoch(data, b, idx, &ChunkOptions::default(), &mut NoObserver)
            .await?
        {
            EpochOutcome::Done(s) => Ok(s),
            EpochOutcome::Stopped => Err(Error::invalid("fit_epoch", "stopped by the observer")),
        }
    }

    /// Runs one epoch whose batches of `b` rows are `idx[s·b .. (s+1)·b]` (PAD_INDEX rows
    /// are padding), starting at `cursor.step_in_epoch` (non-zero after resuming from a
    /// mid-epoch checkpoint). Steps are recorded in segments of up to STEPS_PER_SUBMIT; the
    /// GPU is only waited on at report points, checkpoints and the end of the epoch.
    pub(crate) async fn run_epoch(
        &mut self,
        data: &GpuDataset,
        b: usize,
        idx: Vec<u32>,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Result<EpochOutcome> {
        let start = clock::now_seconds();
        let gpu = self.gpu().clone();
        if self.program.as_ref().is_none_or(|p| p.graph.batch != b) {
            self.tune_program(b, true).await;
            self.program = Some(self.build_program(b, true)?);
        }
        let steps = idx.len() / b;
        let first = (self.cursor.step_in_epoch as usize).min(steps);
        let epoch_start_step = self.step - first as u64;
        let idx = Tensor::from_u32(&gpu, &[steps * b], &idx)?;
        // The schedule table: one row per step of this epoch.
        let total = (self.train.epochs as u64) * steps as u64;
        let mut table = Vec::with_capacity(steps * 4);
        for k in 0..steps as u64 {
            let t = epoch_start_step + k;
            let lr =
                self.optimizer
                    .schedule
                    .lr(self.optimizer.lr, t, self.epoch, total, &self.lr_state);
            let lr = match self.lr_spike {
                Some((factor, n)) if k >= first as u64 && k < first as u64 + n => lr * factor,
                _ => lr,
            };
            table.extend_from_slice(&schedule_row(&self.rule, lr, t + 1));
        }
        // An injected spike is consumed once scheduled (a transient fault).
        self.lr_spike = None;
        let sched = Tensor::from_f32(&gpu, &[steps, 4], &table)?;
        let list = self.step_list(data, b, &idx, &sched)?;
        self.step_dispatches = list.len();
        let refs: Vec<&Dispatch> = list.iter().collect();
        // counter = (step within this epoch, global step): see shaders/step.wgsl.
        self.counter
            .write_u32(&[first as u32, self.step as u32, 0, 0])?;
        self.metrics
            .write_f32(&self.cursor.metrics.unwrap_or([0.0; 4]))?;
        let mut done = first;
        let mut host = 0.0;
        let boundary = |every: Option<u64>, global: u64| {
            every.is_some_and(|e| e > 0 && global.is_multiple_of(e))
        };
        while done < steps {
            // Run up to the next report or checkpoint boundary (global step multiples).
            let mut n = STEPS_PER_SUBMIT.min(steps - done);
            for every in [opts.report_every_steps, opts.checkpoint_every_steps]
                .into_iter()
                .flatten()
            {
                if every > 0 {
                    let to_next = every - self.step % every;
                    n = n.min(to_next as usize);
                }
            }
            // Host cost: recording the passes and finishing the command buffer (the queue
            // submission may wait for the GPU and is not counted).
            let t0 = clock::now_seconds();
            let mut rec = gpu.recorder();
            rec.pass(&refs, n);
            host += clock::now_seconds() - t0 + rec.submit_timed()?;
            done += n;
            self.step += n as u64;
            self.cursor.step_in_epoch = done as u64;
            let report = boundary(opts.report_every_steps, self.step) && done < steps;
            let ckpt = boundary(opts.checkpoint_every_steps, self.step) && done < steps;
            let mut stop = false;
            if report || ckpt {
                let m = self.metrics.read_f32().await?;
                self.cursor.metrics = Some([m[0], m[1], m[2], m[3]]);
                if report {
                    let p = self.progress(done, steps, &m, start);
                    stop = matches!(obs.progress(&p), Control::Stop);
                }
            }
            if ckpt || stop {
                obs.checkpoint(&self.checkpoint().await?)?;
            }
            if stop {
                return Ok(EpochOutcome::Stopped);
            }
        }
        let m = self.metrics.read_f32().await?;
        self.epoch += 1;
        self.cursor.step_in_epoch = 0;
        self.cursor.metrics = None;
        let samples = m[2] as usize;
        let stats = Stats {
            loss: m[0] as f64 / samples.max(1) as f64,
            accuracy: self.accuracy_of(&m),
            samples,
            seconds: clock::now_seconds() - start,
            host_seconds: host,
        };
        if opts.report_every_steps.is_some() {
            let p = self.progress(steps, steps, &m, start);
            if matches!(obs.progress(&p), Control::Stop) {
                self.stop_requested = true;
            }
        }
        Ok(EpochOutcome::Done(stats))
    }

    /// Accuracy from a metrics accumulator; NaN for regression (there are no classes).
    fn accuracy_of(&self, m: &[f32]) -> f64 {
        match self.train.loss {
            LossKind::SoftmaxCrossEntropy => m[1] as f64 / (m[2] as f64).max(1.0),
            LossKind::Mse => f64::NAN,
        }
    }

    fn progress(&self, done: usize, steps: usize, m: &[f32], start: f64) -> Progress {
        let samples = m[2] as f64;
        Progress {
            chunk: self.cursor.chunk,
            epoch_in_chunk: self.cursor.epoch_in_chunk,
            step_in_epoch: done as u64,
            steps_in_epoch: steps as u64,
            global_step: self.step,
            loss: m[0] as f64 / samples.max(1.0),
            accuracy: self.accuracy_of(m),
            samples_per_sec: samples / (clock::now_seconds() - start).max(1e-9),
        }
    }

    /// The dispatches of one training step over `data`: gathers, forward, loss, metrics,
    /// backward, (clipping), updates, counter advance.
    fn step_list(
        &self,
        data: &GpuDataset,
        b: usize,
        idx: &Tensor,
        sched: &Tensor,
    ) -> Result<Vec<Dispatch>> {
        let prog = self.program.as_ref().expect("built by the caller");
        let mut list: Vec<Dispatch> = Vec::with_capacity(prog.step.len() + 8);
        let per = data.features.len() / data.len.max(1);
        let input = prog.graph.input.reshape(&[b, per])?;
        let feats = data.features.reshape(&[data.len, per])?;
        list.push(gather_stepped_into(&feats, idx, &self.counter, &input)?);
        if let Some(tg) = &prog.teacher {
            let t_input = tg.input.reshape(&[b, per])?;
            list.push(gather_stepped_into(&feats, idx, &self.counter, &t_input)?);
        }
        list.push(gather_stepped_into(
            &data.labels,
            idx,
            &self.counter,
            &prog.labels,
        )?);
        if let (Some(t), Some(src)) = (&prog.targets, &data.targets) {
            list.push(gather_stepped_into(src, idx, &self.counter, t)?);
        }
        list.extend(prog.step.iter().cloned());
        list.extend(update::update_dispatches(
            &self.model,
            &self.optimizer,
            &self.rule,
            &self.kernels,
            sched,
            &self.counter,
        )?);
        if let Some((mp, scaler)) = &self.mixed {
            list.push(loss_scale::update_into(
                scaler,
                &self.counter,
                mixed::GROWTH,
                mixed::BACKOFF,
                mp.growth_interval,
            )?);
        }
        list.push(step::advance_into(&self.counter)?);
        Ok(list)
    }

    /// The evaluation program for `batch`, the in-order index buffer padded to whole
    /// batches, and (steps, indices, dataset rows view, batch input view).
    async fn eval_setup(
        &mut self,
        data: &GpuDataset,
        batch: usize,
    ) -> Result<(usize, Tensor, Tensor, Tensor)> {
        self.check_data(data)?;
        if self
            .eval_program
            .as_ref()
            .is_none_or(|p| p.graph.batch != batch)
        {
            self.tune_program(batch, false).await;
            self.eval_program = Some(self.build_program(batch, false)?);
        }
        let prog = self.eval_program.as_ref().expect("built above");
        let steps = data.len.div_ceil(batch);
        let idx = Tensor::from_u32(
            self.gpu(),
            &[steps * batch],
            &self.epoch_indices(data.len, batch, false),
        )?;
        let per = data.features.len() / data.len.max(1);
        let input = prog.graph.input.reshape(&[batch, per])?;
        let feats = data.features.reshape(&[data.len, per])?;
        Ok((steps, idx, feats, input))
    }

    /// Mean loss and accuracy over `data` (dropout off), batched like training.
    pub async fn evaluate(&mut self, data: &GpuDataset, batch: usize) -> Result<Stats> {
        let start = clock::now_seconds();
        let gpu = self.gpu().clone();
        let (steps, idx, feats, input) = self.eval_setup(data, batch).await?;
        let prog = self.eval_program.as_ref().expect("built by eval_setup");
        let mut list = vec![
            gather_stepped_into(&feats, &idx, &self.counter, &input)?,
            gather_stepped_into(&data.labels, &idx, &self.counter, &prog.labels)?,
        ];
        if let (Some(t), Some(src)) = (&prog.targets, &data.targets) {
            list.push(gather_stepped_into(src, &idx, &self.counter, t)?);
        }
        list.extend(prog.step.iter().cloned());
        list.push(step::advance_into(&self.counter)?);
        step::reset(&self.counter, self.step)?;
        self.metrics.write_f32(&[0.0; 4])?;
        let refs: Vec<&Dispatch> = list.iter().collect();
        let mut rec = gpu.recorder();
        rec.pass(&refs, steps);
        rec.submit()?;
        let m = self.metrics.read_f32().await?;
        let samples = m[2] as usize;
        Ok(Stats {
            loss: m[0] as f64 / samples.max(1) as f64,
            accuracy: self.accuracy_of(&m),
            samples,
            seconds: clock::now_seconds() - start,
            host_seconds: 0.0,
        })
    }

    /// Class probabilities for every sample of `data`, [n, classes] row-major.
    pub async fn predict(&mut self, data: &GpuDataset, batch: usize) -> Result<Vec<f32>> {
        let gpu = self.gpu().clone();
        let (steps, idx, feats, input) = self.eval_setup(data, batch).await?;
        let prog = self.eval_program.as_ref().expect("built by eval_setup");
        let classes = self.model.spec.outputs()?;
        let probs = Tensor::uninit(&gpu, &[batch, classes], DType::F32)?;
        let out = Tensor::uninit(&gpu, &[steps * batch, classes], DType::F32)?;
        let mut list = vec![gather_stepped_into(&feats, &idx, &self.counter, &input)?];
        list.extend(prog.graph.forward.iter().cloned());
        list.push(match self.train.loss {
            LossKind::SoftmaxCrossEntropy => softmax_into(&prog.graph.output()?, &probs)?,
            // Regression: the outputs themselves are the predictions.
            LossKind::Mse => scale_into(1.0, &prog.graph.output()?, &probs)?,
        });
        let advance = step::advance_into(&self.counter)?;
        step::reset(&self.counter, self.step)?;
        let mut rec = gpu.recorder();
        for s in 0..steps {
            let mut refs: Vec<&Dispatch> = list.iter().collect();
            refs.push(&advance);
            rec.pass(&refs, 1);
            rec.copy(&probs, 0, &out, s * batch * classes, batch * classes)?;
        }
        rec.submit()?;
        let mut v = out.read_f32().await?;
        v.truncate(data.len * classes);
        Ok(v)
    }

    /// Fault injection: the next `steps` steps run at `factor` × their learning rate (once;
    /// a rollback re-runs the epoch without it). For recovery drills and tests.
    pub fn inject_lr_spike(&mut self, factor: f32, steps: u64) {
        self.lr_spike = Some((factor, steps));
    }

    /// Everything needed to continue exactly where this trainer is: weights, optimizer
    /// state, counters, schedule state, seed, cursor and history.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let names = state_names(&self.rule);
        let mut tensors = Vec::new();
        for p in &self.model.params {
            let shape = p.value.shape().to_vec();
            tensors.push(NamedTensor {
                name: p.name.clone(),
                shape: shape.clone(),
                data: p.value.read_f32().await?,
            });
            for (s, n) in p.state.iter().zip(names) {
                tensors.push(NamedTensor {
                    name: format!("optimizer.{}.{n}", p.name),
                    shape: shape.clone(),
                    data: s.read_f32().await?,
                });
            }
        }
        let rehearsal = self.rehearsal.as_ref().map(|r| {
            if let Some(d) = &r.data {
                let mut shape = vec![d.len()];
                shape.extend_from_slice(&d.sample_shape);
                tensors.push(NamedTensor {
                    name: "rehearsal.features".into(),
                    shape,
                    data: d.features.clone(),
                });
                tensors.push(NamedTensor {
                    name: "rehearsal.labels".into(),
                    shape: vec![d.len()],
                    data: d.labels.iter().map(|&l| l as f32).collect(),
                });
                if d.target_dim > 0 {
                    tensors.push(NamedTensor {
                        name: "rehearsal.targets".into(),
                        shape: vec![d.len(), d.target_dim],
                        data: d.targets.clone(),
                    });
                }
            }
            RehearsalState {
                spec: r.spec.clone(),
                seen: r.seen,
                classes: r.data.as_ref().map_or(0, |d| d.classes),
                target_dim: r.data.as_ref().map_or(0, |d| d.target_dim),
            }
        });
        for t in self.best_snapshot.iter().flatten() {
            tensors.push(NamedTensor {
                name: format!("{BEST_PREFIX}{}", t.name),
                ..t.clone()
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Checkpoint {
            meta: Meta {
                format_version: FORMAT_VERSION,
                model: self.model.spec.clone(),
                optimizer: self.optimizer.clone(),
                train: TrainSpec {
                    mixed_precision: self.mixed.as_ref().map(|(mp, _)| mp.clone()),
                    ..self.train.clone()
                },
                seed: self.seed,
                step: self.step,
                epoch: self.epoch,
                lr_state: self.lr_state.clone(),
                cursor: self.cursor.clone(),
                preprocessing: None,
                history: self.history.clone(),
                rehearsal,
                last_good_loss: self.last_good_loss,
                loss_scale: self.loss_scale().await?,
            },
            tensors,
        })
    }

    /// A trainer for evaluating or predicting with `ckpt` on `gpu`: [`Self::from_checkpoint`],
    /// except that a checkpoint trained with mixed precision on a device without
    /// `SHADER_F16` is evaluated with f32 GEMMs (its outputs then differ from the training
    /// device's in the low bits). Training it further needs `from_checkpoint`.
    pub fn for_inference(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Trainer> {
        let f16 = Precision::F16.required_features();
        if ckpt.meta.train.mixed_precision.is_some() && !gpu.features().contains(f16) {
            let mut c = ckpt.clone();
            c.meta.train.mixed_precision = None;
            c.meta.loss_scale = None;
            return Self::from_checkpoint(gpu, &c);
        }
        Self::from_checkpoint(gpu, ckpt)
    }

    /// A trainer that continues exactly where `ckpt` left off.
    pub fn from_checkpoint(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Trainer> {
        let m = &ckpt.meta;
        let mut t = Trainer::new(
            gpu,
            m.model.clone(),
            m.optimizer.clone(),
            m.train.clone(),
            m.seed,
        )?;
        t.restore(ckpt)?;
        let best: Vec<NamedTensor> = ckpt
            .tensors
            .iter()
            .filter_map(|x| {
                Some(NamedTensor {
                    name: x.name.strip_prefix(BEST_PREFIX)?.to_string(),
                    ..x.clone()
                })
            })
            .collect();
        t.best_snapshot = (!best.is_empty()).then_some(best);
        if let Some(rs) = &m.rehearsal {
            let mut r = Reservoir::new(rs.spec.clone());
            r.seen = rs.seen;
            if let (Some(f), Some(l)) = (
                ckpt.tensor("rehearsal.features"),
                ckpt.tensor("rehearsal.labels"),
            ) {
                let labels = l.data.iter().map(|&v| v as u32).collect();
                let mut d =
                    Dataset::new(f.data.clone(), labels, f.shape[1..].to_vec(), rs.classes)?;
                if rs.target_dim > 0 {
                    let t = ckpt.tensor("rehearsal.targets").ok_or_else(|| {
                        Error::data(
                            "checkpoint",
                            "the regression rehearsal buffer's rehearsal.targets tensor is missing",
                        )
                    })?;
                    if t.data.len() != d.len() * rs.target_dim {
                        return Err(Error::data(
                            "checkpoint",
                            format!(
                                "rehearsal.targets holds {} values, expected {} × {}",
                                t.data.len(),
                                d.len(),
                                rs.target_dim
                            ),
                        ));
                    }
                    d.targets = t.data.clone();
                    d.target_dim = rs.target_dim;
                }
                r.data = Some(d);
            }
            t.rehearsal = Some(r);
        }
        Ok(t)
    }
}
