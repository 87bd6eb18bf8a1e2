//! Feature preprocessing fitted on training data and stored with a model (as JSON in a
//! checkpoint), so that validation, test and inference inputs get exactly the same transform.

use super::Dataset;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Smallest standard deviation divided by: constant features map to 0 instead of NaN.
pub const STD_FLOOR: f32 = 1e-8;

/// Per-feature standardization, x ↦ (x − mean) / std.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    /// Population standard deviation per feature, at least [`STD_FLOOR`].
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits mean and standard deviation of every feature (f64 accumulation, two passes).
    /// An empty dataset gives the identity (mean 0, std 1).
    pub fn fit(data: &Dataset) -> Standardizer {
        let d = data.sample_len();
        let n = data.len();
        if n == 0 {
            return Standardizer {
                mean: vec![0.0; d],
                std: vec![1.0; d],
            };
        }
        let rows = || data.features.chunks_exact(d);
        let mut sum = vec![0.0f64; d];
        let mut lo = vec![f32::INFINITY; d];
        let mut hi = vec![f32::NEG_INFINITY; d];
        for row in rows() {
            for (j, &x) in row.iter().enumerate() {
                sum[j] += x as f64;
                lo[j] = lo[j].min(x);
                hi[j] = hi[j].max(x);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut sq = vec![0.0f64; d];
        for row in rows() {
            for (j, &x) in row.iter().enumerate() {
                let c = x as f64 - mean[j];
                sq[j] += c * c;
            }
        }
        let mut out = Standardizer {
            mean: Vec::with_capacity(d),
            std: Vec::with_capacity(d),
        };
        for j in 0..d {
            // A constant feature keeps its exact value as the mean, so it maps to exactly 0.
            let m = if lo[j] == hi[j] {
                lo[j]
            } else {
                mean[j] as f32
            };
            let s = ((sq[j] / n as f64).sqrt() as f32).max(STD_FLOOR);
            out.mean.push(m);
            out.std.push(s);
        }
        out
    }

    /// The JSON stored in a checkpoint's `preprocessing` field.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "standardize": self })
    }

    /// Reads [`to_json`](Self::to_json)'s output back, checking it.
    pub fn from_json(value: &serde_json::Value) -> Result<Standardizer> {
        let inner = value.get("standardize").ok_or_else(|| {
            Error::data(
                "preprocessing",
                format!("expected {{\"standardize\": {{\"mean\": [...], \"std\": [...]}}}}, got {value}"),
            )
        })?;
        let s = Standardizer::deserialize(inner).map_err(|e| {
            Error::data(
                "preprocessing",
                format!("the standardizer is malformed ({e}); refit it"),
            )
        })?;
        s.check()?;
        Ok(s)
    }

    /// Number of features this standardizer was fitted on.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Standardizes `data` in place. Fails (leaving `data` unchanged) when its samples do not
    /// have the fitted number of features.
    pub fn apply(&self, data: &mut Dataset) -> Result<()> {
        if data.sample_len() != self.features() {
            return Err(Error::data(
                "standardizer",
                format!(
                    "it was fitted on {} features but the data has {} per sample (shape {:?}); fit it on data with the same columns",
                    self.features(),
                    data.sample_len(),
                    data.sample_shape
                ),
            ));
        }
        self.apply_rows(&mut data.features)
    }

    /// Standardizes row-major samples of [`features`](Self::features) values each, in place
    /// (e.g. one input for inference). Fails, leaving `rows` unchanged, when the length is not
    /// a whole number of samples or a result would not be finite.
    pub fn apply_rows(&self, rows: &mut [f32]) -> Result<()> {
        self.check()?;
        let d = self.features();
        if d == 0 || !rows.len().is_multiple_of(d) {
            return Err(Error::data(
                "standardizer",
                format!(
                    "{} values are not a whole number of samples of {d} features",
                    rows.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.chunks_exact(d).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                let y = ((x as f64 - self.mean[j] as f64) / self.std[j] as f64) as f32;
                if !y.is_finite() {
                    return Err(Error::data(
                        "standardizer",
                        format!(
                            "feature {j} of sample {i} ({x}) standardizes to {y} (mean {}, std {}); check the input for extreme values",
                            self.mean[j], self.std[j]
                        ),
                    ));
                }
                out.push(y);
            }
        }
        rows.copy_from_slice(&out);
        Ok(())
    }

    /// Checks a (possibly deserialized) standardizer: equal lengths, finite means, positive
    /// finite standard deviations.
    pub fn check(&self) -> Result<()> {
        if self.mean.len() != self.std.len() {
            return Err(Error::data(
                "standardizer",
                format!(
                    "{} means but {} standard deviations; refit it",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some(j) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(Error::data(
                "standardizer",
                format!("the mean of feature {j} is {}; refit it", self.mean[j]),
            ));
        }
        if let Some(j) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::data(
                "standardizer",
                format!(
                    "the standard deviation of feature {j} is {} (it must be positive and finite); refit it",
                    self.std[j]
                ),
            ));
        }
        Ok(())
    }
}
