//! The data of a run's report, as pure functions of host arrays (no GPU, no files, no
//! clocks), shared by the CLI (`accrete report`, which draws the images) and the browser:
//!
//! - [`parse_metrics`]: the epoch rows ([`EpochRecord`]) of a run's `metrics.jsonl`;
//! - [`Evaluation`]: loss, accuracy, confusion matrix, per-class precision / recall / F1 and
//!   one-vs-rest ROC AUC of a classifier's probabilities, [`evaluate`];
//! - [`Curves`]: per-epoch training and validation curves with the chunk boundaries;
//! - [`Grid`]: the points of a decision-boundary image for models with 2-D inputs;
//! - [`markdown`]: the text of `report.md`; [`continual_markdown`]: its continual-learning
//!   section (the chunk-end evaluations and the accuracy matrix).

mod continual;
mod markdown;

pub use continual::continual_markdown;
pub use markdown::{markdown, ReportInfo};

use crate::error::Result;
use crate::metrics::{macro_auc, one_vs_rest_auc, ConfusionMatrix, Report};
pub use crate::train::history::EpochRecord;
use crate::train::history::{epochs, parse_events};
use serde::Serialize;

/// Reads the epoch rows of `metrics.jsonl` text (its other events — rollbacks, early stops
/// — are skipped; see [`crate::train::history::parse_events`] for all of them).
pub fn parse_metrics(text: &str, source: &str) -> Result<Vec<EpochRecord>> {
    Ok(epochs(&parse_events(text, source)?))
}

/// The best validation accuracy among `rows` and the epoch it was reached in.
pub fn best_validation(rows: &[EpochRecord]) -> Option<(f64, u64)> {
    rows.iter()
        .filter_map(|r| r.val_accuracy.map(|a| (a, r.epoch)))
        .filter(|(a, _)| a.is_finite())
        .fold(None, |best, (a, e)| match best {
            Some((b, _)) if b >= a => best,
            _ => Some((a, e)),
        })
}

/// Scores of one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples of this class.
    pub support: u64,
    /// One-vs-rest ROC AUC (`None` when the class is absent or the only one present).
    pub auc: Option<f64>,
}

/// A frequent mistake: `count` samples of class `actual` predicted as `predicted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub actual: usize,
    pub predicted: usize,
    pub count: u64,
}

/// How well a classifier's probabilities fit the true labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub samples: usize,
    /// Mean cross-entropy −ln p(true class), with p floored at the smallest normal f32.
    pub loss: f64,
    pub accuracy: f64,
    pub per_class: Vec<ClassScores>,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub weighted_f1: f64,
    /// Mean of the defined per-class AUCs.
    pub macro_auc: Option<f64>,
    /// The ten largest off-diagonal cells of the confusion matrix.
    pub top_confusions: Vec<Confusion>,
    /// Row = true class, column = predicted class.
    pub confusion: ConfusionMatrix,
}

/// Evaluates probabilities `probs` ([n, classes] row-major) against `truth` ([n]).
pub fn evaluate(truth: &[u32], probs: &[f32], classes: usize) -> Result<Evaluation> {
    let cm = ConfusionMatrix::from_probabilities(truth, probs, classes)?;
    let report = Report::from_confusion(&cm);
    let auc = one_vs_rest_auc(truth, probs, classes)?;
    let n = truth.len();
    let loss = if n == 0 {
        0.0
    } else {
        truth
            .iter()
            .enumerate()
            .map(|(i, &t)| -(probs[i * classes + t as usize].max(f32::MIN_POSITIVE) as f64).ln())
            .sum::<f64>()
            / n as f64
    };
    Ok(Evaluation {
        samples: n,
        loss,
        accuracy: report.accuracy,
        per_class: report
            .per_class
            .iter()
            .zip(&auc)
            .enumerate()
            .map(|(c, (r, a))| ClassScores {
                class: c,
                precision: r.precision,
                recall: r.recall,
                f1: r.f1,
                support: r.support,
                auc: *a,
            })
            .collect(),
        macro_precision: report.macro_precision,
        macro_recall: report.macro_recall,
        macro_f1: report.macro_f1,
        micro_precision: report.micro_precision,
        micro_recall: report.micro_recall,
        micro_f1: report.micro_f1,
        weighted_f1: report.weighted_f1,
        macro_auc: macro_auc(&auc),
        top_confusions: cm
            .top_confusions(10)
            .into_iter()
            .map(|(actual, predicted, count)| Confusion {
                actual,
                predicted,
                count,
            })
            .collect(),
        confusion: cm,
    })
}

/// The index of each row's largest value (the first on ties): predicted classes from
/// probabilities `[n, classes]`.
pub fn argmax_rows(probs: &[f32], classes: usize) -> Vec<usize> {
    probs
        .chunks(classes.max(1))
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Per-epoch curves of a run, x = epochs completed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Curves {
    pub epoch: Vec<f64>,
    pub train_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub val_loss: Vec<Option<f64>>,
    pub val_accuracy: Vec<Option<f64>>,
    /// x positions (half-way between epochs) where a new chunk starts.
    pub chunk_boundaries: Vec<f64>,
}

impl Curves {
    /// Whether any epoch has a validation value.
    pub fn has_validation(&self) -> bool {
        self.val_loss.iter().any(Option::is_some)
    }
}

/// The curves of `rows` (in file order).
pub fn curves(rows: &[EpochRecord]) -> Curves {
    let mut c = Curves::default();
    for (i, r) in rows.iter().enumerate() {
        c.epoch.push(r.epoch as f64);
        c.train_loss.push(r.train_loss);
        c.train_accuracy.push(r.train_accuracy);
        c.val_loss.push(r.val_loss);
        c.val_accuracy.push(r.val_accuracy);
        if let Some(next) = rows.get(i + 1) {
            if next.chunk != r.chunk {
                c.chunk_boundaries
                    .push((r.epoch as f64 + next.epoch as f64) / 2.0);
            }
        }
    }
    c
}

/// A regular grid of 2-D points covering some data, for decision-boundary images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Grid {
    pub x: (f32, f32),
    pub y: (f32, f32),
    pub nx: usize,
    pub ny: usize,
}

