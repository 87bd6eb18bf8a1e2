//! Incremental training: chunks of data arrive one after another; each continues from the
//! parameters and optimizer moments the last left. Optional rehearsal keeps a reservoir
//! sample of earlier chunks (Vitter's Algorithm R, driven by Philox so it is the same on
//! every platform) and mixes `per_batch` of its samples into every batch of a new chunk,
//! which limits forgetting in class-incremental runs.

use super::{
    ChunkOptions, ChunkOutcome, EpochOutcome, GpuDataset, LossScaleState, NoObserver, Observer,
    Stats, Trainer,
};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::gather::PAD_INDEX;
use crate::kernels::rng::{words, RngKey};
use serde::{Deserialize, Serialize};

const RESERVOIR_STREAM: u32 = 0x4000;
const REPLAY_STREAM: u32 = 0x5000;

fn default_per_batch() -> usize {
    128
}

/// Rehearsal settings: `size` samples kept from earlier chunks, `per_batch` of them replayed
/// in every batch (drawn with replacement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RehearsalSpec {
    pub size: usize,
    #[serde(default = "default_per_batch")]
    pub per_batch: usize,
}

/// The rehearsal buffer: a uniform sample of every sample seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservoir {
    pub spec: RehearsalSpec,
    pub data: Option<Dataset>,
    /// Samples offered so far (Algorithm R's n).
    pub seen: u64,
}

