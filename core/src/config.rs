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
//! Turning a configuration into data ([`RunConfig::prepare`]: limits, shapes, the validation
//! split, standardisation, the chunks) is pure and deterministic given the seed, so a run
//! that is resumed rebuilds exactly the chunks it was trained on.

use crate::data::{split, Dataset, SplitBy, Standardizer};
use crate::error::{Error, Result};
use crate::nn::{presets, ModelSpec};
use crate::optim::OptimizerSpec;
use crate::train::{RecoverySpec, RehearsalSpec, TrainSpec};
use serde::{Deserialize, Serialize};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const DEFAULT_DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The ten Fashion-MNIST classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Ratio of the largest to the smallest class above which a warning is given.
pub const IMBALANCE_THRESHOLD: f64 = 3.0;

fn default_model() -> ModelSpec {
    presets::mlp(784, &[256], 10)
}
fn default_optimizer() -> OptimizerSpec {
    OptimizerSpec::adam(1e-3)
}
fn default_fraction() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}
fn default_chunks() -> usize {
    5
}
fn default_every_steps() -> u64 {
    200
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// A whole run. Top-level keys: `seed`, then the tables `[data]`, `[model]`, `[optimizer]`,
/// `[train]`, `[incremental]`, `[recovery]`, `[checkpoint]`, `[finetune]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of every random stream: weight initialisation, the validation split, chunking,
    /// shuffles, dropout, rehearsal (default 0).
    #[serde(default)]
    pub seed: u64,
    /// `[data]`: what to train and test on (default: Fashion-MNIST).
    #[serde(default)]
    pub data: DataConfig,
    /// `[model]`: `input` shape and `layers` ([`ModelSpec`]; default an MLP 784-256-10 with
    /// ReLU).
    #[serde(default = "default_model")]
    pub model: ModelSpec,
    /// `[optimizer]`: `type`, `lr`, … ([`OptimizerSpec`]; default Adam at lr 0.001).
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerSpec,
    /// `[train]`: `batch_size` (default 128), `epochs` per chunk (default 1), `loss`
    /// (default "softmax_cross_entropy"), `label_smoothing` (default 0) ([`TrainSpec`]).
    #[serde(default)]
    pub train: TrainSpec,
    /// `[incremental]`: how the training data is split into chunks trained one after
    /// another (default 5 chunks by count).
    #[serde(default)]
    pub incremental: IncrementalConfig,
    /// `[recovery]`: roll back diverging epochs (`spike_factor` default 3, `lr_factor`
    /// default 0.5, `max_rollbacks` default 5) ([`RecoverySpec`]). Default: off; an empty
    /// `[recovery]` table turns it on with the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySpec>,
    /// `[checkpoint]`: how often to save.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// `[finetune]`: start from another model's weights (default: off, fresh weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

/// The file formats `[data] format` accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, …) in `dir`.
    #[default]
    Idx,
    /// CSV tables with a header row: `train_file` (and optionally `test_file`).
    Csv,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `"idx"` or `"csv"` (default "idx").
    #[serde(default)]
    pub format: DataFormat,
    /// idx: the folder with the four IDX files (default
    /// "/usr/share/datasets/fashion-mnist").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// csv: the training table (required with format = "csv").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_file: Option<String>,
    /// csv: the test table (default: none; the report then uses the validation split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<String>,
    /// csv: the column holding class indices 0, 1, 2, … (default "label"); every other
    /// column is a numeric feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// Standardise every feature to mean 0 and standard deviation 1, fitted on the training
    /// part and stored in checkpoints (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
    /// Use only the first N training samples (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test samples (default: all; Fashion-MNIST has 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Fraction of the training samples held out for validation after every epoch, in
    /// [0, 1); 0 turns validation off (default 0.1).
    #[serde(default = "default_fraction")]
    pub validation_fraction: f64,
    /// Hold out the same fraction of every class (default true).
    #[serde(default = "yes")]
    pub stratified: bool,
    /// Names of the classes, in label order, for reports (default: the label numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            format: DataFormat::Idx,
            dir: None,
            train_file: None,
            test_file: None,
            label_column: None,
            standardize: false,
            train_limit: None,
            test_limit: None,
            validation_fraction: default_fraction(),
            stratified: true,
            class_names: None,
        }
    }
}

impl DataConfig {
    /// The IDX folder (`dir`, or the default).
    pub fn idx_dir(&self) -> &str {
        self.dir.as_deref().unwrap_or(DEFAULT_DATA_DIR)
    }

    /// The CSV label column (`label_column`, or "label").
    pub fn label_column(&self) -> &str {
        self.label_column.as_deref().unwrap_or("label")
    }
}

