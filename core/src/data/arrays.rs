//! N-dimensional arrays as NumPy and safetensors files hold them (little-endian, C order),
//! and datasets from a features array and a labels array: the common half of the [`super::npy`]
//! (`.npy`, `.npz`) and [`super::tensors`] (safetensors) readers.
//!
//! Features `[n, ...]` become samples of shape `[...]`; `u8` features are scaled to [0, 1]
//! (÷ 255), as IDX pixels are, every other dtype is converted to f32 as it is. Labels `[n]`
//! (or `[n, 1]`) are class indices: integers, or floats holding whole numbers.

use super::Dataset;
use crate::error::{Error, Result};

/// The element types accrete reads from array files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    U8,
    I32,
    I64,
    F32,
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// NumPy's name (`uint8`, `float32`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// What every array reader says about the dtypes it takes.
pub const DTYPES: &str =
    "uint8, int32, int64, float32 and float64 (convert with arr.astype(np.float32))";

/// An array: its shape, element type and little-endian elements in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub bytes: Vec<u8>,
}

/// The element count of `shape`, or an error when it overflows or exceeds what accrete
/// reads from one file.
pub fn element_count(shape: &[usize], dtype: Dtype, name: &str) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|c| {
            c.checked_mul(dtype.size())
                .is_some_and(|b| b as u64 <= crate::input_file::InputKind::Data.limit())
        })
        .ok_or_else(|| {
            Error::data(
                name,
                format!(
                    "shape {shape:?} of {} declares more data than accrete reads from one file (at most {})",
                    dtype.name(),
                    crate::input_file::human_bytes(crate::input_file::InputKind::Data.limit())
                ),
            )
        })
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The elements as f64 (exact for every dtype but int64 beyond 2^53).
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let size = self.dtype.size();
        let dtype = self.dtype;
        self.bytes.chunks_exact(size).map(move |b| match dtype {
            Dtype::U8 => b[0] as f64,
            Dtype::I32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
            Dtype::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
            Dtype::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
            Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")),
        })
    }

    /// The elements as features: u8 scaled to [0, 1], the rest converted to f32. Refuses
    /// NaN, infinities and values beyond f32.
    pub fn features(&self, name: &str) -> Result<Vec<f32>> {
        let d = self.shape.iter().skip(1).product::<usize>().max(1);
        let mut out = Vec::with_capacity(self.len());
        for (i, v) in self.values().enumerate() {
            let f = if self.dtype == Dtype::U8 {
                (v / 255.0) as f32
            } else {
                v as f32
            };
            if !f.is_finite() {
                let what = if v.is_finite() {
                    format!("{v:e} is too large for a 32-bit float; rescale the features")
                } else {
                    format!("is {v}; NaN and infinity are not allowed, replace them with numbers")
                };
                return Err(Error::data(
                    name,
                    format!("feature {} of sample {}: {what}", i % d, i / d),
                ));
            }
            out.push(f);
        }
        Ok(out)
    }

    /// The elements as class indices.
    pub fn labels(&self, name: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(self.len());
        for (i, v) in self.values().enumerate() {
            let why = if !v.is_finite() {
                Some("is not a finite number")
            } else if v < 0.0 {
                Some("is negative")
            } else if v.fract() != 0.0 {
                Some("is not a whole number")
            } else if v > u32::MAX as f64 {
                Some("is too large")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::data(
                    name,
                    format!(
                        "label {v} of sample {i} {why}; labels must be class indices 0, 1, 2, …"
                    ),
                ));
            }
            out.push(v as u32);
        }
        Ok(out)
    }
}

/// A dataset from a features array `[n, ...]` (in `fname`) and a labels array `[n]` or
/// `[n, 1]` (in `lname`, or `None` for inputs to predict: every label 0). `classes` bounds
/// the labels; `None` takes the largest label + 1.
pub fn dataset(
    features: &Array,
    labels: Option<&Array>,
    fname: &str,
    lname: &str,
    classes: Option<usize>,
) -> Result<Dataset> {
    if features.shape.len() < 2 {
        return Err(Error::data(
            fname,
            format!(
                "features must be an array [samples, ...], got shape {:?}; reshape to [n, 1] for one feature per sample (arr.reshape(-1, 1)), or check that this is not the labels array",
                features.shape
            ),
        ));
    }
    let n = features.shape[0];
    if n == 0 {
        return Err(Error::data(
            fname,
            format!("the features array {:?} holds no samples", features.shape),
        ));
    }
    if features.shape[1..].contains(&0) {
        return Err(Error::data(
            fname,
            format!("samples of shape {:?} hold no values", &features.shape[1..]),
        ));
    }
    let label_values = match labels {
        None => vec![0; n],
        Some(l) => {
            let column = l.shape.len() == 1 || (l.shape.len() == 2 && l.shape[1] == 1);
            if !column {
                return Err(Error::data(
                    lname,
                    format!(
                        "labels must be an array [samples] of class indices, got shape {:?}",
                        l.shape
                    ),
                ));
            }
            if l.shape[0] != n {
                return Err(Error::data(
                    lname,
                    format!(
                        "{} labels for the {n} samples of the features {:?} ({fname}); features and labels must have one row per sample",
                        l.shape[0], features.shape
                    ),
                ));
            }
            l.labels(lname)?
        }
    };
    if let Some(k) = classes {
        if let Some((i, &l)) = label_values
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= k)
        {
            return Err(Error::data(
                lname,
                format!(
                    "label {l} of sample {i} is outside the {k} classes 0..{}; raise the number of classes (the model's outputs) or fix the label",
                    k.max(1) - 1
                ),
            ));
        }
    }
    let k = classes
        .unwrap_or_else(|| label_values.iter().max().map_or(0, |&m| m as usize + 1))
        .max(1);
    let x = features.features(fname)?;
    Dataset::new(x, label_values, features.shape[1..].to_vec(), k)
        .map_err(|e| Error::data(fname, e.to_string()))
}

/// Which arrays of an `.npz` or safetensors file hold the features and the labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayNames {
    /// Default `"features"`.
    pub features: String,
    /// Default `"labels"`.
    pub labels: String,
}

impl Default for ArrayNames {
    fn default() -> Self {
        ArrayNames {
            features: crate::defaults::FEATURES_KEY.into(),
            labels: crate::defaults::LABELS_KEY.into(),
        }
    }
}

/// "no array named X; the file holds "a", "b" …; set data.features_key …".
pub(crate) fn missing(name: &str, want: &str, present: &[String], key: &str) -> Error {
    let mut list: Vec<String> = present
        .iter()
        .take(8)
        .map(|n| format!("{:?}", crate::error::clip(n, 60)))
        .collect();
    if present.len() > 8 {
        list.push(format!("… and {} more", present.len() - 8));
    }
    let held = if list.is_empty() {
        "no arrays".to_string()
    } else {
        list.join(", ")
    };
    Error::data(
        name,
        format!(
            "no array named {:?}; the file holds {held}; set data.{key} (or the option naming it) to the one to read",
            crate::error::clip(want, 60)
        ),
    )
}
