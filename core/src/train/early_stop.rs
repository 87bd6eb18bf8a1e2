//! Early stopping on a validation split: stop when the monitored metric has not improved
//! by `min_delta` for `patience` epochs, and optionally restore the best epoch's weights.
//! Reduce-on-plateau schedules are fed the validation loss here too.

use super::history::{BestRestored, Event};
use super::{GpuDataset, Stats, Trainer};
use crate::data::Dataset;
use crate::defaults;
use crate::error::{Error, Result};
use crate::optim::ChunkSpan;
use serde::{Deserialize, Serialize};

/// Which validation metric to watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    #[default]
    ValLoss,
    ValAccuracy,
}

fn five() -> usize {
    defaults::EARLY_STOPPING_PATIENCE
}
fn yes() -> bool {
    defaults::EARLY_STOPPING_RESTORE_BEST
}

/// Early-stopping settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping (default 5).
    #[serde(default = "five")]
    pub patience: usize,
    /// Smallest change that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f64,
    /// `val_loss` (default) or `val_accuracy`.
    #[serde(default)]
    pub monitor: Monitor,
    /// Put back the best epoch's weights when stopping (default true).
    #[serde(default = "yes")]
    pub restore_best: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            patience: five(),
            min_delta: 0.0,
            monitor: Monitor::default(),
            restore_best: true,
        }
    }
}

/// What [`Trainer::fit_with_validation`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitReport {
    pub epochs_run: usize,
    /// 1-based epoch (of this call) with the best monitored value.
    pub best_epoch: usize,
    pub best_value: f64,
    pub stopped_early: bool,
    /// (train, validation) per epoch.
    pub epochs: Vec<(Stats, Stats)>,
}

impl Trainer {
    /// Trains on `train` for at most `max_epochs`, evaluating `val` after each epoch, with
    /// early stopping when `stopping` is given. With `restore_best`, the best epoch's
    /// weights and optimizer state are put back at the end (the step and epoch counters
    /// keep counting forward).
    pub async fn fit_with_validation(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        max_epochs: usize,
        stopping: Option<&EarlyStopping>,
    ) -> Result<FitReport> {
        let tr = self.upload_training(train)?;
        let va = GpuDataset::upload(self.gpu(), val)?;
        let eval_batch = self.inference_batch(va.len);
        // The call is one chunk of max_epochs epochs for the learning-rate plan.
        self.cursor.chunk_start_step = Some(self.step);
        let steps_per_epoch = self.train.steps_per_epoch(train.len());
        self.plan = Some(crate::optim::LrPlan::new(
            &self.optimizer,
            self.model.spec.layers.len(),
            ChunkSpan {
                start: self.step,
                steps: steps_per_epoch * max_epochs as u64,
            },
            self.planned_steps,
        )?);
        let better = |m: Monitor, a: f64, b: f64, delta: f64| match m {
            Monitor::ValLoss => a < b - delta,
            Monitor::ValAccuracy => a > b + delta,
        };
        let mut report = FitReport {
            epochs_run: 0,
            best_epoch: 0,
            best_value: f64::NAN,
            stopped_early: false,
            epochs: Vec::new(),
        };
        let mut best = None;
        let mut since_best = 0;
        for epoch in 1..=max_epochs {
            let ts = self.fit_epoch(&tr).await?;
            let vs = self.evaluate(&va, eval_batch).await?;
            self.optimizer.schedule.observe(vs.loss, &mut self.lr_state);
            self.cursor.epoch_in_chunk = epoch as u64;
            self.record(&ts, Some(&vs)).await?;
            report.epochs.push((ts, vs));
            report.epochs_run = epoch;
            let Some(es) = stopping else { continue };
            let value = match es.monitor {
                Monitor::ValLoss => vs.loss,
                Monitor::ValAccuracy => vs.accuracy,
            };
            if report.best_epoch == 0 || better(es.monitor, value, report.best_value, es.min_delta)
            {
                report.best_value = value;
                report.best_epoch = epoch;
                since_best = 0;
                if es.restore_best {
                    best = Some(self.checkpoint().await?);
                }
            } else {
                since_best += 1;
                if since_best >= es.patience {
                    report.stopped_early = true;
                    break;
                }
            }
        }
        self.cursor.epoch_in_chunk = 0;
        self.cursor.chunk_start_step = None;
        self.plan = None;
        if let Some(b) = &best {
            if report.best_epoch != report.epochs_run {
                let (history, epoch, step, cursor) = (
                    self.history.clone(),
                    self.epoch,
                    self.step,
                    self.cursor.clone(),
                );
                self.restore(b)?;
                // Keep counting forward: the run's history and counters are not rewound.
                (self.history, self.epoch, self.step, self.cursor) = (history, epoch, step, cursor);
                self.history.push(Event::BestRestored(BestRestored {
                    chunk: self.cursor.chunk,
                    epoch: self.epoch,
                    step: self.step,
                    restored_epochs_back: (report.epochs_run - report.best_epoch) as u64,
                    best_value: Some(report.best_value),
                    best_epoch: Some(report.best_epoch as u64),
                }));
            }
        }
        Ok(report)
    }
}