/// `[incremental]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// Number of chunks the training data is split into, trained one after another, each
    /// for `train.epochs` epochs (default 5; 1 = ordinary training).
    #[serde(default = "default_chunks")]
    pub chunks: usize,
    /// `"count"`: consecutive chunks of near-equal size (a stream); `"class"`: each chunk
    /// holds a contiguous group of classes (class-incremental) (default "count").
    #[serde(default)]
    pub split_by: SplitBy,
    /// Shuffle the training samples (seeded) before chunking (default false: file order).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shuffle: bool,
    /// Keep a reservoir of `size` earlier samples and replay `per_batch` (default 128) of
    /// them in every batch, e.g. `rehearsal = { size = 2000, per_batch = 32 }` (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalSpec>,
}

impl Default for IncrementalConfig {
    fn default() -> Self {
        IncrementalConfig {
            chunks: default_chunks(),
            split_by: SplitBy::Count,
            shuffle: false,
            rehearsal: None,
        }
    }
}

/// `[checkpoint]`. `last.safetensors` is written at every checkpoint and at the end of
/// every epoch, `best.safetensors` whenever the validation accuracy improves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Also checkpoint every N optimizer steps inside epochs; 0 = only at epoch ends
    /// (default 200).
    #[serde(default = "default_every_steps")]
    pub every_steps: u64,
    /// Keep the N most recent checkpoints as `step-<N>.safetensors` too; 0 = none
    /// (default 0).
    #[serde(default)]
    pub keep_last: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every_steps: default_every_steps(),
            keep_last: 0,
        }
    }
}

/// `[finetune]`: transfer learning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// A `.safetensors` file (an accrete checkpoint, or PyTorch `nn.Sequential` weights):
    /// every parameter whose name and shape match is loaded, the rest keep their fresh
    /// initialisation (required).
    pub from: String,
    /// Indices of layers whose parameters are not trained (default: none).
    #[serde(default)]
    pub freeze: Vec<usize>,
}

