//! `accrete eval` (loss, accuracy, per-class scores of a checkpoint on labelled data, one
//! JSON object) and `accrete predict` (class probabilities for unlabelled inputs, CSV).

use crate::run::io_failure;
use crate::Failure;
use accrete::checkpoint::{read_file, Checkpoint};
use accrete::config::{check_fits, RunConfig};
use accrete::data::{csv, idx, Dataset, Standardizer};
use accrete::report::evaluate;
use accrete::train::{GpuDataset, Trainer};
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

/// A trainer holding a checkpoint's model, with the checkpoint's preprocessing.
struct Loaded {
    config: RunConfig,
    trainer: Trainer,
    standardizer: Option<Standardizer>,
}

fn load(path: &Path) -> Result<(Gpu, Loaded), Failure> {
    let ckpt: Checkpoint = read_file(path)?;
    let config = RunConfig {
        model: ckpt.meta.model.clone(),
        ..RunConfig::default()
    };
    let standardizer = match &ckpt.meta.preprocessing {
        Some(p) => Some(Standardizer::from_json(p)?),
        None => None,
    };
    let gpu = pollster::block_on(Gpu::new())?;
    check_fits(&ckpt.meta.model, 1, gpu.max_binding_bytes())?;
    let trainer = Trainer::for_inference(&gpu, &ckpt)?;
    Ok((
        gpu,
        Loaded {
            config,
            trainer,
            standardizer,
        },
    ))
}

/// A batch size for inference that keeps the largest activation well inside the limits.
fn batch_for(l: &Loaded, gpu: &Gpu, n: usize) -> usize {
    let widest = l
        .config
        .model
        .shapes()
        .map(|s| {
            s.iter()
                .map(|x| x.output.iter().product::<usize>())
                .max()
                .unwrap_or(1)
        })
        .unwrap_or(1)
        .max(l.config.model.input_len());
    let cap = (gpu.max_binding_bytes() / 4 / widest as u64 / 4).max(1) as usize;
    n.clamp(1, 512).min(cap)
}

fn predict(gpu: &Gpu, l: &mut Loaded, data: &Dataset) -> Result<Vec<f32>, Failure> {
    let d = GpuDataset::upload(gpu, data)?;
    let batch = batch_for(l, gpu, data.len());
    Ok(pollster::block_on(l.trainer.predict(&d, batch))?)
}

pub fn eval(args: &EvalArgs) -> Result<(), Failure> {
    let (gpu, mut l) = load(&args.checkpoint)?;
    let classes = l.config.model.outputs()?;
    let (raw, name) = match &args.csv {
        Some(file) => {
            let opts = csv::CsvOptions {
                label_column: args.label_column.clone(),
                classes: Some(classes),
            };
            (csv::load(file, &opts)?, file.display().to_string())
        }
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(accrete::config::DEFAULT_DATA_DIR));
            let split = match args.split {
                SplitChoice::Test => idx::Split::Test,
                SplitChoice::Train => idx::Split::Train,
            };
            (
                idx::load_dir(&dir, split)?,
                format!(
                    "{} ({} split)",
                    dir.display(),
                    match args.split {
                        SplitChoice::Test => "test",
                        SplitChoice::Train => "train",
                    }
                ),
            )
        }
    };
    let mut data = l
        .config
        .fit_to_model(raw, args.limit.map(|n| n as usize), &name)?;
    if let Some(s) = &l.standardizer {
        s.apply(&mut data)?;
    }
    let probs = predict(&gpu, &mut l, &data)?;
    let e = evaluate(&data.labels, &probs, classes)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&e).expect("serialisable"))?;
    Ok(())
}

/// Whether `bytes` look like an IDX file (raw or gzip-compressed).
fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || (bytes.len() >= 4 && bytes[0] == 0 && bytes[1] == 0)
}

/// The samples of a prediction input, labels all 0.
fn read_inputs(path: &Path, label_column: &str, classes: usize) -> Result<Dataset, Failure> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| io_failure(path, e))?;
    if looks_like_idx(&bytes) {
        let a = idx::parse(&bytes, &name)?;
        if a.dims.len() < 2 {
            return Err(crate::data_failure(
                &name,
                format!(
                    "an IDX input must hold samples [n, ...], got dimensions {:?}",
                    a.dims
                ),
            ));
        }
        let n = a.dims[0];
        let features = a.data.iter().map(|&p| p as f32 / 255.0).collect();
        return Ok(Dataset::new(
            features,
            vec![0; n],
            a.dims[1..].to_vec(),
            classes,
        )?);
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        crate::data_failure(
            &name,
            format!(
                "neither an IDX file nor UTF-8 CSV text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let header = text
        .trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let has_label = header
        .split(',')
        .any(|c| c.trim().trim_matches('"') == label_column);
    let opts = csv::CsvOptions {
        label_column: label_column.to_string(),
        classes: None,
    };
    if has_label {
        let mut d = csv::parse(&text, &name, &opts)?;
        d.labels.iter_mut().for_each(|l| *l = 0);
        d.classes = classes;
        return Ok(d);
    }
    // No label column: add one of zeros (numeric tables have no quoted line breaks).
    let mut with_label = String::with_capacity(text.len() + text.len() / 8);
    let mut first = true;
    for line in text.lines() {
        with_label.push_str(line);
        if !line.trim().is_empty() {
            with_label.push_str(if first { ",__accrete_label" } else { ",0" });
            first = false;
        }
        with_label.push('\n');
    }
    let opts = csv::CsvOptions {
        label_column: "__accrete_label".into(),
        classes: None,
    };
    let mut d = csv::parse(&with_label, &name, &opts)?;
    d.classes = classes;
    Ok(d)
}

pub fn predict_cmd(args: &PredictArgs) -> Result<(), Failure> {
    let (gpu, mut l) = load(&args.checkpoint)?;
    let classes = l.config.model.outputs()?;
    let raw = read_inputs(&args.input, &args.label_column, classes)?;
    let mut data = l
        .config
        .fit_to_model(raw, None, &args.input.display().to_string())?;
    if let Some(s) = &l.standardizer {
        s.apply(&mut data)?;
    }
    let probs = predict(&gpu, &mut l, &data)?;
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
        Some(path) => {
            std::fs::write(path, text).map_err(|e| io_failure(path, e))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
