//! The confusion matrix of a single-label classifier.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs: `counts` is `[classes, classes]`
/// row-major, row = true class, column = predicted class, so
/// `counts[t * classes + p]` is the number of samples of class `t` predicted as `p`.
/// Row sums are the supports (samples per true class), column sums the number of times
/// each class was predicted, and the diagonal the correct predictions.
///
/// The fields are private so that `counts.len() == classes²` always holds; deserializing
/// checks it too. JSON form: `{"classes": 2, "counts": [5, 1, 0, 4]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfusion")]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfusion {
    classes: usize,
    counts: Vec<u64>,
}

impl TryFrom<RawConfusion> for ConfusionMatrix {
    type Error = Error;
    fn try_from(raw: RawConfusion) -> Result<Self> {
        ConfusionMatrix::from_counts(raw.classes, raw.counts)
    }
}

fn cells(classes: usize) -> Result<usize> {
    if classes == 0 {
        return Err(Error::invalid(
            "confusion matrix",
            "the number of classes must be at least 1",
        ));
    }
    classes
        .checked_mul(classes)
        .ok_or_else(|| Error::invalid("confusion matrix", format!("{classes} classes is too many")))
}

impl ConfusionMatrix {
    /// An all-zero matrix for `classes` classes (`classes ≥ 1`).
    pub fn new(classes: usize) -> Result<Self> {
        Ok(ConfusionMatrix {
            classes,
            counts: vec![0; cells(classes)?],
        })
    }

    /// Wraps existing counts (`[classes, classes]` row-major, row = true class).
    pub fn from_counts(classes: usize, counts: Vec<u64>) -> Result<Self> {
        let want = cells(classes)?;
        if counts.len() != want {
            return Err(Error::shape(
                "confusion matrix",
                format!(
                    "{classes} classes need {want} counts ({classes}×{classes}), got {}",
                    counts.len()
                ),
            ));
        }
        Ok(ConfusionMatrix { classes, counts })
    }

    /// Counts `n` (true, predicted) label pairs. Errors when the slices differ in length or
    /// a label is `≥ classes`.
    pub fn from_predictions(truth: &[u32], predicted: &[u32], classes: usize) -> Result<Self> {
        let mut m = ConfusionMatrix::new(classes)?;
        if truth.len() != predicted.len() {
            return Err(Error::shape(
                "confusion matrix",
                format!(
                    "{} true labels but {} predicted labels",
                    truth.len(),
                    predicted.len()
                ),
            ));
        }
        check_labels("true label", truth, classes)?;
        check_labels("predicted label", predicted, classes)?;
        for (&t, &p) in truth.iter().zip(predicted) {
            m.counts[t as usize * classes + p as usize] += 1;
        }
        Ok(m)
    }