impl Default for RunConfig {
    /// The built-in run: Fashion-MNIST (all 60000 training samples, 10000 test), 10%
    /// stratified validation, an MLP 784-256-10 with ReLU, Adam at 0.001, batch 128, one
    /// epoch per chunk, five chunks by count, a checkpoint every 200 steps.
    fn default() -> Self {
        RunConfig {
            seed: 0,
            data: DataConfig {
                class_names: Some(FASHION_MNIST_CLASSES.map(String::from).to_vec()),
                ..DataConfig::default()
            },
            model: default_model(),
            optimizer: default_optimizer(),
            train: TrainSpec::default(),
            incremental: IncrementalConfig::default(),
            recovery: None,
            checkpoint: CheckpointConfig::default(),
            finetune: None,
        }
    }
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl RunConfig {
    /// Parses and validates a TOML configuration. `source` (the file name) starts every
    /// error message, which gives the line and column, the key and what is allowed there:
    /// `run.toml: line 4, column 1: data.formt: unknown field `formt`, expected one of …`.
    pub fn from_toml(text: &str, source: &str) -> Result<RunConfig> {
        let de =
            toml::de::Deserializer::parse(text).map_err(|e| toml_error(text, source, None, &e))?;
        let config: RunConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            toml_error(text, source, Some(path), &inner)
        })?;
        config.validate().map_err(|e| Error::InvalidArgument {
            what: source.to_string(),
            detail: e.to_string(),
        })?;
        Ok(config)
    }

    /// The configuration as TOML that [`RunConfig::from_toml`] reads back unchanged.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("run configuration", e))
    }

    /// Checks what the types alone cannot: ranges, keys that only apply to one data
    /// format, a model and optimizer that can be built, layers to freeze that exist.
    /// Messages start with the key (`data.validation_fraction: …`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, detail: String| Err(Error::invalid(key, detail));
        if self.train.loss == crate::train::LossKind::Mse {
            return bad(
                "train.loss",
                "\"mse\" trains on real-valued targets, but runs read class labels (IDX or a CSV label column); use \"softmax_cross_entropy\" here, or the library's Dataset::regression for regression".into(),
            );
        }
        let d = &self.data;
        match d.format {
            DataFormat::Idx => {
                for (key, set) in [
                    ("train_file", d.train_file.is_some()),
                    ("test_file", d.test_file.is_some()),
                    ("label_column", d.label_column.is_some()),
                ] {
                    if set {
                        return bad(
                            &format!("data.{key}"),
                            "only applies to format = \"csv\"; with format = \"idx\" set data.dir to the folder holding the IDX files".into(),
                        );
                    }
                }
            }
            DataFormat::Csv => {
                if d.dir.is_some() {
                    return bad(
                        "data.dir",
                        "only applies to format = \"idx\"; with format = \"csv\" set data.train_file (and data.test_file)".into(),
                    );
                }
                if d.train_file.is_none() {
                    return bad(
                        "data.train_file",
                        "is required with format = \"csv\": the path of the training table".into(),
                    );
                }
            }
        }
        if d.train_limit == Some(0) {
            return bad("data.train_limit", "0 samples leaves nothing to train on; use at least 1, or remove the key to use all".into());
        }
        if d.test_limit == Some(0) {
            return bad(
                "data.test_limit",
                "0 samples leaves nothing to test on; use at least 1, or remove the key to use all"
                    .into(),
            );
        }
        if let Some(mp) = &self.train.mixed_precision {
            mp.check_settings()?;
        }
        if self.train.early_stopping.is_some() && d.validation_fraction == 0.0 {
            return bad(
                "train.early_stopping",
                "watches the validation split, but data.validation_fraction is 0; set it to e.g. 0.1, or remove train.early_stopping".into(),
            );
        }
        if !(0.0..1.0).contains(&d.validation_fraction) {
            return bad(
                "data.validation_fraction",
                format!(
                    "{} is outside [0, 1); use e.g. 0.1 for 10% of the training data, or 0 for no validation",
                    d.validation_fraction
                ),
            );
        }
        self.model
            .shapes()
            .map_err(|e| Error::invalid("model", e.to_string()))?;
        let outputs = self.model.outputs()?;
        if outputs < 2 {
            return bad(
                "model.layers",
                format!("the last layer gives {outputs} output; a classifier needs one output per class (at least 2)"),
            );
        }
        if let Some(names) = &d.class_names {
            if names.len() != outputs {
                return bad(
                    "data.class_names",
                    format!(
                        "{} names for the {outputs} classes the model's last layer predicts; give one name per class",
                        names.len()
                    ),
                );
            }
        }
        self.optimizer
            .rule()
            .map_err(|e| Error::invalid("optimizer", e.to_string()))?;
        self.optimizer.schedule.validate()?;
        let layers = self.model.layers.len();
        for i in 0..layers {
            self.optimizer.lr_scale(i, layers)?;
        }
        if self.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        if self.train.epochs == 0 {
            return bad(
                "train.epochs",
                "must be at least 1 (epochs per chunk)".into(),
            );
        }
        if !(0.0..1.0).contains(&self.train.label_smoothing) {
            return bad(
                "train.label_smoothing",
                format!("{} is outside [0, 1)", self.train.label_smoothing),
            );
        }
        if self.incremental.chunks == 0 {
            return bad(
                "incremental.chunks",
                "must be at least 1 (1 = ordinary training on all the data)".into(),
            );
        }
        if let Some(r) = &self.recovery {
            if r.spike_factor.is_nan() || r.spike_factor <= 1.0 {
                return bad(
                    "recovery.spike_factor",
                    format!("{} must be greater than 1", r.spike_factor),
                );
            }
            if !(r.lr_factor > 0.0 && r.lr_factor < 1.0) {
                return bad(
                    "recovery.lr_factor",
                    format!("{} must be in (0, 1)", r.lr_factor),
                );
            }
        }
        if let Some(f) = &self.finetune {
            if f.from.trim().is_empty() {
                return bad(
                    "finetune.from",
                    "is empty; give the path of a .safetensors file".into(),
                );
            }
            let mut spec = self.model.clone();
            spec.freeze(&f.freeze)
                .map_err(|e| Error::invalid("finetune.freeze", e.to_string()))?;
        }
        Ok(())
    }

    /// The same run with every default that depends on other keys written out (the IDX
    /// folder), as saved in a run directory.
    pub fn resolved(&self) -> RunConfig {
        let mut c = self.clone();
        if c.data.format == DataFormat::Idx && c.data.dir.is_none() {
            c.data.dir = Some(DEFAULT_DATA_DIR.to_string());
        }
        c
    }

    /// The model to build: `model` with the `[finetune] freeze` layers frozen.
    pub fn model_spec(&self) -> Result<ModelSpec> {
        let mut spec = self.model.clone();
        if let Some(f) = &self.finetune {
            spec.freeze(&f.freeze)?;
        }
        Ok(spec)
    }

    /// A display name for class `c`: `data.class_names`, else the Fashion-MNIST names for
    /// the IDX files in [`DEFAULT_DATA_DIR`], else the number.
    pub fn class_name(&self, c: usize) -> String {
        let fashion = self.data.format == DataFormat::Idx
            && self.data.idx_dir() == DEFAULT_DATA_DIR
            && self.model.outputs().ok() == Some(FASHION_MNIST_CLASSES.len());
        match &self.data.class_names {
            Some(names) => names.get(c).cloned(),
            None if fashion => FASHION_MNIST_CLASSES.get(c).map(|s| s.to_string()),
            None => None,
        }
        .unwrap_or_else(|| c.to_string())
    }

    /// Reads the training and (when there is one) test data named by `[data]`, unprepared.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_data(&self) -> Result<(Dataset, Option<Dataset>)> {
        use crate::data::{csv, idx};
        let d = &self.data;
        match d.format {
            DataFormat::Idx => {
                let dir = std::path::Path::new(d.idx_dir());
                let train = idx::load_dir(dir, idx::Split::Train)?;
                let test = idx::load_dir(dir, idx::Split::Test)?;
                Ok((train, Some(test)))
            }
            DataFormat::Csv => {
                let opts = csv::CsvOptions {
                    label_column: d.label_column().to_string(),
                    classes: Some(self.model.outputs()?),
                };
                let train_file = d.train_file.as_deref().ok_or_else(|| {
                    Error::invalid("data.train_file", "is required with format = \"csv\"")
                })?;
                let train = csv::load(std::path::Path::new(train_file), &opts)?;
                let test = match &d.test_file {
                    Some(f) => Some(csv::load(std::path::Path::new(f), &opts)?),
                    None => None,
                };
                Ok((train, test))
            }
        }
    }

    /// Fits `data` to the model: the first `limit` samples, samples viewed as
    /// `model.input`, labels checked against the model's classes.
    pub fn fit_to_model(&self, data: Dataset, limit: Option<usize>, name: &str) -> Result<Dataset> {
        let mut data = match limit {
            Some(n) if n < data.len() => data.take(n),
            _ => data,
        };
        let want = &self.model.input;
        if data.sample_len() != self.model.input_len() {
            return Err(Error::data(
                name,
                format!(
                    "samples have {} values (shape {:?}) but the model's input (model.input) is {want:?} ({} values); the data and the model must agree",
                    data.sample_len(),
                    data.sample_shape,
                    self.model.input_len()
                ),
            ));
        }
        data = data.reshaped(want)?;
        let classes = self.model.outputs()?;
        check_labels(&data, classes, name)?;
        data.classes = classes;
        Ok(data)
    }

    /// Everything a run trains and evaluates on, from the raw training and test data:
    /// limits, model shapes, the validation split, standardisation (fitted on the training
    /// part only), the chunks, and imbalance warnings. Deterministic given the seed.
    pub fn prepare(&self, train: Dataset, test: Option<Dataset>) -> Result<Prepared> {
        let d = &self.data;
        let train = self.fit_to_model(train, d.train_limit, "training data")?;
        let mut test = match test {
            Some(t) => Some(self.fit_to_model(t, d.test_limit, "test data")?),
            None => None,
        };
        let (mut train, mut validation) = if d.validation_fraction > 0.0 {
            let (t, v) = split::holdout(&train, d.validation_fraction, d.stratified, self.seed)
                .map_err(|e| rekey(e, "data.validation_fraction"))?;
            (t, Some(v))
        } else {
            (train, None)
        };
        let standardizer = if d.standardize {
            let s = Standardizer::fit(&train);
            s.apply(&mut train)?;
            for set in [validation.as_mut(), test.as_mut()].into_iter().flatten() {
                s.apply(set)?;
            }
            Some(s)
        } else {
            None
        };
        let inc = &self.incremental;
        let chunks = split::increments(&train, inc.chunks, inc.split_by, self.seed, inc.shuffle)
            .map_err(|e| rekey(e, "incremental.chunks"))?;
        let mut warnings = Vec::new();
        warnings.extend(split::imbalance_warning(
            &train,
            "the training data",
            IMBALANCE_THRESHOLD,
        ));
        if inc.split_by == SplitBy::Count && chunks.len() > 1 {
            for (i, c) in chunks.iter().enumerate() {
                warnings.extend(split::imbalance_warning(
                    c,
                    &format!("chunk {}", i + 1),
                    IMBALANCE_THRESHOLD,
                ));
            }
        }
        Ok(Prepared {
            train,
            validation,
            test,
            chunks,
            standardizer,
            warnings,
        })
    }
}

