//! `accrete eval` (loss, accuracy, per-class scores of a checkpoint on labelled data, one
//! JSON object) and `accrete predict` (class probabilities for unlabelled inputs, CSV).

use crate::Failure;
use accrete::config::RunConfig;
use accrete::data::{csv, idx, inputs};
use accrete::input_file::same_file;
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

Prints one JSON object: samples, loss, accuracy, per_class (precision, recall, f1, support,
auc), macro_* and micro_* averages, macro_auc, top_confusions and the confusion matrix.";

pub const PREDICT_EXAMPLES: &str = "Examples:
  accrete predict model.safetensors --input t10k-images-idx3-ubyte.gz --output probs.csv
  accrete predict model.safetensors --input samples.csv        (a header row; a label column is ignored)

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
    #[arg(long, value_name = "DIR", conflicts_with = "csv")]
    pub data_dir: Option<PathBuf>,
    /// Which IDX split to evaluate on.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitChoice,
    /// A CSV table (header row, a label column) instead of IDX files.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The CSV column holding the class indices.
    #[arg(long, default_value = "label")]
    pub label_column: String,
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
    let (raw, name) = match &args.csv {
        Some(file) => {
            let opts = csv::CsvOptions {
                label_column: args.label_column.clone(),
                classes: Some(classes),
                require_label: true,
            };
            (csv::load(file, &opts)?, file.display().to_string())
        }
        None => {
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
    let mut raw = inputs::load_inputs(&args.input, &args.label_column)?.data;
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
