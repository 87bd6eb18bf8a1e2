//! Continual-learning metrics: per-task accuracy and the accuracy matrix with its standard
//! summaries.
//!
//! A class-incremental run trains chunk after chunk; chunk `j` brings the classes of task
//! `j` ([`task_groups`]: the same contiguous class groups as `split_by = "class"`). After
//! chunk `i` every task seen so far is evaluated: the **accuracy matrix** `R[i][j]` is the
//! accuracy on task `j`'s test samples after training chunk `i` (`j ≤ i`; row `i` has `i + 1`
//! entries). From its last row `T − 1`:
//!
//! - [`AccuracyMatrix::average_accuracy`]: `mean_j R[T−1][j]` over the tasks seen;
//! - [`AccuracyMatrix::backward_transfer`] (BWT, Lopez-Paz & Ranzato 2017):
//!   `mean_{j < T−1} (R[T−1][j] − R[j][j])`, negative when training later chunks lost
//!   accuracy on earlier tasks;
//! - [`AccuracyMatrix::forgetting`] (Chaudhry et al. 2018):
//!   `mean_{j < T−1} (max_{j ≤ l < T−1} R[l][j] − R[T−1][j])`, the drop from each earlier
//!   task's best accuracy to its final one.
//!
//! BWT and forgetting are undefined (`None`) after the first chunk, where no task is earlier.

use crate::error::{Error, Result};
use std::ops::Range;

/// The classes of each of `tasks` tasks: classes `0..classes` split into contiguous groups
/// of near-equal size, larger groups last (10 classes in 5 tasks: `0..2, 2..4, …`), the
/// rule `split_by = "class"` splits the training data by. Requires `1 ≤ tasks ≤ classes`.
pub fn task_groups(classes: usize, tasks: usize) -> Result<Vec<Range<u32>>> {
    if tasks == 0 || tasks > classes {
        return Err(Error::invalid(
            "task groups",
            format!("{tasks} tasks of {classes} classes: use between 1 and {classes} tasks"),
        ));
    }
    Ok((0..tasks)
        .map(|t| (t * classes / tasks) as u32..((t + 1) * classes / tasks) as u32)
        .collect())
}

/// Accuracy on each task's samples: for every group, the fraction of the samples whose
/// label is in the group that are predicted correctly (argmax of `probs`, the first
/// maximum on ties). NaN for a group without samples. `probs` is `[n, classes]` row-major.
pub fn task_accuracies(
    truth: &[u32],
    probs: &[f32],
    classes: usize,
    groups: &[Range<u32>],
) -> Result<Vec<f64>> {
    if classes == 0 || probs.len() != truth.len() * classes {
        return Err(Error::shape(
            "task accuracies",
            format!(
                "{} scores for {} samples of {classes} classes",
                probs.len(),
                truth.len()
            ),
        ));
    }
    let mut right = vec![0usize; groups.len()];
    let mut total = vec![0usize; groups.len()];
    for (row, &t) in probs.chunks_exact(classes).zip(truth) {
        let Some(g) = groups.iter().position(|g| g.contains(&t)) else {
            continue;
        };
        let mut best = 0;
        for (c, &p) in row.iter().enumerate() {
            if p > row[best] {
                best = c;
            }
        }
        total[g] += 1;
        right[g] += (best as u32 == t) as usize;
    }
    Ok(right
        .iter()
        .zip(&total)
        .map(|(&r, &n)| {
            if n == 0 {
                f64::NAN
            } else {
                r as f64 / n as f64
            }
        })
        .collect())
}

/// The lower-triangular accuracy matrix `R[i][j]` of a continual run (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyMatrix {
    rows: Vec<Vec<f64>>,
}

impl AccuracyMatrix {
    /// From its rows: row `i` (after chunk `i`) holds the accuracies on tasks `0..=i`.
    pub fn new(rows: Vec<Vec<f64>>) -> Result<AccuracyMatrix> {
        if let Some((i, r)) = rows.iter().enumerate().find(|(i, r)| r.len() != i + 1) {
            return Err(Error::shape(
                "accuracy matrix",
                format!(
                    "row {i} holds {} task accuracies; after chunk {i} there are {} tasks",
                    r.len(),
                    i + 1
                ),
            ));
        }
        Ok(AccuracyMatrix { rows })
    }

    /// The rows, one per chunk trained.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// Chunks trained (`T`).
    pub fn chunks(&self) -> usize {
        self.rows.len()
    }

    /// Mean accuracy over the tasks seen, after the last chunk; `None` when empty.
    pub fn average_accuracy(&self) -> Option<f64> {
        let last = self.rows.last()?;
        Some(last.iter().sum::<f64>() / last.len() as f64)
    }

    /// Backward transfer: `mean_{j < T−1} (R[T−1][j] − R[j][j])`; `None` before a second chunk.
    pub fn backward_transfer(&self) -> Option<f64> {
        let t = self.rows.len();
        (t >= 2).then(|| {
            let last = &self.rows[t - 1];
            (0..t - 1).map(|j| last[j] - self.rows[j][j]).sum::<f64>() / (t - 1) as f64
        })
    }