/// An argument error from a library function, renamed after the config key it came from.
fn rekey(e: Error, key: &str) -> Error {
    match e {
        Error::InvalidArgument { detail, .. } => Error::invalid(key, detail),
        other => other,
    }
}

/// Refuses a model whose parameters, or whose activations for a batch of `batch` samples,
/// would not fit in one GPU buffer of `max_bytes` (the device's largest bindable buffer,
/// [`crate::Gpu::max_binding_bytes`]), before anything is allocated on the host or the GPU.
pub fn check_fits(spec: &ModelSpec, batch: usize, max_bytes: u64) -> Result<()> {
    let bytes = |shape: &[usize], rows: usize| {
        shape
            .iter()
            .try_fold(rows as u64 * 4, |a, &d| a.checked_mul(d as u64))
            .unwrap_or(u64::MAX)
    };
    let over = |what: String, needed: u64| {
        Err(Error::OverLimit {
            what,
            needed,
            limit: max_bytes,
            limit_name: "max_storage_buffer_binding_size",
        })
    };
    for (i, (layer, sh)) in spec.layers.iter().zip(spec.shapes()?).enumerate() {
        let kind = layer.kind();
        if let Some(w) = &sh.weight {
            let b = bytes(w, 1);
            if b > max_bytes {
                return over(format!("layer {i} ({kind}): its weight matrix {w:?}"), b);
            }
        }
        let b = bytes(&sh.output, batch);
        if b > max_bytes {
            return over(
                format!(
                    "layer {i} ({kind}): its output for a batch of {batch} ({batch} × {:?})",
                    sh.output
                ),
                b,
            );
        }
    }
    Ok(())
}

