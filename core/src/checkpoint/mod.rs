//! The checkpoint file format, and nothing else: a `.safetensors` file of named f32 tensors
//! whose `__metadata__` holds a JSON document (opaque here; `train::state` gives it its
//! meaning) and a CRC-32 over that document and every tensor's name, shape and data,
//! verified on load. The same bytes are produced and accepted natively and in the browser.
//!
//! Also here: reading the weights of any safetensors file ([`weights_from_bytes`]), e.g. a
//! state dict exported from PyTorch, for fine-tuning.

#[cfg(not(target_arch = "wasm32"))]
mod file;
pub mod foreign;
#[cfg(not(target_arch = "wasm32"))]
pub use file::{read_bytes, write_atomic};

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};

/// The metadata key holding the JSON document.
const META_KEY: &str = "accrete";
const CHECKSUM_KEY: &str = "accrete.checksum";

/// A named f32 tensor in PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// What a checkpoint file holds: the metadata document and the tensors, sorted by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub meta_json: String,
    pub tensors: Vec<NamedTensor>,
}

fn checksum(meta_json: &str, tensors: &[NamedTensor]) -> String {
    let mut h = crc32fast::Hasher::new();
    h.update(meta_json.as_bytes());
    for t in tensors {
        h.update(t.name.as_bytes());
        for d in &t.shape {
            h.update(&(*d as u64).to_le_bytes());
        }
        h.update(bytemuck::cast_slice(&t.data));
    }
    format!("crc32:{:08x}", h.finalize())
}

/// Encodes `meta_json` and `tensors` as safetensors bytes. Deterministic: tensors are
/// sorted by name and the header's keys are sorted (the safetensors crate writes its
/// metadata map in hash order), so the same input always gives the same bytes.
pub fn encode(meta_json: &str, tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    use serde_json::{json, Map, Value};
    let mut tensors: Vec<&NamedTensor> = tensors.iter().collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let sorted: Vec<NamedTensor> = tensors.iter().map(|t| (*t).clone()).collect();
    let mut info = Map::new();
    info.insert(META_KEY.into(), Value::String(meta_json.to_string()));
    info.insert(
        CHECKSUM_KEY.into(),
        Value::String(checksum(meta_json, &sorted)),
    );
    info.insert("format".into(), Value::String("pt".into()));
    let mut header = Map::new(); // serde_json's Map is ordered by key
    header.insert("__metadata__".into(), Value::Object(info));
    let mut offset = 0usize;
    for t in &sorted {
        if t.data.len() != t.shape.iter().product::<usize>() {
            return Err(Error::invalid(
                format!("checkpoint tensor {}", t.name),
                format!("{} values for shape {:?}", t.data.len(), t.shape),
            ));
        }
        let end = offset + 4 * t.data.len();
        header.insert(
            t.name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut head = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| Error::invalid("checkpoint header", e))?;
    while head.len() % 8 != 0 {
        head.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + head.len() + offset);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for t in &sorted {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Whether `bytes` are a safetensors file carrying accrete metadata (without verifying it).
pub fn has_accrete_metadata(bytes: &[u8]) -> bool {
    SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, h)| h.metadata().as_ref().map(|m| m.contains_key(META_KEY)))
        .unwrap_or(false)
}

/// Decodes and verifies checkpoint bytes; `name` (a path or "upload") starts every error.
pub fn decode(bytes: &[u8], name: &str) -> Result<Decoded> {
    let bad = |d: String| {
        Error::data(
            name,
            format!("{d}; the file is not a usable accrete checkpoint"),
        )
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        bad(format!(
            "not a valid safetensors file, truncated or corrupted ({e})"
        ))
    })?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
    let info = header.metadata().as_ref().ok_or_else(|| {
        bad("no __metadata__ (a safetensors file, but not one written by accrete)".into())
    })?;
    let meta_json = info.get(META_KEY).ok_or_else(|| {
        bad(format!(
            "no \"{META_KEY}\" metadata (a safetensors file, but not one written by accrete)"
        ))
    })?;
    let mut tensors = Vec::new();
    for (tname, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {tname} is {:?}, accrete stores F32",
                view.dtype()
            )));
        }
        tensors.push(NamedTensor {
            name: tname,
            shape: view.shape().to_vec(),
            data: bytemuck::pod_collect_to_vec(view.data()),
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let want = info
        .get(CHECKSUM_KEY)
        .ok_or_else(|| bad("no checksum in the metadata".into()))?;
    let got = checksum(meta_json, &tensors);
    if &got != want {
        return Err(Error::data(
            name,
            format!("checksum mismatch (stored {want}, computed {got}): the file is corrupted"),
        ));
    }
    Ok(Decoded {
        meta_json: meta_json.clone(),
        tensors,
    })
}

/// The tensors of any safetensors file as f32: an accrete checkpoint (its checksum is
/// verified) or a state dict saved by PyTorch (`safetensors.torch.save_file(model.state_dict(),
/// …)`; F32/F16/BF16/F64, a `model.`/`module.` prefix stripped: [`foreign`]).
pub fn weights_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<NamedTensor>> {
    if has_accrete_metadata(bytes) {
        return Ok(decode(bytes, name)?.tensors);
    }
    foreign::read(bytes, name)
}
