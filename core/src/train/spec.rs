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

/// Loss functions for classification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Samples per step (default 128).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Epochs per chunk of data (default 1).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
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
    pub mixed_precision: Option<MixedPrecision>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch_size: default_batch(),
            epochs: default_epochs(),
            loss: LossKind::default(),
            label_smoothing: defaults::LABEL_SMOOTHING,
            early_stopping: None,
            mixed_precision: None,
        }
    }
}