/// Refuses labels the model cannot predict.
pub fn check_labels(data: &Dataset, classes: usize, name: &str) -> Result<()> {
    if let Some((i, &l)) = data
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(Error::data(
            name,
            format!(
                "label {l} of sample {i} is outside the model's {classes} classes 0..{}; the last layer needs at least {} units (the data's labels go up to {})",
                classes - 1,
                data.labels.iter().max().map_or(0, |&m| m as usize + 1),
                data.labels.iter().max().copied().unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

/// Builds a dataset for `model` from flat arrays handed over in memory (the browser's
/// `Float32Array` / `Uint32Array`): `features` holds n samples of `model.input_len()` values,
/// row-major; `labels` one class index per sample (`None`: unlabelled inputs for prediction,
/// labelled 0). Refuses empty data, a length that is not a whole number of samples, a label
/// count that differs from the sample count, labels outside the model's classes and
/// non-finite features, with a message starting with `name` that says what to pass instead.
pub fn dataset_for_model(
    model: &ModelSpec,
    features: Vec<f32>,
    labels: Option<Vec<u32>>,
    name: &str,
) -> Result<Dataset> {
    let d = model.input_len();
    let classes = model.outputs()?;
    let input = &model.input;
    if features.is_empty() {
        return Err(Error::data(
            name,
            format!("no samples: the features are empty; pass n × {d} values (the model's input is {input:?}) with n ≥ 1"),
        ));
    }
    if d == 0 || !features.len().is_multiple_of(d) {
        return Err(Error::data(
            name,
            format!(
                "{} feature values are not a whole number of samples: the model's input {input:?} takes {d} values per sample, so pass n × {d} values, row-major",
                features.len()
            ),
        ));
    }
    let n = features.len() / d;
    let labels = match labels {
        Some(l) if l.len() != n => {
            return Err(Error::data(
                name,
                format!(
                    "{} labels for {n} samples ({} feature values of {d} per sample); give exactly one label per sample",
                    l.len(),
                    features.len()
                ),
            ))
        }
        Some(l) => l,
        None => vec![0; n],
    };
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            name,
            format!(
                "feature {} of sample {} is {}; every feature must be a finite number: replace or drop missing values before passing the data",
                i % d,
                i / d,
                features[i]
            ),
        ));
    }
    // Built with room for every label, so that check_labels gives its message.
    let room = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut data = Dataset::new(features, labels, input.clone(), classes.max(room))?;
    check_labels(&data, classes, name)?;
    data.classes = classes;
    Ok(data)
}

/// `data` of a [`SessionSpec`]: only what applies to data handed over in memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionData {
    /// Standardise every feature to mean 0 and standard deviation 1, fitted on the first
    /// chunk trained and stored in checkpoints (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// `incremental` of a [`SessionSpec`]: the caller hands over the chunks, so only rehearsal
/// applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionIncremental {
    /// As `[incremental] rehearsal` of the run configuration (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalSpec>,
}