impl Reservoir {
    pub fn new(spec: RehearsalSpec) -> Self {
        Reservoir {
            spec,
            data: None,
            seen: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers every sample of `chunk`: the first `size` fill the buffer; sample number n
    /// (0-based) then replaces slot j = uniform(0..=n) when j < size.
    pub fn offer(&mut self, chunk: &Dataset, seed: u64) {
        let cap = self.spec.size;
        if cap == 0 {
            return;
        }
        let d = chunk.sample_len();
        let t = chunk.target_dim;
        let data = self.data.get_or_insert_with(|| Dataset {
            features: Vec::new(),
            labels: Vec::new(),
            sample_shape: chunk.sample_shape.clone(),
            classes: chunk.classes,
            targets: Vec::new(),
            target_dim: t,
        });
        data.classes = data.classes.max(chunk.classes);
        for i in 0..chunk.len() {
            let n = self.seen;
            self.seen += 1;
            let x = &chunk.features[i * d..(i + 1) * d];
            if data.len() < cap {
                data.features.extend_from_slice(x);
                data.labels.push(chunk.labels[i]);
                data.targets
                    .extend_from_slice(&chunk.targets[i * t..(i + 1) * t]);
                continue;
            }
            let key = RngKey {
                seed,
                stream: RESERVOIR_STREAM,
                offset: (n >> 32) as u32,
            };
            let w = words(key, n as u32);
            let j = ((w[0] as u64) << 32 | w[1] as u64) % (n + 1);
            if (j as usize) < cap {
                let j = j as usize;
                data.features[j * d..(j + 1) * d].copy_from_slice(x);
                data.labels[j] = chunk.labels[i];
                data.targets[j * t..(j + 1) * t]
                    .copy_from_slice(&chunk.targets[i * t..(i + 1) * t]);
            }
        }
    }
}

fn concat(a: &Dataset, b: &Dataset) -> Result<Dataset> {
    if a.sample_shape != b.sample_shape || a.target_dim != b.target_dim {
        return Err(Error::data(
            "rehearsal",
            format!(
                "chunk samples are {:?} (targets of {}) but the buffer holds {:?} (targets of {})",
                a.sample_shape, a.target_dim, b.sample_shape, b.target_dim
            ),
        ));
    }
    let mut out = a.clone();
    out.features.extend_from_slice(&b.features);
    out.labels.extend_from_slice(&b.labels);
    out.targets.extend_from_slice(&b.targets);
    out.classes = a.classes.max(b.classes);
    Ok(out)
}

impl Trainer {
    /// Turns rehearsal on (or changes its settings, keeping the buffer's samples).
    pub fn enable_rehearsal(&mut self, spec: RehearsalSpec) {
        match &mut self.rehearsal {
            Some(r) => r.spec = spec,
            None => self.rehearsal = Some(Reservoir::new(spec)),
        }
    }

    /// Trains `chunk` for the configured epochs, continuing from the current parameters,
    /// optimizer moments and counters. Returns one [`Stats`] per epoch and records each in
    /// the history. With rehearsal, every batch holds `batch_size` new samples plus
    /// `per_batch` replayed ones; afterwards the chunk is offered to the buffer.
    pub async fn fit_chunk(&mut self, chunk: &Dataset) -> Result<Vec<Stats>> {
        match self
            .fit_chunk_with(chunk, &ChunkOptions::default(), &mut NoObserver)
            .await?
        {
            ChunkOutcome::Done(v) => Ok(v),
            ChunkOutcome::Stopped => Err(Error::invalid("fit_chunk", "stopped by the observer")),
        }
    }

    /// [`Trainer::fit_chunk`] with progress reports, periodic checkpoints and a way to stop.
    /// Continues from `cursor` (epoch and step within the chunk) after resuming from a
    /// checkpoint taken inside this chunk: call it again with the same chunk.
    pub async fn fit_chunk_with(
        &mut self,
        chunk: &Dataset,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Result<ChunkOutcome> {
        if chunk.is_empty() {
            return Err(Error::data(
                format!("chunk {}", self.cursor.chunk),
                "the chunk is empty",
            ));
        }
        let b = self.train.batch_size;
        let replay = self
            .rehearsal
            .as_ref()
            .filter(|r| !r.is_empty() && r.spec.per_batch > 0)
            .cloned();
        let data = match &replay {
            Some(r) => concat(chunk, r.data.as_ref().expect("non-empty"))?,
            None => chunk.clone(),
        };
        let gpu_data = GpuDataset::upload(self.gpu(), &data)?;
        self.check_data(&gpu_data)?;
        let mut out = Vec::new();
        let mut rollbacks = 0;
        self.stop_requested = false;
        while (self.cursor.epoch_in_chunk as usize) < self.train.epochs {
            let snapshot = self.snapshot_if_guarded().await?;
            let (rows, idx) = match &replay {
                None => (b, self.epoch_indices(chunk.len(), b, true)),
                Some(r) => (
                    b + r.spec.per_batch,
                    self.replay_indices(chunk.len(), b, r.len(), r.spec.per_batch),
                ),
            };
            let stats = match self.run_epoch(&gpu_data, rows, idx, opts, obs).await? {
                EpochOutcome::Done(s) => s,
                EpochOutcome::Stopped => return Ok(ChunkOutcome::Stopped),
            };
            if !self.accept_or_roll_back(&stats, snapshot.as_ref(), &mut rollbacks)? {
                continue;
            }
            self.cursor.epoch_in_chunk += 1;
            let v = self.validate_epoch(&stats).await?;
            let scale = self.loss_scale().await?;
            self.record(&stats, v.stats.as_ref(), scale.as_ref());
            obs.epoch_end(&stats);
            if let Some(vs) = &v.stats {
                obs.validated(vs);
            }
            out.push(stats);
            let last = self.cursor.epoch_in_chunk as usize == self.train.epochs || v.stop_chunk;
            if last {
                if v.stop_chunk && (self.cursor.epoch_in_chunk as usize) < self.train.epochs {
                    self.history.push(serde_json::json!({
                        "event": "early_stop_chunk", "chunk": self.cursor.chunk,
                        "epochs_run": self.cursor.epoch_in_chunk, "epoch": self.epoch, "step": self.step,
                    }));
                }
                self.finish_chunk_early_stopping()?;
                if let Some(r) = &mut self.rehearsal {
                    r.offer(chunk, self.seed);
                }
                self.cursor.chunk += 1;
                self.cursor.epoch_in_chunk = 0;
            }
            if opts.checkpoint_every_steps.is_some() || self.stop_requested {
                obs.checkpoint(&self.checkpoint().await?)?;
            }
            if self.stop_requested {
                return Ok(ChunkOutcome::Stopped);
            }
            if last {
                break;
            }
        }
        Ok(ChunkOutcome::Done(out))
    }

    /// Batches of `b` shuffled new samples (indices 0..n, padded) followed by `per` replayed
    /// ones (indices n..n+m, drawn with replacement).
    fn replay_indices(&self, n: usize, b: usize, m: usize, per: usize) -> Vec<u32> {
        let fresh = self.epoch_indices(n, b, true);
        let key = RngKey {
            seed: self.seed,
            stream: REPLAY_STREAM,
            offset: self.epoch as u32,
        };
        let mut idx = Vec::with_capacity(fresh.len() / b * (b + per));
        for (s, batch) in fresh.chunks(b).enumerate() {
            idx.extend_from_slice(batch);
            for j in 0..per {
                let w = words(key, (s * per + j) as u32)[0];
                let k = ((w as u64 * m as u64) >> 32) as usize;
                idx.push((n + k) as u32);
            }
        }
        debug_assert!(idx.iter().all(|&i| i == PAD_INDEX || (i as usize) < n + m));
        idx
    }

    fn record(&mut self, s: &Stats, val: Option<&Stats>, scale: Option<&LossScaleState>) {
        let mut row = serde_json::json!({
            "chunk": self.cursor.chunk,
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": s.loss,
            "train_accuracy": s.accuracy,
            "samples_per_sec": s.samples_per_second(),
            "lr": self.current_lr(),
        });
        if let Some(v) = val {
            row["val_loss"] = v.loss.into();
            row["val_accuracy"] = v.accuracy.into();
        }
        if let Some(l) = scale {
            row["loss_scale"] = l.scale.into();
            row["skipped_steps"] = l.skipped_steps.into();
        }
        self.history.push(row);
    }

    /// The learning rate the next step will use.
    pub fn current_lr(&self) -> f32 {
        self.optimizer
            .schedule
            .lr(self.optimizer.lr, self.step, self.epoch, 0, &self.lr_state)
    }
}
