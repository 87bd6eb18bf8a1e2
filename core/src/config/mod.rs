//! The run configuration: one TOML file that says what `accrete train` does (data, model,
//! optimizer, training, incremental chunks, checkpoints, fine-tuning). Every table and key
//! is optional; a missing key takes the default given in its documentation, and
//! [`RunConfig::default`] is the built-in run (Fashion-MNIST, an MLP 784-256-10, Adam, five
//! incremental chunks). Unknown keys are refused, naming the key and the allowed ones.
//!
//! ```toml
//! seed = 7
//!
//! [data]
//! format = "idx"
//! dir = "/usr/share/datasets/fashion-mnist"
//! train_limit = 6000
//! test_limit = 2000
//! validation_fraction = 0.1
//! stratified = true
//!
//! [model]
//! input = [784]
//! layers = [
//!   { type = "dense", units = 256, activation = "relu" },
//!   { type = "dense", units = 10 },
//! ]
//!
//! [optimizer]
//! type = "adam"
//! lr = 0.001
//!
//! [train]
//! batch_size = 128
//! epochs = 2
//! loss = "softmax_cross_entropy"
//!
//! [incremental]
//! chunks = 3
//! split_by = "count"
//!
//! [checkpoint]
//! every_steps = 50
//! ```
//!
//! The modules: `schema` (the tables and keys, with their documented defaults from
//! [`crate::defaults`]), `text` (TOML in and out, with errors that give the line, the key and
//! what is allowed), `validate` (what the types alone cannot check), `prepare` (from files
//! to the chunks a run trains on), `parallel` (the `[parallel]` table) and `session_spec`
//! (the browser's JSON spec).
//!
//! Turning a configuration into data ([`RunConfig::prepare`]: limits, shapes, the validation
//! split, standardisation, the chunks) is pure and deterministic given the seed, so a run
//! that is resumed rebuilds exactly the chunks it was trained on.

pub mod cv;
mod parallel;
mod prepare;
mod schema;
mod session_spec;
mod text;
#[cfg(all(test, feature = "ts"))]
mod ts_types;
#[cfg(test)]
mod unknown_keys;
mod validate;

pub use crate::defaults::{DATA_DIR as DEFAULT_DATA_DIR, IMBALANCE_THRESHOLD};
pub use parallel::{ParallelBackend, ParallelConfig, ParallelMode, MAX_LOCAL_DEVICES};
pub use prepare::{check_labels, dataset_for_model, Prepared};
pub use schema::{
    CheckpointConfig, DataConfig, DataFormat, FinetuneConfig, ImageColor, IncrementalConfig,
    RunConfig, FASHION_MNIST_CLASSES,
};
pub use session_spec::{SessionData, SessionIncremental, SessionSpec};
