//! Training on the GPU: whole epochs recorded as repeated step programs with no host work or
//! read-back inside the step loop.
//!
//! One step = gather batch (by the epoch's shuffled index buffer) → forward → loss →
//! accumulate metrics → backward → (clip) → update → advance the step counter. Every
//! per-step value lives on the GPU: the batch offset and schedule row come from the step
//! counter, dropout masks are keyed by it, and loss/accuracy accumulate in a small buffer
//! read once per report point.
//!
//! The modules, one concern each: [`spec`] (what a user configures), `program` (the step's
//! dispatches with their [`Phase`]s), `epoch` (the epoch loop and the learning-rate table),
//! `chunk` (incremental chunks), `infer` (evaluation and prediction), `profile`,
//! `parallel` (data parallelism over local devices), `collective` (over MPI ranks),
//! [`state`] (what a checkpoint carries), [`history`] (what happened, typed), and the
//! strategies: `rehearsal` (with `der`, Dark Experience Replay), `distill`, `lwf`, `ewc`, `agem`, `early_stop`, `recovery`, `transfer`, `mixed`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::kernels::matmul::Precision;
use crate::kernels::optim::Rule;
use crate::kernels::{loss_scale, step};
use crate::nn::{Model, ModelSpec};
use crate::optim::{LrPlan, LrState, OptimizerSpec};

mod agem;
mod chunk;
mod collective;
mod der;
mod distill;
mod early_stop;
mod epoch;
mod ewc;
pub mod history;
pub mod hyper;
mod infer;
mod lwf;
mod mixed;
mod observe;
mod parallel;
mod profile;
mod program;
mod recovery;
mod rehearsal;
pub mod spec;
pub mod state;
mod task_eval;
mod transfer;
mod update;

pub use agem::AgemSpec;
pub use collective::Collective;
pub use distill::DistillSpec;
pub use early_stop::{EarlyStopping, FitReport, Monitor};
pub use ewc::EwcSpec;
pub use history::{ChunkEnd, EpochRecord, Event, HyperChange};
pub use hyper::{ChunkSetting, Setting};
pub use lwf::LwfSpec;
pub use mixed::{LossScaleState, MixedPrecision};
pub(crate) use observe::EpochOutcome;
pub use observe::{ChunkOptions, ChunkOutcome, Control, NoObserver, Observer, Progress, Stats};
pub use parallel::CommStats;
pub use program::Phase;
pub use recovery::{RecoverySpec, RecoveryState, Strategy};
pub use rehearsal::{RehearsalSpec, Reservoir};
pub use spec::{LossKind, TrainSpec};
pub use state::{AgemState, Checkpoint, Cursor, Meta, RehearsalState, FORMAT_VERSION};
pub use transfer::TransferReport;
pub use update::StepKernels;

/// Stream offset separating the epoch shuffles from other uses of the seed.
const SHUFFLE_STREAM: u32 = 0x3000;

