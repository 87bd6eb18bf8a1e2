//! `accrete train` and `accrete resume`: a run directory ([`crate::rundir`]) with the
//! resolved configuration, the history, atomic checkpoints and, at the end, a report.
//!
//! All the logic of a run (configuration, data preparation, the session, training, the
//! history) is in the core crate; this module does the files, the terminal and the stop
//! signals (Ctrl-C, SIGTERM, SIGHUP: a clean stop at a checkpoint).

use crate::progress::{Display, Mode};
use crate::report;
use crate::rundir::{check_out, io_failure, prepare, read_config, RunDir, Which};
use crate::tensorboard::EventLog;
use crate::Failure;
use accrete::checkpoint::write_atomic;
use accrete::config::{Prepared, RunConfig};
use accrete::data::Dataset;
use accrete::report::best_validation;
use accrete::session::Session;
use accrete::train::{
    history, Checkpoint, ChunkEnd, ChunkOptions, ChunkOutcome, Control, EpochRecord, NoObserver,
    Observer, Progress,
};
use accrete::Gpu;
use clap::Args;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first stop signal: the observer then asks the trainer to stop.
static STOP: AtomicBool = AtomicBool::new(false);

pub const TRAIN_EXAMPLES: &str = "Examples:
  accrete train                                   the built-in run: Fashion-MNIST, MLP 784-256-10,
                                                  5 incremental chunks, into runs/001 (or the next free number)
  accrete train --config run.toml --out runs/exp1
  accrete train --config run.toml --quiet         no progress output
  accrete resume runs/exp1                        continue after Ctrl-C, a crash or a kill

Progress goes to standard error, the final summary to standard output. Ctrl-C, SIGTERM
(`kill`, `docker stop`, a batch scheduler's preemption) and SIGHUP stop after a checkpoint
(exit status 130) and tell how to resume; a second signal quits at once, keeping the last
checkpoint. Exit status 2 for bad input (configuration, data, checkpoint, arguments), 1 for a
failure while running (the device, writing files).";

pub const RESUME_EXAMPLES: &str = "Examples:
  accrete resume runs/001           continue exactly where the last checkpoint left off
  accrete resume runs/001 --set optimizer.lr=1e-4 --set train.epochs=2
                                    continue with other hyper-parameters (recorded in the history)

The chunks are rebuilt from DIR/config.toml and its seed; finished chunks are skipped and a
chunk that was interrupted continues at the step after the checkpoint. metrics.jsonl is
rewritten from the checkpoint's history.

--set KEY=VALUE changes a hyper-parameter from the checkpoint on: optimizer.type, optimizer.lr,
optimizer.momentum, optimizer.beta1, optimizer.beta2, optimizer.alpha, optimizer.eps,
optimizer.weight_decay, optimizer.l1, optimizer.l2, optimizer.clip_norm, train.epochs,
train.label_smoothing (VALUE `none` unsets an optional key). Optimizer moments carry over; a
new optimizer.type keeps the weights and re-initialises the optimizer state. The change is
written to the checkpoint and the history at once; later resumes keep it.";

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
    /// Change a hyper-parameter from here on, e.g. --set optimizer.lr=1e-4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn display_for(config: &RunConfig, quiet: bool) -> Display {
    Display::new(
        Mode::detect(quiet),
        config.incremental.chunks,
        config.train.epochs,
    )
}