/// A training session whose data arrives in memory, chunk by chunk (the browser's
/// `Trainer.create(spec)`): the run configuration's `seed`, `model` (required),
/// `optimizer`, `train`, `recovery`, `incremental.rehearsal` and `data.standardize`, with
/// the same keys, defaults and checks ([`RunConfig::validate`]). Unknown keys are refused.
///
/// ```json
/// {"seed": 0,
///  "model": {"input": [2], "layers": [{"type": "dense", "units": 16, "activation": "tanh"},
///                                     {"type": "dense", "units": 2}]},
///  "optimizer": {"type": "adam", "lr": 0.01},
///  "train": {"batch_size": 32, "epochs": 1}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Seed of weight initialisation, shuffles, dropout and rehearsal (default 0).
    #[serde(default)]
    pub seed: u64,
    /// `standardize` (default false).
    #[serde(default)]
    pub data: SessionData,
    /// `input` shape and `layers` ([`ModelSpec`]; required).
    pub model: ModelSpec,
    /// As `[optimizer]` (default Adam at lr 0.001).
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerSpec,
    /// As `[train]`: `batch_size` (default 128), `epochs` per chunk (default 1), `loss`,
    /// `label_smoothing`.
    #[serde(default)]
    pub train: TrainSpec,
    /// `rehearsal` (default: off).
    #[serde(default)]
    pub incremental: SessionIncremental,
    /// As `[recovery]` (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySpec>,
}

impl SessionSpec {
    /// Parses and validates a JSON session spec. Errors start with `source` and give the key
    /// path, serde's message (which lists the allowed keys or values) and the position:
    /// `spec: model.layers[0]: unknown variant `dense2`, expected one of … at line 1 column 52`.
    pub fn from_json(text: &str, source: &str) -> Result<SessionSpec> {
        let fail = |path: Option<String>, e: &serde_json::Error| {
            let key = match path.as_deref() {
                Some(".") | Some("") | None => String::new(),
                Some(p) => format!("{p}: "),
            };
            Error::InvalidArgument {
                what: source.to_string(),
                detail: format!("{key}{e}"),
            }
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let spec: SessionSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // A syntax error has no key to name (the path would end in `?`).
            let data = inner.classify() == serde_json::error::Category::Data;
            fail(data.then_some(path), &inner)
        })?;
        de.end().map_err(|e| fail(None, &e))?;
        spec.validate().map_err(|e| Error::InvalidArgument {
            what: source.to_string(),
            detail: e.to_string(),
        })?;
        Ok(spec)
    }

    /// The spec as JSON that [`SessionSpec::from_json`] reads back unchanged.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session spec serialises")
    }

    /// The run configuration with these settings and every other key at its default.
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            seed: self.seed,
            data: DataConfig {
                standardize: self.data.standardize,
                ..DataConfig::default()
            },
            model: self.model.clone(),
            optimizer: self.optimizer.clone(),
            train: self.train.clone(),
            incremental: IncrementalConfig {
                rehearsal: self.incremental.rehearsal.clone(),
                ..IncrementalConfig::default()
            },
            recovery: self.recovery.clone(),
            ..RunConfig::default()
        }
    }

    /// The run configuration's checks on these keys (messages start with the key).
    pub fn validate(&self) -> Result<()> {
        self.run_config().validate()
    }
}

/// The data of a run, ready to train on.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The training part (after the validation split), standardised when configured.
    pub train: Dataset,
    /// The validation split, when `validation_fraction > 0`.
    pub validation: Option<Dataset>,
    /// The test data, when there is some.
    pub test: Option<Dataset>,
    /// `train` split into `incremental.chunks` chunks.
    pub chunks: Vec<Dataset>,
    /// The standardizer fitted on `train`, when `data.standardize`.
    pub standardizer: Option<Standardizer>,
    /// Warnings for the user (class imbalance).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The data the final report evaluates on: the test data, else the validation split,
    /// else the training data; with its name.
    pub fn report_data(&self) -> (&Dataset, &'static str) {
        match (&self.test, &self.validation) {
            (Some(t), _) => (t, "test"),
            (None, Some(v)) => (v, "validation"),
            (None, None) => (&self.train, "training"),
        }
    }
}

