//! safetensors files as datasets: a features tensor `[n, ...]` and a labels tensor `[n]`,
//! named `features` and `labels` by default (see [`super::arrays`] for the dtypes and how
//! they convert). The same reader serves the CLI and the browser (`datasetFromSafetensors`).

use super::arrays::{self, Array, ArrayNames, Dtype};
use super::Dataset;
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype as StDtype, SafeTensors};

/// Whether `bytes` start like a safetensors file: a little-endian u64 header length, then
/// a JSON object.
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9
        && bytes[8] == b'{'
        && u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) < bytes.len() as u64
}

/// Reads the features and (when `want_labels`; otherwise when present) labels tensors.
pub fn parse(
    bytes: &[u8],
    name: &str,
    names: &ArrayNames,
    want_labels: bool,
) -> Result<(Array, Option<Array>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::data(
            name,
            format!("not a valid safetensors file, truncated or corrupted ({e})"),
        )
    })?;
    let mut present: Vec<String> = st.names().into_iter().map(String::from).collect();
    present.sort();
    let read = |key: &str, what: &str| -> Result<Option<Array>> {
        let view = match st.tensor(key) {
            Ok(v) => v,
            Err(_) if what.is_empty() => return Ok(None),
            Err(_) => return Err(arrays::missing(name, key, &present, what)),
        };
        let dtype = match view.dtype() {
            StDtype::U8 => Dtype::U8,
            StDtype::I32 => Dtype::I32,
            StDtype::I64 => Dtype::I64,
            StDtype::F32 => Dtype::F32,
            StDtype::F64 => Dtype::F64,
            other => {
                return Err(Error::data(
                    name,
                    format!(
                        "tensor {key:?} is {other:?}; accrete reads {} (U8, I32, I64, F32, F64)",
                        arrays::DTYPES
                    ),
                ))
            }
        };
        Ok(Some(Array {
            shape: view.shape().to_vec(),
            dtype,
            bytes: view.data().to_vec(),
        }))
    };
    let features = read(&names.features, "features_key")?.expect("required");
    let labels = read(&names.labels, if want_labels { "labels_key" } else { "" })?;
    Ok((features, labels))
}

/// A dataset from a safetensors file holding a features and a labels tensor. `classes`
/// bounds the labels (`None`: the largest label + 1).
pub fn dataset(
    bytes: &[u8],
    name: &str,
    names: &ArrayNames,
    classes: Option<usize>,
) -> Result<Dataset> {
    let (x, y) = parse(bytes, name, names, true)?;
    arrays::dataset(
        &x,
        y.as_ref(),
        &format!("{name}: tensor {:?}", names.features),
        &format!("{name}: tensor {:?}", names.labels),
        classes,
    )
}

/// A safetensors file of `arrays` (name, array), as `safetensors.numpy.save` writes it.
pub fn encode(arrays: &[(&str, &Array)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (n, a) in arrays {
        let dtype = match a.dtype {
            Dtype::U8 => "U8",
            Dtype::I32 => "I32",
            Dtype::I64 => "I64",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
        };
        let start = data.len();
        data.extend(&a.bytes);
        header.insert(
            n.to_string(),
            serde_json::json!({"dtype": dtype, "shape": a.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}
