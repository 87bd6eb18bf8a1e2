//! Inputs for evaluation and prediction from one file, whatever it is: an IDX image file
//! (recognised by its header, raw or gzip-compressed; pixels scaled to [0, 1]) or a CSV
//! table with a header row, with or without a label column.

use super::{csv, idx, Dataset};
use crate::error::{Error, Result};

/// What [`parse_inputs`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// The samples; labels from the label column, else all 0.
    pub data: Dataset,
    /// Whether the file had labels (a CSV label column; IDX image files have none).
    pub labelled: bool,
}

/// Whether `bytes` start like an IDX file of unsigned bytes, or like gzip (whose content is
/// then checked by the IDX reader).
fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0, 0, 0x08])
}

/// Reads inputs from `bytes` named `name`: IDX images ([n, ...] u8) or a CSV table whose
/// column `label_column`, when present, holds class indices.
pub fn parse_inputs(bytes: &[u8], name: &str, label_column: &str) -> Result<Inputs> {
    if looks_like_idx(bytes) {
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
        let n = a.dims[0];
        let features = a.data.iter().map(|&p| p as f32 / 255.0).collect();
        let data = Dataset::new(features, vec![0; n], a.dims[1..].to_vec(), 1)
            .map_err(|e| Error::data(name, e.to_string()))?;
        return Ok(Inputs {
            data,
            labelled: false,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::data(
            name,
            format!(
                "neither an IDX file nor UTF-8 CSV text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let opts = csv::CsvOptions {
        label_column: label_column.to_string(),
        classes: None,
        require_label: false,
    };
    let (data, labelled) = csv::parse_table(text, name, &opts)?;
    Ok(Inputs { data, labelled })
}

/// Reads inputs from the file at `path` (see [`parse_inputs`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_inputs(path: &std::path::Path, label_column: &str) -> Result<Inputs> {
    let bytes = crate::input_file::read(path, crate::input_file::InputKind::Data)?;
    parse_inputs(&bytes, &path.display().to_string(), label_column)
}
