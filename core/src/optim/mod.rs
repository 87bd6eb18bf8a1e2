//! Optimizer configuration: the update rule and its hyper-parameters (with PyTorch's
//! defaults), penalties, clipping, per-layer learning-rate multipliers and schedules.
//!
//! ```toml
//! [optimizer]
//! type = "adam"          # sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw
//! lr = 0.001
//! schedule = { type = "cosine", warmup_steps = 100 }
//! ```

mod plan;
mod schedule;

pub use plan::{ChunkSpan, LrPlan};
pub use schedule::{CosineCycle, LrState, Schedule};

use crate::defaults;
use crate::error::{Error, Result};
use crate::kernels::optim::{Penalty, Rule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The update rule's name in configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    Sgd,
    Momentum,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
}

fn default_lr() -> f32 {
    defaults::LR
}

/// Everything about how parameters are updated. Unset hyper-parameters take PyTorch's
/// defaults; one that does not apply to the chosen rule is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    #[serde(rename = "type")]
    pub kind: OptimKind,
    /// Base learning rate (default 0.001).
    #[serde(default = "default_lr")]
    pub lr: f32,
    /// momentum / nesterov: μ (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f32>,
    /// adam / adamw: β1 (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f32>,
    /// adam / adamw: β2 (default 0.999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f32>,
    /// rmsprop: smoothing α (default 0.99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// adagrad 1e-10, rmsprop and adam(w) 1e-8 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f32>,
    /// adamw: decoupled weight decay (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f32>,
    /// L1 penalty coefficient (default 0).
    #[serde(default)]
    pub l1: f32,
    /// L2 penalty coefficient, added to the gradient as l2·w (default 0).
    #[serde(default)]
    pub l2: f32,
    /// Clip the global gradient norm to this value (default: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f32>,
    /// Learning-rate schedule (default constant).
    #[serde(default)]
    pub schedule: Schedule,
    /// Per-layer learning-rate multipliers, by layer index: `layer_lr = { "0" = 0.1 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "ts", tsify(type = "Record<string, number>"))]
    pub layer_lr: BTreeMap<String, f32>,
}

impl OptimizerSpec {
    /// Adam at learning rate `lr` with PyTorch's defaults.
    pub fn adam(lr: f32) -> Self {
        Self::new(OptimKind::Adam, lr)
    }

    /// A rule at learning rate `lr`, everything else default.
    pub fn new(kind: OptimKind, lr: f32) -> Self {
        OptimizerSpec {
            kind,
            lr,
            momentum: None,
            beta1: None,
            beta2: None,
            alpha: None,
            eps: None,
            weight_decay: None,
            l1: 0.0,
            l2: 0.0,
            clip_norm: None,
            schedule: Schedule::Constant {},
            layer_lr: BTreeMap::new(),
        }
    }

    /// The update rule with defaults filled in; refuses options that do not apply.
    pub fn rule(&self) -> Result<Rule> {
        use OptimKind::*;
        let name = format!("{:?}", self.kind).to_lowercase();
        let allowed: &[&str] = match self.kind {
            Sgd => &[],
            Momentum | Nesterov => &["momentum"],
            Adagrad => &["eps"],
            Rmsprop => &["alpha", "eps"],
            Adam => &["beta1", "beta2", "eps"],
            Adamw => &["beta1", "beta2", "eps", "weight_decay"],
        };
        for (key, set) in [
            ("momentum", self.momentum.is_some()),
            ("beta1", self.beta1.is_some()),
            ("beta2", self.beta2.is_some()),
            ("alpha", self.alpha.is_some()),
            ("eps", self.eps.is_some()),
            ("weight_decay", self.weight_decay.is_some()),
        ] {
            if set && !allowed.contains(&key) {
                let hint = if allowed.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes {}", allowed.join(", "))
                };
                return Err(Error::invalid(
                    format!("optimizer.{key}"),
                    format!("does not apply to {name} ({hint})"),
                ));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "optimizer.lr",
                format!("{} must be a positive number", self.lr),
            ));
        }
        if self.l1 < 0.0 || self.l2 < 0.0 {
            return Err(Error::invalid("optimizer.l1 / l2", "penalties must be ≥ 0"));
        }
        if let Some(c) = self.clip_norm {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Error::invalid(
                    "optimizer.clip_norm",
                    format!("{c} must be positive"),
                ));
            }
        }
        let rule = match self.kind {
            Sgd => Rule::Sgd,
            Momentum | Nesterov => Rule::Momentum {
                momentum: self.momentum.unwrap_or(defaults::MOMENTUM),
                nesterov: self.kind == Nesterov,
            },
            Adagrad => Rule::Adagrad {
                eps: self.eps.unwrap_or(defaults::ADAGRAD_EPS),
            },
            Rmsprop => Rule::RmsProp {
                alpha: self.alpha.unwrap_or(defaults::RMSPROP_ALPHA),
                eps: self.eps.unwrap_or(defaults::EPS),
            },
            Adam => Rule::Adam {
                beta1: self.beta1.unwrap_or(defaults::BETA1),
                beta2: self.beta2.unwrap_or(defaults::BETA2),
                eps: self.eps.unwrap_or(defaults::EPS),
            },
            Adamw => Rule::AdamW {
                beta1: self.beta1.unwrap_or(defaults::BETA1),
                beta2: self.beta2.unwrap_or(defaults::BETA2),
                eps: self.eps.unwrap_or(defaults::EPS),
                weight_decay: self.weight_decay.unwrap_or(defaults::ADAMW_WEIGHT_DECAY),
            },
        };
        rule.validate()?;
        self.schedule.validate()?;
        Ok(rule)
    }

    pub fn penalty(&self) -> Penalty {
        Penalty {
            l1: self.l1,
            l2: self.l2,
        }
    }

    /// The learning-rate multiplier of layer `layer` (1 unless set in `layer_lr`).
    pub fn lr_scale(&self, layer: usize, layers: usize) -> Result<f32> {
        for (k, v) in &self.layer_lr {
            let i: usize = k.parse().map_err(|_| {
                Error::invalid(
                    format!("optimizer.layer_lr.{k}"),
                    "keys must be layer indices",
                )
            })?;
            if i >= layers {
                return Err(Error::invalid(
                    format!("optimizer.layer_lr.{k}"),
                    format!("the model has {layers} layers"),
                ));
            }
            if !(*v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(
                    format!("optimizer.layer_lr.{k}"),
                    format!("{v} must be ≥ 0"),
                ));
            }
        }
        Ok(self
            .layer_lr
            .get(&layer.to_string())
            .copied()
            .unwrap_or(1.0))
    }
}
