//! Local data parallelism (`[parallel] backend = "local"`): N replicas of the model, each on
//! its own wgpu device (several devices may share one adapter), trained on deterministic
//! shards of every step's batch.
//!
//! This trainer is replica 0; [`Trainer::enable_replicas`] adds replicas 1 … N−1 (its
//! `peers`). Every step's `rows` rows (the global batch; with rehearsal, plus the replayed
//! rows) are split in order: replica r takes rows `r·rows/N … (r+1)·rows/N` of each
//! (micro-)batch of the epoch's seeded index buffer, so a resumed run rebuilds the same shards
//! and N does not change which samples a step sees.
//!
//! - `sync_every = 1` (all-reduce): each replica records its gradient steps; the gradients
//!   are read back, summed on the host in f32 in replica order (0 + 1 + … + N−1) and scaled
//!   by 1/N — the mean of the shard means, the gradient of the global batch when the shards
//!   are full — then written to every replica, which all apply the same update (clipping
//!   included), so the replicas stay byte-identical whatever the timing.
//! - `sync_every = K > 1` (local SGD): each replica trains whole recorded steps on its shard
//!   with its own update; every K global steps the parameters *and the optimizer moments*
//!   are averaged the same way (fixed order, then 1/N) and written back. Averaging the
//!   moments keeps every replica's optimizer state that of one model (the choice of
//!   FedAvg-style local Adam; resetting them would restart the bias correction). Replicas
//!   also average at every checkpoint boundary and at the end of every epoch, so a
//!   checkpoint holds the one averaged model and a resumed run continues exactly; a stop
//!   requested between averages averages early (the resumed run then differs from an
//!   uninterrupted one by that extra average).
//! - Every replica sums its own loss and accuracy; at each checkpoint the summed metrics
//!   are folded into worker 0's accumulator (the others restart at zero), as a run resumed
//!   there starts, so the logged epoch loss of a resumed run rounds the same. (A stop
//!   between checkpoints is not such a point: after it only the logged loss may differ in
//!   its last bits.)
//! - Over MPI (`collective`) the same loop runs with one replica per rank.
//!
//! Checkpoints, validation, the history and every host-side decision are replica 0's; at
//! the start of every epoch replica 0's parameters and optimizer state are copied to the
//! others (after a rollback or a restored best epoch they must agree again). Not supported
//! (refused): mixed precision (each replica's loss scaler would skip steps on its own),
//! distillation and Learning without Forgetting (their teacher lives on one device).

use super::collective::{fixed_order_mean, fixed_order_sum};
use super::epoch::STEPS_PER_SUBMIT;
use super::{ChunkOptions, Control, EpochOutcome, GpuDataset, Observer, Trainer};
use crate::checkpoint::NamedTensor;
use crate::clock;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::kernels::gather::PAD_INDEX;
use crate::kernels::step;
use serde::Serialize;

/// Communication in parallel training, summed since the replicas were enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CommStats {
    /// Seconds spent moving and reducing gradients or parameters (after every replica's
    /// work was done: the read-backs, the host sum and the writes).
    pub seconds: f64,
    /// Seconds spent waiting for the replicas' steps before a reduction (computation).
    pub compute_seconds: f64,
    /// Bytes moved between the devices and the host, every replica's read-backs and writes.
    pub bytes: u64,
    /// Reductions: gradient all-reduces plus parameter averages.
    pub reductions: u64,
}

