//! Watching and steering a training run from outside: progress at report points,
//! checkpoints every N steps, and a way to stop cleanly (Ctrl-C in the CLI, a button in
//! the browser).

use super::Stats;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use serde::Serialize;

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
    /// Every `checkpoint_every_steps` steps, at each epoch's end (when checkpointing is on),
    /// and before stopping.
    fn checkpoint(&mut self, _c: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// An observer that watches nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// How often to report and checkpoint (in global steps); `None` = never mid-epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkOptions {
    pub report_every_steps: Option<u64>,
    pub checkpoint_every_steps: Option<u64>,
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
