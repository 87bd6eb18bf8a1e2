//! The run directory's `tensorboard/` event files (`tensorboard --logdir runs`). The
//! records themselves are [`accrete::interop::tensorboard`]'s; this module owns the files.
//!
//! Each process (`train`, every `resume`) writes its own file,
//! `events.out.tfevents.<unix seconds>.<host>`. Records go in with each checkpoint — the
//! history events the checkpoint adds, then the progress reports since the last one — so
//! the files never run ahead of `last.safetensors`, as `metrics.jsonl` does not. A resumed
//! run reads the earlier files back and writes only what they lack from the checkpoint's
//! history (a crash between a checkpoint and its records), so no tag repeats a step; where
//! they hold steps past the checkpoint (resumed from an older one), its file starts with a
//! `SessionLog` START at the checkpoint's step + 1, which makes TensorBoard drop them, as it
//! does for the reports of an epoch that diverged and was retried.

use crate::rundir::{write_failure, RunDir};
use crate::Failure;
use accrete::interop::tensorboard::{self as tb, Scalar};
use accrete::train::{Event, Progress};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const PREFIX: &str = "events.out.tfevents.";
const PROGRESS_TAGS: &str = "progress/";

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The host name for the file name (letters, digits, `-`, `_` only).
fn host() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

/// The event files in `dir`, in name (= time) order.
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The scalars the event files in `dir` show, after TensorBoard's purges.
fn shown(dir: &Path) -> Vec<Scalar> {
    let mut all: Vec<Scalar> = Vec::new();
    for f in event_files(dir) {
        let Ok(bytes) = fs::read(&f) else { continue };
        let c = tb::read(&bytes);
        if let Some(&r) = c.restarts.iter().min() {
            all.retain(|s| s.step < r);
        }
        all.extend(c.scalars);
    }
    all
}

/// This process's event file and what is still to go into it.
pub struct EventLog {
    file: PathBuf,
    /// History events whose scalars are in the files.
    written: usize,
    /// Progress scalars since the last checkpoint.
    pending: Vec<Scalar>,
    /// The highest step of a progress report written, and of one seen.
    flushed_progress: Option<u64>,
    last_progress: Option<u64>,
    /// A SessionLog START to write first at the next checkpoint.
    restart: Option<u64>,
    /// The last step written for each tag.
    last_step: HashMap<String, u64>,
}

impl EventLog {
    /// Starts this process's event file for a run at `history` (its checkpoint's, or empty)
    /// and `step`, writing what earlier files lack.
    pub fn start(run: &RunDir, history: &[Event], step: u64) -> Result<EventLog, Failure> {
        let dir = run.tensorboard();
        fs::create_dir_all(&dir).map_err(|e| write_failure(&dir, e))?;
        let mut old = shown(&dir);
        let wall = now();
        let mut name = format!("{PREFIX}{}.{}", wall as u64, host());
        let mut n = 1;
        while dir.join(&name).exists() {
            name = format!("{PREFIX}{}.{}.{n}", wall as u64, host());
            n += 1;
        }
        let mut bytes = tb::file_start(wall);
        if old.iter().any(|s| s.step > step) {
            bytes.extend(tb::restart_record(step + 1, wall));
            old.retain(|s| s.step <= step);
        }
        let mut last_step: HashMap<String, u64> = HashMap::new();
        let mut flushed_progress = None;
        let mut note = |s: &Scalar, last: &mut HashMap<String, u64>| {
            let e = last.entry(s.tag.clone()).or_insert(s.step);
            *e = (*e).max(s.step);
            if s.tag.starts_with(PROGRESS_TAGS) {
                flushed_progress = flushed_progress.max(Some(s.step));
            }
        };
        for s in &old {
            note(s, &mut last_step);
        }
        let have: std::collections::HashSet<(&str, u64)> =
            old.iter().map(|s| (s.tag.as_str(), s.step)).collect();
        let missing: Vec<Scalar> = tb::history_scalars(history, 0)
            .into_iter()
            .filter(|s| !have.contains(&(s.tag.as_str(), s.step)))
            .collect();
        for s in &missing {
            note(s, &mut last_step);
        }
        bytes.extend(tb::scalar_records(&missing, wall));
        let log = EventLog {
            file: dir.join(name),
            written: history.len(),
            pending: Vec::new(),
            flushed_progress,
            last_progress: flushed_progress,
            restart: None,
            last_step,
        };
        log.append(&bytes)?;
        Ok(log)
    }

    fn append(&self, bytes: &[u8]) -> accrete::Result<()> {
        let err = |e: std::io::Error| accrete::Error::Write {
            path: self.file.display().to_string(),
            detail: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_data().map_err(err)
    }

    /// A progress report: its running loss and accuracy wait for the next checkpoint. A
    /// step at or before the last one seen is a diverged epoch's retry: its reports replace
    /// the diverged ones (a restart record makes TensorBoard drop those already written).
    pub fn progress(&mut self, p: &Progress) {
        let s = p.global_step;
        if self.last_progress.is_some_and(|l| s <= l) {
            self.pending.retain(|x| x.step < s);
            if self.flushed_progress.is_some_and(|f| f >= s) {
                self.restart = Some(self.restart.map_or(s, |r| r.min(s)));
            }
        }
        self.last_progress = Some(s);
        self.pending.extend(tb::progress_scalars(p));
    }

    /// With each checkpoint: the scalars of the history events it adds and the pending
    /// reports.
    pub fn checkpoint(&mut self, history: &[Event]) -> accrete::Result<()> {
        let wall = now();
        let mut bytes = Vec::new();
        if let Some(r) = self.restart.take() {
            bytes.extend(tb::restart_record(r, wall));
            for v in self.last_step.values_mut() {
                if *v >= r {
                    *v = r.saturating_sub(1);
                }
            }
            self.flushed_progress = self.flushed_progress.map(|f| f.min(r.saturating_sub(1)));
        }
        let mut scalars = tb::history_scalars(history, self.written.min(history.len()));
        self.written = history.len();
        scalars.append(&mut self.pending);
        scalars.retain(|s| {
            let fresh = self.last_step.get(&s.tag).is_none_or(|&l| s.step > l);
            if fresh {
                self.last_step.insert(s.tag.clone(), s.step);
                if s.tag.starts_with(PROGRESS_TAGS) {
                    self.flushed_progress = self.flushed_progress.max(Some(s.step));
                }
            }
            fresh
        });
        if scalars.is_empty() && bytes.is_empty() {
            return Ok(());
        }
        bytes.extend(tb::scalar_records(&scalars, wall));
        self.append(&bytes)
    }
}
