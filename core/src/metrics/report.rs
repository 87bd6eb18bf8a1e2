//! Precision, recall and F1 from a confusion matrix, with scikit-learn's conventions.

use super::confusion::{ratio, ConfusionMatrix};
use serde::{Deserialize, Serialize};

/// Scores of one class `c`, with `TP` = samples of class `c` predicted as `c`, `FP` =
/// samples of other classes predicted as `c`, `FN` = samples of class `c` predicted as
/// something else:
///
/// - precision = TP / (TP + FP)
/// - recall = TP / (TP + FN)
/// - f1 = 2·TP / (2·TP + FP + FN) (= the harmonic mean of precision and recall)
///
/// Each is 0 when its denominator is 0 (scikit-learn's `zero_division=0`, also what its
/// default `"warn"` returns): a class never predicted has precision 0, a class never
/// present has recall 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples whose true class is this one (TP + FN).
    pub support: u64,
}

/// Per-class and averaged scores of a single-label classifier, as scikit-learn's
/// `classification_report` / `precision_recall_fscore_support` compute them.
///
/// - `per_class[c]`: [`ClassReport`] of class `c`, one entry for every class `0..classes`.
/// - macro: unweighted mean of the per-class values over the classes that occur, i.e. that
///   are present in the truth or predicted at least once (scikit-learn's default label set
///   `unique_labels(y_true, y_pred)`). A class with no samples and no predictions carries
///   no information and is left out instead of counting as 0; with no samples at all the
///   macro values are 0.
/// - micro: computed from the pooled counts, ΣTP / Σ(TP + FP) and ΣTP / Σ(TP + FN). For
///   single-label multiclass both denominators are the number of samples, so micro
///   precision = micro recall = micro F1 = accuracy.
/// - `weighted_f1`: Σ support_c · f1_c / Σ support_c (0 with no samples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub per_class: Vec<ClassReport>,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    /// Correct predictions / samples (0 with no samples).
    pub accuracy: f64,
    pub weighted_f1: f64,
}

impl Report {
    /// Scores of the classifier whose predictions `cm` counts.
    pub fn from_confusion(cm: &ConfusionMatrix) -> Report {
        let support = cm.support();
        let predicted = cm.predicted_counts();
        let per_class: Vec<ClassReport> = (0..cm.classes())
            .map(|c| {
                let tp = cm.get(c, c);
                let fp = predicted[c] - tp;
                let fn_ = support[c] - tp;
                ClassReport {
                    precision: ratio(tp, tp + fp),
                    recall: ratio(tp, tp + fn_),
                    f1: ratio(2 * tp, 2 * tp + fp + fn_),
                    support: support[c],
                }
            })
            .collect();

        let occurring: Vec<&ClassReport> = per_class
            .iter()
            .zip(&predicted)
            .filter(|(r, &p)| r.support > 0 || p > 0)
            .map(|(r, _)| r)
            .collect();
        let mean = |f: fn(&ClassReport) -> f64| {
            if occurring.is_empty() {
                0.0
            } else {
                occurring.iter().map(|r| f(r)).sum::<f64>() / occurring.len() as f64
            }
        };
        let total = cm.total();
        let weighted_f1 = if total == 0 {
            0.0
        } else {
            per_class
                .iter()
                .map(|r| r.support as f64 * r.f1)
                .sum::<f64>()
                / total as f64
        };
        let accuracy = cm.accuracy();
        Report {
            macro_precision: mean(|r| r.precision),
            macro_recall: mean(|r| r.recall),
            macro_f1: mean(|r| r.f1),
            micro_precision: accuracy,
            micro_recall: accuracy,
            micro_f1: accuracy,
            accuracy,
            weighted_f1,
            per_class,
        }
    }
}
