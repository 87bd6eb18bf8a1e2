//! Incremental training: chunks of data arrive one after another; each continues from the
//! parameters and optimizer moments the last left, for the configured epochs (or a
//! per-call count, [`ChunkOptions::epochs`]), with rehearsal, divergence recovery,
//! validation and early stopping. Every epoch is recorded in the history.

use super::history::{f32_decimal, ChunkStopped, EpochRecord, Event};
use super::rehearsal::concat;
use super::{ChunkOptions, ChunkOutcome, EpochOutcome, NoObserver, Observer, Stats, Trainer};
use crate::data::Dataset;
use crate::error::{Error, Result};

impl Trainer {
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

    /// [`Trainer::fit_chunk`] with progress reports, periodic checkpoints, a per-call epoch
    /// count and a way to stop. Continues from `cursor` (epoch and step within the chunk)
    /// after resuming from a checkpoint taken inside this chunk: call it again with the
    /// same chunk. A chunk stopped under a larger epoch count than this call's starts over.
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
        self.apply_chunk_schedule()?;
        self.check_recovery()?;
        if let Some(lr) = opts.lr.filter(|&lr| lr != self.optimizer.lr) {
            self.change_hyper(
                &[super::hyper::Setting::new("optimizer.lr", f32_decimal(lr))],
                super::history::ChangeSource::Call,
            )?;
        }
        let epochs = opts.epochs.unwrap_or(self.train.epochs);
        if epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.cursor.epoch_in_chunk as usize >= epochs {
            self.cursor.epoch_in_chunk = 0;
            self.cursor.step_in_epoch = 0;
            self.cursor.metrics = None;
            self.cursor.chunk_start_step = None;
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
        let mut gpu_data = self.upload_training(&data)?;
        self.check_data(&gpu_data)?;
        if let Some(r) = &replay {
            gpu_data.logits = self.replay_logits_source(chunk.len(), r)?;
        }
        self.set_replay_loss(replay.as_ref(), b);
        self.agem_chunk_start(true)?;
        if self.cursor.epoch_in_chunk == 0 && self.cursor.step_in_epoch == 0 {
            self.cursor.chunk_start_step = Some(self.step);
            self.lwf_chunk_start().await?;
        }
        self.plan_chunk(self.train.steps_per_epoch(chunk.len()), epochs as u64)?;
        let mut out = Vec::new();
        let mut rollbacks = 0;
        self.stop_requested = false;
        while (self.cursor.epoch_in_chunk as usize) < epochs {
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
            if !self
                .accept_or_roll_back(&stats, snapshot.as_ref(), &mut rollbacks, &gpu_data, rows)
                .await?
            {
                continue;
            }
            self.cursor.epoch_in_chunk += 1;
            let v = self.validate_epoch(&stats).await?;
            self.remember_for_recovery(v.stats.as_ref()).await?;
            let record = self.record(&stats, v.stats.as_ref()).await?;
            obs.epoch_end(&stats);
            if let Some(vs) = &v.stats {
                obs.validated(vs);
            }
            obs.epoch_record(&record);
            out.push(stats);
            let last = self.cursor.epoch_in_chunk as usize == epochs || v.stop_chunk;
            if last {
                if v.stop_chunk && (self.cursor.epoch_in_chunk as usize) < epochs {
                    self.history.push(Event::ChunkStopped(ChunkStopped {
                        chunk: self.cursor.chunk,
                        epochs_run: self.cursor.epoch_in_chunk,
                        epoch: self.epoch,
                        step: self.step,
                    }));
                }
                self.finish_chunk_early_stopping()?;
                if let Some(end) = self.record_chunk_end().await? {
                    obs.chunk_end(&end);
                }
                self.ewc_chunk_end(chunk).await?;
                self.offer_to_rehearsal(chunk).await?;
                self.agem_chunk_end(chunk);
                self.lwf_chunk_end();
                self.cursor.chunk += 1;
                self.cursor.epoch_in_chunk = 0;
                self.cursor.chunk_start_step = None;
                self.plan = None;
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

    /// Records an accepted epoch of a chunk in the history and returns the record.
    pub(crate) async fn record(&mut self, s: &Stats, val: Option<&Stats>) -> Result<EpochRecord> {
        let scale = self.loss_scale().await?;
        let record = EpochRecord {
            chunk: self.cursor.chunk,
            epoch: self.epoch,
            epoch_in_chunk: self.cursor.epoch_in_chunk,
            step: self.step,
            train_loss: s.loss,
            train_accuracy: s.accuracy,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
            lr: self
                .epoch_rates
                .last()
                .map_or(f64::NAN, |&r| f32_decimal(r)),
            samples_per_sec: s.samples_per_second(),
            loss_scale: scale.as_ref().map(|l| l.scale),
            skipped_steps: scale.as_ref().map(|l| l.skipped_steps),
        };
        self.history.push(Event::Epoch(record.clone()));
        Ok(record)
    }
}
