//! Divergence recovery: before each epoch the trainer keeps a host copy of its state; an
//! epoch whose loss is not finite, or exceeds `spike_factor` × the last good epoch's loss,
//! is rolled back, the learning rate is scaled by `lr_factor`, and the epoch runs again
//! from a state chosen by the strategy ([`Strategy`]):
//!
//! - `last_good` (default): the state before the diverged epoch.
//! - `best`: the best-validation state seen in the run (needs a validation set).
//! - `anneal`: the last good state perturbed by Gaussian noise of `noise` × each weight
//!   tensor's RMS; the candidate is accepted when its validation loss beats the last good
//!   one, else with the Metropolis probability exp(−Δ/T). Retry k (0-based, counting every
//!   try of this divergence) uses noise × cooling^k and T = temperature × cooling^k; after
//!   `max_rollbacks` refused candidates the last good state itself is taken.
//! - `population`: `population` candidates — even ones mutations (the last good state plus
//!   noise), odd ones crossovers (each layer's tensors from the last good or the best state,
//!   by a coin flip) — each trained `trial_steps` steps on the current chunk (at the rate
//!   this rollback lowered) and scored on validation (on the chunk without one); the best
//!   continues if its score is within `spike_factor` × the last good state's, else the last
//!   good state does (so a cause that lasts is met by the next rollback's lower rate, not
//!   by adopting a diverged candidate). It costs population × trial_steps extra steps per
//!   divergence.
//!
//! Noise and coin flips are Philox draws keyed by the seed and a counter carried in
//! checkpoints, so runs are deterministic and resume exactly. After `max_rollbacks`
//! rollbacks in a row training stops with [`Error::Diverged`]. Every rollback is written to
//! the history with its strategy, what it restored and the extra steps it cost.

mod strategies;

use super::history::{Event, Loss, Rollback};
use super::{Checkpoint, GpuDataset, Stats, Trainer};
use crate::checkpoint::NamedTensor;
use crate::defaults;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub(crate) use strategies::RECOVERY_BEST_PREFIX;

fn spike() -> f64 {
    defaults::RECOVERY_SPIKE_FACTOR
}
fn half() -> f32 {
    defaults::RECOVERY_LR_FACTOR
}
fn five() -> usize {
    defaults::RECOVERY_MAX_ROLLBACKS
}
fn noise() -> f32 {
    0.05
}
fn cooling() -> f64 {
    0.5
}
fn temperature() -> f64 {
    0.05
}
fn four() -> usize {
    4
}
fn ten() -> u64 {
    10
}

/// What a rollback restarts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The state before the diverged epoch.
    #[default]
    LastGood,
    /// The best-validation state of the run.
    Best,
    /// A perturbed last good state, accepted by a cooling Metropolis criterion.
    Anneal,
    /// The best of mutated and crossed-over candidates after a few trial steps.
    Population,
}

fn is_last_good(s: &Strategy) -> bool {
    *s == Strategy::LastGood
}

/// When and how to roll back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct RecoverySpec {
    /// Roll back when an epoch's loss exceeds this multiple of the last good one (default 3).
    #[serde(default = "spike")]
    pub spike_factor: f64,
    /// Multiply the learning rate by this after each rollback (default 0.5).
    #[serde(default = "half")]
    pub lr_factor: f32,
    /// Give up after this many consecutive rollbacks (default 5).
    #[serde(default = "five")]
    pub max_rollbacks: usize,
    /// `"last_good"`, `"best"`, `"anneal"` or `"population"` (default "last_good"; see the
    /// module documentation).
    #[serde(default, skip_serializing_if = "is_last_good")]
    pub strategy: Strategy,
    /// anneal, population: the noise's standard deviation relative to each weight tensor's
    /// RMS (default 0.05).
    #[serde(default = "noise")]
    pub noise: f32,
    /// anneal: noise and temperature are multiplied by this at every retry (default 0.5).
    #[serde(default = "cooling")]
    pub cooling: f64,
    /// anneal: the initial temperature of the Metropolis test on the validation loss
    /// (default 0.05).
    #[serde(default = "temperature")]
    pub temperature: f64,
    /// population: candidates per divergence (default 4).
    #[serde(default = "four")]
    pub population: usize,
    /// population: steps each candidate trains before scoring (default 10).
    #[serde(default = "ten")]
    pub trial_steps: u64,
}

impl Default for RecoverySpec {
    fn default() -> Self {
        RecoverySpec {
            spike_factor: spike(),
            lr_factor: half(),
            max_rollbacks: five(),
            strategy: Strategy::LastGood,
            noise: noise(),
            cooling: cooling(),
            temperature: temperature(),
            population: four(),
            trial_steps: ten(),
        }
    }
}

