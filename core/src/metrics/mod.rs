//! Evaluation metrics as pure functions on plain host arrays: no GPU, no I/O, no clocks, so
//! they run the same natively and in the browser.
//!
//! Shapes used throughout: `n` samples, `classes` classes; labels are `u32` in
//! `0..classes`; per-sample class scores (`probs`) are row-major `[n, classes]` f32.
//!
//! - [`ConfusionMatrix`]: counts of (true class, predicted class), `[classes, classes]`.
//! - [`Report`] / [`ClassReport`]: precision, recall, F1 per class and averaged, following
//!   scikit-learn's conventions (`classification_report`, `precision_recall_fscore_support`).
//! - [`roc_curve`], [`auc`], [`roc_auc`], [`one_vs_rest_auc`], [`macro_auc`]: binary and
//!   one-vs-rest ROC analysis with exact handling of tied scores.
//! - [`moving_average`]: trailing-window smoothing for plotted training curves.
//! - [`AccuracyMatrix`], [`task_accuracies`], [`task_groups`]: continual-learning metrics
//!   (the accuracy matrix, average accuracy, backward transfer, forgetting).

mod confusion;
mod continual;
mod report;
mod roc;

pub use confusion::ConfusionMatrix;
pub use continual::{task_accuracies, task_groups, AccuracyMatrix};
pub use report::{ClassReport, Report};
pub use roc::{auc, macro_auc, one_vs_rest_auc, roc_auc, roc_curve, RocCurve};

/// Trailing moving average with the same length as `values`:
/// `out[i] = mean(values[i + 1 - m ..= i])` with `m = min(window, i + 1)`, so the first
/// `window - 1` outputs average over the values available so far. `window == 0` is treated
/// as 1 (no smoothing). Each output is summed afresh (O(n · window)), so a NaN only affects
/// the `window` outputs whose window contains it.
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    (0..values.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(window);
            let w = &values[lo..=i];
            w.iter().sum::<f64>() / w.len() as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_trails_and_keeps_length() {
        let v = [1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0, 7.0, 8.0];
        let m = moving_average(&v, 2);
        assert_eq!(&m[..4], &[1.0, 1.5, 2.5, 3.5]);
        assert!(m[4].is_nan() && m[5].is_nan());
        assert_eq!(&m[6..], &[6.5, 7.5]);
        assert_eq!(moving_average(&v[..3], 0), vec![1.0, 2.0, 3.0]);
        assert_eq!(moving_average(&[], 3), Vec::<f64>::new());
    }
}
