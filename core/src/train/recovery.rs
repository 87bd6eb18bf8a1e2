//! Divergence recovery: before each epoch the trainer keeps a host copy of its state; an
//! epoch whose loss is not finite, or exceeds `spike_factor` × the last good epoch's loss,
//! is rolled back, the learning rate is scaled by `lr_factor`, and the epoch runs again.
//! After `max_rollbacks` rollbacks in a row training stops with [`Error::Diverged`]. Every
//! rollback is written to the history.

use super::history::{Event, Loss, Rollback};
use super::{Checkpoint, Stats, Trainer};
use crate::defaults;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

fn spike() -> f64 {
    defaults::RECOVERY_SPIKE_FACTOR
}
fn half() -> f32 {
    defaults::RECOVERY_LR_FACTOR
}
fn five() -> usize {
    defaults::RECOVERY_MAX_ROLLBACKS
}

/// When and how to roll back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

impl Default for RecoverySpec {
    fn default() -> Self {
        RecoverySpec {
            spike_factor: spike(),
            lr_factor: half(),
            max_rollbacks: five(),
        }
    }
}

impl Trainer {
    /// A host copy of the state to roll back to, when a recovery policy is set.
    pub(crate) async fn snapshot_if_guarded(&self) -> Result<Option<Checkpoint>> {
        match self.recovery {
            Some(_) => Ok(Some(self.checkpoint().await?)),
            None => Ok(None),
        }
    }

    /// Judges an epoch: returns true to keep it, or rolls back to `snapshot`, lowers the
    /// learning rate, logs the rollback and returns false (or fails after too many).
    pub(crate) fn accept_or_roll_back(
        &mut self,
        stats: &Stats,
        snapshot: Option<&Checkpoint>,
        rollbacks: &mut usize,
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
        self.restore(snapshot)?;
        self.lr_state.scale *= policy.lr_factor;
        self.history.push(Event::Rollback(Rollback {
            chunk: self.cursor.chunk,
            epoch: self.epoch,
            step: self.step,
            bad_loss: Loss(loss),
            last_good_loss: self.last_good_loss,
            new_lr: self.current_lr(),
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