    /// Forgetting: `mean_{j < T−1} (max_{j ≤ l < T−1} R[l][j] − R[T−1][j])`; `None` before a
    /// second chunk.
    pub fn forgetting(&self) -> Option<f64> {
        let t = self.rows.len();
        (t >= 2).then(|| {
            let last = &self.rows[t - 1];
            (0..t - 1)
                .map(|j| {
                    let best = (j..t - 1)
                        .map(|l| self.rows[l][j])
                        .fold(f64::NEG_INFINITY, f64::max);
                    best - last[j]
                })
                .sum::<f64>()
                / (t - 1) as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three chunks, worked by hand:
    ///
    /// ```text
    ///          task 0  task 1  task 2
    /// chunk 0   0.90
    /// chunk 1   0.60    0.80
    /// chunk 2   0.30    0.70    0.95
    /// ```
    ///
    /// average = (0.30 + 0.70 + 0.95) / 3 = 0.65;
    /// BWT = ((0.30 − 0.90) + (0.70 − 0.80)) / 2 = −0.35;
    /// forgetting = ((max(0.90, 0.60) − 0.30) + (0.80 − 0.70)) / 2 = (0.60 + 0.10) / 2 = 0.35.
    /// After chunk 1: average 0.70, BWT −0.30, forgetting 0.30.
    #[test]
    fn matrix_summaries_match_a_hand_computed_example() {
        let rows = vec![vec![0.9], vec![0.6, 0.8], vec![0.3, 0.7, 0.95]];
        let close = |a: Option<f64>, b: f64| {
            let a = a.expect("defined");
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        };
        let m = AccuracyMatrix::new(rows.clone()).unwrap();
        close(m.average_accuracy(), 0.65);
        close(m.backward_transfer(), -0.35);
        close(m.forgetting(), 0.35);
        let m2 = AccuracyMatrix::new(rows[..2].to_vec()).unwrap();
        close(m2.average_accuracy(), 0.7);
        close(m2.backward_transfer(), -0.3);
        close(m2.forgetting(), 0.3);
        let m1 = AccuracyMatrix::new(rows[..1].to_vec()).unwrap();
        close(m1.average_accuracy(), 0.9);
        assert_eq!((m1.backward_transfer(), m1.forgetting()), (None, None));
        let m0 = AccuracyMatrix::new(vec![]).unwrap();
        assert_eq!(m0.average_accuracy(), None);
    }

    /// Forgetting takes the best earlier accuracy, not the first: a task that improved
    /// before it was forgotten counts from its peak; BWT counts from its first value.
    #[test]
    fn forgetting_counts_from_the_peak_and_bwt_from_the_start() {
        let m = AccuracyMatrix::new(vec![vec![0.5], vec![0.9, 0.6], vec![0.4, 0.6, 0.7]]).unwrap();
        // forgetting: ((0.9 − 0.4) + (0.6 − 0.6)) / 2 = 0.25; BWT: ((0.4 − 0.5) + 0) / 2 = −0.05.
        assert!((m.forgetting().unwrap() - 0.25).abs() < 1e-12);
        assert!((m.backward_transfer().unwrap() + 0.05).abs() < 1e-12);
    }

    #[test]
    fn a_matrix_that_is_not_lower_triangular_is_refused() {
        let e = AccuracyMatrix::new(vec![vec![0.9], vec![0.6]]).unwrap_err();
        assert!(
            e.to_string().contains("row 1 holds 1 task accuracies"),
            "{e}"
        );
    }

    #[test]
    fn task_groups_follow_the_class_split() {
        assert_eq!(
            task_groups(10, 5).unwrap(),
            vec![0..2, 2..4, 4..6, 6..8, 8..10]
        );
        // Larger groups last, as split::increments makes them.
        assert_eq!(task_groups(7, 3).unwrap(), vec![0..2, 2..4, 4..7]);
        assert!(task_groups(3, 4).is_err() && task_groups(3, 0).is_err());
    }

    #[test]
    fn task_accuracies_count_argmax_hits_per_group() {
        // 3 classes, groups {0,1} and {2}; rows argmax: 0, 1, 1, 2, 0.
        let truth = [0, 1, 0, 2, 2];
        let probs = [
            0.8, 0.1, 0.1, //
            0.2, 0.7, 0.1, //
            0.3, 0.6, 0.1, //
            0.1, 0.1, 0.8, //
            0.5, 0.2, 0.3, //
        ];
        let acc = task_accuracies(&truth, &probs, 3, &[0..2, 2..3]).unwrap();
        // Group 0: samples 0, 1, 2 → 2 of 3 right; group 1: samples 3, 4 → 1 of 2.
        assert_eq!(acc, vec![2.0 / 3.0, 0.5]);
        let empty = task_accuracies(&truth, &probs, 3, &[0..1, 5..6]).unwrap();
        assert_eq!(empty[0], 0.5);
        assert!(empty[1].is_nan());
        assert!(task_accuracies(&truth, &probs[1..], 3, &[0..2, 2..3]).is_err());
    }
}
