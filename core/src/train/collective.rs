//! Data parallelism across processes (`[parallel] backend = "mpi"`): one replica per rank,
//! exchanging through a [`Collective`] the front end provides (the CLI's is MPI, built with
//! its `mpi` feature; core itself depends on no MPI library, so the default and wasm32 builds
//! need none).
//!
//! The reduction is the local backend's: [`fixed_order_mean`] sums every worker's part in
//! f32 in worker order and then scales by 1/N. Over MPI, rank 0 gathers every rank's part,
//! sums them in rank order and broadcasts the result, so a 2-rank run computes exactly what
//! 2 local replicas do and their checkpoints are byte-identical.
//!
//! - `mode = "all_reduce"`: every rank is a worker (worker r = rank r) and applies the same
//!   update; the epoch loop is [`Trainer::run_epoch_parallel`]'s.
//! - `mode = "parameter_server"` (synchronous, `max_staleness = 0`): rank 0 is the server,
//!   ranks 1 … N−1 are workers 0 … N−2. Workers record only their gradient steps and push
//!   the gradients; the server sums the workers' parts in rank order (its own is left out),
//!   applies the update (clipping, optimizer, on its device, holding the only optimizer
//!   state that moves) and every worker pulls the parameters. With N−1 workers the server
//!   computes what `all_reduce` over N−1 workers does, byte for byte. Checkpoints and the
//!   history are the server's.
//!
//! Every rank must take the same collective calls in the same order: the front end gives
//! every rank the same [`super::ChunkOptions`], and rank 0's stop decisions are broadcast.

use super::Trainer;
use crate::error::{Error, Result};
use std::rc::Rc;

/// The collective operations of a group of processes (MPI's communicator). Ranks are
/// `0 … size − 1`; every call is collective: every rank makes it, in the same order.
/// Failures abort the job (MPI's default error handler), so the calls return no error.
pub trait Collective {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank's `local` (all of one length) at `root`, concatenated in rank order
    /// (`None` on the other ranks).
    fn gather(&self, local: &[f32], root: usize) -> Option<Vec<f32>>;
    /// `data` of `root` into `data` of every rank.
    fn broadcast(&self, data: &mut [f32], root: usize);
    /// Every rank's `value`, in rank order, on every rank.
    fn all_gather_u64(&self, value: u64) -> Vec<u64>;
}

/// The one reduction of data parallelism, local and over MPI: `parts[0] + parts[1] + …` in
/// f32 in that order, then (`mean`) times `1 / parts.len()`.
pub(crate) fn fixed_order_sum(parts: &[&[f32]], mean: bool) -> Vec<f32> {
    let mut sum = parts.first().map(|p| p.to_vec()).unwrap_or_default();
    for p in &parts[1.min(parts.len())..] {
        for (s, x) in sum.iter_mut().zip(p.iter()) {
            *s += *x;
        }
    }
    if mean {
        let scale = 1.0 / parts.len() as f32;
        for s in &mut sum {
            *s *= scale;
        }
    }
    sum
}

/// [`fixed_order_sum`] with the mean: the gradient (or parameter) average.
pub(crate) fn fixed_order_mean(parts: &[&[f32]]) -> Vec<f32> {
    fixed_order_sum(parts, true)
}

/// This process's place in a multi-process run.
#[derive(Clone)]
pub(crate) struct Distributed {
    pub comm: Rc<dyn Collective>,
    /// Parameter server: rank 0 serves, the other ranks compute gradients.
    pub server_mode: bool,
}

impl Distributed {
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Ranks that compute gradients.
    pub fn workers(&self) -> usize {
        self.comm.size() - usize::from(self.server_mode)
    }

    /// This rank's worker index (its shard of every step); `None` on the server.
    pub fn worker(&self) -> Option<usize> {
        match (self.server_mode, self.rank()) {
            (true, 0) => None,
            (true, r) => Some(r - 1),
            (false, r) => Some(r),
        }
    }

    pub fn is_server(&self) -> bool {
        self.server_mode && self.rank() == 0
    }