impl RecoverySpec {
    /// Checks the values; messages start with the key. `validation` says whether the run
    /// has a validation set.
    pub fn check(&self, validation: bool) -> Result<()> {
        let bad = |key: &str, detail: String| Err(Error::invalid(key, detail));
        if self.spike_factor.is_nan() || self.spike_factor <= 1.0 {
            return bad(
                "recovery.spike_factor",
                format!("{} must be greater than 1", self.spike_factor),
            );
        }
        if !(self.lr_factor > 0.0 && self.lr_factor < 1.0) {
            return bad(
                "recovery.lr_factor",
                format!("{} must be in (0, 1)", self.lr_factor),
            );
        }
        if self.strategy == Strategy::Best && !validation {
            return bad(
                "recovery.strategy",
                "\"best\" restarts from the best-validation state, but the run has no validation set; set data.validation_fraction (e.g. 0.1) or use \"last_good\"".into(),
            );
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return bad(
                "recovery.noise",
                format!("{} must be a number ≥ 0", self.noise),
            );
        }
        if !(self.cooling > 0.0 && self.cooling <= 1.0) {
            return bad(
                "recovery.cooling",
                format!("{} must be in (0, 1]", self.cooling),
            );
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(
                "recovery.temperature",
                format!("{} must be a positive number", self.temperature),
            );
        }
        if self.population == 0 {
            return bad("recovery.population", "must be at least 1".into());
        }
        if self.trial_steps == 0 {
            return bad("recovery.trial_steps", "must be at least 1".into());
        }
        Ok(())
    }
}

/// The recovery strategies' state that travels in checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryState {
    /// Philox draws so far (the offset of the next noise tensor or coin flip).
    #[serde(default)]
    pub draws: u64,
    /// Validation loss of the best state (its tensors are `recovery.best.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val_loss: Option<f64>,
}

impl RecoveryState {
    pub fn is_empty(&self) -> bool {
        *self == RecoveryState::default()
    }
}

/// The run's best-validation state, kept for `best` and `population`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecoveryMemory {
    pub state: RecoveryState,
    pub best: Option<Vec<NamedTensor>>,
}

impl Trainer {
    /// A host copy of the state to roll back to, when a recovery policy is set.
    pub(crate) async fn snapshot_if_guarded(&self) -> Result<Option<Checkpoint>> {
        match self.recovery {
            Some(_) => Ok(Some(self.checkpoint().await?)),
            None => Ok(None),
        }
    }

    /// Refuses a strategy the trainer cannot follow (`best` without a validation set).
    pub(crate) fn check_recovery(&self) -> Result<()> {
        match &self.recovery {
            Some(r) => r.check(self.validation.is_some()),
            None => Ok(()),
        }
    }

    /// After an accepted, validated epoch: for `best` and `population`, remembers its state
    /// when its validation loss is the best so far.
    pub(crate) async fn remember_for_recovery(&mut self, val: Option<&Stats>) -> Result<()> {
        let (Some(policy), Some(v)) = (&self.recovery, val) else {
            return Ok(());
        };
        let keep_best = matches!(policy.strategy, Strategy::Best | Strategy::Population);
        let m = &self.recovery_memory;
        if keep_best && v.loss.is_finite() && m.state.best_val_loss.is_none_or(|b| v.loss < b) {
            let best = self.parameter_tensors().await?;
            let m = &mut self.recovery_memory;
            m.state.best_val_loss = Some(v.loss);
            m.best = Some(best);
        }
        Ok(())
    }

    /// Judges an epoch: returns true to keep it, or rolls back to `snapshot` (or the
    /// strategy's state), lowers the learning rate, logs the rollback and returns false
    /// (or fails after too many). `data` and `rows` are the chunk's, for population trials.
    pub(crate) async fn accept_or_roll_back(
        &mut self,
        stats: &Stats,
        snapshot: Option<&Checkpoint>,
        rollbacks: &mut usize,
        data: &GpuDataset,
        rows: usize,
    ) -> Result<bool> {
        let (Some(policy), Some(snapshot)) = (self.recovery.clone(), snapshot) else {
            return Ok(true);
        };
        let loss = stats.loss;
        let bad = !loss.is_finite()
            || self
                .last_good_loss
                .is_some_and(|good| loss > policy.spike_factor * good);
        if !bad {
            self.last_good_loss = Some(loss);
            *rollbacks = 0;
            return Ok(true);
        }
        *rollbacks += 1;
        let wasted = self.step - snapshot.meta.step;
        self.restore(snapshot)?;
        self.lr_state.scale *= policy.lr_factor;
        let (detail, extra) = self
            .restart_state(&policy, snapshot, *rollbacks, data, rows)
            .await?;
        self.history.push(Event::Rollback(Rollback {
            chunk: self.cursor.chunk,
            epoch: self.epoch,
            step: self.step,
            bad_loss: Loss(loss),
            last_good_loss: self.last_good_loss,
            new_lr: self.current_lr(),
            strategy: policy.strategy,
            detail,
            extra_steps: wasted + extra,
        }));
        if *rollbacks > policy.max_rollbacks {
            return Err(Error::Diverged {
                rollbacks: *rollbacks,
                detail: format!(
                    "the loss was {loss} in epoch {} (last good {:?}) even at learning rate {}; lower optimizer.lr or check the data",
                    self.epoch + 1,
                    self.last_good_loss,
                    self.current_lr()
                ),
            });
        }
        Ok(false)
    }
}
