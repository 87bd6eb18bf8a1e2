//! `[parallel]`: one table for every parallel mode. `backend = "local"`: several devices in
//! one process ([`crate::train::Trainer::enable_replicas`]); `backend = "mpi"`: one replica
//! per MPI rank, all-reduce or a parameter server
//! ([`crate::train::Trainer::enable_collective`]; the CLI built with its `mpi` feature, run
//! under `mpirun`). The world size is only known at run time: [`ParallelConfig::check_split`]
//! then checks the batch against it.
//!
//! ```toml
//! [parallel]
//! backend = "local"        # "local": replicas in this process; "mpi": one replica per MPI rank
//! devices = 2              # local only: how many replicas; several may share one adapter
//! mode = "all_reduce"      # or "parameter_server" (MPI only)
//! sync_every = 1           # 1: gradients every step; K > 1: local SGD, averaged every K steps
//! max_staleness = 0        # parameter_server only
//! ```
//!
//! `train.batch_size` is the global batch: each of the N workers takes batch/N rows of
//! every step, so N must divide it (and `incremental.rehearsal.per_batch`).

use super::RunConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The most replicas `backend = "local"` opens in one process.
pub const MAX_LOCAL_DEVICES: usize = 16;

fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Where the replicas run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParallelBackend {
    /// Replicas in this process, one wgpu device each (`"local"`).
    #[default]
    Local,
    /// One replica per MPI rank (`"mpi"`; needs a front end with MPI: the CLI's `mpi` feature).
    Mpi,
}

/// How the replicas agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParallelMode {
    /// Every replica's gradients summed in replica order, the same update everywhere.
    #[default]
    AllReduce,
    /// Rank 0 holds the parameters and applies updates; the other ranks compute gradients.
    ParameterServer,
}

/// `[parallel]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelConfig {
    /// `"local"` or `"mpi"` (default "local").
    #[serde(default)]
    pub backend: ParallelBackend,
    /// backend = "local": how many replicas, each on its own device of the adapter replica
    /// 0 opens (`ACCRETE_ADAPTER` picks it); at most [`MAX_LOCAL_DEVICES`] (default 1).
    #[serde(default = "one")]
    pub devices: usize,
    /// `"all_reduce"` or `"parameter_server"` (default "all_reduce").
    #[serde(default)]
    pub mode: ParallelMode,
    /// 1: gradients reduced every step; K > 1: local SGD, each replica trains K steps on its
    /// shard, then parameters and optimizer moments are averaged (default 1).
    #[serde(default = "one_u64")]
    pub sync_every: u64,
    /// parameter_server only: 0 = synchronous (the only setting available in this version;
    /// s > 0, bounded asynchrony, is refused) (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_staleness: u64,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            backend: ParallelBackend::Local,
            devices: 1,
            mode: ParallelMode::AllReduce,
            sync_every: 1,
            max_staleness: 0,
        }
    }
}

impl ParallelConfig {
    /// How many replicas compute gradients with `ranks` MPI ranks (local: `devices`; MPI
    /// all-reduce: every rank; parameter server: every rank but the server).
    pub fn workers(&self, ranks: usize) -> usize {
        match (self.backend, self.mode) {
            (ParallelBackend::Local, _) => self.devices,
            (ParallelBackend::Mpi, ParallelMode::AllReduce) => ranks,
            (ParallelBackend::Mpi, ParallelMode::ParameterServer) => ranks.saturating_sub(1),
        }
    }