    /// The workers' `local` parts reduced at rank 0 in rank order ([`fixed_order_sum`];
    /// the server's own part left out), then, with `broadcast`, on every rank. Returns the
    /// result where it is known (rank 0, or everywhere with `broadcast`).
    pub fn reduce(&self, local: &[f32], mean: bool, broadcast: bool) -> Option<Vec<f32>> {
        let all = self.comm.gather(local, 0);
        let mut out = all.map(|all| {
            let parts: Vec<&[f32]> = all
                .chunks(local.len().max(1))
                .skip(usize::from(self.server_mode))
                .collect();
            fixed_order_sum(&parts, mean)
        });
        if broadcast {
            let mut buf = out.take().unwrap_or_else(|| local.to_vec());
            self.comm.broadcast(&mut buf, 0);
            out = Some(buf);
        }
        out
    }
}

impl Trainer {
    /// Multi-process data parallelism: this trainer is the replica of rank `comm.rank()`
    /// (see the module docs); `parameter_server` makes rank 0 the server. Every rank must
    /// be built from the same specs and seed (the front end checks the configuration across
    /// ranks). `sync_every` > 1 (local SGD) is for all-reduce only.
    pub fn enable_collective(
        &mut self,
        comm: Rc<dyn Collective>,
        parameter_server: bool,
        sync_every: u64,
    ) -> Result<()> {
        let size = comm.size();
        if parameter_server && size < 2 {
            return Err(Error::invalid(
                "parallel.mode",
                format!("\"parameter_server\" needs at least 2 MPI ranks (rank 0 the server, the others workers), but this job has {size}; run it with mpirun -np 3 (or more), or use mode = \"all_reduce\""),
            ));
        }
        if parameter_server && sync_every != 1 {
            return Err(Error::invalid(
                "parallel.sync_every",
                "local SGD (sync_every > 1) is for mode = \"all_reduce\"; the parameter server updates every step: remove sync_every",
            ));
        }
        if sync_every == 0 {
            return Err(Error::invalid(
                "parallel.sync_every",
                "must be at least 1 (1 = gradients every step; K = parameters averaged every K steps)",
            ));
        }
        if !self.peers.is_empty() {
            return Err(Error::invalid(
                "parallel.devices",
                "backend = \"mpi\" runs one replica per rank: remove parallel.devices (or set it to 1)",
            ));
        }
        self.check_parallel_support()?;
        self.dist = Some(Distributed {
            comm,
            server_mode: parameter_server,
        });
        self.sync_every = sync_every;
        Ok(())
    }

    /// Replicas computing gradients: local replicas, or the worker ranks over MPI.
    pub fn workers(&self) -> usize {
        match &self.dist {
            Some(d) => d.workers(),
            None => self.replicas(),
        }
    }

    /// MPI ranks in the job (1 without MPI).
    pub fn ranks(&self) -> usize {
        self.dist.as_ref().map_or(1, |d| d.comm.size())
    }

    /// This process writes the run's files: always without MPI, rank 0 over MPI.
    pub fn is_root(&self) -> bool {
        self.dist.as_ref().is_none_or(|d| d.rank() == 0)
    }

    /// Over MPI, rank 0's `flag` on every rank (a stop request must stop every rank at the
    /// same step); otherwise `flag`.
    pub(crate) fn agree(&self, flag: bool) -> bool {
        match &self.dist {
            Some(d) => {
                let mut v = [f32::from(u8::from(flag))];
                d.comm.broadcast(&mut v, 0);
                v[0] != 0.0
            }
            None => flag,
        }
    }

    /// Parameter server: the workers pull the server's parameters after its update.
    pub(crate) async fn pull_parameters(&mut self) -> Result<()> {
        let Some(d) = self.dist.clone() else {
            return Ok(());
        };
        self.gpu().wait_idle()?;
        let t0 = crate::clock::now_seconds();
        for arena in &self.model.arenas {
            let mut v = arena.values.read_f32().await?;
            d.comm.broadcast(&mut v, 0);
            if !d.is_server() {
                arena.values.write_f32(&v)?;
            }
            self.comm.bytes += 4 * v.len() as u64;
        }
        self.comm.seconds += crate::clock::now_seconds() - t0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_runs_in_order_then_scales() {
        // (1e8 + 1) - 1e8 in f32 is 0; the other order would give 1.
        let (a, b, c) = ([1e8f32], [1.0f32], [-1e8f32]);
        assert_eq!(fixed_order_sum(&[&a, &b, &c], false), vec![0.0]);
        assert_eq!(fixed_order_sum(&[&a, &c, &b], false), vec![1.0]);
        assert_eq!(
            fixed_order_mean(&[&[3.0, -0.0], &[1.0, -0.0]]),
            vec![2.0, -0.0]
        );
    }
}