/// A one-line message from a toml error: file, line and column, the key, toml's message.
fn toml_error(text: &str, source: &str, path: Option<String>, e: &toml::de::Error) -> Error {
    let at = e
        .span()
        .map(|s| {
            let (l, c) = line_col(text, s.start);
            format!("line {l}, column {c}: ")
        })
        .unwrap_or_default();
    let key = match path.as_deref() {
        Some(".") | Some("") | None => String::new(),
        Some(p) => format!("{p}: "),
    };
    let message = e.message().trim().replace('\n', "; ");
    Error::InvalidArgument {
        what: source.to_string(),
        detail: format!("{at}{key}{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"seed = 7

[data]
format = "idx"
dir = "/usr/share/datasets/fashion-mnist"
train_limit = 6000
test_limit = 2000
validation_fraction = 0.1
stratified = true

[model]
input = [784]
layers = [
  { type = "dense", units = 256, activation = "relu" },
  { type = "dense", units = 10 },
]

[optimizer]
type = "adam"
lr = 0.001

[train]
batch_size = 128
epochs = 2
loss = "softmax_cross_entropy"

[incremental]
chunks = 3
split_by = "count"

[checkpoint]
every_steps = 50
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = RunConfig::from_toml(EXAMPLE, "run.toml").unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.data.train_limit, Some(6000));
        assert_eq!(c.model, presets::mlp(784, &[256], 10));
        assert_eq!(c.train.epochs, 2);
        assert_eq!(c.incremental.chunks, 3);
        assert_eq!(c.checkpoint.every_steps, 50);
        assert_eq!(c.checkpoint.keep_last, 0);
        let back = RunConfig::from_toml(&c.to_toml().unwrap(), "resolved").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn empty_file_is_the_default_run_and_round_trips() {
        let c = RunConfig::from_toml("", "empty.toml").unwrap();
        let d = RunConfig::default();
        assert_eq!(c.model, d.model);
        assert_eq!(c.incremental.chunks, 5);
        assert_eq!(c.checkpoint.every_steps, 200);
        assert_eq!(c.data.validation_fraction, 0.1);
        d.validate().unwrap();
        let text = d.to_toml().unwrap();
        assert_eq!(RunConfig::from_toml(&text, "default").unwrap(), d);
    }

    #[test]
    fn optional_keys_parse_and_round_trip() {
        let text = r#"
[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
label_column = "y"
standardize = true
[model]
input = [2]
layers = [{ type = "dense", units = 8, activation = "tanh" }, { type = "dense", units = 3 }]
[optimizer]
type = "sgd"
lr = 0.1
schedule = { type = "cosine", warmup_steps = 10 }
[incremental]
chunks = 3
split_by = "class"
shuffle = true
rehearsal = { size = 100, per_batch = 16 }
[recovery]
[checkpoint]
every_steps = 0
keep_last = 3
[finetune]
from = "base.safetensors"
freeze = [0]
"#;
        let c = RunConfig::from_toml(text, "x.toml").unwrap();
        assert_eq!(c.data.label_column(), "y");
        assert_eq!(c.recovery, Some(RecoverySpec::default()));
        assert_eq!(c.incremental.rehearsal.as_ref().unwrap().per_batch, 16);
        assert_eq!(c.finetune.as_ref().unwrap().freeze, [0]);
        assert!(!c.model_spec().unwrap().layers[0].trainable());
        let back = RunConfig::from_toml(&c.to_toml().unwrap(), "resolved").unwrap();
        assert_eq!(back, c);
    }

    fn err(text: &str) -> String {
        RunConfig::from_toml(text, "bad.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_key_and_the_allowed_values() {
        let e = err("[data]\nformt = \"idx\"\n");
        assert!(e.starts_with("bad.toml: line 2, column 1: "), "{e}");
        assert!(e.contains("formt") && e.contains("format"), "{e}");
        let e = err("[data]\nformat = \"hdf5\"\n");
        assert!(
            e.contains("data.format") && e.contains("idx") && e.contains("csv"),
            "{e}"
        );
        let e = err("[optimizer]\ntype = \"adamx\"\n");
        assert!(e.contains("optimizer.type") && e.contains("adamw"), "{e}");
        let e = err("[model]\ninput = [784]\nlayers = [{ type = \"dense\", units = 10, activation = \"relux\" }]\n");
        assert!(e.contains("relux") && e.contains("leaky_relu"), "{e}");
        let e = err("[train]\nbatch_size = -3\n");
        assert!(e.contains("train.batch_size"), "{e}");
        let e = err("[train]\nbatch_size = 0\n");
        assert!(e.contains("train.batch_size: must be at least 1"), "{e}");
        let e = err("[data]\nvalidation_fraction = 1.5\n");
        assert!(
            e.contains("data.validation_fraction: 1.5 is outside [0, 1)"),
            "{e}"
        );
        let e = err("colour = 3\n");
        assert!(e.contains("colour") && e.contains("seed"), "{e}");
        let e = err("[data]\nformat = \"csv\"\n");
        assert!(e.contains("data.train_file: is required"), "{e}");
        let e = err("seed = \n");
        assert!(e.starts_with("bad.toml: line 1"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    const SPIRAL: &str = r#"{"seed":3,"model":{"input":[2],"layers":[{"type":"dense","units":16,"activation":"tanh"},{"type":"dense","units":2}]},"optimizer":{"type":"adam","lr":0.01},"train":{"batch_size":32,"epochs":2}}"#;

    fn err(text: &str) -> String {
        SessionSpec::from_json(text, "spec")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_session_spec_parses_with_defaults_and_round_trips() {
        let s = SessionSpec::from_json(SPIRAL, "spec").unwrap();
        assert_eq!(s.seed, 3);
        assert_eq!(s.model.outputs().unwrap(), 2);
        assert_eq!(s.train.batch_size, 32);
        assert_eq!(s.train.epochs, 2);
        assert!(!s.data.standardize && s.recovery.is_none());
        assert_eq!(SessionSpec::from_json(&s.to_json(), "again").unwrap(), s);
        // Only the model is required; the rest takes the run configuration's defaults.
        let m = SessionSpec::from_json(
            r#"{"model":{"input":[4],"layers":[{"type":"dense","units":3}]}}"#,
            "spec",
        )
        .unwrap();
        let d = RunConfig::default();
        assert_eq!(
            (m.seed, &m.optimizer, &m.train),
            (0, &d.optimizer, &d.train)
        );
        let full = SessionSpec::from_json(
            r#"{"model":{"input":[4],"layers":[{"type":"dense","units":3}]},"data":{"standardize":true},
                "incremental":{"rehearsal":{"size":50,"per_batch":8}},"recovery":{}}"#,
            "spec",
        )
        .unwrap();
        assert!(full.data.standardize);
        assert_eq!(full.incremental.rehearsal.as_ref().unwrap().per_batch, 8);
        assert_eq!(full.recovery, Some(RecoverySpec::default()));
        assert_eq!(full.run_config().model, full.model);
    }

    #[test]
    fn session_spec_errors_name_the_key_and_what_is_allowed() {
        let e = err(&SPIRAL.replace("\"dense\",\"units\":2", "\"dense2\",\"units\":2"));
        assert!(
            e.starts_with("spec: model.layers[1]")
                && e.contains("unknown variant `dense2`")
                && e.contains("conv2d"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"seed\":3", "\"seed\":3,\"colour\":1"));
        assert!(
            e.contains("unknown field `colour`") && e.contains("model"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"epochs\":2", "\"epoch\":2"));
        assert!(
            e.contains("train.epoch: unknown field `epoch`") && e.contains("epochs"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"seed\":3", "\"incremental\":{\"chunks\":3}"));
        assert!(
            e.contains("incremental.chunks: unknown field `chunks`, expected `rehearsal`"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"units\":16", "\"units\":\"16\""));
        assert!(
            e.contains("model.layers[0]") && e.contains("line 1 column"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"batch_size\":32", "\"batch_size\":0"));
        assert!(
            e.contains("spec: train.batch_size: must be at least 1"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"units\":2}", "\"units\":1}"));
        assert!(
            e.contains("model.layers: the last layer gives 1 output"),
            "{e}"
        );
        let e = err(r#"{"seed":1}"#);
        assert!(e.contains("missing field `model`"), "{e}");
        let e = err(&format!("{SPIRAL} x"));
        assert!(e.contains("trailing characters"), "{e}");
        let e = err("{\"model\": ");
        assert!(e.starts_with("spec: EOF while parsing"), "{e}");
    }

    #[test]
    fn arrays_become_a_dataset_or_a_message_that_says_what_to_pass() {
        let s = SessionSpec::from_json(SPIRAL, "spec").unwrap();
        let d = dataset_for_model(
            &s.model,
            vec![0.0, 1.0, 2.0, 3.0],
            Some(vec![1, 0]),
            "fitChunk",
        )
        .unwrap();
        assert_eq!(
            (d.len(), d.classes, d.sample_shape.clone()),
            (2, 2, vec![2])
        );
        let p = dataset_for_model(&s.model, vec![0.5; 6], None, "predict").unwrap();
        assert_eq!(p.labels, [0, 0, 0]);
        let e = |x: Vec<f32>, y: Option<Vec<u32>>| {
            dataset_for_model(&s.model, x, y, "fitChunk")
                .unwrap_err()
                .to_string()
        };
        let m = e(vec![], Some(vec![]));
        assert!(m.starts_with("fitChunk: no samples"), "{m}");
        let m = e(vec![0.0; 5], Some(vec![0, 0]));
        assert!(
            m.contains("5 feature values are not a whole number of samples") && m.contains("n × 2"),
            "{m}"
        );
        let m = e(vec![0.0; 6], Some(vec![0, 0]));
        assert!(m.contains("2 labels for 3 samples"), "{m}");
        let m = e(vec![0.0; 4], Some(vec![0, 2]));
        assert!(
            m.contains("label 2 of sample 1 is outside the model's 2 classes"),
            "{m}"
        );
        let m = e(vec![0.0, 0.0, f32::NAN, 0.0], Some(vec![0, 1]));
        assert!(m.contains("feature 0 of sample 1 is NaN"), "{m}");
    }
}