impl Trainer {
    /// Local data parallelism: the trainers on `gpus` become replicas 1 … N−1 of this one
    /// (`N = gpus.len() + 1`), built from this trainer's specs and seed; `sync_every` = 1
    /// reduces gradients every step, K > 1 averages parameters and moments every K steps
    /// (see the module docs). Upload training data with [`Self::upload_training`].
    pub fn enable_replicas(&mut self, gpus: &[Gpu], sync_every: u64) -> Result<()> {
        if sync_every == 0 {
            return Err(Error::invalid(
                "parallel.sync_every",
                "must be at least 1 (1 = gradients every step; K = parameters averaged every K steps)",
            ));
        }
        self.check_parallel_support()?;
        let mut peers = Vec::with_capacity(gpus.len());
        for g in gpus {
            let mut p = Trainer::new(
                g,
                self.model.spec.clone(),
                self.optimizer.clone(),
                self.train.clone(),
                self.seed,
            )?;
            p.kernels = self.kernels;
            peers.push(p);
        }
        self.peers = peers;
        self.sync_every = sync_every;
        Ok(())
    }

    /// Replicas training together (1 without [`Self::enable_replicas`]).
    pub fn replicas(&self) -> usize {
        self.peers.len() + 1
    }

    /// Communication so far (zero without replicas).
    pub fn comm_stats(&self) -> CommStats {
        self.comm
    }

    /// Uploads training data to this trainer's device and, with replicas, to each of theirs.
    pub fn upload_training(&self, data: &Dataset) -> Result<GpuDataset> {
        let mut d = GpuDataset::upload(self.gpu(), data)?;
        for p in &self.peers {
            d.peers.push(GpuDataset::upload(p.gpu(), data)?);
        }
        Ok(d)
    }

    /// Every replica's parameters and optimizer state, replica 0 first (read back; for
    /// checking that the replicas agree).
    pub async fn replica_parameters(&self) -> Result<Vec<Vec<NamedTensor>>> {
        let mut out = vec![self.parameter_tensors().await?];
        for p in &self.peers {
            out.push(p.parameter_tensors().await?);
        }
        Ok(out)
    }

    pub(super) fn check_parallel_support(&self) -> Result<()> {
        let refuse = |what: &str| {
            Err(Error::invalid(
                "parallel",
                format!("{what} cannot be combined with data-parallel training yet; remove [parallel] (or set devices = 1) or turn it off"),
            ))
        };
        if self.mixed.is_some() {
            return refuse(
                "train.mixed_precision (each replica's loss scaler would skip steps on its own)",
            );
        }
        if self.teacher.is_some() {
            return refuse("distillation (the teacher lives on one device)");
        }
        if self.lwf.is_some() {
            return refuse("incremental.lwf (the teacher lives on one device)");
        }
        if self.agem.is_some() {
            return refuse("incremental.agem (the reference gradient is one device's)");
        }
        Ok(())
    }

    fn replica(&self, r: usize) -> &Trainer {
        if r == 0 {
            self
        } else {
            &self.peers[r - 1]
        }
    }

    /// Copies replica 0's parameters and optimizer state to the others.
    async fn broadcast(&mut self) -> Result<()> {
        let t0 = clock::now_seconds();
        for a in 0..self.model.arenas.len() {
            let arena = &self.model.arenas[a];
            let mut tensors = vec![&arena.values];
            tensors.extend(arena.state.iter());
            for (i, t) in tensors.into_iter().enumerate() {
                let mut v = t.read_f32().await?;
                if let Some(d) = &self.dist {
                    d.comm.broadcast(&mut v, 0);
                    if d.rank() != 0 {
                        t.write_f32(&v)?;
                    }
                }
                for p in &self.peers {
                    let pa = &p.model.arenas[a];
                    let dst = if i == 0 { &pa.values } else { &pa.state[i - 1] };
                    dst.write_f32(&v)?;
                }
                self.comm.bytes += 4 * v.len() as u64 * (1 + self.peers.len() as u64);
            }
        }
        self.comm.seconds += clock::now_seconds() - t0;
        Ok(())
    }

    /// Waits for every replica's submitted work (counted as computation).
    fn wait_replicas(&mut self) -> Result<()> {
        let t0 = clock::now_seconds();
        for r in 0..self.replicas() {
            self.replica(r).gpu().wait_idle()?;
        }
        self.comm.compute_seconds += clock::now_seconds() - t0;
        Ok(())
    }

