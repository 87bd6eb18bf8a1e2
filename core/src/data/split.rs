//! Splitting datasets: hold-out and k-fold validation (optionally stratified by class), the
//! chunks of an incremental run (a stream by count, or class-incremental), and class-imbalance
//! checks.
//!
//! All randomness is Philox ([`crate::kernels::rng::words`]) under the given seed, so a split
//! is identical on every platform (wasm32 included). Hold-out and k-fold sides keep the
//! original order of the samples; only which samples go where is random.

use super::Dataset;
use crate::error::{Error, Result};
use crate::kernels::rng::{words, RngKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Philox stream of the split shuffles (the trainer's epoch shuffles use 0x3000).
const SPLIT_STREAM: u32 = 0x4000;
/// Per-operation offsets, so that one seed gives unrelated permutations to each.
const HOLDOUT: u32 = 1;
const KFOLD: u32 = 2;
const INCREMENTS: u32 = 3;

/// A seeded permutation of 0..n: Fisher–Yates on Philox draws.
fn permutation(n: usize, seed: u64, purpose: u32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let key = RngKey {
            seed,
            stream: SPLIT_STREAM,
            offset: (purpose << 16) | ((i as u64 >> 32) as u32),
        };
        let w = words(key, i as u32);
        let r = (((w[0] as u64) << 32) | w[1] as u64) % (i as u64 + 1);
        idx.swap(i, r as usize);
    }
    idx
}

/// Indices of each class, in the order of `order`.
fn by_class(data: &Dataset, order: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); data.classes];
    for &i in order {
        out[data.labels[i] as usize].push(i);
    }
    out
}

/// Splits off a validation set of `fraction` of the samples: returns (train, validation).
///
/// Unstratified, validation gets round(fraction·n) random samples. Stratified, it gets
/// round(fraction·n_c) of each class c, so both sides keep the class proportions (within one
/// sample per class). Both sides keep the original sample order.
pub fn holdout(
    data: &Dataset,
    fraction: f64,
    stratified: bool,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::invalid(
            "validation fraction",
            format!("{fraction} is outside (0, 1); use e.g. 0.2 for a 20% validation set"),
        ));
    }
    let n = data.len();
    let order = permutation(n, seed, HOLDOUT);
    let mut in_val = vec![false; n];
    let count = if stratified {
        let mut count = 0;
        for idx in by_class(data, &order) {
            let v = (fraction * idx.len() as f64).round() as usize;
            for &i in &idx[..v] {
                in_val[i] = true;
            }
            count += v;
        }
        count
    } else {
        let v = (fraction * n as f64).round() as usize;
        for &i in &order[..v] {
            in_val[i] = true;
        }
        v
    };
    if count == 0 || count == n {
        let side = if count == 0 { "validation" } else { "training" };
        return Err(Error::invalid(
            "validation fraction",
            format!(
                "{fraction} of {n} samples{} leaves the {side} set empty; use a {} fraction or more data",
                if stratified { " (rounded per class)" } else { "" },
                if count == 0 { "larger" } else { "smaller" }
            ),
        ));
    }
    let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| in_val[i]);
    Ok((data.select(&train), data.select(&val)))
}

/// Splits into `k` folds and returns, for each fold, (train = the other folds, validation =
/// the fold). Every sample is in exactly one validation fold; fold sizes differ by at most
/// one. Stratified, each class is dealt round-robin over the folds, so per-class counts also
/// differ by at most one between folds. Both sides keep the original sample order.
pub fn kfold(
    data: &Dataset,
    k: usize,
    stratified: bool,
    seed: u64,
) -> Result<Vec<(Dataset, Dataset)>> {
    Ok(kfold_indices(data, k, stratified, seed)?
        .into_iter()
        .map(|(train, val)| (data.select(&train), data.select(&val)))
        .collect())
}

/// [`kfold`]'s folds as sample indices: for each fold, (train, validation) indices in the
/// original order.
pub fn kfold_indices(
    data: &Dataset,
    k: usize,
    stratified: bool,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    let n = data.len();
    if k < 2 || k > n {
        return Err(Error::invalid(
            "k-fold",
            format!("k = {k} folds of {n} samples; k must be at least 2 and at most the number of samples"),
        ));
    }
    let order = permutation(n, seed, KFOLD);
    let dealt: Vec<usize> = if stratified {
        by_class(data, &order).concat()
    } else {
        order
    };
    let mut fold_of = vec![0usize; n];
    for (pos, &i) in dealt.iter().enumerate() {
        fold_of[i] = pos % k;
    }
    Ok((0..k)
        .map(|f| {
            let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold_of[i] == f);
            (train, val)
        })
        .collect())
}

/// How an incremental run splits its data into chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// A stream: consecutive chunks of near-equal size.
    #[default]
    Count,
    /// Class-incremental: each chunk holds all samples of a contiguous group of classes.
    Class,
}

