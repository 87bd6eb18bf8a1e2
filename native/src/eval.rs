//! `accrete eval` (loss, accuracy, per-class scores of a checkpoint on labelled data, one
//! JSON object) and `accrete predict` (class probabilities for unlabelled inputs, CSV).

use crate::Failure;
use accrete::config::RunConfig;
use accrete::data::{csv, idx, inputs, npy};
use accrete::input_file::same_file;
use accrete::input_file::InputKind;
use accrete::session::Session;
use accrete::train::Checkpoint;
use accrete::Gpu;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const EVAL_EXAMPLES: &str = "Examples:
  accrete eval runs/001/checkpoints/best.safetensors
  accrete eval model.safetensors --split train --limit 1000
  accrete eval model.safetensors --csv test.csv --label-column y
  accrete eval model.safetensors --data test.npz          (or .safetensors, .csv, .tsv, an image folder)
  accrete eval model.safetensors --data x_test.npy --labels y_test.npy

Prints one JSON object: samples, loss, accuracy, per_class (precision, recall, f1, support,
auc), macro_* and micro_* averages, macro_auc, top_confusions and the confusion matrix.";

pub const PREDICT_EXAMPLES: &str = "Examples:
  accrete predict model.safetensors --input t10k-images-idx3-ubyte.gz --output probs.csv
  accrete predict model.safetensors --input samples.csv        (a header row; a label column is ignored)
  accrete predict model.safetensors --input x.npy              (or .npz, .safetensors, .tsv, an image folder)

Writes one CSV row per sample with the header p0,p1,…,p(K-1): the class probabilities.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitChoice {
    Test,
    Train,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by `accrete train` (last.safetensors, best.safetensors, …).
    pub checkpoint: PathBuf,
    /// Folder with the IDX files (default: the Fashion-MNIST folder).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["csv", "data"])]
    pub data_dir: Option<PathBuf>,
    /// Which IDX split to evaluate on.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitChoice,
    /// A CSV table (header row, a label column) instead of IDX files.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub csv: Option<PathBuf>,
    /// Labelled data of any format, recognised by its content: a CSV/TSV table, an .npz or
    /// safetensors file with features and labels arrays, an .npy features array (with
    /// --labels), or an image folder (one subfolder per class, named as in training).
    #[arg(long, value_name = "FILE|DIR")]
    pub data: Option<PathBuf>,
    /// The .npy labels array of an .npy --data file.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub labels: Option<PathBuf>,
    /// The CSV column holding the class indices.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Use only the first N samples.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by `accrete train`.
    pub checkpoint: PathBuf,
    /// The samples: a CSV table with a header row, or an IDX image file (raw or .gz).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the probabilities (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A column of the CSV to ignore as the label, if present.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// How to read the data files of eval and predict.
#[derive(Args, Debug)]
pub struct FormatArgs {
    /// The CSV field delimiter: one ASCII character, "\t" (or "tab") for TSV. Default
    /// ",", or a tab for files named *.tsv.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// The features array of an .npz or safetensors file.
    #[arg(long, value_name = "NAME", default_value = accrete::defaults::FEATURES_KEY)]
    pub features_key: String,
    /// The labels array of an .npz or safetensors file.
    #[arg(long, value_name = "NAME", default_value = accrete::defaults::LABELS_KEY)]
    pub labels_key: String,
}

impl FormatArgs {
    /// The reading options for `file`.
    fn options(
        &self,
        file: &Path,
        label_column: &str,
        require_labels: bool,
        classes: usize,
    ) -> Result<inputs::InputOptions, Failure> {
        let tsv = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
        let delimiter = match self.delimiter.as_deref() {
            None if tsv => b'\t',
            None => b',',
            Some("\\t" | "tab" | "\t") => b'\t',
            Some(d) => accrete::config::DataConfig {
                delimiter: Some(d.to_string()),
                ..Default::default()
            }
            .delimiter_byte()
            .map_err(|e| crate::data_failure("--delimiter", e))?,
        };
        Ok(inputs::InputOptions {
            label_column: label_column.to_string(),
            delimiter,
            names: accrete::data::ArrayNames {
                features: self.features_key.clone(),
                labels: self.labels_key.clone(),
            },
            require_labels,
            classes: Some(classes),
        })
    }
}

/// The session of a checkpoint, for inference, and the run configuration its data is fitted
/// by (the checkpoint's model, every other key at its default).
fn load(path: &Path) -> Result<(Session, RunConfig), Failure> {
    let ckpt = Checkpoint::read_file(path)?;
    let config = RunConfig {
        model: ckpt.meta.model.clone(),
        ..RunConfig::default()
    };
    let gpu = pollster::block_on(Gpu::new())?;
    Ok((Session::for_inference(&gpu, &ckpt)?, config))
}

pub fn eval(args: &EvalArgs) -> Result<(), Failure> {
    let (mut session, config) = load(&args.checkpoint)?;
    let classes = config.model.outputs()?;
    let (raw, name) = match (&args.csv, &args.data) {
        (Some(file), _) => {
            let opts = csv::CsvOptions {
                label_column: args.label_column.clone(),
                classes: Some(classes),
                require_label: true,
                delimiter: args
                    .format
                    .options(file, &args.label_column, true, classes)?
                    .delimiter,
            };
            (csv::load(file, &opts)?, file.display().to_string())
        }
        (None, Some(file)) => {
            let name = file.display().to_string();
            let data = match &args.labels {
                Some(labels) => {
                    let read = |p: &Path| accrete::input_file::read(p, InputKind::Data);
                    let lname = labels.display().to_string();
                    npy::npy_dataset(&read(file)?, &read(labels)?, &name, &lname, Some(classes))?
                }
                None => {
                    let opts = args
                        .format
                        .options(file, &args.label_column, true, classes)?;
                    inputs::load_inputs(file, &opts, config.image_shape().ok())?.data
                }
            };
            (data, name)
        }
        (None, None) => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(accrete::defaults::DATA_DIR));
            let (split, split_name) = match args.split {
                SplitChoice::Test => (idx::Split::Test, "test"),
                SplitChoice::Train => (idx::Split::Train, "train"),
            };
            (
                idx::load_dir(&dir, split)?,
                format!("{} ({split_name} split)", dir.display()),
            )
        }
    };
    let data = config.fit_to_model(raw, args.limit.map(|n| n as usize), &name)?;
    let data = session.prepare(data, false, &name)?;
    let e = pollster::block_on(session.evaluate(&data))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&e).expect("serialisable"))?;
    Ok(())
}