    /// Like [`from_predictions`](Self::from_predictions) with each sample's prediction the
    /// argmax of its row of `probs` (`[n, classes]` row-major; probabilities or logits),
    /// the first maximum winning ties. Errors on a shape mismatch or a NaN score.
    pub fn from_probabilities(truth: &[u32], probs: &[f32], classes: usize) -> Result<Self> {
        let predicted = argmax_rows("confusion matrix", truth.len(), probs, classes)?;
        ConfusionMatrix::from_predictions(truth, &predicted, classes)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// All counts, `[classes, classes]` row-major (row = true class).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Samples of true class `t` predicted as `p`. Panics if either is `≥ classes`.
    pub fn get(&self, t: usize, p: usize) -> u64 {
        assert!(
            t < self.classes && p < self.classes,
            "confusion matrix index ({t}, {p}) out of range for {} classes",
            self.classes
        );
        self.counts[t * self.classes + p]
    }

    /// Total number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Correct predictions (the trace).
    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|c| self.get(c, c)).sum()
    }

    /// Samples per true class (row sums), `[classes]`.
    pub fn support(&self) -> Vec<u64> {
        self.counts
            .chunks(self.classes)
            .map(|row| row.iter().sum())
            .collect()
    }

    /// Times each class was predicted (column sums), `[classes]`.
    pub fn predicted_counts(&self) -> Vec<u64> {
        let mut out = vec![0; self.classes];
        for row in self.counts.chunks(self.classes) {
            for (o, &c) in out.iter_mut().zip(row) {
                *o += c;
            }
        }
        out
    }

    /// trace / total; 0 when no samples were counted.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Each row divided by its sum, `[classes, classes]` row-major: entry (t, p) is the
    /// fraction of class-`t` samples predicted as `p` (the diagonal is per-class recall).
    /// Rows of classes with no samples are all zeros.
    pub fn row_normalized(&self) -> Vec<f64> {
        self.counts
            .chunks(self.classes)
            .flat_map(|row| {
                let sum: u64 = row.iter().sum();
                row.iter().map(move |&c| ratio(c, sum))
            })
            .collect()
    }

    /// The `k` largest off-diagonal cells with a non-zero count, as
    /// `(true class, predicted class, count)`, by descending count, ties by ascending
    /// `(true, predicted)`. Fewer than `k` when fewer cells are non-zero.
    pub fn top_confusions(&self, k: usize) -> Vec<(usize, usize, u64)> {
        let n = self.classes;
        let mut cells: Vec<(usize, usize, u64)> = (0..n)
            .flat_map(|t| (0..n).map(move |p| (t, p)))
            .filter(|&(t, p)| t != p)
            .map(|(t, p)| (t, p, self.counts[t * n + p]))
            .filter(|&(_, _, c)| c > 0)
            .collect();
        cells.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        cells.truncate(k);
        cells
    }
}

/// `num / den` as f64, 0 when `den` is 0 (scikit-learn's `zero_division=0`).
pub(super) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

pub(super) fn check_labels(what: &str, labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(Error::invalid(
            format!("{what} of sample {i}"),
            format!(
                "{} is outside the {classes} classes 0..{}",
                labels[i],
                classes - 1
            ),
        )),
        None => Ok(()),
    }
}

/// Checks that `probs` is `[n, classes]` without NaN and returns each row's argmax (first
/// maximum on ties).
pub(super) fn argmax_rows(
    op: &'static str,
    n: usize,
    probs: &[f32],
    classes: usize,
) -> Result<Vec<u32>> {
    check_probs(op, n, probs, classes)?;
    Ok(probs
        .chunks(classes)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate().skip(1) {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect())
}

/// Checks that `probs` is `[n, classes]` (`classes ≥ 1`) and contains no NaN.
pub(super) fn check_probs(op: &'static str, n: usize, probs: &[f32], classes: usize) -> Result<()> {
    if classes == 0 {
        return Err(Error::invalid(
            op,
            "the number of classes must be at least 1",
        ));
    }
    if n.checked_mul(classes) != Some(probs.len()) {
        return Err(Error::shape(
            op,
            format!(
                "{} scores do not make {n} rows of {classes} classes (expected {n}×{classes})",
                probs.len()
            ),
        ));
    }
    if let Some(i) = probs.iter().position(|v| v.is_nan()) {
        return Err(Error::invalid(
            format!(
                "{op}: score of sample {}, class {}",
                i / classes,
                i % classes
            ),
            "is NaN",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_and_validation() {
        let m = ConfusionMatrix::from_predictions(&[0, 1, 1], &[0, 0, 1], 2).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"classes":2,"counts":[1,0,1,1]}"#);
        let back: ConfusionMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let bad = serde_json::from_str::<ConfusionMatrix>(r#"{"classes":2,"counts":[1,0,1]}"#);
        assert!(bad.unwrap_err().to_string().contains("need 4 counts"));
        assert!(serde_json::from_str::<ConfusionMatrix>(r#"{"classes":0,"counts":[]}"#).is_err());
    }
}
