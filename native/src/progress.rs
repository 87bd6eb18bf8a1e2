//! What `accrete train` shows while it runs, on standard error (standard output carries
//! only results): indicatif bars (the whole run and the current epoch, with loss,
//! accuracy, samples/s and ETA) when stderr is a terminal, plain log lines when it is not,
//! nothing with `--quiet`.

use accrete::train::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

pub struct Display {
    pub mode: Mode,
    chunks: usize,
    epochs: usize,
    multi: Option<MultiProgress>,
    run: Option<ProgressBar>,
    epoch: Option<(u64, u64, ProgressBar)>,
    /// When and at which global step this process started training, and the run's steps.
    started: Option<(Instant, u64, u64)>,
}

/// "1:05" or "2:03:04".
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

impl Display {
    pub fn new(mode: Mode, chunks: usize, epochs: usize) -> Display {
        Display {
            mode,
            chunks,
            epochs,
            multi: None,
            run: None,
            epoch: None,
            started: None,
        }
    }

    /// Starts the whole-run bar at `done` of `total` steps.
    pub fn start(&mut self, total: u64, done: u64) {
        self.started = Some((Instant::now(), done, total));
        if self.mode != Mode::Bars {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let run = multi.add(ProgressBar::new(total.max(1)));
        run.set_style(style(
            "run    [{bar:32}] {pos}/{len} steps  {elapsed_precise} elapsed, ETA {eta_precise}",
        ));
        run.set_position(done.min(total));
        run.reset_eta();
        self.run = Some(run);
        self.multi = Some(multi);
    }

    fn where_(&self, chunk: u64, epoch_in_chunk: u64) -> String {
        format!(
            "chunk {}/{} epoch {}/{}",
            chunk + 1,
            self.chunks,
            epoch_in_chunk + 1,
            self.epochs
        )
    }

    pub fn progress(&mut self, p: &Progress) {
        let msg = format!(
            "loss {:.4}  acc {:.2}%  {:.0} samples/s",
            p.loss,
            100.0 * p.accuracy,
            p.samples_per_sec
        );
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => {
                if p.step_in_epoch < p.steps_in_epoch {
                    self.line(&format!(
                        "{} step {}/{}: {msg}{}",
                        self.where_(p.chunk, p.epoch_in_chunk),
                        p.step_in_epoch,
                        p.steps_in_epoch,
                        self.eta(p.global_step)
                    ));
                }
            }
            Mode::Bars => {
                let key = (p.chunk, p.epoch_in_chunk);
                if self.epoch.as_ref().is_none_or(|(c, e, _)| (*c, *e) != key) {
                    if let Some((_, _, old)) = self.epoch.take() {
                        old.finish_and_clear();
                    }
                    let bar = ProgressBar::new(p.steps_in_epoch.max(1));
                    let bar = match &self.multi {
                        Some(m) => m.add(bar),
                        None => bar,
                    };
                    bar.set_style(style(
                        "{prefix} [{bar:32}] {pos}/{len} steps  {msg}  ETA {eta}",
                    ));
                    bar.set_prefix(self.where_(p.chunk, p.epoch_in_chunk));
                    self.epoch = Some((key.0, key.1, bar));
                }
                if let Some((_, _, bar)) = &self.epoch {
                    bar.set_position(p.step_in_epoch);
                    bar.set_message(msg);
                }
                if let Some(run) = &self.run {
                    run.set_position(p.global_step.min(run.length().unwrap_or(u64::MAX)));
                }
            }
        }
    }

    /// "  ETA 1:05" for the whole run, from the pace since this process started.
    fn eta(&self, step: u64) -> String {
        match self.started {
            Some((t0, s0, total)) if step > s0 && total >= step => {
                let per_step = t0.elapsed().as_secs_f64() / (step - s0) as f64;
                format!("  ETA {}", clock(per_step * (total - step) as f64))
            }
            _ => String::new(),
        }
    }

    /// A line above the bars (or a log line).
    pub fn line(&self, text: &str) {
        match (self.mode, &self.multi) {
            (Mode::Quiet, _) => {}
            (Mode::Bars, Some(m)) => {
                let _ = m.println(text);
            }
            _ => {
                let mut out = std::io::stderr().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Removes the bars (before the final summary, an error or an interruption).
    pub fn finish(&mut self) {
        if let Some((_, _, bar)) = self.epoch.take() {
            bar.finish_and_clear();
        }
        if let Some(run) = self.run.take() {
            run.finish_and_clear();
        }
        if let Some(m) = self.multi.take() {
            let _ = m.clear();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish();
    }
}
