//! `accrete train` and `accrete resume`: a run directory with the resolved configuration,
//! per-epoch metrics, atomic checkpoints and, at the end, a report.
//!
//! ```text
//! DIR/config.toml                    the resolved configuration (every default filled in)
//! DIR/metrics.jsonl                  one JSON object per epoch (train and validation)
//! DIR/checkpoints/last.safetensors   the latest checkpoint (every N steps, every epoch)
//! DIR/checkpoints/best.safetensors   the epoch with the best validation accuracy
//! DIR/checkpoints/step-N.safetensors the last `keep_last` checkpoints, when configured
//! DIR/report/                        report.md, evaluation.json, PNG and SVG charts
//! ```
//!
//! All the logic of a run (configuration, data preparation, training, metrics) is in the
//! core crate; this module does the files, the terminal and Ctrl-C.

use crate::progress::{Display, Mode};
use crate::{report, Failure};
use accrete::checkpoint::{read_file, weights_from_bytes, write_atomic, Checkpoint};
use accrete::config::{check_fits, Prepared, RunConfig};
use accrete::data::Dataset;
use accrete::report::{best_validation, MetricsRow};
use accrete::train::{ChunkOptions, ChunkOutcome, Control, Observer, Progress, Stats, Trainer};
use accrete::{Error, Gpu};
use clap::Args;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CHECKPOINT_DIR: &str = "checkpoints";
pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";

/// Set by the first Ctrl-C: the observer then asks the trainer to stop.
static STOP: AtomicBool = AtomicBool::new(false);

pub const TRAIN_EXAMPLES: &str = "Examples:
  accrete train                                   the built-in run: Fashion-MNIST, MLP 784-256-10,
                                                  5 incremental chunks, into runs/001 (or the next free number)
  accrete train --config run.toml --out runs/exp1
  accrete train --config run.toml --quiet         no progress output
  accrete resume runs/exp1                        continue after Ctrl-C, a crash or a kill

Ctrl-C stops after a checkpoint (exit status 130) and tells how to resume; a second Ctrl-C
quits at once, keeping the last checkpoint. Exit status 2 on any error.";

pub const RESUME_EXAMPLES: &str = "Examples:
  accrete resume runs/001           continue exactly where the last checkpoint left off

The chunks are rebuilt from DIR/config.toml and its seed; finished chunks are skipped and a
chunk that was interrupted continues at the step after the checkpoint.";

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The run configuration (TOML); default: the built-in run.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The run directory to create; default: runs/NNN, the next free number.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run directory (holds config.toml and checkpoints/last.safetensors).
    pub dir: PathBuf,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