/// A dataset uploaded to the GPU: features [n, ...sample], labels [n], for regression
/// targets [n, target_dim] and, for DER's replayed rows, stored logits [n, outputs].
pub struct GpuDataset {
    pub features: Tensor,
    pub labels: Tensor,
    pub targets: Option<Tensor>,
    /// The logits DER replays towards (set by the trainer for a chunk with a buffer).
    pub logits: Option<Tensor>,
    pub len: usize,
    /// The same data on the devices of the other replicas (data-parallel training;
    /// [`Trainer::upload_training`]).
    pub(crate) peers: Vec<GpuDataset>,
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
            logits: None,
            len: data.len(),
            peers: Vec::new(),
        })
    }
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
    /// What happened so far: epochs, rollbacks, early stops (saved in checkpoints).
    pub history: Vec<Event>,
    /// Rehearsal buffer of earlier chunks, when enabled.
    pub rehearsal: Option<Reservoir>,
    /// Divergence recovery policy (off when `None`).
    pub recovery: Option<RecoverySpec>,
    /// Hyper-parameter changes at the start of chunks (`[[incremental.schedule]]`,
    /// [`hyper`]).
    pub chunk_schedule: Vec<ChunkSetting>,
    /// Loss of the last epoch the recovery policy accepted.
    pub last_good_loss: Option<f64>,
    /// The recovery strategies' draws counter and best-validation state.
    pub(crate) recovery_memory: recovery::RecoveryMemory,
    /// The run's planned total of steps, where the caller knows it (the end of a cosine
    /// schedule without `total_steps`; saved in checkpoints).
    planned_steps: Option<u64>,
    /// The learning-rate plan of the current chunk.
    plan: Option<LrPlan>,
    /// The rates of the last epoch's schedule table.
    epoch_rates: Vec<f32>,
    /// Evaluated after every epoch of a chunk when set: feeds reduce-on-plateau and early
    /// stopping, and adds val_loss / val_accuracy to the history.
    validation: Option<GpuDataset>,
    /// Evaluated at every chunk's end when set (continual-learning metrics; `task_eval`).
    task_eval: Option<task_eval::TaskEval>,
    /// Weights and optimizer state of this chunk's best epoch so far (early stopping with
    /// restore_best); saved in checkpoints under `early_stopping.best.`.
    pub(crate) best_snapshot: Option<Vec<crate::checkpoint::NamedTensor>>,
    /// Fault injection for drills and tests: multiply the next `.1` steps' learning rate by `.0`.
    lr_spike: Option<(f32, u64)>,
    /// Set when the observer asked to stop at an epoch's last report point.
    stop_requested: bool,
    /// Teacher model and settings when distilling.
    teacher: Option<(Model, DistillSpec)>,
    /// Learning without Forgetting: the teacher is the chunk-start snapshot (`lwf`).
    lwf: Option<LwfSpec>,
    /// DER's loss in the current chunk's step program (`der`).
    replay_loss: Option<der::ReplayLoss>,
    /// Elastic Weight Consolidation's settings and, after a chunk's end, its Fisher and
    /// anchor (`ewc`).
    ewc: Option<EwcSpec>,
    ewc_state: Option<ewc::EwcState>,
    /// A-GEM's settings and memory, and the memory on the GPU while it acts (`agem`).
    agem: Option<agem::AgemMemory>,
    agem_run: Option<agem::AgemRun>,
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
    program: Option<program::Program>,
    eval_program: Option<program::Program>,
    /// Data parallelism: replicas 1 … N−1 on their own devices (`parallel`; empty: one
    /// device), their sync period and the communication so far.
    peers: Vec<Trainer>,
    sync_every: u64,
    comm: CommStats,
    /// Over MPI: the communicator and this rank's role (`collective`).
    dist: Option<collective::Distributed>,
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
        if train.accumulate_steps == 0 {
            return Err(Error::invalid(
                "train.accumulate_steps",
                "must be at least 1 (1 = an update every batch)",
            ));
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
            chunk_schedule: Vec::new(),
            last_good_loss: None,
            recovery_memory: Default::default(),
            planned_steps: None,
            plan: None,
            epoch_rates: Vec::new(),
            validation: None,
            task_eval: None,
            best_snapshot: None,
            lr_spike: None,
            stop_requested: false,
            teacher: None,
            lwf: None,
            replay_loss: None,
            ewc: None,
            ewc_state: None,
            agem: None,
            agem_run: None,
            rule,
            kernels: StepKernels::default(),
            step_dispatches: 0,
            counter: step::counter(gpu, 0)?,
            metrics: Tensor::zeros(gpu, &[4])?,
            mixed,
            program: None,
            eval_program: None,
            peers: Vec::new(),
            sync_every: 1,
            comm: CommStats::default(),
            dist: None,
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

    /// Sets the run's planned total of steps (the CLI: every chunk's steps × epochs): the
    /// end of a `cosine` schedule's run-long cycle when it has no `total_steps`. Saved in
    /// checkpoints, so a resumed run keeps its plan.
    pub fn set_planned_steps(&mut self, steps: Option<u64>) {
        self.planned_steps = steps;
        self.plan = None;
    }

    /// The run's planned total of steps, if set.
    pub fn planned_steps(&self) -> Option<u64> {
        self.planned_steps
    }

    /// Dispatches (= bind groups set) per training step in the last epoch's step list:
    /// gathers, forward, loss, metrics, backward, clipping, updates and the counter advance.
    pub fn dispatches_per_step(&self) -> usize {
        self.step_dispatches
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

    /// Fault injection: the next `steps` steps run at `factor` × their learning rate (once;
    /// a rollback re-runs the epoch without it). For recovery drills and tests.
    pub fn inject_lr_spike(&mut self, factor: f32, steps: u64) {
        self.lr_spike = Some((factor, steps));
    }
}