    /// Replaces `pick(replica)` on every replica by the mean over the workers
    /// ([`fixed_order_mean`]: summed in worker order in f32, then scaled by 1/N; over MPI
    /// through rank 0). `to_all = false` (the parameter server's push): only the server
    /// receives the mean.
    async fn reduce(&mut self, pick: impl Fn(&Trainer) -> Vec<Tensor>, to_all: bool) -> Result<()> {
        let n = self.replicas() as u64;
        let mine = pick(&*self);
        let others: Vec<Vec<Tensor>> = self.peers.iter().map(&pick).collect();
        let dist = self.dist.clone();
        for (i, t) in mine.iter().enumerate() {
            let mut parts = vec![t.read_f32().await?];
            for o in &others {
                parts.push(o[i].read_f32().await?);
            }
            let len = parts[0].len() as u64;
            let mean = match &dist {
                None => Some(fixed_order_mean(
                    &parts.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                )),
                Some(d) => d.reduce(&parts[0], true, to_all),
            };
            if let Some(mean) = mean {
                t.write_f32(&mean)?;
                for o in &others {
                    o[i].write_f32(&mean)?;
                }
            }
            self.comm.bytes += 8 * len * n;
        }
        Ok(())
    }

    /// All-reduce of the gradients (every arena's).
    async fn all_reduce_gradients(&mut self) -> Result<()> {
        self.wait_replicas()?;
        let t0 = clock::now_seconds();
        let to_all = !self.dist.as_ref().is_some_and(|d| d.server_mode);
        self.reduce(
            |t| t.model.arenas.iter().map(|a| a.grads.clone()).collect(),
            to_all,
        )
        .await?;
        self.comm.seconds += clock::now_seconds() - t0;
        self.comm.reductions += 1;
        Ok(())
    }

    /// Local SGD's average of the parameters and optimizer moments.
    async fn average_parameters(&mut self) -> Result<()> {
        self.wait_replicas()?;
        let t0 = clock::now_seconds();
        self.reduce(
            |t| {
                t.model
                    .arenas
                    .iter()
                    .flat_map(|a| std::iter::once(a.values.clone()).chain(a.state.iter().cloned()))
                    .collect()
            },
            true,
        )
        .await?;
        self.comm.seconds += clock::now_seconds() - t0;
        self.comm.reductions += 1;
        Ok(())
    }

