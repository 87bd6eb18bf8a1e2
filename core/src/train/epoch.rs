//! The epoch loop: one epoch's steps recorded in segments of up to [`STEPS_PER_SUBMIT`]
//! into command buffers, with no host work or read-back inside a segment. The GPU is only
//! waited on at report points, checkpoints and the epoch's end.

use super::{
    ChunkOptions, Control, EpochOutcome, GpuDataset, LossKind, NoObserver, Observer, Progress,
    Stats, Trainer, SHUFFLE_STREAM,
};
use crate::clock;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Tensor};
use crate::kernels::gather::PAD_INDEX;
use crate::kernels::optim::schedule_row;
use crate::kernels::rng::{words, RngKey};
use crate::optim::{ChunkSpan, LrPlan};

/// Steps recorded into one command buffer (bounds encoder memory; no read-back between).
pub(crate) const STEPS_PER_SUBMIT: usize = 64;

impl Trainer {
    /// Index buffer for one epoch: a seeded permutation (Fisher–Yates on Philox draws, the
    /// same on every platform) padded with PAD_INDEX to whole batches.
    pub(crate) fn epoch_indices(&self, n: usize, batch: usize, shuffle: bool) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        if shuffle {
            let key = RngKey {
                seed: self.seed,
                stream: SHUFFLE_STREAM,
                offset: self.epoch as u32,
            };
            for i in (1..n).rev() {
                let w = words(key, i as u32);
                let r = ((w[0] as u64) << 32 | w[1] as u64) % (i as u64 + 1);
                idx.swap(i, r as usize);
            }
        }
        idx.resize(n.div_ceil(batch) * batch, PAD_INDEX);
        idx
    }

    /// The learning-rate plan for a chunk of `steps_per_epoch × epochs` steps that started
    /// at `cursor.chunk_start_step` (or, in checkpoints that did not keep it, where the
    /// counters say it started).
    pub(crate) fn plan_chunk(&mut self, steps_per_epoch: u64, epochs: u64) -> Result<()> {
        let start = *self.cursor.chunk_start_step.get_or_insert(
            self.step
                .saturating_sub(self.cursor.epoch_in_chunk * steps_per_epoch)
                .saturating_sub(self.cursor.step_in_epoch),
        );
        self.plan = Some(LrPlan::new(
            &self.optimizer,
            self.model.spec.layers.len(),
            ChunkSpan {
                start,
                steps: steps_per_epoch * epochs,
            },
            self.planned_steps,
        )?);
        Ok(())
    }

    /// The per-layer learning-rate multipliers of the current plan.
    pub(crate) fn layer_scales(&self) -> Result<Vec<f32>> {
        let layers = self.model.spec.layers.len();
        (0..layers)
            .map(|i| match &self.plan {
                Some(p) => Ok(p.layer_scale(i)),
                None => self.optimizer.lr_scale(i, layers),
            })
            .collect()
    }

    /// Trains one epoch on `data`; returns its mean training loss and accuracy (computed on
    /// the GPU during the epoch, read once at the end). Outside a chunk, the learning-rate
    /// plan treats the run as one chunk of `train.epochs` epochs from step 0.
    pub async fn fit_epoch(&mut self, data: &GpuDataset) -> Result<Stats> {
        self.check_data(data)?;
        if data.len == 0 {
            return Err(Error::data("training data", "the chunk is empty"));
        }
        let b = self.train.batch_size;
        self.set_replay_loss(None, b);
        self.agem_chunk_start(false)?;
        if self.plan.is_none() {
            // Outside a chunk the run is one chunk of train.epochs epochs from step 0 (or
            // from where fit_with_validation started it).
            let steps = self.train.steps_per_epoch(data.len) * self.train.epochs as u64;
            self.plan = Some(LrPlan::new(
                &self.optimizer,
                self.model.spec.layers.len(),
                ChunkSpan {
                    start: self.cursor.chunk_start_step.unwrap_or(0),
                    steps,
                },
                self.planned_steps,
            )?);
        }
        let idx = self.epoch_indices(data.len, b, true);
        match self
            .run_epoch(data, b, idx, &ChunkOptions::default(), &mut NoObserver)
            .await?
        {
            EpochOutcome::Done(s) => Ok(s),
            EpochOutcome::Stopped => Err(Error::invalid("fit_epoch", "stopped by the observer")),
        }
    }

    /// The schedule table of an epoch of `steps` steps starting at global step
    /// `epoch_start`, from step `first` on (earlier rows are never read): one row of
    /// [`schedule_row`] per step, its rate from the plan. Returns the table and the rates.
    pub(crate) fn schedule_table(
        &mut self,
        epoch_start: u64,
        steps: usize,
        first: usize,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let plan = self.plan_or_default()?;
        let mut table = Vec::with_capacity(steps * 4);
        let mut rates = Vec::with_capacity(steps);
        for k in 0..steps as u64 {
            let t = epoch_start + k;
            let lr = plan.rate(t, self.epoch, self.lr_state.scale);
            let lr = match self.lr_spike {
                Some((factor, n)) if k >= first as u64 && k < first as u64 + n => lr * factor,
                _ => lr,
            };
            rates.push(lr);
            table.extend_from_slice(&schedule_row(&self.rule, lr, t + 1));
        }
        // An injected spike is consumed once scheduled (a transient fault).
        self.lr_spike = None;
        Ok((table, rates))
    }

    /// Runs one epoch whose batches of `b` rows are `idx[s·b .. (s+1)·b]` (PAD_INDEX rows
    /// are padding), starting at `cursor.step_in_epoch` (non-zero after resuming from a
    /// mid-epoch checkpoint). Steps are recorded in segments of up to STEPS_PER_SUBMIT; the
    /// GPU is only waited on at report points, checkpoints and the end of the epoch.
    pub(crate) async fn run_epoch(
        &mut self,
        data: &GpuDataset,
        b: usize,
        idx: Vec<u32>,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Result<EpochOutcome> {
        if !self.peers.is_empty() || self.dist.is_some() {
            return self.run_epoch_parallel(data, b, idx, opts, obs).await;
        }
        let start = clock::now_seconds();
        let gpu = self.gpu().clone();
        self.ensure_program(b).await?;
        // Gradient accumulation: k micro-batches of b rows per step, the last step padded
        // with empty micro-batches (k = 1: the index buffer as given).
        let k = self.train.accumulate_steps.max(1);
        let mut idx = idx;
        idx.resize(idx.len().div_ceil(k * b) * k * b, PAD_INDEX);
        let steps = idx.len() / (k * b);
        let first = (self.cursor.step_in_epoch as usize).min(steps);
        let epoch_start_step = self.step - first as u64;
        self.agem_epoch(steps)?;
        let idx = Tensor::from_u32(&gpu, &[steps * k * b], &idx)?;
        let (table, rates) = self.schedule_table(epoch_start_step, steps, first)?;
        // The GPU counter counts micro-batches: each update's row repeated k times.
        let table: Vec<f32> = table
            .chunks(4)
            .flat_map(|row| std::iter::repeat_n(row, k).flatten().copied())
            .collect();
        let sched = Tensor::from_f32(&gpu, &[steps * k, 4], &table)?;
        let list: Vec<Dispatch> = self
            .step_list(data, &idx, &sched)?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        self.step_dispatches = list.len();
        let refs: Vec<&Dispatch> = list.iter().collect();
        // counter = (micro-batch within this epoch, global micro-batch): see
        // shaders/step.wgsl and, for k > 1, `program`.
        self.counter
            .write_u32(&[(first * k) as u32, (self.step * k as u64) as u32, 0, 0])?;
        self.metrics
            .write_f32(&self.cursor.metrics.unwrap_or([0.0; 4]))?;
        let mut done = first;
        let mut host = 0.0;
        let boundary = |every: Option<u64>, global: u64| {
            every.is_some_and(|e| e > 0 && global.is_multiple_of(e))
        };
        while done < steps {
            // Run up to the next report or checkpoint boundary (global step multiples).
            let mut n = STEPS_PER_SUBMIT.min(steps - done);
            for every in [opts.report_every_steps, opts.checkpoint_every_steps]
                .into_iter()
                .flatten()
            {
                if every > 0 {
                    let to_next = every - self.step % every;
                    n = n.min(to_next as usize);
                }
            }
            // Host cost: recording the passes and finishing the command buffer (the queue
            // submission may wait for the GPU and is not counted).
            let t0 = clock::now_seconds();
            let mut rec = gpu.recorder();
            rec.pass(&refs, n);
            host += clock::now_seconds() - t0 + rec.submit_timed()?;
            done += n;
            self.step += n as u64;
            self.cursor.step_in_epoch = done as u64;
            let report = boundary(opts.report_every_steps, self.step) && done < steps;
            let ckpt = boundary(opts.checkpoint_every_steps, self.step) && done < steps;
            let mut stop = false;
            if report || ckpt {
                let m = self.metrics.read_f32().await?;
                self.cursor.metrics = Some([m[0], m[1], m[2], m[3]]);
                if report {
                    let p = self.progress(done, steps, &m, start);
                    stop = matches!(obs.progress(&p), Control::Stop);
                }
            }
            if ckpt || stop {
                obs.checkpoint(&self.checkpoint().await?)?;
            }
            if stop {
                return Ok(EpochOutcome::Stopped);
            }
        }
        let m = self.metrics.read_f32().await?;
        Ok(EpochOutcome::Done(
            self.end_epoch(&m, rates, steps, start, host, opts, obs),
        ))
    }

    /// The end of an epoch of `steps` steps begun at `start` whose metrics accumulator
    /// reads `m`: counters, the epoch's rates and its statistics, and the last progress
    /// report.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn end_epoch(
        &mut self,
        m: &[f32],
        rates: Vec<f32>,
        steps: usize,
        start: f64,
        host: f64,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Stats {
        self.epoch += 1;
        self.cursor.step_in_epoch = 0;
        self.cursor.metrics = None;
        self.epoch_rates = rates;
        let samples = m[2] as usize;
        let stats = Stats {
            loss: m[0] as f64 / samples.max(1) as f64,
            accuracy: self.accuracy_of(m),
            samples,
            seconds: clock::now_seconds() - start,
            host_seconds: host,
        };
        if opts.report_every_steps.is_some() {
            let p = self.progress(steps, steps, m, start);
            if matches!(obs.progress(&p), Control::Stop) {
                self.stop_requested = true;
            }
        }
        stats
    }

    /// Accuracy from a metrics accumulator; NaN for regression (there are no classes).
    pub(crate) fn accuracy_of(&self, m: &[f32]) -> f64 {
        match self.train.loss {
            LossKind::SoftmaxCrossEntropy => m[1] as f64 / (m[2] as f64).max(1.0),
            LossKind::Mse => f64::NAN,
        }
    }

    pub(crate) fn progress(&self, done: usize, steps: usize, m: &[f32], start: f64) -> Progress {
        let samples = m[2] as f64;
        Progress {
            chunk: self.cursor.chunk,
            epoch_in_chunk: self.cursor.epoch_in_chunk,
            step_in_epoch: done as u64,
            steps_in_epoch: steps as u64,
            global_step: self.step,
            loss: m[0] as f64 / samples.max(1.0),
            accuracy: self.accuracy_of(m),
            samples_per_sec: samples / (clock::now_seconds() - start).max(1e-9),
        }
    }

    /// The current learning-rate plan; before any chunk was planned, one whose chunk starts
    /// at the current step.
    fn plan_or_default(&self) -> Result<LrPlan> {
        match &self.plan {
            Some(p) => Ok(p.clone()),
            None => LrPlan::new(
                &self.optimizer,
                self.model.spec.layers.len(),
                ChunkSpan {
                    start: self.step,
                    steps: 0,
                },
                self.planned_steps,
            ),
        }
    }

    /// The learning rate the next step will use, with the dynamic multiplier.
    pub fn current_lr(&self) -> f32 {
        self.plan_or_default()
            .map(|p| p.rate(self.step, self.epoch, self.lr_state.scale))
            .unwrap_or(f32::NAN)
    }

    /// The learning rate of every step of the last epoch run, as uploaded to the schedule
    /// table the update kernels read (empty before the first epoch; rows before a resumed
    /// epoch's first step are included but were not used).
    pub fn epoch_rates(&self) -> &[f32] {
        &self.epoch_rates
    }
}
