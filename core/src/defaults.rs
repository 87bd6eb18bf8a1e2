//! Every default of a run, in one place. The configuration types (`RunConfig`, `TrainSpec`,
//! `OptimizerSpec`, …) document each key with its default where a user reads it; their
//! serde defaults and `Default` impls take the values from here, so the two cannot drift.

/// `seed`: of every random stream (initialisation, splits, shuffles, dropout, rehearsal).
pub const SEED: u64 = 0;

/// `train.batch_size`: samples per step.
pub const BATCH_SIZE: usize = 128;
/// `train.epochs`: epochs per chunk of data.
pub const EPOCHS: usize = 1;
/// `train.label_smoothing`.
pub const LABEL_SMOOTHING: f32 = 0.0;
/// `train.accumulate_steps`: micro-batches of `batch_size` per optimizer update.
pub const ACCUMULATE_STEPS: usize = 1;

/// `optimizer.lr`.
pub const LR: f32 = 1e-3;
/// `optimizer.momentum` (momentum, nesterov).
pub const MOMENTUM: f32 = 0.9;
/// `optimizer.beta1`, `optimizer.beta2` (adam, adamw).
pub const BETA1: f32 = 0.9;
pub const BETA2: f32 = 0.999;
/// `optimizer.alpha` (rmsprop).
pub const RMSPROP_ALPHA: f32 = 0.99;
/// `optimizer.eps`: adagrad's, and that of rmsprop, adam and adamw.
pub const ADAGRAD_EPS: f32 = 1e-10;
pub const EPS: f32 = 1e-8;
/// `optimizer.weight_decay` (adamw).
pub const ADAMW_WEIGHT_DECAY: f32 = 0.01;

/// `optimizer.schedule = { type = "reduce_on_plateau" }`: `factor`, `patience`, `threshold`.
pub const PLATEAU_FACTOR: f32 = 0.5;
pub const PLATEAU_PATIENCE: usize = 10;
pub const PLATEAU_THRESHOLD: f32 = 1e-4;

/// `train.early_stopping`: `patience` (epochs without improvement), `restore_best`.
pub const EARLY_STOPPING_PATIENCE: usize = 5;
pub const EARLY_STOPPING_RESTORE_BEST: bool = true;

/// `[recovery]`: `spike_factor`, `lr_factor`, `max_rollbacks`.
pub const RECOVERY_SPIKE_FACTOR: f64 = 3.0;
pub const RECOVERY_LR_FACTOR: f32 = 0.5;
pub const RECOVERY_MAX_ROLLBACKS: usize = 5;

/// `train.mixed_precision`: `init_scale` (2¹⁶) and `growth_interval`, as PyTorch's
/// GradScaler.
pub const LOSS_SCALE_INIT: f32 = 65536.0;
pub const LOSS_SCALE_GROWTH_INTERVAL: u32 = 2000;

/// `incremental.rehearsal.per_batch`: replayed samples per batch.
pub const REHEARSAL_PER_BATCH: usize = 128;

/// Distillation (`Trainer::distill_from`): `alpha` on the hard labels, `temperature`.
pub const DISTILL_ALPHA: f32 = 0.5;
pub const DISTILL_TEMPERATURE: f32 = 4.0;

/// `data.dir`: where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// `data.label_column` (CSV).
pub const LABEL_COLUMN: &str = "label";
/// The arrays of an `.npz` or safetensors dataset holding the features and the labels.
pub const FEATURES_KEY: &str = "features";
pub const LABELS_KEY: &str = "labels";
/// `data.validation_fraction`.
pub const VALIDATION_FRACTION: f64 = 0.1;
/// `data.stratified`.
pub const STRATIFIED: bool = true;
/// `incremental.chunks`.
pub const CHUNKS: usize = 5;
/// `checkpoint.every_steps`, `checkpoint.keep_last`.
pub const CHECKPOINT_EVERY_STEPS: u64 = 200;
pub const CHECKPOINT_KEEP_LAST: usize = 0;

/// The default model's hidden layer (an MLP 784-256-10 with ReLU, for Fashion-MNIST).
pub const MODEL_HIDDEN: usize = 256;

/// Ratio of the largest to the smallest class above which a warning is given.
pub const IMBALANCE_THRESHOLD: f64 = 3.0;

/// Evaluation and prediction batches hold up to this many samples (fewer where the widest
/// activation would not fit the device, see `session::inference_batch`).
pub const INFERENCE_BATCH: usize = 256;

/// Learning without Forgetting (`[incremental] lwf`): the distillation term's weight λ
/// (loss ∝ CE + λ·T²·KL) and its temperature.
pub const LWF_WEIGHT: f32 = 1.0;
pub const LWF_TEMPERATURE: f32 = 2.0;

/// `incremental.agem.per_batch`: memory samples whose loss gives A-GEM's reference gradient
/// in every step.
pub const AGEM_PER_BATCH: usize = 256;

/// Elastic Weight Consolidation (`[incremental] ewc`): the penalty's weight λ, the decay of
/// the earlier chunks' Fisher (1 = EWC, below 1 = online EWC) and the samples per chunk
/// whose per-sample gradients estimate its Fisher.
pub const EWC_WEIGHT: f32 = 100.0;
pub const EWC_DECAY: f32 = 1.0;
pub const EWC_SAMPLES: usize = 1000;
