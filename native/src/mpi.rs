//! `[parallel] backend = "mpi"`: `mpirun -np N accrete train …` (or `resume`), one replica
//! per rank, built with `cargo build --release -p accrete-cli --features mpi` (an MPI
//! library and libclang: `apt-get install -y libopenmpi-dev openmpi-bin libclang-dev`).
//!
//! - MPI is initialised only for a run whose configuration asks for it; every other command
//!   (and a local run) of an MPI build behaves as the default build.
//! - Each rank opens the GPU of its node-local rank (`OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's
//!   `MPI_LOCALRANKID`, SLURM's `SLURM_LOCALID`; the position modulo the node's best
//!   adapters). `ACCRETE_ADAPTER`, set per rank (e.g. through a wrapper script), overrides it.
//! - At start, every rank's hash of the configuration (and the command) is compared: a rank
//!   that read another file stops the job with exit status 2 before anything is written.
//! - Rank 0 alone writes the run directory; the other ranks print nothing but errors.
//! - A failure on any rank ends the whole job (`MPI_Abort` with the exit status), so no
//!   rank waits forever on a dead one; `mpirun … accrete resume DIR` continues.

use crate::Failure;
use accrete::config::{ParallelBackend, RunConfig};
use accrete::train::Collective;
use accrete::Gpu;
use std::rc::Rc;

/// How to build the MPI backend, for the messages of a build without it.
#[cfg(not(feature = "mpi"))]
const HOW_TO_BUILD: &str = "this accrete was built without MPI; install MPI and libclang (Debian/Ubuntu: apt-get install -y libopenmpi-dev openmpi-bin libclang-dev), build with `cargo build --release -p accrete-cli --features mpi` and run under `mpirun -np N accrete …`; or use backend = \"local\" for several devices in one process";

/// This process in an MPI job.
pub struct World {
    pub comm: Rc<dyn Collective>,
}

impl World {
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// The MPI job of a run whose `[parallel]` says backend = "mpi" (`None` otherwise):
/// initialises MPI, checks that every rank read the same configuration for the same
/// `command`, and opens this rank's GPU. Refused (exit 2) in a build without the feature.
pub fn start(config: &RunConfig, command: &str) -> Result<Option<(World, Gpu)>, Failure> {
    if config.parallel.as_ref().map(|p| p.backend) != Some(ParallelBackend::Mpi) {
        return Ok(None);
    }
    let text = format!("{command}\n{}", config.to_toml()?);
    join(&text).map(Some)
}

/// Initialises MPI, checks that every rank has the same `fingerprint` text (the
/// configuration and command) and opens this rank's GPU.
pub fn join(fingerprint: &str) -> Result<(World, Gpu), Failure> {
    let comm = imp::init()?;
    let hashes = comm.all_gather_u64(fnv1a(fingerprint.as_bytes()));
    let differ: Vec<String> = hashes
        .iter()
        .enumerate()
        .filter(|(_, h)| **h != hashes[0])
        .map(|(r, _)| r.to_string())
        .collect();
    if !differ.is_empty() {
        return Err(accrete::Error::Data {
            source_name: "configuration".into(),
            detail: format!(
                "MPI rank(s) {} read a different configuration (or command) from rank 0's; every rank must run the same command on the same configuration file: check the path each node sees",
                differ.join(", ")
            ),
        }
        .into());
    }
    let local = [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
    .unwrap_or(0);
    let mut options = accrete::GpuOptions::from_env();
    if options.adapter.is_none() {
        options.position = Some(local);
    }
    let gpu = pollster::block_on(Gpu::with_options(options))?;
    Ok((World { comm }, gpu))
}

/// Ends MPI before the process exits with `code`: a failure (not 0, not 130, the stop that
/// every rank takes together) on a job of several ranks aborts all of them.
pub fn finish(code: u8) {
    imp::finish(code);
}

/// FNV-1a, 64 bits: the configuration's fingerprint across ranks.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(not(feature = "mpi"))]
mod imp {
    use super::*;

    pub fn init() -> Result<Rc<dyn Collective>, Failure> {
        Err(accrete::Error::Data {
            source_name: "parallel.backend".into(),
            detail: format!("\"mpi\": {HOW_TO_BUILD}"),
        }
        .into())
    }

    pub fn finish(_code: u8) {}
}

#[cfg(feature = "mpi")]
mod imp {
    use super::*;
    use mpi::collective::{CommunicatorCollectives, Root};
    use mpi::environment::Universe;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use std::cell::RefCell;

    thread_local! {
        /// Held until [`finish`]: dropping it finalises MPI.
        static UNIVERSE: RefCell<Option<Universe>> = const { RefCell::new(None) };
    }

    struct Mpi {
        world: SimpleCommunicator,
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn size(&self) -> usize {
            self.world.size() as usize
        }

        fn gather(&self, local: &[f32], root: usize) -> Option<Vec<f32>> {
            let r = self.world.process_at_rank(root as i32);
            if self.rank() == root {
                let mut all = vec![0f32; local.len() * self.size()];
                r.gather_into_root(local, &mut all[..]);
                Some(all)
            } else {
                r.gather_into(local);
                None
            }
        }

        fn broadcast(&self, data: &mut [f32], root: usize) {
            self.world.process_at_rank(root as i32).broadcast_into(data);
        }

        fn all_gather_u64(&self, value: u64) -> Vec<u64> {
            let mut all = vec![0u64; self.size()];
            self.world.all_gather_into(&value, &mut all[..]);
            all
        }
    }

    pub fn init() -> Result<Rc<dyn Collective>, Failure> {
        let Some(universe) = mpi::initialize() else {
            return Err(accrete::Error::Data {
                source_name: "parallel.backend".into(),
                detail: "\"mpi\": MPI was already initialised in this process".into(),
            }
            .into());
        };
        let world = universe.world();
        UNIVERSE.with(|u| *u.borrow_mut() = Some(universe));
        Ok(Rc::new(Mpi { world }))
    }

    pub fn finish(code: u8) {
        let Some(universe) = UNIVERSE.with(|u| u.borrow_mut().take()) else {
            return;
        };
        let world = universe.world();
        if code != 0 && code != 130 && world.size() > 1 {
            world.abort(i32::from(code));
        }
        drop(universe);
    }
}