    /// The epoch loop of [`Trainer::run_epoch`] over the replicas (see the module docs).
    pub(crate) async fn run_epoch_parallel(
        &mut self,
        data: &GpuDataset,
        rows: usize,
        idx: Vec<u32>,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Result<EpochOutcome> {
        let start = clock::now_seconds();
        let local = self.replicas();
        // Workers in all (over MPI: the worker ranks); this process's replica r is worker
        // `offset + r`; the parameter server (`offset` None) computes no gradients.
        let n = self.workers();
        let offset = self.dist.as_ref().map_or(Some(0), |d| d.worker());
        let server = self.dist.as_ref().is_some_and(|d| d.is_server());
        let ps = self.dist.as_ref().is_some_and(|d| d.server_mode);
        self.check_parallel_support()?;
        if data.peers.len() != local - 1 {
            return Err(Error::invalid(
                "training data",
                format!("it is on {} device(s) but there are {local} replicas; upload it with Trainer::upload_training", data.peers.len() + 1),
            ));
        }
        if !rows.is_multiple_of(n) {
            return Err(Error::invalid(
                "train.batch_size",
                format!("a step's {rows} rows do not split evenly over {n} replicas (parallel.devices); use a multiple of {n} (with rehearsal, batch_size + per_batch)"),
            ));
        }
        let shard = rows / n;
        let k = self.train.accumulate_steps.max(1);
        let mut idx = idx;
        idx.resize(idx.len().div_ceil(k * rows) * k * rows, PAD_INDEX);
        let steps = idx.len() / (k * rows);
        let first = (self.cursor.step_in_epoch as usize).min(steps);
        let epoch_start_step = self.step - first as u64;
        let (table, rates) = self.schedule_table(epoch_start_step, steps, first)?;
        let table: Vec<f32> = table
            .chunks(4)
            .flat_map(|row| std::iter::repeat_n(row, k).flatten().copied())
            .collect();
        // The replicas follow replica 0's settings (a replica whose optimizer, training
        // settings or kernels changed is rebuilt: its state layout may differ) and state.
        let (spec, optimizer, train) = (
            self.model.spec.clone(),
            self.optimizer.clone(),
            self.train.clone(),
        );
        let (kernels, seed, plan) = (self.kernels, self.seed, self.plan.clone());
        for p in self.peers.iter_mut() {
            if p.optimizer != optimizer || p.train != train || p.kernels != kernels {
                let gpu = p.gpu().clone();
                let mut fresh =
                    Trainer::new(&gpu, spec.clone(), optimizer.clone(), train.clone(), seed)?;
                fresh.kernels = kernels;
                *p = fresh;
            }
            p.plan = plan.clone();
        }
        self.broadcast().await?;
        // Per replica: its shard of every micro-batch, the schedule, its step lists.
        let global = self.step;
        let mut grad_lists: Vec<Vec<Dispatch>> = Vec::with_capacity(local);
        let mut update_lists: Vec<Vec<Dispatch>> = Vec::with_capacity(local);
        let mut keep: Vec<Tensor> = Vec::new();
        for r in 0..local {
            let w = offset.unwrap_or(0) + r;
            let shard_idx: Vec<u32> = idx
                .chunks(rows)
                .flat_map(|mb| mb[w * shard..(w + 1) * shard].iter().copied())
                .collect();
            let t = if r == 0 {
                &mut *self
            } else {
                &mut self.peers[r - 1]
            };
            t.ensure_program(shard).await?;
            let gpu = t.gpu().clone();
            let d = if r == 0 { data } else { &data.peers[r - 1] };
            let ti = Tensor::from_u32(&gpu, &[shard_idx.len()], &shard_idx)?;
            let ts = Tensor::from_f32(&gpu, &[steps * k, 4], &table)?;
            let strip = |l: super::program::Steps| -> Vec<Dispatch> {
                l.into_iter().map(|(_, d)| d).collect()
            };
            if server {
                // The server: the workers' micro-batch advances, then the update.
                let mut list = Vec::new();
                for _ in 1..k {
                    list.push(step::advance_into(&t.counter)?);
                }
                list.extend(strip(t.update_steps(&ts)?));
                grad_lists.push(Vec::new());
                update_lists.push(list);
            } else if ps {
                // A worker: gradients, then only the counter advance (the server updates).
                grad_lists.push(strip(t.gradient_steps(d, &ti)?));
                update_lists.push(vec![step::advance_into(&t.counter)?]);
            } else {
                grad_lists.push(strip(t.gradient_steps(d, &ti)?));
                update_lists.push(strip(t.update_steps(&ts)?));
            }
            t.counter
                .write_u32(&[(first * k) as u32, (global * k as u64) as u32, 0, 0])?;
            keep.extend([ti, ts]);
        }
        self.step_dispatches = grad_lists[0].len() + update_lists[0].len();
        // A resumed epoch's metrics so far belong to worker 0 alone (they are summed).
        let restored = self.cursor.metrics.filter(|_| offset == Some(0));
        self.metrics.write_f32(&restored.unwrap_or([0.0; 4]))?;
        for p in &self.peers {
            p.metrics.write_f32(&[0.0; 4])?;
        }
        let sync_every = self.sync_every.max(1);
        let boundary = |every: Option<u64>, global: u64| {
            every.is_some_and(|e| e > 0 && global.is_multiple_of(e))
        };
        let mut done = first;
        let mut host = 0.0;
        while done < steps {
            let mut count = 1;
            if sync_every == 1 {
                for (r, list) in grad_lists.iter().enumerate() {
                    host += self.replica(r).submit(list, 1)?;
                }
                self.all_reduce_gradients().await?;
                for (r, list) in update_lists.iter().enumerate() {
                    host += self.replica(r).submit(list, 1)?;
                }
                if ps {
                    self.pull_parameters().await?;
                }
            } else {
                count = STEPS_PER_SUBMIT.min(steps - done);
                let every = [
                    Some(sync_every),
                    opts.report_every_steps,
                    opts.checkpoint_every_steps,
                ];
                for e in every.into_iter().flatten().filter(|&e| e > 0) {
                    count = count.min((e - self.step % e) as usize);
                }
                for (r, (g, u)) in grad_lists.iter().zip(&update_lists).enumerate() {
                    let list: Vec<Dispatch> = g.iter().chain(u.iter()).cloned().collect();
                    host += self.replica(r).submit(&list, count)?;
                }
            }
            done += count;
            self.step += count as u64;
            self.cursor.step_in_epoch = done as u64;
            let report = boundary(opts.report_every_steps, self.step) && done < steps;
            let ckpt = boundary(opts.checkpoint_every_steps, self.step) && done < steps;
            let mut stop = false;
            if report || ckpt {
                let m = self.replica_metrics().await?;
                self.cursor.metrics = Some(m);
                if ckpt {
                    self.fold_metrics(&m, offset)?;
                }
                if report {
                    let p = self.progress(done, steps, &m, start);
                    stop = self.agree(matches!(obs.progress(&p), Control::Stop));
                }
            }
            let average = sync_every > 1
                && (boundary(Some(sync_every), self.step) || ckpt || stop || done == steps);
            if average {
                self.average_parameters().await?;
            }
            if ckpt || stop {
                obs.checkpoint(&self.checkpoint().await?)?;
            }
            if stop {
                return Ok(EpochOutcome::Stopped);
            }
        }
        drop(keep);
        let m = self.replica_metrics().await?;
        let stats = self.end_epoch(&m, rates, steps, start, host, opts, obs);
        self.stop_requested = self.agree(self.stop_requested);
        Ok(EpochOutcome::Done(stats))
    }

    /// At a checkpoint: the summed metrics `m` become worker 0's accumulator and the others
    /// restart from zero — what a run resumed from that checkpoint starts with — so the
    /// epoch's f32 sums round the same whether or not the run was resumed there.
    fn fold_metrics(&self, m: &[f32; 4], offset: Option<usize>) -> Result<()> {
        for r in 0..self.replicas() {
            let first = offset.map(|o| o + r) == Some(0);
            self.replica(r)
                .metrics
                .write_f32(if first { m } else { &[0.0; 4] })?;
        }
        Ok(())
    }

    /// Records `list` `count` times into one command buffer and submits it (nothing when
    /// the list is empty); returns the host seconds.
    fn submit(&self, list: &[Dispatch], count: usize) -> Result<f64> {
        if list.is_empty() {
            return Ok(0.0);
        }
        let refs: Vec<&Dispatch> = list.iter().collect();
        let mut rec = self.gpu().recorder();
        rec.pass(&refs, count);
        rec.submit_timed()
    }

    /// The epoch's metrics accumulators summed over the workers in worker order.
    async fn replica_metrics(&self) -> Result<[f32; 4]> {
        let mut parts = Vec::with_capacity(self.replicas());
        for r in 0..self.replicas() {
            parts.push(self.replica(r).metrics.read_f32().await?);
        }
        let sum = match &self.dist {
            None => fixed_order_sum(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>(), false),
            Some(d) => d.reduce(&parts[0], false, true).unwrap_or_default(),
        };
        let mut m = [0.0f32; 4];
        for (a, b) in m.iter_mut().zip(&sum) {
            *a = *b;
        }
        Ok(m)
    }
}
