//! Datasets in host memory, ready to upload: features row-major [n, ...sample_shape] f32
//! and class labels u32. Readers: [`idx`] (MNIST / Fashion-MNIST) and [`csv`]; [`split`]
//! (holdout, k-fold, increments) and [`preprocess`] (standardisation).

pub mod csv;
pub mod idx;
pub mod preprocess;
pub mod split;

pub use csv::CsvOptions;
pub use preprocess::Standardizer;
pub use split::SplitBy;

use crate::error::{Error, Result};

/// A labelled dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// [n, ...sample_shape], row-major.
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    /// Shape of one sample, e.g. [1, 28, 28] or [784].
    pub sample_shape: Vec<usize>,
    /// Number of classes (labels are in 0..classes).
    pub classes: usize,
}

impl Dataset {
    /// Builds a dataset, checking that sizes agree and labels are in range.
    pub fn new(
        features: Vec<f32>,
        labels: Vec<u32>,
        sample_shape: Vec<usize>,
        classes: usize,
    ) -> Result<Dataset> {
        let d: usize = sample_shape.iter().product();
        if d == 0 || features.len() != labels.len() * d {
            return Err(Error::data(
                "dataset",
                format!(
                    "{} feature values do not make {} samples of shape {sample_shape:?}",
                    features.len(),
                    labels.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(Error::data(
                "dataset",
                format!(
                    "label {l} of sample {i} is outside the {classes} classes 0..{}",
                    classes.max(1) - 1
                ),
            ));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                "dataset",
                format!("feature {} of sample {} is {}", i % d, i / d, features[i]),
            ));
        }
        Ok(Dataset {
            features,
            labels,
            sample_shape,
            classes,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let d = self.sample_len();
        let mut features = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            features.extend_from_slice(&self.features[i * d..(i + 1) * d]);
        }
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            sample_shape: self.sample_shape.clone(),
            classes: self.classes,
        }
    }

    /// The first `n` samples (all if fewer).
    pub fn take(&self, n: usize) -> Dataset {
        self.select(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// The same data with another per-sample shape of equal size (e.g. [1, 28, 28] → [784]).
    pub fn reshaped(mut self, sample_shape: &[usize]) -> Result<Dataset> {
        if sample_shape.iter().product::<usize>() != self.sample_len() {
            return Err(Error::data(
                "dataset",
                format!(
                    "cannot view samples of shape {:?} as {sample_shape:?}",
                    self.sample_shape
                ),
            ));
        }
        self.sample_shape = sample_shape.to_vec();
        Ok(self)
    }
}
