//! Datasets in host memory, ready to upload: features row-major [n, ...sample_shape] f32
//! and class labels u32, or real-valued regression targets [n, target_dim] f32. Readers: [`idx`] (MNIST / Fashion-MNIST), [`csv`] (and TSV),
//! [`npy`] (`.npy`, `.npz`), [`tensors`] (safetensors) and [`images`] (image folders, native);
//! [`inputs`] recognises any of them by content; [`split`] (holdout, k-fold, increments) and
//! [`preprocess`] (standardisation).

pub mod arrays;
pub mod csv;
pub mod idx;
#[cfg(not(target_arch = "wasm32"))]
pub mod images;
pub mod inputs;
pub mod npy;
pub mod preprocess;
pub mod split;
pub mod tensors;
pub mod zip;

pub use arrays::ArrayNames;
pub use csv::CsvOptions;
pub use inputs::{parse_inputs, InputOptions, Inputs};
pub use preprocess::Standardizer;
pub use split::SplitBy;

use crate::error::{Error, Result};

/// The samples an image folder is read into ([`images`]): channel-first
/// `[channels, height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    /// 1 (greyscale) or 3 (RGB).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// A labelled dataset: class labels (classification), or real-valued targets (regression,
/// see [`Dataset::regression`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// [n, ...sample_shape], row-major.
    pub features: Vec<f32>,
    /// Class of every sample; all 0 for a regression dataset.
    pub labels: Vec<u32>,
    /// Shape of one sample, e.g. [1, 28, 28] or [784].
    pub sample_shape: Vec<usize>,
    /// Number of classes (labels are in 0..classes); 1 for a regression dataset.
    pub classes: usize,
    /// Regression targets [n, target_dim], row-major; empty for classification.
    pub targets: Vec<f32>,
    /// Values per regression target; 0 for classification.
    pub target_dim: usize,
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
            targets: Vec::new(),
            target_dim: 0,
        })
    }

    /// A regression dataset: `targets` holds `target_dim` real values per sample, trained
    /// with `loss = "mse"`. Checks that sizes agree and every value is finite.
    pub fn regression(
        features: Vec<f32>,
        targets: Vec<f32>,
        sample_shape: Vec<usize>,
        target_dim: usize,
    ) -> Result<Dataset> {
        if target_dim == 0 || !targets.len().is_multiple_of(target_dim) {
            return Err(Error::data(
                "dataset",
                format!(
                    "{} target values do not make whole targets of {target_dim} values",
                    targets.len()
                ),
            ));
        }
        let n = targets.len() / target_dim;
        let mut d = Dataset::new(features, vec![0; n], sample_shape, 1)?;
        if let Some(i) = targets.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                "dataset",
                format!(
                    "target {} of sample {} is {}",
                    i % target_dim,
                    i / target_dim,
                    targets[i]
                ),
            ));
        }
        d.targets = targets;
        d.target_dim = target_dim;
        Ok(d)
    }

    /// True for a regression dataset (real-valued targets instead of classes).
    pub fn is_regression(&self) -> bool {
        self.target_dim > 0
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
        let t = self.target_dim;
        let mut targets = Vec::with_capacity(indices.len() * t);
        for &i in indices.iter().filter(|_| t > 0) {
            targets.extend_from_slice(&self.targets[i * t..(i + 1) * t]);
        }
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            sample_shape: self.sample_shape.clone(),
            classes: self.classes,
            targets,
            target_dim: t,
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