impl Grid {
    /// A grid of `nx` × `ny` points over the bounding box of `features` (rows of 2 values)
    /// widened by 10% on each side. `None` unless the rows have 2 values and are finite.
    pub fn around(features: &[f32], nx: usize, ny: usize) -> Option<Grid> {
        if features.is_empty() || !features.len().is_multiple_of(2) || nx < 2 || ny < 2 {
            return None;
        }
        let range = |k: usize| {
            let vals = features.iter().skip(k).step_by(2);
            let lo = vals.clone().copied().fold(f32::INFINITY, f32::min);
            let hi = vals.copied().fold(f32::NEG_INFINITY, f32::max);
            let pad = ((hi - lo) * 0.1).max(1e-3);
            (lo - pad, hi + pad)
        };
        let (x, y) = (range(0), range(1));
        (x.0.is_finite() && x.1.is_finite() && y.0.is_finite() && y.1.is_finite()).then_some(Grid {
            x,
            y,
            nx,
            ny,
        })
    }

    /// The coordinates of point (i, j), i along x, j along y.
    pub fn point(&self, i: usize, j: usize) -> (f32, f32) {
        let t = |lo: f32, hi: f32, k: usize, n: usize| lo + (hi - lo) * k as f32 / (n - 1) as f32;
        (
            t(self.x.0, self.x.1, i, self.nx),
            t(self.y.0, self.y.1, j, self.ny),
        )
    }

    /// Every point, row by row (j outer, i inner), as `[nx·ny, 2]` features.
    pub fn points(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.nx * self.ny * 2);
        for j in 0..self.ny {
            for i in 0..self.nx {
                let (x, y) = self.point(i, j);
                out.extend([x, y]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(chunk: u64, epoch: u64, val: Option<f64>) -> EpochRecord {
        EpochRecord {
            chunk,
            epoch,
            epoch_in_chunk: 1,
            step: epoch * 10,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.5,
            val_loss: val.map(|v| 1.0 - v),
            val_accuracy: val,
            lr: 1e-3,
            samples_per_sec: 100.0,
            loss_scale: None,
            skipped_steps: None,
        }
    }

    #[test]
    fn metrics_round_trip_with_nan_and_best() {
        let mut rows = [
            row(0, 1, Some(0.5)),
            row(0, 2, Some(0.7)),
            row(1, 3, Some(0.6)),
        ];
        rows[1].train_loss = f64::NAN;
        let events: Vec<crate::train::Event> = rows
            .iter()
            .cloned()
            .map(crate::train::Event::Epoch)
            .collect();
        let text = crate::train::history::to_jsonl(&events);
        let back = parse_metrics(&text, "m").unwrap();
        assert!(back[1].train_loss.is_nan());
        assert_eq!(back[2], rows[2]);
        assert_eq!(best_validation(&back), Some((0.7, 2)));
        let e = parse_metrics("{}\n", "metrics.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("metrics.jsonl: line 1"), "{e}");
        let c = curves(&back);
        assert_eq!(c.chunk_boundaries, [2.5]);
        assert!(c.has_validation());
    }

    #[test]
    fn evaluation_of_a_small_classifier() {
        let truth = [0, 1, 2, 2];
        let probs = [
            0.8, 0.1, 0.1, //
            0.2, 0.7, 0.1, //
            0.1, 0.6, 0.3, //
            0.0, 0.1, 0.9,
        ];
        let e = evaluate(&truth, &probs, 3).unwrap();
        assert_eq!(e.samples, 4);
        assert_eq!(e.accuracy, 0.75);
        assert_eq!(
            e.top_confusions,
            [Confusion {
                actual: 2,
                predicted: 1,
                count: 1
            }]
        );
        let want = -(0.8f64.ln() + 0.7f64.ln() + 0.3f64.ln() + 0.9f64.ln()) / 4.0;
        assert!((e.loss - want).abs() < 1e-6, "{} vs {want}", e.loss);
        assert_eq!(e.per_class[0].auc, Some(1.0));
        assert_eq!(argmax_rows(&probs, 3), [0, 1, 1, 2]);
    }

    #[test]
    fn grid_covers_the_data() {
        let g = Grid::around(&[0.0, 0.0, 1.0, 2.0], 3, 5).unwrap();
        assert!(g.x.0 < 0.0 && g.x.1 > 1.0 && g.y.1 > 2.0);
        let p = g.points();
        assert_eq!(p.len(), 30);
        assert_eq!((p[0], p[1]), g.point(0, 0));
        assert_eq!((p[28], p[29]), (g.x.1, g.y.1));
        assert!(Grid::around(&[1.0, 2.0, 3.0], 3, 3).is_none());
    }
}