/// What the validation after a chunk's epoch decided.
pub(crate) struct Validated {
    pub stats: Option<Stats>,
    /// Early stopping: end this chunk now.
    pub stop_chunk: bool,
}

impl Trainer {
    /// Sets (or clears) the validation set evaluated after every epoch of
    /// [`Trainer::fit_chunk`]: its loss feeds reduce-on-plateau and early stopping
    /// (`train.early_stopping`, per chunk), and its loss and accuracy join the history.
    /// Without one, reduce-on-plateau watches the training loss.
    pub fn set_validation(&mut self, data: Option<&Dataset>) -> Result<()> {
        self.validation = match data {
            None => None,
            Some(d) if d.is_empty() => {
                return Err(Error::data(
                    "validation data",
                    "the validation set is empty",
                ))
            }
            Some(d) => {
                let g = GpuDataset::upload(self.gpu(), d)?;
                self.check_data(&g)?;
                Some(g)
            }
        };
        Ok(())
    }

    /// After an accepted epoch of a chunk: validate, feed the plateau schedule, and apply
    /// early stopping (state in the cursor, so a resumed run decides the same).
    pub(crate) async fn validate_epoch(&mut self, train: &Stats) -> Result<Validated> {
        let Some(val) = self.validation.take() else {
            self.optimizer
                .schedule
                .observe(train.loss, &mut self.lr_state);
            return Ok(Validated {
                stats: None,
                stop_chunk: false,
            });
        };
        let batch = self.inference_batch(val.len);
        let vs = self.evaluate(&val, batch).await;
        self.validation = Some(val);
        let vs = vs?;
        self.optimizer.schedule.observe(vs.loss, &mut self.lr_state);
        let Some(es) = self.train.early_stopping.clone() else {
            return Ok(Validated {
                stats: Some(vs),
                stop_chunk: false,
            });
        };
        let value = match es.monitor {
            Monitor::ValLoss => vs.loss,
            Monitor::ValAccuracy => vs.accuracy,
        };
        let improved = match (self.cursor.best_val, es.monitor) {
            (None, _) => true,
            (Some(b), Monitor::ValLoss) => value < b - es.min_delta,
            (Some(b), Monitor::ValAccuracy) => value > b + es.min_delta,
        };
        if improved {
            self.cursor.best_val = Some(value);
            self.cursor.since_best = 0;
            if es.restore_best {
                self.best_snapshot = Some(self.parameter_tensors().await?);
            }
        } else {
            self.cursor.since_best += 1;
        }
        Ok(Validated {
            stats: Some(vs),
            stop_chunk: self.cursor.since_best as usize >= es.patience,
        })
    }

    /// At a chunk's end: with restore_best, put back the best epoch's weights and optimizer
    /// state (counters keep counting forward), then reset the early-stopping state.
    pub(crate) fn finish_chunk_early_stopping(&mut self) -> Result<()> {
        let since = self.cursor.since_best;
        if let (Some(best), true) = (self.best_snapshot.take(), since > 0) {
            self.load_parameter_tensors(&best, "early stopping's best snapshot")?;
            self.history.push(Event::BestRestored(BestRestored {
                chunk: self.cursor.chunk,
                epoch: self.epoch,
                step: self.step,
                restored_epochs_back: since,
                best_value: self.cursor.best_val,
                best_epoch: None,
            }));
        }
        self.best_snapshot = None;
        self.cursor.best_val = None;
        self.cursor.since_best = 0;
        Ok(())
    }
}
