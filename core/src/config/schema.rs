//! The run configuration's tables and keys. Every key documents its default; the values
//! come from [`crate::defaults`].

use crate::data::SplitBy;
use crate::defaults;
use crate::error::Result;
use crate::nn::{presets, ModelSpec};
use crate::optim::OptimizerSpec;
use crate::train::{ChunkSetting, RecoverySpec, RehearsalSpec, TrainSpec};
use serde::{Deserialize, Serialize};

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

fn default_model() -> ModelSpec {
    presets::mlp(784, &[defaults::MODEL_HIDDEN], 10)
}
/// The optimizer a config or browser spec gets when it names none (Adam at `defaults::LR`).
pub(super) fn default_optimizer() -> OptimizerSpec {
    OptimizerSpec::adam(defaults::LR)
}
fn default_fraction() -> f64 {
    defaults::VALIDATION_FRACTION
}
fn yes() -> bool {
    defaults::STRATIFIED
}
fn default_chunks() -> usize {
    defaults::CHUNKS
}
fn default_every_steps() -> u64 {
    defaults::CHECKPOINT_EVERY_STEPS
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// A whole run. Top-level keys: `seed`, then the tables `[data]`, `[model]`, `[optimizer]`,
/// `[train]`, `[incremental]`, `[recovery]`, `[checkpoint]`, `[finetune]`, `[parallel]`.
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
    /// `[parallel]`: data-parallel training over several devices (default: off, one
    /// device; see [`super::ParallelConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<super::ParallelConfig>,
}

/// The file formats `[data] format` accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, …) in `dir`.
    #[default]
    Idx,
    /// CSV (or TSV: `delimiter = "\t"`) tables with a header row: `train_file` (and
    /// optionally `test_file`).
    Csv,
    /// NumPy `.npy` arrays: features `train_file` and labels `train_labels_file` (and
    /// `test_file`, `test_labels_file`).
    Npy,
    /// NumPy `.npz` archives (`np.savez`, `np.savez_compressed`) holding the arrays
    /// `features_key` and `labels_key`: `train_file` (and `test_file`).
    Npz,
    /// safetensors files holding the tensors `features_key` and `labels_key`: `train_file`
    /// (and `test_file`).
    Safetensors,
    /// Folders of PNG/JPEG images, one subfolder per class: `train_dir` (and `test_dir`).
    ImageFolder,
}

impl DataFormat {
    /// The `format = "…"` spelling.
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::Idx => "idx",
            DataFormat::Csv => "csv",
            DataFormat::Npy => "npy",
            DataFormat::Npz => "npz",
            DataFormat::Safetensors => "safetensors",
            DataFormat::ImageFolder => "image_folder",
        }
    }
}

/// `[data] image_color`: the channels image-folder samples get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageColor {
    /// One channel (luma).
    Grey,
    /// Three channels, red, green, blue.
    Rgb,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `"idx"`, `"csv"`, `"npy"`, `"npz"`, `"safetensors"` or `"image_folder"` (default "idx").
    #[serde(default)]
    pub format: DataFormat,
    /// idx: the folder with the four IDX files (default
    /// "/usr/share/datasets/fashion-mnist").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// csv, npy, npz, safetensors: the training file (required; for npy the features
    /// array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_file: Option<String>,
    /// csv, npy, npz, safetensors: the test file (default: none; the report then uses the
    /// validation split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<String>,
    /// npy: the training labels array (required with format = "npy").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_labels_file: Option<String>,
    /// npy: the test labels array (required with test_file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_labels_file: Option<String>,
    /// npz, safetensors: the array holding the features (default "features").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_key: Option<String>,
    /// npz, safetensors: the array holding the class indices (default "labels").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_key: Option<String>,
    /// csv: the character between fields (default ","; "\t" for TSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// image_folder: the training folder, one subfolder of images per class (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_dir: Option<String>,
    /// image_folder: the test folder, with subfolders named as the training folder's
    /// (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_dir: Option<String>,
    /// image_folder: [height, width] images are resized to (default: from model.input
    /// [channels, height, width]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[usize; 2]>,
    /// image_folder: "grey" or "rgb" (default: from model.input's channels, 1 or 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_color: Option<ImageColor>,
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
            train_labels_file: None,
            test_labels_file: None,
            features_key: None,
            labels_key: None,
            delimiter: None,
            train_dir: None,
            test_dir: None,
            image_size: None,
            image_color: None,
            label_column: None,
            standardize: false,
            train_limit: None,
            test_limit: None,
            validation_fraction: default_fraction(),
            stratified: defaults::STRATIFIED,
            class_names: None,
        }
    }
}

impl DataConfig {
    /// The IDX folder (`dir`, or the default).
    pub fn idx_dir(&self) -> &str {
        self.dir.as_deref().unwrap_or(defaults::DATA_DIR)
    }

    /// The CSV label column (`label_column`, or "label").
    pub fn label_column(&self) -> &str {
        self.label_column
            .as_deref()
            .unwrap_or(defaults::LABEL_COLUMN)
    }

