//! Watching and steering a training run from outside: progress at report points,
//! checkpoints every N steps, and a way to stop cleanly (Ctrl-C in the CLI, a button in
//! the browser).

use super::history::{ChunkEnd, EpochRecord};
use super::Checkpoint;
use crate::error::Result;
use serde::{Deserialize, Serialize};

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

/// Where training is, with the running loss and accuracy of the current epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Progress {
    pub chunk: u64,
    pub epoch_in_chunk: u64,
    pub step_in_epoch: u64,
    pub steps_in_epoch: u64,
    pub global_step: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub samples_per_sec: f64,
}

/// What the observer wants after a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Checkpoint (handed to [`Observer::checkpoint`]) and return [`ChunkOutcome::Stopped`].
    Stop,
}

/// Callbacks from [`super::Trainer::fit_chunk_with`].
pub trait Observer {
    /// Every `report_every_steps` steps and at each epoch's end.
    fn progress(&mut self, _p: &Progress) -> Control {
        Control::Continue
    }
    /// After each epoch the recovery policy accepted.
    fn epoch_end(&mut self, _stats: &Stats) {}
    /// After `epoch_end`, the validation set's loss and accuracy for that epoch (when the
    /// trainer has one: [`super::Trainer::set_validation`]).
    fn validated(&mut self, _val: &Stats) {}
    /// After `validated`: the epoch's record, as it was appended to the history.
    fn epoch_record(&mut self, _record: &EpochRecord) {}
    /// At a chunk's end, when the trainer evaluates there
    /// ([`super::Trainer::set_chunk_evaluation`]): the row appended to the history.
    fn chunk_end(&mut self, _end: &ChunkEnd) {}
    /// Every `checkpoint_every_steps` steps, at each epoch's end (when checkpointing is on),
    /// and before stopping.
    fn checkpoint(&mut self, _c: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// An observer that watches nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// How one call of [`super::Trainer::fit_chunk_with`] runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkOptions {
    /// Report progress every this many global steps, and at every epoch's end; `None` =
    /// never.
    pub report_every_steps: Option<u64>,
    /// Checkpoint every this many global steps (and at every epoch's end); `None` = never.
    pub checkpoint_every_steps: Option<u64>,
    /// Epochs over this chunk; `None` = `train.epochs`.
    pub epochs: Option<usize>,
    /// The base learning rate (`optimizer.lr`) from this chunk on, when it differs from
    /// the current one: recorded in the history as a change ([`super::hyper`]); `None` =
    /// unchanged.
    pub lr: Option<f32>,
}

/// How a chunk ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkOutcome {
    Done(Vec<Stats>),
    /// The observer asked to stop; a checkpoint was handed to it first.
    Stopped,
}

/// How an epoch ended.
pub(crate) enum EpochOutcome {
    Done(Stats),
    Stopped,
}