pub fn io_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Accrete(Error::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Reads and validates a configuration file.
pub fn read_config(path: &Path) -> Result<RunConfig, Failure> {
    let text = fs::read_to_string(path).map_err(|e| io_failure(path, e))?;
    Ok(RunConfig::from_toml(&text, &path.display().to_string())?)
}

/// Reads the data a configuration names and prepares it (limits, split, chunks).
pub fn prepare(config: &RunConfig) -> Result<Prepared, Failure> {
    let (train, test) = config.load_data()?;
    Ok(config.prepare(train, test)?)
}

fn is_empty_dir(dir: &Path) -> Result<bool, Failure> {
    Ok(fs::read_dir(dir)
        .map_err(|e| io_failure(dir, e))?
        .next()
        .is_none())
}

/// Refuses an existing non-empty `--out` before any work is done.
fn check_out(out: &Path) -> Result<(), Failure> {
    if out.exists() {
        if !out.is_dir() {
            return Err(io_failure(
                out,
                "exists and is not a directory; choose another --out",
            ));
        }
        if !is_empty_dir(out)? {
            return Err(io_failure(
                out,
                format!(
                    "already holds files (an earlier run?); choose another --out, or continue that run with `accrete resume {}`",
                    out.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Creates the run directory: `out`, or `runs/NNN` with the first free number.
fn claim(out: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(out) = out {
        check_out(out)?;
        fs::create_dir_all(out).map_err(|e| io_failure(out, e))?;
        return Ok(out.to_path_buf());
    }
    let base = Path::new("runs");
    fs::create_dir_all(base).map_err(|e| io_failure(base, e))?;
    for n in 1..100_000 {
        let dir = base.join(format!("{n:03}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_failure(&dir, e)),
        }
    }
    Err(io_failure(base, "no free run number; pass --out"))
}

/// Rows per training batch: new samples plus replayed ones.
fn batch_rows(config: &RunConfig) -> usize {
    config.train.batch_size
        + config
            .incremental
            .rehearsal
            .as_ref()
            .map_or(0, |r| r.per_batch)
}

/// A fresh trainer for `config`: checks the device limits, builds the model, loads the
/// `[finetune]` weights.
fn new_trainer(gpu: &Gpu, config: &RunConfig, display: &Display) -> Result<Trainer, Failure> {
    let spec = config.model_spec()?;
    check_fits(&spec, batch_rows(config), gpu.max_binding_bytes())?;
    let mut t = Trainer::new(
        gpu,
        spec,
        config.optimizer.clone(),
        config.train.clone(),
        config.seed,
    )?;
    if let Some(ft) = &config.finetune {
        let path = Path::new(&ft.from);
        let bytes = fs::read(path).map_err(|e| io_failure(path, e))?;
        let source = weights_from_bytes(&bytes, &ft.from)?;
        let rep = t.load_weights(&source)?;
        if rep.loaded.is_empty() {
            let have: Vec<String> = source
                .iter()
                .filter(|s| !s.name.starts_with("optimizer."))
                .map(|s| format!("{} {:?}", s.name, s.shape))
                .collect();
            return Err(crate::data_failure(
                &ft.from,
                format!(
                    "no tensor matches the model (it holds {}); it was saved from another architecture: change [model] or finetune.from",
                    if have.is_empty() { "no weights".to_string() } else { have.join(", ") }
                ),
            ));
        }
        display.line(&format!(
            "fine-tuning from {}: loaded {}; re-initialised {}; frozen layers {:?}",
            ft.from,
            rep.loaded.join(", "),
            if rep.reinitialized.is_empty() {
                "none".to_string()
            } else {
                rep.reinitialized
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            rep.frozen
        ));
    }
    Ok(t)
}

pub fn train(args: &TrainArgs) -> Result<(), Failure> {
    let config = match &args.config {
        Some(p) => read_config(p)?,
        None => RunConfig::default(),
    }
    .resolved();
    if let Some(out) = &args.out {
        check_out(out)?;
    }
    let display = Display::new(
        Mode::detect(args.quiet),
        config.incremental.chunks,
        config.train.epochs,
    );
    let data = prepare(&config)?;
    let gpu = pollster::block_on(Gpu::new())?;
    let trainer = new_trainer(&gpu, &config, &display)?;
    let dir = claim(args.out.as_deref())?;
    let text = format!(
        "# The resolved configuration of this run (`accrete resume` reads it).\n{}",
        config.to_toml()?
    );
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())?;
    display.line(&format!(
        "run directory {} · {} training samples in {} chunk{} · {} validation · adapter {}",
        dir.display(),
        data.train.len(),
        data.chunks.len(),
        if data.chunks.len() == 1 { "" } else { "s" },
        data.validation.as_ref().map_or(0, Dataset::len),
        gpu.summary().name
    ));
    run(&gpu, &config, &data, &dir, trainer, display, Vec::new())
}

pub fn resume(args: &ResumeArgs) -> Result<(), Failure> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(io_failure(
            dir,
            "no such run directory (give the --out folder of an `accrete train` run)",
        ));
    }
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.exists() {
        return Err(io_failure(
            &config_path,
            "not found; is this a run directory made by `accrete train`?",
        ));
    }
    let config = read_config(&config_path)?;
    let last = dir.join(CHECKPOINT_DIR).join(LAST);
    let ckpt = if last.exists() {
        let c = read_file(&last)?;
        check_matches(&c, &config, &last)?;
        Some(c)
    } else {
        None
    };
    let display = Display::new(
        Mode::detect(args.quiet),
        config.incremental.chunks,
        config.train.epochs,
    );
    let data = prepare(&config)?;
    let gpu = pollster::block_on(Gpu::new())?;
    let trainer = match &ckpt {
        Some(c) => {
            check_fits(
                &c.meta.model,
                config.train.batch_size,
                gpu.max_binding_bytes(),
            )?;
            Trainer::from_checkpoint(&gpu, c)?
        }
        None => new_trainer(&gpu, &config, &display)?,
    };
    let rows = kept_metrics(dir, trainer.step, ckpt.is_some())?;
    let cur = &trainer.cursor;
    display.line(&format!(
        "resuming {} at chunk {}/{}, epoch {}, step {}{}",
        dir.display(),
        (cur.chunk + 1).min(data.chunks.len() as u64),
        data.chunks.len(),
        cur.epoch_in_chunk + 1,
        trainer.step,
        if ckpt.is_none() {
            " (no checkpoint yet: starting over)"
        } else {
            ""
        }
    ));
    run(&gpu, &config, &data, dir, trainer, display, rows)
}

/// Refuses a checkpoint written for another configuration.
fn check_matches(c: &Checkpoint, config: &RunConfig, path: &Path) -> Result<(), Failure> {
    let m = &c.meta;
    let spec = config.model_spec()?;
    let mismatch = if m.model != spec {
        Some(format!(
            "its model (input {:?}, {} layers) is not the one in config.toml (input {:?}, {} layers)",
            m.model.input,
            m.model.layers.len(),
            spec.input,
            spec.layers.len()
        ))
    } else if m.optimizer != config.optimizer {
        Some("its optimizer differs from config.toml's".to_string())
    } else if m.train != config.train {
        Some("its [train] settings differ from config.toml's".to_string())
    } else if m.seed != config.seed {
        Some(format!(
            "its seed {} differs from config.toml's {}",
            m.seed, config.seed
        ))
    } else {
        None
    };
    match mismatch {
        Some(why) => Err(crate::data_failure(
            path.display().to_string(),
            format!("this checkpoint belongs to another run: {why}; restore the run's config.toml or start a new run"),
        )),
        None => Ok(()),
    }
}

/// The metrics rows a resumed run keeps: those up to the checkpoint's step (later ones
/// are trained again). Rewrites the file when rows are dropped.
fn kept_metrics(dir: &Path, step: u64, has_ckpt: bool) -> Result<Vec<MetricsRow>, Failure> {
    let path = dir.join(METRICS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_failure(&path, e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut rows = Vec::new();
    for l in &lines {
        // A line cut short by a kill parses as nothing and is dropped.
        if let Ok(r) = serde_json::from_str::<MetricsRow>(l) {
            if has_ckpt && r.step <= step {
                rows.push(r);
            }
        }
    }
    if rows.len() != lines.len() {
        let mut out = String::new();
        for r in &rows {
            out += &serde_json::to_string(r).expect("serialisable");
            out.push('\n');
        }
        write_atomic(&path, out.as_bytes())?;
    }
    Ok(rows)
}

/// Report every this many steps: often enough for a smooth bar and a prompt Ctrl-C.
fn report_every(steps_in_epoch: u64, mode: Mode) -> u64 {
    let parts = match mode {
        Mode::Bars => 50,
        Mode::Lines => 5,
        Mode::Quiet => 20,
    };
    (steps_in_epoch / parts).max(1)
}

fn install_ctrlc(dir: &Path) {
    let dir = dir.display().to_string();
    let _ = ctrlc::set_handler(move || {
        if STOP.swap(true, Ordering::SeqCst) {
            let _ = writeln!(
                std::io::stderr(),
                "\ninterrupted again: quitting now; the last checkpoint is kept, continue with `accrete resume {dir}`"
            );
            std::process::exit(130);
        }
        // The observer says so at its next report, through the progress display.
    });
}

#[allow(clippy::too_many_arguments)]
fn run(
    gpu: &Gpu,
    config: &RunConfig,
    data: &Prepared,
    dir: &Path,
    mut trainer: Trainer,
    mut display: Display,
    rows: Vec<MetricsRow>,
) -> Result<(), Failure> {
    trainer.recovery = config.recovery.clone();
    if let Some(r) = &config.incremental.rehearsal {
        trainer.enable_rehearsal(r.clone());
    }
    let b = config.train.batch_size as u64;
    let epochs = config.train.epochs as u64;
    let steps_of = |c: &Dataset| (c.len() as u64).div_ceil(b);
    let total: u64 = data.chunks.iter().map(|c| steps_of(c) * epochs).sum();
    // The trainer validates after every epoch (feeding reduce-on-plateau and early
    // stopping); the observer logs it.
    trainer.set_validation(data.validation.as_ref())?;
    let ckpt_dir = dir.join(CHECKPOINT_DIR);
    fs::create_dir_all(&ckpt_dir).map_err(|e| io_failure(&ckpt_dir, e))?;
    install_ctrlc(dir);
    display.start(total, trainer.step);
    let start_chunk = trainer.cursor.chunk as usize;
    let outcome = {
        let mut obs = RunObserver {
            config,
            dir,
            ckpt_dir: &ckpt_dir,
            display: &mut display,
            val: None,
            best: best_validation(&rows).map(|(a, _)| a),
            pending: None,
            chunk: 0,
            chunks: data.chunks.len(),
            preprocessing: data.standardizer.as_ref().map(|s| s.to_json()),
            last: None,
        };
        let mut outcome = Ok(None);
        for (i, chunk) in data.chunks.iter().enumerate().skip(start_chunk) {
            obs.chunk = i;
            let opts = ChunkOptions {
                report_every_steps: Some(report_every(steps_of(chunk), obs.display.mode)),
                checkpoint_every_steps: Some(config.checkpoint.every_steps),
            };
            match pollster::block_on(trainer.fit_chunk_with(chunk, &opts, &mut obs)) {
                Ok(ChunkOutcome::Done(_)) => {}
                Ok(ChunkOutcome::Stopped) => {
                    outcome = Ok(Some(obs.last));
                    break;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        outcome
    };
    display.finish();
    match outcome? {
        Some(at) => {
            let (chunk, epoch, step) = at.unwrap_or((
                trainer.cursor.chunk,
                trainer.cursor.epoch_in_chunk,
                trainer.step,
            ));
            Err(Failure::Interrupted(format!(
                "interrupted at chunk {}/{}, epoch {}, step {step}; the checkpoint is {}. Continue with: accrete resume {}",
                (chunk + 1).min(data.chunks.len() as u64),
                data.chunks.len(),
                epoch + 1,
                ckpt_dir.join(LAST).display(),
                dir.display()
            )))
        }
        None => {
            let summary = report::write_report(gpu, dir, config, data, LAST)?;
            display.line(&format!(
                "done: {} accuracy {:.2}% on {} samples; report in {}",
                summary.data_name,
                100.0 * summary.accuracy,
                summary.samples,
                summary.report_md.display()
            ));
            Ok(())
        }
    }
}

/// Writes checkpoints, evaluates the validation split at each epoch end, logs metrics
/// and progress, and turns Ctrl-C into [`Control::Stop`].
struct RunObserver<'a> {
    config: &'a RunConfig,
    dir: &'a Path,
    ckpt_dir: &'a Path,
    display: &'a mut Display,
    /// The validation stats of the epoch that just ended, until its checkpoint arrives.
    val: Option<Stats>,
    best: Option<f64>,
    /// The stats of an epoch that just ended, until its checkpoint arrives.
    pending: Option<Stats>,
    chunk: usize,
    chunks: usize,
    preprocessing: Option<serde_json::Value>,
    /// (chunk, epoch in chunk, step) of the last checkpoint.
    last: Option<(u64, u64, u64)>,
}

impl RunObserver<'_> {
    fn append_metrics(&self, row: &MetricsRow) -> accrete::Result<()> {
        let path = self.dir.join(METRICS_FILE);
        let io = |e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut line = serde_json::to_string(row).expect("serialisable");
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// Keeps the `keep_last` newest `step-N.safetensors`.
    fn rotate(&self, bytes: &[u8], step: u64) -> accrete::Result<()> {
        let keep = self.config.checkpoint.keep_last;
        if keep == 0 {
            return Ok(());
        }
        write_atomic(
            &self.ckpt_dir.join(format!("step-{step}.safetensors")),
            bytes,
        )?;
        let mut steps: Vec<u64> = fs::read_dir(self.ckpt_dir)
            .map_err(|e| Error::Io {
                path: self.ckpt_dir.display().to_string(),
                detail: e.to_string(),
            })?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("step-")?
                    .strip_suffix(".safetensors")?
                    .parse()
                    .ok()
            })
            .collect();
        steps.sort_unstable();
        for s in &steps[..steps.len().saturating_sub(keep)] {
            let _ = fs::remove_file(self.ckpt_dir.join(format!("step-{s}.safetensors")));
        }
        Ok(())
    }
}

impl Observer for RunObserver<'_> {
    fn progress(&mut self, p: &Progress) -> Control {
        self.display.progress(p);
        if STOP.load(Ordering::SeqCst) {
            self.display
                .line("Ctrl-C: stopping after a checkpoint (press it again to quit at once)");
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn epoch_end(&mut self, stats: &Stats) {
        self.pending = Some(*stats);
    }

    fn validated(&mut self, val: &Stats) {
        self.val = Some(*val);
    }

    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        let mut c = c.clone();
        c.meta.preprocessing = self.preprocessing.clone();
        let bytes = c.to_bytes()?;
        let m = &c.meta;
        if let Some(stats) = self.pending.take() {
            // The checkpoint at the end of an epoch: validate, log, keep the best.
            let val = self.val.take();
            let epochs = self.config.train.epochs as u64;
            let epoch_in_chunk = if m.cursor.chunk as usize > self.chunk {
                epochs
            } else {
                m.cursor.epoch_in_chunk
            };
            let lr = m
                .history
                .iter()
                .rev()
                .find(|h| h.get("event").is_none())
                .and_then(|h| h["lr"].as_f64())
                // The rate is an f32: write its shortest decimal form (0.001, not 0.0010000000474974513).
                .map(|lr| (lr as f32).to_string().parse().unwrap_or(lr))
                .unwrap_or(f64::NAN);
            let row = MetricsRow {
                chunk: self.chunk as u64,
                epoch: m.epoch,
                epoch_in_chunk,
                step: m.step,
                train_loss: stats.loss,
                train_accuracy: stats.accuracy,
                val_loss: val.map(|v| v.loss),
                val_accuracy: val.map(|v| v.accuracy),
                lr,
                samples_per_sec: stats.samples_per_second(),
                loss_scale: m.loss_scale.as_ref().map(|l| l.scale),
                skipped_steps: m.loss_scale.as_ref().map(|l| l.skipped_steps),
            };
            self.append_metrics(&row)?;
            let mut line = format!(
                "chunk {}/{} epoch {}/{epochs}: train loss {:.4} acc {:.2}%",
                self.chunk + 1,
                self.chunks,
                epoch_in_chunk,
                stats.loss,
                100.0 * stats.accuracy
            );
            if let Some(v) = val {
                line += &format!(" | val loss {:.4} acc {:.2}%", v.loss, 100.0 * v.accuracy);
                if self.best.is_none_or(|b| v.accuracy > b) {
                    self.best = Some(v.accuracy);
                    write_atomic(&self.ckpt_dir.join(BEST), &bytes)?;
                    line += " (best)";
                }
            }
            if let Some(l) = &m.loss_scale {
                line += &format!(" | loss scale {} ({} skipped)", l.scale, l.skipped_steps);
            }
            line += &format!(" | {:.0} samples/s", stats.samples_per_second());
            self.display.line(&line);
        }
        write_atomic(&self.ckpt_dir.join(LAST), &bytes)?;
        self.rotate(&bytes, m.step)?;
        self.last = Some((m.cursor.chunk, m.cursor.epoch_in_chunk, m.step));
        Ok(())
    }
}
