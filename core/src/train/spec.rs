//! What a user configures about training (`[train]`): batch size, epochs per chunk, the
//! loss, label smoothing, early stopping and mixed precision.

use super::{mixed, EarlyStopping, MixedPrecision};
use crate::defaults;
use serde::{Deserialize, Serialize};

fn default_batch() -> usize {
    defaults::BATCH_SIZE
}
fn default_epochs() -> usize {
    defaults::EPOCHS
}
fn default_accumulate() -> usize {
    defaults::ACCUMULATE_STEPS
}
fn is_default_accumulate(k: &usize) -> bool {
    *k == defaults::ACCUMULATE_STEPS
}

/// Loss functions for classification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
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
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Samples per step (default 128).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Epochs per chunk of data (default 1).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Gradient accumulation: `k` micro-batches of `batch_size` rows per optimizer update,
    /// so the effective batch is `k × batch_size` with the memory of one micro-batch
    /// (default 1: every batch is an update). The k micro-steps are recorded in one step
    /// program (no host round trip); the update uses the mean of the k micro-batch
    /// gradients, each the mean over its rows. Steps, schedules, checkpoints and the
    /// logged learning rate count optimizer updates.
    #[serde(
        default = "default_accumulate",
        skip_serializing_if = "is_default_accumulate"
    )]
    pub accumulate_steps: usize,
    /// Loss (default softmax_cross_entropy).
    #[serde(default)]
    pub loss: LossKind,
    /// Label smoothing ε for cross-entropy (default 0).
    #[serde(default)]
    pub label_smoothing: f32,
    /// Stop a chunk's epochs early when the validation metric stops improving (needs a
    /// validation set: [`super::Trainer::set_validation`]; the CLI's
    /// `data.validation_fraction`), e.g. `early_stopping = { patience = 3, monitor =
    /// "val_accuracy" }` (default: off).
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
    #[cfg_attr(feature = "ts", tsify(type = "boolean | MixedPrecision"))]
    pub mixed_precision: Option<MixedPrecision>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch_size: default_batch(),
            epochs: default_epochs(),
            accumulate_steps: default_accumulate(),
            loss: LossKind::default(),
            label_smoothing: defaults::LABEL_SMOOTHING,
            early_stopping: None,
            mixed_precision: None,
        }
    }
}

impl TrainSpec {
    /// Optimizer steps of an epoch over `samples` samples: `ceil(samples / batch_size)`
    /// micro-batches, grouped `accumulate_steps` at a time (the last group padded with empty
    /// micro-batches, which add nothing to the gradient).
    pub fn steps_per_epoch(&self, samples: usize) -> u64 {
        samples
            .div_ceil(self.batch_size.max(1))
            .div_ceil(self.accumulate_steps.max(1)) as u64
    }
}