    /// The keys that must split over `n` workers (`where_` names them in the message:
    /// "parallel.devices", "MPI ranks"): the global batch and the replayed rows.
    pub fn check_split(&self, config: &RunConfig, n: usize, where_: &str) -> Result<()> {
        let bad = |key: &str, detail: String| Err(Error::invalid(key, detail));
        if n == 0 {
            return bad(
                "parallel.mode",
                format!("{where_}: no worker computes gradients; the parameter server needs at least 2 MPI ranks (mpirun -np 3 or more)"),
            );
        }
        if !config.train.batch_size.is_multiple_of(n) {
            return bad(
                "train.batch_size",
                format!(
                    "{} (the global batch) does not split over {n} workers ({where_}): each takes batch_size / {n} rows of every step; use a multiple of {n}",
                    config.train.batch_size
                ),
            );
        }
        if let Some(r) = &config.incremental.rehearsal {
            if !r.per_batch.is_multiple_of(n) {
                return bad(
                    "incremental.rehearsal.per_batch",
                    format!("{} replayed rows per step do not split over {n} workers ({where_}); use a multiple of {n}", r.per_batch),
                );
            }
        }
        Ok(())
    }

    /// The checks on `[parallel]` and on the keys it constrains (messages start with the
    /// key).
    pub fn validate(&self, config: &RunConfig) -> Result<()> {
        let bad = |key: &str, detail: String| Err(Error::invalid(key, detail));
        let mpi = self.backend == ParallelBackend::Mpi;
        let ps = self.mode == ParallelMode::ParameterServer;
        if ps && !mpi {
            return bad(
                "parallel.mode",
                "\"parameter_server\" runs over MPI (backend = \"mpi\": rank 0 the server, the other ranks workers); with backend = \"local\" use mode = \"all_reduce\"".into(),
            );
        }
        if self.max_staleness > 0 && !ps {
            return bad(
                "parallel.max_staleness",
                "only applies to mode = \"parameter_server\"; all_reduce is synchronous: remove the key".into(),
            );
        }
        if self.max_staleness > 0 {
            return bad(
                "parallel.max_staleness",
                format!("{}: the asynchronous parameter server is not available in this version; use max_staleness = 0 (synchronous: the server sums every worker's gradients in rank order each step)", self.max_staleness),
            );
        }
        if ps && self.sync_every != 1 {
            return bad(
                "parallel.sync_every",
                "local SGD (sync_every > 1) is for mode = \"all_reduce\"; the parameter server updates every step: remove sync_every".into(),
            );
        }
        if mpi && self.devices != 1 {
            return bad(
                "parallel.devices",
                format!("{}: backend = \"mpi\" runs one replica per MPI rank (the number of ranks is mpirun's -np); remove parallel.devices", self.devices),
            );
        }
        if self.devices == 0 {
            return bad(
                "parallel.devices",
                "must be at least 1 (1 = one device, no parallelism)".into(),
            );
        }
        if self.devices > MAX_LOCAL_DEVICES {
            return bad(
                "parallel.devices",
                format!("{} is more than the {MAX_LOCAL_DEVICES} replicas one process opens; use at most {MAX_LOCAL_DEVICES}", self.devices),
            );
        }
        if self.sync_every == 0 {
            return bad(
                "parallel.sync_every",
                "must be at least 1 (1 = gradients every step; K = parameters averaged every K steps)".into(),
            );
        }
        let n = self.devices;
        if !mpi {
            self.check_split(config, n, "parallel.devices")?;
        }
        if n > 1 || mpi {
            let unsupported = [
                (
                    "train.mixed_precision",
                    config.train.mixed_precision.is_some(),
                ),
                ("incremental.lwf", config.incremental.lwf.is_some()),
            ];
            for (key, set) in unsupported {
                if set {
                    return bad(
                        key,
                        format!("cannot be combined with data-parallel training yet ([parallel] with {}); remove one of them", if mpi { "backend = \"mpi\"".to_string() } else { format!("devices = {n}") }),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        RunConfig::from_toml(text, "c.toml")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_local_table_parses_with_its_defaults() {
        let c = RunConfig::from_toml("[parallel]\ndevices = 2\n", "c.toml").unwrap();
        assert_eq!(
            c.parallel,
            Some(ParallelConfig {
                devices: 2,
                ..ParallelConfig::default()
            })
        );
        let c = RunConfig::from_toml("[train]\naccumulate_steps = 4\n", "c.toml").unwrap();
        assert_eq!(c.train.accumulate_steps, 4);
        assert_eq!(c.train.steps_per_epoch(1000), 2); // 8 batches of 128 → 2 updates
    }

    #[test]
    fn every_bad_parallel_setting_is_refused_naming_its_key() {
        let e = err("[parallel]\nbackend = \"mpi\"\ndevices = 2\n");
        assert!(
            e.contains("parallel.devices: 2") && e.contains("per MPI rank"),
            "{e}"
        );
        let e =
            err("[parallel]\nbackend = \"mpi\"\nmode = \"parameter_server\"\nmax_staleness = 2\n");
        assert!(
            e.contains("parallel.max_staleness: 2") && e.contains("not available"),
            "{e}"
        );
        let e = err("[parallel]\nbackend = \"mpi\"\nmode = \"parameter_server\"\nsync_every = 4\n");
        assert!(
            e.contains("parallel.sync_every") && e.contains("all_reduce"),
            "{e}"
        );
        let e = err("[train]\nmixed_precision = true\n[parallel]\nbackend = \"mpi\"\n");
        assert!(
            e.contains("train.mixed_precision: cannot be combined"),
            "{e}"
        );
        let ok = "[parallel]\nbackend = \"mpi\"\nmode = \"parameter_server\"\n";
        let c = RunConfig::from_toml(ok, "c.toml").unwrap();
        let p = c.parallel.as_ref().unwrap();
        assert_eq!((p.workers(3), p.workers(1)), (2, 0));
        let e = p.check_split(&c, 0, "MPI ranks").unwrap_err().to_string();
        assert!(e.contains("at least 2 MPI ranks"), "{e}");
        let e = p.check_split(&c, 3, "MPI ranks").unwrap_err().to_string();
        assert!(
            e.contains("train.batch_size: 128") && e.contains("(MPI ranks)"),
            "{e}"
        );
        let e = err("[parallel]\nmode = \"parameter_server\"\n");
        assert!(e.contains("parallel.mode") && e.contains("MPI"), "{e}");
        let e = err("[parallel]\nmax_staleness = 2\n");
        assert!(
            e.contains("parallel.max_staleness") && e.contains("parameter_server"),
            "{e}"
        );
        let e = err("[parallel]\ndevices = 0\n");
        assert!(e.contains("parallel.devices: must be at least 1"), "{e}");
        let e = err("[parallel]\ndevices = 17\n");
        assert!(e.contains("parallel.devices: 17 is more than"), "{e}");
        let e = err("[parallel]\nsync_every = 0\n");
        assert!(e.contains("parallel.sync_every"), "{e}");
        let e = err("[train]\nbatch_size = 100\n[parallel]\ndevices = 3\n");
        assert!(
            e.contains("train.batch_size: 100") && e.contains("multiple of 3"),
            "{e}"
        );
        let e = err(
            "[incremental]\nrehearsal = { size = 10, per_batch = 3 }\n[parallel]\ndevices = 2\n",
        );
        assert!(e.contains("incremental.rehearsal.per_batch"), "{e}");
        let e = err("[train]\nmixed_precision = true\n[parallel]\ndevices = 2\n");
        assert!(
            e.contains("train.mixed_precision: cannot be combined"),
            "{e}"
        );
        let e = err("[parallel]\ndevice = 2\n");
        assert!(e.contains("device") && e.contains("devices"), "{e}");
        let e = err("[train]\naccumulate_steps = 0\n");
        assert!(
            e.contains("train.accumulate_steps: must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn a_browser_spec_refuses_parallel() {
        let spec = r#"{"model":{"input":[2],"layers":[{"type":"dense","units":2}]},"parallel":{"devices":2}}"#;
        let e = crate::config::SessionSpec::from_json(spec, "spec")
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("parallel") && e.contains("browser") && e.contains("accumulate_steps"),
            "{e}"
        );
        let ok = r#"{"model":{"input":[2],"layers":[{"type":"dense","units":2}]},"train":{"accumulate_steps":4}}"#;
        let s = crate::config::SessionSpec::from_json(ok, "spec").unwrap();
        assert_eq!(s.train.accumulate_steps, 4);
    }
}