impl fmt::Display for SplitBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SplitBy::Count => "count",
            SplitBy::Class => "class",
        })
    }
}

impl FromStr for SplitBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<SplitBy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "count" => Ok(SplitBy::Count),
            "class" => Ok(SplitBy::Class),
            _ => Err(Error::invalid(
                "split by",
                format!("{s:?} is not a way to split; use \"count\" or \"class\""),
            )),
        }
    }
}

/// Splits `data` into `chunks` increments.
///
/// - [`SplitBy::Count`]: consecutive chunks (of the data shuffled first if `shuffle`) whose
///   sizes differ by at most one.
/// - [`SplitBy::Class`]: classes 0..C are split into `chunks` contiguous groups of near-equal
///   size (sizes differ by at most one, larger groups last; 10 classes in 5 chunks gives
///   {0,1}, {2,3}, …); each chunk holds all samples of its classes, in the original order or
///   shuffled if `shuffle`. Every chunk must end up with samples.
pub fn increments(
    data: &Dataset,
    chunks: usize,
    by: SplitBy,
    seed: u64,
    shuffle: bool,
) -> Result<Vec<Dataset>> {
    let n = data.len();
    if chunks == 0 {
        return Err(Error::invalid(
            "increments",
            "0 chunks requested; use at least 1",
        ));
    }
    let order: Vec<usize> = if shuffle {
        permutation(n, seed, INCREMENTS)
    } else {
        (0..n).collect()
    };
    match by {
        SplitBy::Count => {
            if chunks > n {
                return Err(Error::invalid(
                    "increments",
                    format!("{chunks} chunks of {n} samples would leave chunks empty; use at most {n} chunks"),
                ));
            }
            Ok((0..chunks)
                .map(|c| data.select(&order[c * n / chunks..(c + 1) * n / chunks]))
                .collect())
        }
        SplitBy::Class => {
            let classes = data.classes;
            if chunks > classes {
                return Err(Error::invalid(
                    "increments",
                    format!("{chunks} class-incremental chunks of {classes} classes would leave chunks without classes; use at most {classes} chunks"),
                ));
            }
            // chunk_of[class] = the chunk whose group [c·C/chunks, (c+1)·C/chunks) holds it
            // (the rule of crate::metrics::task_groups, which per-task evaluation uses).
            let mut chunk_of = vec![0usize; classes];
            for c in 0..chunks {
                for slot in &mut chunk_of[c * classes / chunks..(c + 1) * classes / chunks] {
                    *slot = c;
                }
            }
            let mut members = vec![Vec::new(); chunks];
            for &i in &order {
                members[chunk_of[data.labels[i] as usize]].push(i);
            }
            if let Some(c) = members.iter().position(|m| m.is_empty()) {
                let (lo, hi) = (c * classes / chunks, (c + 1) * classes / chunks);
                return Err(Error::data(
                    "increments",
                    format!(
                        "chunk {} (classes {lo}..{}) has no samples: none of its classes occur in the data; use fewer chunks or split by count",
                        c + 1,
                        hi - 1
                    ),
                ));
            }
            Ok(members.iter().map(|m| data.select(m)).collect())
        }
    }
}

/// Samples per class (length `data.classes`).
pub fn class_counts(data: &Dataset) -> Vec<usize> {
    let mut counts = vec![0usize; data.classes];
    for &l in &data.labels {
        counts[l as usize] += 1;
    }
    counts
}

/// A warning when the classes that occur in `data` are imbalanced: the largest class count
/// over the smallest (among classes with at least one sample) exceeds `threshold`. `name`
/// (e.g. "chunk 2") starts the message. `None` when balanced or fewer than two classes occur.
pub fn imbalance_warning(data: &Dataset, name: &str, threshold: f64) -> Option<String> {
    let counts = class_counts(data);
    let present = counts.iter().enumerate().filter(|(_, &c)| c > 0);
    let (lo_class, &lo) = present.clone().min_by_key(|(_, &c)| c)?;
    // max_by_key keeps the last maximum; reverse to report the lowest class index on ties.
    let (hi_class, &hi) = present.rev().max_by_key(|(_, &c)| c)?;
    let ratio = hi as f64 / lo as f64;
    (lo_class != hi_class && ratio > threshold).then(|| {
        format!(
            "{name} is imbalanced: class {lo_class} has {lo} sample{}, class {hi_class} has {hi} (ratio {ratio:.1} > {threshold})",
            if lo == 1 { "" } else { "s" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::SplitBy;

    #[test]
    fn split_by_serde_names() {
        for (by, name) in [(SplitBy::Count, "count"), (SplitBy::Class, "class")] {
            assert_eq!(serde_json::to_string(&by).unwrap(), format!("\"{name}\""));
            let back: SplitBy = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, by);
            assert_eq!(by.to_string(), name);
        }
    }
}
