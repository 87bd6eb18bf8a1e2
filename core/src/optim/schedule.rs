//! Learning-rate schedules. The trainer evaluates them on the host once per step and uploads
//! a whole chunk's rates as a table the optimizer kernels index on the GPU.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

fn half() -> f32 {
    0.5
}
fn ten() -> usize {
    10
}
fn small() -> f32 {
    1e-4
}

/// How the learning rate changes over training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    /// lr · gammaᵏ with k = ⌊epoch / step_epochs⌋ (PyTorch StepLR stepped per epoch).
    Step { step_epochs: usize, gamma: f32 },
    /// lr · gamma^epoch.
    Exponential { gamma: f32 },
    /// Linear warm-up over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`
    /// (0 = the end of the configured training).
    Cosine {
        #[serde(default)]
        warmup_steps: u64,
        #[serde(default)]
        total_steps: u64,
        #[serde(default)]
        min_lr: f32,
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
            Schedule::Constant | Schedule::Cosine { .. } => Ok(()),
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

    /// The learning rate at 0-based global `step` in `epoch`, for a run of `total_steps`.
    pub fn lr(&self, base: f32, step: u64, epoch: u64, total_steps: u64, state: &LrState) -> f32 {
        let base = base as f64;
        let lr = match *self {
            Schedule::Constant | Schedule::ReduceOnPlateau { .. } => base,
            Schedule::Step { step_epochs, gamma } => {
                base * (gamma as f64).powi((epoch / step_epochs as u64) as i32)
            }
            Schedule::Exponential { gamma } => base * (gamma as f64).powi(epoch as i32),
            Schedule::Cosine {
                warmup_steps,
                total_steps: t,
                min_lr,
            } => {
                let total = if t == 0 { total_steps } else { t }.max(1);
                if step < warmup_steps {
                    base * (step + 1) as f64 / warmup_steps as f64
                } else {
                    let span = total.saturating_sub(warmup_steps).max(1);
                    let p = ((step - warmup_steps) as f64 / span as f64).min(1.0);
                    min_lr as f64
                        + (base - min_lr as f64) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                }
            }
        };
        let lr = lr * state.scale as f64;
        if let Schedule::ReduceOnPlateau { min_lr, .. } = *self {
            return lr.max(min_lr as f64) as f32;
        }
        lr as f32
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
