//! Receiver operating characteristic: curves and areas, binary and one-vs-rest.

use super::confusion::{check_labels, check_probs};
use crate::error::{Error, Result};
use serde::Serialize;

/// A ROC curve as scikit-learn's `roc_curve(..., drop_intermediate=False)` returns it.
///
/// Point `i` classifies a sample as positive when its score is `≥ thresholds[i]`;
/// `fpr[i]` = FP / N and `tpr[i]` = TP / P at that threshold (P, N = numbers of positive
/// and negative samples). Point 0 is (0, 0) at threshold +∞; then one point per distinct
/// score in descending order, so all samples with the same score enter together (one
/// diagonal step for a tie between positives and negatives) and the last point is (1, 1).
/// All three vectors have length 1 + number of distinct scores.
///
/// Serialized as JSON, the +∞ threshold becomes `null` (JSON has no infinity).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f32>,
}

/// One distinct score and how many positive / negative samples have it.
struct Group {
    score: f32,
    pos: u64,
    neg: u64,
}

/// Validates the inputs and groups the samples by distinct score, in descending order.
fn groups(scores: &[f32], positive: &[bool]) -> Result<Vec<Group>> {
    if scores.len() != positive.len() {
        return Err(Error::shape(
            "roc",
            format!(
                "{} scores but {} positive/negative labels",
                scores.len(),
                positive.len()
            ),
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::invalid(
            format!("roc: score of sample {i}"),
            format!("is {}; scores must be finite", scores[i]),
        ));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out: Vec<Group> = Vec::new();
    for i in order {
        let s = scores[i];
        // `==` (not total_cmp) so that -0.0 and 0.0 form one group.
        match out.last_mut() {
            Some(g) if g.score == s => {}
            _ => out.push(Group {
                score: s,
                pos: 0,
                neg: 0,
            }),
        }
        let g = out.last_mut().expect("pushed above");
        if positive[i] {
            g.pos += 1;
        } else {
            g.neg += 1;
        }
    }
    Ok(out)
}

/// The ROC curve of `scores` (higher = more positive, finite) against `positive` labels,
/// both of length `n`. Errors on a length mismatch, a non-finite score, or when the samples
/// are not of both kinds (the curve is then undefined).
pub fn roc_curve(scores: &[f32], positive: &[bool]) -> Result<RocCurve> {
    let groups = groups(scores, positive)?;
    let p: u64 = groups.iter().map(|g| g.pos).sum();
    let n: u64 = groups.iter().map(|g| g.neg).sum();
    if p == 0 || n == 0 {
        return Err(Error::invalid(
            "roc_curve",
            format!("needs both positive and negative samples, got {p} positive and {n} negative"),
        ));
    }
    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f32::INFINITY],
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    for g in &groups {
        tp += g.pos;
        fp += g.neg;
        curve.fpr.push(fp as f64 / n as f64);
        curve.tpr.push(tp as f64 / p as f64);
        curve.thresholds.push(g.score);
    }
    Ok(curve)
}

/// Area under a piecewise-linear curve by the trapezoidal rule,
/// Σᵢ (x[i+1] − x[i]) · (y[i] + y[i+1]) / 2, like scikit-learn's `auc`: `x` must be
/// monotonic (non-decreasing, or non-increasing in which case the area is negated so that
/// it comes out positive for a positive `y`). Errors unless `x` and `y` have the same
/// length ≥ 2 and `x` is monotonic (a NaN in `x` fails that check).
pub fn auc(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(Error::shape(
            "auc",
            format!(
                "needs x and y of the same length ≥ 2, got {} and {}",
                x.len(),
                y.len()
            ),
        ));
    }
    let up = x.windows(2).all(|w| w[0] <= w[1]);
    let down = x.windows(2).all(|w| w[0] >= w[1]);
    if !up && !down {
        return Err(Error::invalid(
            "auc",
            "x is neither increasing nor decreasing",
        ));
    }
    let area: f64 = x
        .windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum();
    Ok(if up { area } else { -area })
}

/// Area under the ROC curve, computed exactly from integer counts:
///
/// AUC = (#{(i, j) : sᵢ > sⱼ} + ½ #{(i, j) : sᵢ = sⱼ}) / (P · N) over positive i and
/// negative j, the probability that a random positive outranks a random negative with
/// ties counting ½ (the Mann–Whitney U statistic over P · N). This equals the trapezoidal
/// area under [`roc_curve`]. `None` when the samples are not of both kinds (including
/// `n = 0`); errors as [`roc_curve`] does otherwise.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Result<Option<f64>> {
    let groups = groups(scores, positive)?;
    // Twice the U statistic: each negative in a group is outranked by every positive seen
    // before (counted 2×) and ties with the group's positives (counted 1×).
    let (mut tp, mut n, mut twice_u) = (0u128, 0u128, 0u128);
    for g in &groups {
        twice_u += g.neg as u128 * (2 * tp + g.pos as u128);
        tp += g.pos as u128;
        n += g.neg as u128;
    }
    if tp == 0 || n == 0 {
        return Ok(None);
    }
    Ok(Some(twice_u as f64 / (2 * tp * n) as f64))
}

/// One-vs-rest ROC AUC of each class: for class `c`, the scores are column `c` of `probs`
/// (`[n, classes]` row-major) and the positives are the samples with `truth == c`.
/// Entry `c` is `None` when class `c` has no samples or every sample is of class `c`.
/// Errors on shape mismatches, labels `≥ classes` and non-finite scores.
///
/// Unlike scikit-learn's `roc_auc_score(multi_class="ovr")`, a class absent from `truth`
/// is not an error, and `probs` rows need not sum to 1 (logits work too: only the order
/// within each column matters).
pub fn one_vs_rest_auc(truth: &[u32], probs: &[f32], classes: usize) -> Result<Vec<Option<f64>>> {
    check_probs("one_vs_rest_auc", truth.len(), probs, classes)?;
    check_labels("true label", truth, classes)?;
    (0..classes)
        .map(|c| {
            let scores: Vec<f32> = probs.iter().skip(c).step_by(classes).copied().collect();
            let positive: Vec<bool> = truth.iter().map(|&t| t as usize == c).collect();
            roc_auc(&scores, &positive)
        })
        .collect()
}

/// Unweighted mean of the defined (`Some`) per-class AUCs, e.g. from
/// [`one_vs_rest_auc`]; `None` when none is defined.
pub fn macro_auc(per_class: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = per_class.iter().flatten().copied().collect();
    if defined.is_empty() {
        None
    } else {
        Some(defined.iter().sum::<f64>() / defined.len() as f64)
    }
}
