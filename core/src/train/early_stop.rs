//! Early stopping on a validation split: stop when the monitored metric has not improved
//! by `min_delta` for `patience` epochs, and optionally restore the best epoch's weights.
//! Reduce-on-plateau schedules are fed the validation loss here too.

use super::{GpuDataset, Stats, Trainer};
use crate::data::Dataset;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Which validation metric to watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    #[default]
    ValLoss,
    ValAccuracy,
}

fn five() -> usize {
    5
}
fn yes() -> bool {
    true
}

/// Early-stopping settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
        let tr = GpuDataset::upload(self.gpu(), train)?;
        let va = GpuDataset::upload(self.gpu(), val)?;
        let eval_batch = self.train.batch_size.max(256);
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
            self.history.push(serde_json::json!({
                "chunk": self.cursor.chunk, "epoch": self.epoch, "step": self.step,
                "train_loss": ts.loss, "train_accuracy": ts.accuracy,
                "val_loss": vs.loss, "val_accuracy": vs.accuracy,
                "samples_per_sec": ts.samples_per_second(), "lr": self.current_lr(),
            }));
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
        if let Some(b) = &best {
            if report.best_epoch != report.epochs_run {
                let (history, epoch, step) = (self.history.clone(), self.epoch, self.step);
                self.restore(b)?;
                // Keep counting forward: the run's history and counters are not rewound.
                (self.history, self.epoch, self.step) = (history, epoch, step);
                self.history.push(serde_json::json!({"event": "early_stop", "best_epoch": report.best_epoch, "best_value": report.best_value}));
            }
        }
        Ok(report)
    }
}