pub fn train(args: &TrainArgs) -> Result<(), Failure> {
    let config = match &args.config {
        Some(p) => read_config(p)?,
        None => RunConfig::default(),
    }
    .resolved();
    // Under mpirun: every rank trains, rank 0 alone writes (crate::mpi).
    let (world, gpu) = open(&config, "train")?;
    let root = world.as_ref().is_none_or(crate::mpi::World::is_root);
    if let Some(out) = args.out.as_ref().filter(|_| root) {
        check_out(out)?;
    }
    let display = display_for(&config, args.quiet || !root);
    let data = prepare(&config)?;
    let finetune = config.finetune_weights()?;
    let (mut session, transfer) = Session::for_run(
        &gpu,
        &config,
        data.standardizer.clone(),
        Some(data.planned_steps_by(&config.train, &config.chunk_epochs(&[]))),
        finetune.as_deref(),
    )?;
    let comm = world.as_ref().map(|w| w.comm.clone());
    pollster::block_on(session.enable_parallel(&config, comm))?;
    if !root {
        return worker_run(&config, &data, session);
    }
    if let (Some(ft), Some(rep)) = (&config.finetune, &transfer) {
        let reinit = if rep.reinitialized.is_empty() {
            "none".to_string()
        } else {
            rep.reinitialized
                .iter()
                .map(|(n, why)| format!("{n} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        display.line(&format!(
            "fine-tuning from {}: loaded {}; re-initialised {reinit}; frozen layers {:?}",
            ft.from,
            rep.loaded.join(", "),
            rep.frozen
        ));
    }
    let run = RunDir::claim(args.out.as_deref())?;
    run.write_config(&config)?;
    display.line(&format!(
        "run directory {} · {} training samples in {} chunk{} · {} validation · adapter {}{}",
        run.dir.display(),
        data.train.len(),
        data.chunks.len(),
        if data.chunks.len() == 1 { "" } else { "s" },
        data.validation.as_ref().map_or(0, Dataset::len),
        gpu.summary().name,
        match (session.trainer.ranks(), session.trainer.workers()) {
            (1, 1) => String::new(),
            (1, n) => format!(" · {n} replicas"),
            (r, n) => format!(" · {r} MPI ranks, {n} workers"),
        }
    ));
    train_run(&gpu, &config, &data, &run, session, display)
}

pub fn resume(args: &ResumeArgs) -> Result<(), Failure> {
    let run = RunDir::open(&args.dir)?;
    let config = read_config(&run.config())?;
    let (world, gpu) = open(&config, &format!("resume {:?}", args.set))?;
    let root = world.as_ref().is_none_or(crate::mpi::World::is_root);
    if root {
        run.preflight()?;
    }
    let last = run.checkpoint(Which::Last);
    let ckpt = if last.exists() {
        Some(Checkpoint::read_file(&last)?)
    } else if fs::read_dir(run.checkpoints()).is_ok_and(|mut d| d.next().is_some()) {
        return Err(io_failure(
            &last,
            format!(
                "is missing, but the run has other checkpoints, which starting over would overwrite; restore last.safetensors (e.g. copy a step-N.safetensors there), or start afresh with `accrete train --config {} --out NEW_DIR`",
                run.config().display()
            ),
        ));
    } else {
        None
    };
    if !args.set.is_empty() && ckpt.is_none() {
        return Err(io_failure(
            &last,
            format!(
                "is missing: --set changes a run from a checkpoint; before the first one, edit {} instead",
                run.config().display()
            ),
        ));
    }
    let display = display_for(&config, args.quiet || !root);
    let data = prepare(&config)?;
    let mut session = match &ckpt {
        Some(c) => Session::resume_run(&gpu, &config, c, &last.display().to_string())?,
        None => {
            let finetune = config.finetune_weights()?;
            Session::for_run(
                &gpu,
                &config,
                data.standardizer.clone(),
                Some(data.planned_steps_by(&config.train, &config.chunk_epochs(&[]))),
                finetune.as_deref(),
            )?
            .0
        }
    };
    let comm = world.as_ref().map(|w| w.comm.clone());
    pollster::block_on(session.enable_parallel(&config, comm))?;
    if !args.set.is_empty() && !root {
        session.change_settings(&config, &data, &args.set)?;
    }
    if !root {
        return worker_run(&config, &data, session);
    }
    if !args.set.is_empty() {
        let change = session.change_settings(&config, &data, &args.set)?;
        // The change and the checkpoint go together: last.safetensors holds it at once, so
        // a later resume (or a crash before the next checkpoint) keeps it.
        let c = pollster::block_on(session.checkpoint())?;
        write_atomic(&last, &c.to_bytes()?)?;
        display.line(&format!("changed {}", change.describe()));
    }
    // The checkpoint's history holds every event up to it: metrics.jsonl becomes exactly
    // that (rows written after the checkpoint are trained again; damaged rows are mended).
    run.rewrite_events(&session.trainer.history)?;
    let t = &session.trainer;
    let cur = &t.cursor;
    display.line(&format!(
        "resuming {} at chunk {}/{}, epoch {}, step {}{}",
        run.dir.display(),
        (cur.chunk + 1).min(data.chunks.len() as u64),
        data.chunks.len(),
        cur.epoch_in_chunk + 1,
        t.step,
        if ckpt.is_none() {
            " (no checkpoint yet: starting over)"
        } else {
            ""
        }
    ));
    train_run(&gpu, &config, &data, &run, session, display)
}

/// This process's device: an MPI rank's (backend = "mpi", with the job), else the one the
/// environment picks.
fn open(config: &RunConfig, command: &str) -> Result<(Option<crate::mpi::World>, Gpu), Failure> {
    Ok(match crate::mpi::start(config, command)? {
        Some((world, gpu)) => (Some(world), gpu),
        None => (None, pollster::block_on(Gpu::new())?),
    })
}

/// An MPI rank other than 0: trains its replica in step with rank 0 (the same chunk options,
/// so the same collective calls) and writes nothing; a stop (rank 0's decision) ends it
/// with status 130 and no message.
fn worker_run(config: &RunConfig, data: &Prepared, mut session: Session) -> Result<(), Failure> {
    session.trainer.set_validation(data.validation.as_ref())?;
    session.set_run_evaluation(config, data)?;
    install_stop_handler(Path::new("."));
    let start_chunk = session.trainer.cursor.chunk as usize;
    for chunk in data.chunks.iter().skip(start_chunk) {
        let opts = chunk_options(config, chunk, Mode::Lines);
        match pollster::block_on(session.fit_chunk(chunk, &opts, &mut NoObserver))? {
            ChunkOutcome::Done(_) => {}
            ChunkOutcome::Stopped => return Err(Failure::Interrupted(String::new())),
        }
    }
    Ok(())
}

/// A chunk's report and checkpoint points. Over MPI every rank must use the same, so the
/// report period is the quiet mode's whatever rank 0's terminal.
fn chunk_options(config: &RunConfig, chunk: &Dataset, mode: Mode) -> ChunkOptions {
    ChunkOptions {
        report_every_steps: Some(report_every(
            config.train.steps_per_epoch(chunk.len()),
            mode,
        )),
        checkpoint_every_steps: Some(config.checkpoint.every_steps),
        epochs: None,
        lr: None,
    }
}

/// Report every this many steps: often enough for a smooth bar and a prompt stop.
fn report_every(steps_in_epoch: u64, mode: Mode) -> u64 {
    let parts = match mode {
        Mode::Bars => 50,
        Mode::Lines => 5,
        Mode::Quiet => 20,
    };
    (steps_in_epoch / parts).max(1)
}

/// Ctrl-C, SIGTERM and SIGHUP: the first asks for a clean stop at the next report point
/// (after a checkpoint), a second quits at once.
fn install_stop_handler(dir: &Path) {
    let dir = dir.display().to_string();
    let _ = ctrlc::set_handler(move || {
        if STOP.swap(true, Ordering::SeqCst) {
            let _ = writeln!(
                std::io::stderr(),
                "\nstopped again: quitting now; the last checkpoint is kept, continue with `accrete resume {dir}`"
            );
            std::process::exit(130);
        }
        // The observer says so at its next report, through the progress display.
    });
}

pub(crate) fn train_run(
    gpu: &Gpu,
    config: &RunConfig,
    data: &Prepared,
    run: &RunDir,
    mut session: Session,
    mut display: Display,
) -> Result<(), Failure> {
    run.preflight()?;
    let chunk_epochs = config.chunk_epochs(&session.trainer.history);
    let steps_of = |c: &Dataset| config.train.steps_per_epoch(c.len());
    let total: u64 = data
        .chunks
        .iter()
        .zip(&chunk_epochs)
        .map(|(c, &e)| steps_of(c) * e as u64)
        .sum();
    // The trainer validates after every epoch (feeding reduce-on-plateau and early
    // stopping); the observer logs it.
    session.trainer.set_validation(data.validation.as_ref())?;
    // Evaluated at every chunk's end: accuracy, and per task for class-incremental runs.
    session.set_run_evaluation(config, data)?;
    let ckpt_dir = run.checkpoints();
    fs::create_dir_all(&ckpt_dir).map_err(|e| crate::rundir::write_failure(&ckpt_dir, e))?;
    install_stop_handler(&run.dir);
    display.start(total, session.trainer.step);
    let start_chunk = session.trainer.cursor.chunk as usize;
    let written = session.trainer.history.len();
    let best = best_validation(&history::epochs(&session.trainer.history)).map(|(a, _)| a);
    let events = EventLog::start(run, &session.trainer.history, session.trainer.step)?;
    let outcome = {
        let mut obs = RunObserver {
            config,
            run,
            display: &mut display,
            best,
            best_pending: false,
            chunk: 0,
            chunks: data.chunks.len(),
            chunk_epochs,
            preprocessing: session.standardizer().map(|s| s.to_json()),
            written,
            events,
            last: None,
        };
        let mut outcome = Ok(None);
        for (i, chunk) in data.chunks.iter().enumerate().skip(start_chunk) {
            obs.chunk = i;
            let mode = match session.trainer.ranks() {
                1 => obs.display.mode,
                _ => Mode::Lines,
            };
            let opts = chunk_options(config, chunk, mode);
            match pollster::block_on(session.fit_chunk(chunk, &opts, &mut obs)) {
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
    let last = run.checkpoint(Which::Last);
    match outcome? {
        Some(at) => {
            let t = &session.trainer;
            let (chunk, epoch, step) =
                at.unwrap_or((t.cursor.chunk, t.cursor.epoch_in_chunk, t.step));
            Err(Failure::Interrupted(format!(
                "stopped at chunk {}/{}, epoch {}, step {step}; the checkpoint is {}. Continue with: accrete resume {}",
                (chunk + 1).min(data.chunks.len() as u64),
                data.chunks.len(),
                epoch + 1,
                last.display(),
                run.dir.display()
            )))
        }
        None => {
            let summary = report::write_report(gpu, run, config, data, Which::Last)?;
            if display.mode != Mode::Quiet {
                writeln!(
                    std::io::stdout().lock(),
                    "done: {} accuracy {:.2}% on {} samples; report in {}",
                    summary.data_name,
                    100.0 * summary.accuracy,
                    summary.samples,
                    summary.report_md.display()
                )?;
            }
            Ok(())
        }
    }
}

/// Writes checkpoints and the history, logs progress and epochs, and turns a stop signal
/// into [`Control::Stop`].
struct RunObserver<'a> {
    config: &'a RunConfig,
    run: &'a RunDir,
    display: &'a mut Display,
    /// The best validation accuracy so far.
    best: Option<f64>,
    /// The epoch that just ended is the best so far: its checkpoint becomes best.safetensors.
    best_pending: bool,
    chunk: usize,
    chunks: usize,
    /// The planned epochs of every chunk (`[[incremental.schedule]]`, `--set`).
    chunk_epochs: Vec<usize>,
    preprocessing: Option<serde_json::Value>,
    /// History events already in metrics.jsonl.
    written: usize,
    /// The TensorBoard event file.
    events: EventLog,
    /// (chunk, epoch in chunk, step) of the last checkpoint.
    last: Option<(u64, u64, u64)>,
}

impl RunObserver<'_> {
    /// Keeps the `keep_last` newest `step-N.safetensors`.
    fn rotate(&self, bytes: &[u8], step: u64) -> accrete::Result<()> {
        let keep = self.config.checkpoint.keep_last;
        if keep == 0 {
            return Ok(());
        }
        write_atomic(&self.run.step_checkpoint(step), bytes)?;
        let dir = self.run.checkpoints();
        let mut steps: Vec<u64> = fs::read_dir(&dir)
            .map_err(|e| accrete::Error::Io {
                path: dir.display().to_string(),
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
            let _ = fs::remove_file(self.run.step_checkpoint(*s));
        }
        Ok(())
    }
}

impl Observer for RunObserver<'_> {
    fn progress(&mut self, p: &Progress) -> Control {
        self.display.progress(p);
        self.events.progress(p);
        if STOP.load(Ordering::SeqCst) {
            self.display.line(
                "stop requested (Ctrl-C or a signal): stopping after a checkpoint (once more to quit at once)",
            );
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn epoch_record(&mut self, r: &EpochRecord) {
        let epochs = self
            .chunk_epochs
            .get(self.chunk)
            .copied()
            .unwrap_or(self.config.train.epochs);
        let mut line = format!(
            "chunk {}/{} epoch {}/{epochs}: train loss {:.4} acc {:.2}%",
            self.chunk + 1,
            self.chunks,
            r.epoch_in_chunk,
            r.train_loss,
            100.0 * r.train_accuracy
        );
        if let (Some(loss), Some(acc)) = (r.val_loss, r.val_accuracy) {
            line += &format!(" | val loss {loss:.4} acc {:.2}%", 100.0 * acc);
            if self.best.is_none_or(|b| acc > b) {
                self.best = Some(acc);
                self.best_pending = true;
                line += " (best)";
            }
        }
        if let (Some(scale), Some(skipped)) = (r.loss_scale, r.skipped_steps) {
            line += &format!(" | loss scale {scale} ({skipped} skipped)");
        }
        line += &format!(" | {:.0} samples/s", r.samples_per_sec);
        self.display.line(&line);
    }

    fn chunk_end(&mut self, e: &ChunkEnd) {
        let mut line = format!(
            "after chunk {}/{}: {} accuracy {:.2}%",
            self.chunk + 1,
            self.chunks,
            e.data,
            100.0 * e.accuracy
        );
        if !e.task_accuracy.is_empty() {
            let tasks: Vec<String> = e
                .task_accuracy
                .iter()
                .map(|a| format!("{:.1}", 100.0 * a))
                .collect();
            line += &format!(" | per task [{}]%", tasks.join(", "));
        }
        if let Some(a) = e.average_accuracy {
            line += &format!(" | average {:.2}%", 100.0 * a);
        }
        if let (Some(b), Some(f)) = (e.bwt, e.forgetting) {
            line += &format!(" | BWT {b:+.4} forgetting {f:.4}");
        }
        self.display.line(&line);
    }

    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        let mut c = c.clone();
        c.meta.preprocessing = self.preprocessing.clone();
        let bytes = c.to_bytes()?;
        let m = &c.meta;
        if std::mem::take(&mut self.best_pending) {
            write_atomic(&self.run.checkpoint(Which::Best), &bytes)?;
        }
        write_atomic(&self.run.checkpoint(Which::Last), &bytes)?;
        self.rotate(&bytes, m.step)?;
        // The history up to this checkpoint; the file never runs ahead of last.safetensors.
        if m.history.len() > self.written {
            self.run.append_events(&m.history[self.written..])?;
            self.written = m.history.len();
        }
        self.events.checkpoint(&m.history)?;
        self.last = Some((m.cursor.chunk, m.cursor.epoch_in_chunk, m.step));
        Ok(())
    }
}
