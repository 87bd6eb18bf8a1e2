//! Inputs for evaluation and prediction from one file, whatever it is, recognised by its
//! content: an IDX image file (raw or gzip-compressed; pixels scaled to [0, 1]), a `.npy`
//! array, an `.npz` archive or a safetensors file (features and, when present, labels
//! arrays; see [`super::arrays`]), or a CSV/TSV table with a header row, with or without a
//! label column (read as it is: an absent label column is no error unless labels are
//! required). Natively, a folder is an image folder ([`super::images`]).

use super::arrays::{self, ArrayNames};
use super::{csv, idx, npy, tensors, Dataset};
use crate::error::{Error, Result};

/// What [`parse_inputs`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// The samples; labels from the label column or array, else all 0.
    pub data: Dataset,
    /// Whether the file had labels (a CSV label column, a labels array; IDX image files and
    /// `.npy` files have none).
    pub labelled: bool,
}

/// How to read an inputs file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputOptions {
    /// The CSV column holding class indices (default "label").
    pub label_column: String,
    /// The CSV delimiter (default `b','`).
    pub delimiter: u8,
    /// The arrays of an `.npz` or safetensors file.
    pub names: ArrayNames,
    /// Refuse a file without labels (evaluation); default false (prediction).
    pub require_labels: bool,
    /// The number of classes labels must be below (default: the largest label + 1).
    pub classes: Option<usize>,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            label_column: crate::defaults::LABEL_COLUMN.into(),
            delimiter: b',',
            names: ArrayNames::default(),
            require_labels: false,
            classes: None,
        }
    }
}

/// Whether `bytes` start like an IDX file of unsigned bytes, or like gzip (whose content is
/// then checked by the IDX reader).
fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0, 0, 0x08])
}

/// Whether `bytes` start like a zip archive (an `.npz`).
fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Reads inputs from `bytes` named `name` (see the module docs for the formats).
pub fn parse_inputs(bytes: &[u8], name: &str, opts: &InputOptions) -> Result<Inputs> {
    let unlabelled = |what: &str| {
        Error::data(
            name,
            format!("{what}; evaluation needs labels: give a file with them (a CSV label column, an .npz or safetensors labels array)"),
        )
    };
    let arrays_input = |(x, y): (arrays::Array, Option<arrays::Array>), names: (String, String)| {
        let labelled = y.is_some();
        let data = arrays::dataset(&x, y.as_ref(), &names.0, &names.1, opts.classes)?;
        Ok(Inputs { data, labelled })
    };
    if looks_like_idx(bytes) || bytes.starts_with(npy::MAGIC) {
        let (dims, features) = if bytes.starts_with(npy::MAGIC) {
            let a = npy::parse(bytes, name)?;
            if a.shape.len() < 2 {
                return Err(Error::data(
                    name,
                    format!(
                        "a .npy input must hold samples [n, ...], got shape {:?}; give the features array, not the labels",
                        a.shape
                    ),
                ));
            }
            let x = a.features(name)?;
            (a.shape, x)
        } else {
            let a = idx::parse(bytes, name)?;
            if a.dims.len() < 2 {
                return Err(Error::data(
                    name,
                    format!(
                        "an IDX input must hold samples [n, ...], got dimensions {:?}; give the images file, not the labels",
                        a.dims
                    ),
                ));
            }
            let x = a.data.iter().map(|&p| p as f32 / 255.0).collect();
            (a.dims, x)
        };
        if opts.require_labels {
            return Err(unlabelled(
                "an IDX or .npy file holds samples but no labels",
            ));
        }
        let data = Dataset::new(features, vec![0; dims[0]], dims[1..].to_vec(), 1)
            .map_err(|e| Error::data(name, e.to_string()))?;
        return Ok(Inputs {
            data,
            labelled: false,
        });
    }
    let n = &opts.names;
    if looks_like_zip(bytes) {
        let arrays = npy::parse_npz(bytes, name, n, opts.require_labels)?;
        let names = (
            format!("{name}:{}.npy", n.features),
            format!("{name}:{}.npy", n.labels),
        );
        return arrays_input(arrays, names);
    }
    if tensors::looks_like_safetensors(bytes) {
        let arrays = tensors::parse(bytes, name, n, opts.require_labels)?;
        let names = (
            format!("{name}: tensor {:?}", n.features),
            format!("{name}: tensor {:?}", n.labels),
        );
        return arrays_input(arrays, names);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::data(
            name,
            format!(
                "neither an IDX, .npy, .npz or safetensors file nor UTF-8 CSV text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let copts = csv::CsvOptions {
        label_column: opts.label_column.clone(),
        classes: opts.classes,
        require_label: opts.require_labels,
        delimiter: opts.delimiter,
    };
    let (data, labelled) = csv::parse_table(text, name, &copts)?;
    Ok(Inputs { data, labelled })
}

/// Reads inputs from the file at `path` (see [`parse_inputs`]); a folder is read as an
/// image folder of samples `image` (its class subfolders give the labels).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_inputs(
    path: &std::path::Path,
    opts: &InputOptions,
    image: Option<super::images::ImageShape>,
) -> Result<Inputs> {
    if let (true, Some(shape)) = (path.is_dir(), image) {
        let (data, _) = super::images::load_folder(path, shape, None, opts.classes)?;
        return Ok(Inputs {
            data,
            labelled: true,
        });
    }
    let bytes = crate::input_file::read(path, crate::input_file::InputKind::Data)?;
    parse_inputs(&bytes, &path.display().to_string(), opts)
}
