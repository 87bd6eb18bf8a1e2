//! Divergence recovery: before each epoch the trainer keeps a host copy of its state; an
//! epoch whose loss is not finite, or exceeds `spike_factor` × the last good epoch's loss,
//! is rolled back, the learning rate is scaled by `lr_factor`, and the epoch runs again.
//! After `max_rollbacks` rollbacks in a row training stops with [`Error::Diverged`]. Every
//! rollback is written to the history.

use super::{LossScaleState, Stats, Trainer};
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

fn spike() -> f64 {
    3.0
}
fn half() -> f32 {
    0.5
}
fn five() -> usize {
    5
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
        self.history.push(serde_json::json!({
            "event": "rollback",
            "chunk": self.cursor.chunk,
            "epoch": self.epoch,
            "step": self.step,
            "bad_loss": if loss.is_finite() { serde_json::json!(loss) } else { serde_json::json!(loss.to_string()) },
            "last_good_loss": self.last_good_loss,
            "new_lr": self.current_lr(),
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

    /// Overwrites this trainer's parameters, optimizer state and counters with `ckpt`'s
    /// (same architecture and optimizer).
    pub fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        let names = crate::checkpoint::state_names(&self.rule);
        for p in &self.model.params {
            let find = |name: &str| {
                ckpt.tensor(name).ok_or_else(|| {
                    Error::data(
                        "checkpoint",
                        format!("tensor {name} is missing; the file does not match the model"),
                    )
                })
            };
            let w = find(&p.name)?;
            self.model.load(&p.name, &w.shape, &w.data)?;
            for (s, n) in p.state.iter().zip(names) {
                let st = find(&format!("optimizer.{}.{n}", p.name))?;
                if st.shape != p.value.shape() {
                    return Err(Error::data(
                        "checkpoint",
                        format!(
                            "optimizer state {} is {:?}, expected {:?}",
                            st.name,
                            st.shape,
                            p.value.shape()
                        ),
                    ));
                }
                s.write_f32(&st.data)?;
            }
        }
        let m = &ckpt.meta;
        self.step = m.step;
        self.epoch = m.epoch;
        self.lr_state = m.lr_state.clone();
        self.cursor = m.cursor.clone();
        self.history = m.history.clone();
        self.last_good_loss = m.last_good_loss;
        if let Some((mp, scaler)) = &self.mixed {
            // A checkpoint saved without mixed precision starts from the initial scale.
            let st = m
                .loss_scale
                .clone()
                .unwrap_or_else(|| LossScaleState::initial(mp));
            scaler.write_u32(&[st.scale.to_bits(), st.good_steps, st.skipped_steps, 0])?;
        }
        Ok(())
    }
}