pub fn predict_cmd(args: &PredictArgs) -> Result<(), Failure> {
    if let Some(out) = &args.output {
        if same_file(out, &args.checkpoint) || same_file(out, &args.input) {
            return Err(crate::data_failure(
                out.display().to_string(),
                "is one of the command's inputs; writing the probabilities there would destroy it: choose another --output",
            ));
        }
    }
    let (mut session, config) = load(&args.checkpoint)?;
    let classes = config.model.outputs()?;
    let name = args.input.display().to_string();
    let opts = args
        .format
        .options(&args.input, &args.label_column, false, classes)?;
    let mut raw = inputs::load_inputs(&args.input, &opts, config.image_shape().ok())?.data;
    // Labels, if the file had a column of them, are not used: predictions need none.
    raw.labels.iter_mut().for_each(|l| *l = 0);
    raw.classes = classes;
    let data = config.fit_to_model(raw, None, &name)?;
    let data = session.prepare(data, false, &name)?;
    let probs = pollster::block_on(session.predict(&data))?;
    let mut text = String::with_capacity(probs.len() * 12);
    let header: Vec<String> = (0..classes).map(|c| format!("p{c}")).collect();
    text += &header.join(",");
    text.push('\n');
    for row in probs.chunks(classes) {
        let cells: Vec<String> = row.iter().map(|p| p.to_string()).collect();
        text += &cells.join(",");
        text.push('\n');
    }
    match &args.output {
        Some(path) => accrete::checkpoint::write_atomic(path, text.as_bytes())?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
