//! The run directory's layout, owned here so `train`, `resume` and `report` agree on it:
//!
//! ```text
//! DIR/config.toml                    the resolved configuration (every default filled in)
//! DIR/metrics.jsonl                  the run's history: one event per line (epochs, rollbacks,
//!                                    early stops), as the checkpoints carry it
//! DIR/checkpoints/last.safetensors   the latest checkpoint (every N steps, every epoch)
//! DIR/checkpoints/best.safetensors   the epoch with the best validation accuracy
//! DIR/checkpoints/step-N.safetensors the last `keep_last` checkpoints, when configured
//! DIR/report/                        report.md, evaluation.json, PNG and SVG charts
//! DIR/tensorboard/                   TensorBoard event files, one per train/resume process
//!                                    (`tensorboard --logdir DIR`; see crate::tensorboard)
//! ```

use crate::Failure;
use accrete::checkpoint::write_atomic;
use accrete::config::{Prepared, RunConfig};
use accrete::input_file::{self, InputKind};
use accrete::train::{history, Event};
use accrete::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const CONFIG_FILE: &str = "config.toml";
const METRICS_FILE: &str = "metrics.jsonl";
const CHECKPOINT_DIR: &str = "checkpoints";
const REPORT_DIR: &str = "report";
const TENSORBOARD_DIR: &str = "tensorboard";

/// Which checkpoint of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Last,
    Best,
}

impl Which {
    pub fn file_name(self) -> &'static str {
        match self {
            Which::Last => "last.safetensors",
            Which::Best => "best.safetensors",
        }
    }
}

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub dir: PathBuf,
}

pub fn io_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Accrete(Error::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

pub fn write_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Accrete(Error::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Reads and validates a configuration file.
pub fn read_config(path: &Path) -> Result<RunConfig, Failure> {
    let text = input_file::read_text(path, InputKind::Config)?;
    Ok(RunConfig::from_toml(&text, &path.display().to_string())?)
}

/// Reads the data a configuration names and prepares it (limits, split, chunks).
pub fn prepare(config: &RunConfig) -> Result<Prepared, Failure> {
    let (train, test) = config.load_data()?;
    Ok(config.prepare(train, test)?)
}

/// Refuses an existing non-empty `--out` before any work is done.
pub fn check_out(out: &Path) -> Result<(), Failure> {
    if out.exists() {
        if !out.is_dir() {
            return Err(io_failure(
                out,
                "exists and is not a directory; choose another --out",
            ));
        }
        let empty = fs::read_dir(out)
            .map_err(|e| io_failure(out, e))?
            .next()
            .is_none();
        if !empty {
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

impl RunDir {
    /// An existing run directory (for `resume` and `report`).
    pub fn open(dir: &Path) -> Result<RunDir, Failure> {
        if !dir.is_dir() {
            return Err(io_failure(
                dir,
                "no such run directory (give the --out folder of an `accrete train` run)",
            ));
        }
        let rd = RunDir {
            dir: dir.to_path_buf(),
        };
        if !rd.config().exists() {
            return Err(io_failure(
                &rd.config(),
                "not found; is this a run directory made by `accrete train`?",
            ));
        }
        Ok(rd)
    }

    /// Creates the run directory: `out`, or `runs/NNN` with the first free number.
    pub fn claim(out: Option<&Path>) -> Result<RunDir, Failure> {
        if let Some(out) = out {
            check_out(out)?;
            fs::create_dir_all(out).map_err(|e| write_failure(out, e))?;
            return Ok(RunDir {
                dir: out.to_path_buf(),
            });
        }
        let base = Path::new("runs");
        fs::create_dir_all(base).map_err(|e| write_failure(base, e))?;
        for n in 1..100_000 {
            let dir = base.join(format!("{n:03}"));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(RunDir { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(write_failure(&dir, e)),
            }
        }
        Err(io_failure(base, "no free run number; pass --out"))
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join(METRICS_FILE)
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_DIR)
    }
    pub fn checkpoint(&self, which: Which) -> PathBuf {
        self.checkpoints().join(which.file_name())
    }
    /// `checkpoints/…` as report.md names it.
    pub fn checkpoint_label(which: Which) -> String {
        format!("{CHECKPOINT_DIR}/{}", which.file_name())
    }
    pub fn step_checkpoint(&self, step: u64) -> PathBuf {
        self.checkpoints().join(format!("step-{step}.safetensors"))
    }
    pub fn report(&self) -> PathBuf {
        self.dir.join(REPORT_DIR)
    }
    pub fn tensorboard(&self) -> PathBuf {
        self.dir.join(TENSORBOARD_DIR)
    }

    /// Writes the resolved configuration.
    pub fn write_config(&self, config: &RunConfig) -> Result<(), Failure> {
        let text = format!(
            "# The resolved configuration of this run (`accrete resume` reads it).\n{}",
            config.to_toml()?
        );
        Ok(write_atomic(&self.config(), text.as_bytes())?)
    }

    /// Refuses, before any training, a directory whose outputs could not be written at the
    /// end: `checkpoints/`, `report/` or `tensorboard/` existing as something other than a
    /// folder.
    pub fn preflight(&self) -> Result<(), Failure> {
        for d in [self.checkpoints(), self.report(), self.tensorboard()] {
            if d.exists() && !d.is_dir() {
                return Err(io_failure(
                    &d,
                    "exists but is not a folder, so the run could not write into it; move it away first",
                ));
            }
        }
        Ok(())
    }

    /// Appends `events` to `metrics.jsonl` and syncs it.
    pub fn append_events(&self, events: &[Event]) -> accrete::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.metrics();
        let err = |e: std::io::Error| Error::Write {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        f.write_all(history::to_jsonl(events).as_bytes())
            .map_err(err)?;
        f.sync_data().map_err(err)
    }

    /// Rewrites `metrics.jsonl` as exactly `events` (a resumed run: the checkpoint's
    /// history, which holds every event up to it, whatever the old file held).
    pub fn rewrite_events(&self, events: &[Event]) -> accrete::Result<()> {
        write_atomic(&self.metrics(), history::to_jsonl(events).as_bytes())
    }

    /// The history as `metrics.jsonl` holds it (empty when there is none yet).
    pub fn read_events(&self) -> Result<Vec<Event>, Failure> {
        let path = self.metrics();
        match input_file::read_text_if_exists(&path, InputKind::History)? {
            Some(text) => Ok(history::parse_events(&text, &path.display().to_string())?),
            None => Ok(Vec::new()),
        }
    }
}