    /// The arrays of an `.npz` or safetensors file (`features_key`, `labels_key`).
    pub fn array_names(&self) -> crate::data::ArrayNames {
        let d = crate::data::ArrayNames::default();
        crate::data::ArrayNames {
            features: self.features_key.clone().unwrap_or(d.features),
            labels: self.labels_key.clone().unwrap_or(d.labels),
        }
    }

    /// The CSV delimiter byte (`delimiter`, or ','); `Err` names what is wrong with it.
    pub fn delimiter_byte(&self) -> std::result::Result<u8, String> {
        match self.delimiter.as_deref() {
            None => Ok(b','),
            Some(d) if d.len() == 1 && d.is_ascii() && !matches!(d, "\"" | "\n" | "\r") => {
                Ok(d.as_bytes()[0])
            }
            Some(d) => Err(format!(
                "{d:?} is not one ASCII character other than a quote or a line break; use e.g. \",\", \";\" or \"\\t\" (TSV)"
            )),
        }
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
    /// `logit_weight` (α) and `label_weight` (β) turn it into Dark Experience Replay: the
    /// buffer keeps each sample's logits and replayed rows add α·MSE(logits) (DER) and
    /// β·CE(labels) (DER++), e.g. `{ size = 2000, per_batch = 128, logit_weight = 0.5,
    /// label_weight = 0.5 }` (see [`RehearsalSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalSpec>,
    /// Learning without Forgetting: every chunk after the first distils from the model as
    /// it was at the chunk's start, e.g. `lwf = { weight = 1.0, temperature = 2.0 }` (the
    /// defaults; see [`crate::train::LwfSpec`]) (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwf: Option<crate::train::LwfSpec>,
    /// Elastic Weight Consolidation: at every chunk's end the diagonal empirical Fisher is
    /// estimated from per-sample gradients and later chunks are penalised by
    /// (λ/2)·Σ F (θ − θ*)², e.g. `ewc = { weight = 100.0, decay = 1.0, samples = 1000 }`
    /// (the defaults; decay < 1 = online EWC; see [`crate::train::EwcSpec`]) (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewc: Option<crate::train::EwcSpec>,
    /// A-GEM: a memory of `size` earlier samples; every step of a later chunk takes a
    /// reference gradient on `per_batch` of them and, when the step's gradient conflicts
    /// with it, projects it, e.g. `agem = { size = 2000, per_batch = 256 }` (per_batch
    /// default 256; see [`crate::train::AgemSpec`]) (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agem: Option<crate::train::AgemSpec>,
    /// Hyper-parameters that change at the start of a chunk (1-based) and hold from there
    /// on: `[[incremental.schedule]]` tables of `chunk = 3, lr = 5e-4, epochs = 2`; each
    /// change is recorded in the history (default: none; see [`crate::train::hyper`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ChunkSetting>,
}

impl Default for IncrementalConfig {
    fn default() -> Self {
        IncrementalConfig {
            chunks: default_chunks(),
            split_by: SplitBy::Count,
            shuffle: false,
            rehearsal: None,
            lwf: None,
            ewc: None,
            agem: None,
            schedule: Vec::new(),
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
            keep_last: defaults::CHECKPOINT_KEEP_LAST,
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
            seed: defaults::SEED,
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
            parallel: None,
        }
    }
}

impl RunConfig {
    /// The same run with every default that depends on other keys written out (the IDX
    /// folder), as saved in a run directory.
    pub fn resolved(&self) -> RunConfig {
        let mut c = self.clone();
        if c.data.format == DataFormat::Idx && c.data.dir.is_none() {
            c.data.dir = Some(defaults::DATA_DIR.to_string());
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

    /// The epochs of each chunk: `train.epochs`, changed by `[[incremental.schedule]]` and
    /// by the `train.epochs` changes of `history` ([`crate::train::hyper::chunk_epochs`]).
    pub fn chunk_epochs(&self, history: &[crate::train::Event]) -> Vec<usize> {
        crate::train::hyper::chunk_epochs(
            self.train.epochs,
            &self.incremental.schedule,
            history,
            self.incremental.chunks,
        )
    }

    /// A display name for class `c`: `data.class_names`, else the Fashion-MNIST names for
    /// the IDX files in [`defaults::DATA_DIR`], else the number.
    pub fn class_name(&self, c: usize) -> String {
        let fashion = self.data.format == DataFormat::Idx
            && self.data.idx_dir() == defaults::DATA_DIR
            && self.model.outputs().ok() == Some(FASHION_MNIST_CLASSES.len());
        match &self.data.class_names {
            Some(names) => names.get(c).cloned(),
            None if fashion => FASHION_MNIST_CLASSES.get(c).map(|s| s.to_string()),
            #[cfg(not(target_arch = "wasm32"))]
            None if self.data.format == DataFormat::ImageFolder => self
                .data
                .train_dir
                .as_deref()
                .and_then(|d| crate::data::images::class_names(std::path::Path::new(d)).ok())
                .and_then(|n| n.get(c).cloned()),
            None => None,
        }
        .unwrap_or_else(|| c.to_string())
    }
}
