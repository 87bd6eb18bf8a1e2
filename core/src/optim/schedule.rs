//! Learning-rate schedules: what a user configures. [`super::LrPlan`] turns one into the
//! rate of every step; the trainer uploads an epoch's rates as a table the optimizer
//! kernels index on the GPU, and logs the same numbers.

use crate::defaults;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

fn half() -> f32 {
    defaults::PLATEAU_FACTOR
}
fn ten() -> usize {
    defaults::PLATEAU_PATIENCE
}
fn small() -> f32 {
    defaults::PLATEAU_THRESHOLD
}

/// What one cosine cycle spans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum CosineCycle {
    /// One decay over the whole run: to `total_steps` when set, else to the run's planned
    /// steps where the caller knows them (the CLI: every chunk's steps × epochs). Where
    /// neither is known (the library or the browser, where chunks keep arriving), each
    /// chunk is one cycle, as with `chunk`.
    #[default]
    Run,
    /// Every chunk is one cycle that starts again at the base rate (SGDR's warm restarts,
    /// with cycles the length of a chunk).
    Chunk,
}

/// How the learning rate changes over training.
///
/// Every variant is a struct variant (`Constant {}`, not `Constant`): serde ignores unknown
/// keys next to the tag of a unit variant, and a typo must never pass silently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout (the default).
    Constant {},
    /// lr · gammaᵏ with k = ⌊epoch / step_epochs⌋ (PyTorch StepLR stepped per epoch).
    Step { step_epochs: usize, gamma: f32 },
    /// lr · gamma^epoch.
    Exponential { gamma: f32 },
    /// Linear warm-up over the run's first `warmup_steps` steps, then cosine decay to
    /// `min_lr` over one cycle (`cycle`, default `"run"`: to `total_steps`, 0 = the end of
    /// the run's planned steps, see [`CosineCycle`]); past the cycle's end the rate stays
    /// at `min_lr`.
    Cosine {
        #[serde(default)]
        warmup_steps: u64,
        #[serde(default)]
        total_steps: u64,
        #[serde(default)]
        min_lr: f32,
        #[serde(default)]
        cycle: CosineCycle,
    },
    /// Multiply by `factor` when the validation loss has not improved by `threshold`
    /// (relative) for `patience` epochs; never below `min_lr`.
    ReduceOnPlateau {
        #[serde(default = "half")]
        factor: f32,
        #[serde(default = "ten")]
        patience: usize,
        #[serde(default)]
        min_lr: f32,
        #[serde(default = "small")]
        threshold: f32,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant {}
    }
}

/// Mutable schedule state carried across epochs (and into checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrState {
    /// Multiplier applied by reduce-on-plateau (and by divergence recovery).
    pub scale: f32,
    pub best: Option<f64>,
    pub bad_epochs: usize,
}

impl Default for LrState {
    fn default() -> Self {
        LrState {
            scale: 1.0,
            best: None,
            bad_epochs: 0,
        }
    }
}

impl Schedule {
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, d: String| Err(Error::invalid(format!("optimizer.schedule.{k}"), d));
        match *self {
            Schedule::Constant {} => Ok(()),
            Schedule::Cosine {
                warmup_steps,
                total_steps,
                min_lr,
                cycle,
            } => {
                if !(min_lr >= 0.0 && min_lr.is_finite()) {
                    return bad("min_lr", format!("{min_lr} must be ≥ 0"));
                }
                if total_steps > 0 && warmup_steps >= total_steps {
                    return bad(
                        "warmup_steps",
                        format!("{warmup_steps} leaves nothing of the {total_steps} total_steps to decay over; make it smaller than total_steps"),
                    );
                }
                if total_steps > 0 && cycle == CosineCycle::Chunk {
                    return bad(
                        "total_steps",
                        "sets the end of one run-long cycle, but cycle = \"chunk\" makes every chunk a cycle; remove one of them".into(),
                    );
                }
                Ok(())
            }
            Schedule::Step { step_epochs, gamma } => {
                if step_epochs == 0 {
                    return bad("step_epochs", "must be ≥ 1".into());
                }
                if gamma.is_nan() || gamma <= 0.0 {
                    return bad("gamma", format!("{gamma} must be positive"));
                }
                Ok(())
            }
            Schedule::Exponential { gamma } => {
                if gamma > 0.0 {
                    Ok(())
                } else {
                    bad("gamma", format!("{gamma} must be positive"))
                }
            }
            Schedule::ReduceOnPlateau { factor, .. } => {
                if factor > 0.0 && factor < 1.0 {
                    Ok(())
                } else {
                    bad("factor", format!("{factor} must be in (0, 1)"))
                }
            }
        }
    }

    /// Feeds an epoch's validation loss to reduce-on-plateau; returns true if it cut the rate.
    pub fn observe(&self, val_loss: f64, state: &mut LrState) -> bool {
        let Schedule::ReduceOnPlateau {
            factor,
            patience,
            threshold,
            ..
        } = *self
        else {
            return false;
        };
        match state.best {
            Some(best) if val_loss >= best * (1.0 - threshold as f64) => {
                state.bad_epochs += 1;
                if state.bad_epochs > patience {
                    state.scale *= factor;
                    state.bad_epochs = 0;
                    return true;
                }
            }
            _ => {
                state.best = Some(val_loss);
                state.bad_epochs = 0;
            }
        }
        false
    }
}
