//! Checkpoints: one `.safetensors` file holding the weights (named and laid out as PyTorch's
//! `nn.Sequential` state dict: `layers.{i}.weight` [out, in] or [out, in, kh, kw],
//! `layers.{i}.bias`), the optimizer state (`optimizer.layers.{i}.weight.exp_avg`, …, with
//! PyTorch's state names) and, in the safetensors `__metadata__`, a JSON document with the
//! format version, model spec, optimizer/schedule configuration, step counts, RNG seed, data
//! cursor and metrics history, plus a CRC-32 over all of it that is verified on load.
//!
//! The same bytes are produced and accepted natively and in the browser.

#[cfg(not(target_arch = "wasm32"))]
mod file;
#[cfg(not(target_arch = "wasm32"))]
pub use file::{read_file, write_atomic};

use crate::error::{Error, Result};
use crate::nn::ModelSpec;
use crate::optim::{LrState, OptimizerSpec};
use crate::train::TrainSpec;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

/// Version of the metadata layout; files with a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;
const META_KEY: &str = "accrete";
const CHECKSUM_KEY: &str = "accrete.checksum";

/// Where a run is in its data: enough to resume exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Index of the chunk being trained (incremental runs).
    pub chunk: u64,
    /// Epochs completed within that chunk.
    pub epoch_in_chunk: u64,
    /// Steps completed within the current epoch (a mid-epoch checkpoint).
    #[serde(default)]
    pub step_in_epoch: u64,
    /// The epoch's loss/accuracy accumulator so far (mid-epoch checkpoints).
    #[serde(default)]
    pub metrics: Option<[f32; 4]>,
    /// Early stopping within the current chunk: the best monitored validation value so far
    /// and the epochs since it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub since_best: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// Everything in a checkpoint besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub format_version: u32,
    pub model: ModelSpec,
    pub optimizer: OptimizerSpec,
    pub train: TrainSpec,
    /// Seed of every random stream (init, shuffles, dropout).
    pub seed: u64,
    /// Optimizer steps taken (Adam's t) and epochs completed.
    pub step: u64,
    pub epoch: u64,
    pub lr_state: LrState,
    #[serde(default)]
    pub cursor: Cursor,
    /// Feature preprocessing fitted on the training data (e.g. standardisation), if any.
    #[serde(default)]
    pub preprocessing: Option<serde_json::Value>,
    /// Metrics history: one JSON object per report point.
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
    /// Rehearsal settings and counters (its samples are the `rehearsal.*` tensors).
    #[serde(default)]
    pub rehearsal: Option<RehearsalState>,
    /// Loss of the last epoch the divergence-recovery policy accepted (its spike test
    /// compares against it), so a resumed run judges the next epoch as the original would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_loss: Option<f64>,
    /// The loss scaler's state under mixed precision (`train.mixed_precision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<crate::train::LossScaleState>,
}

/// The rehearsal buffer's settings and Algorithm R counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RehearsalState {
    pub spec: crate::train::RehearsalSpec,
    pub seen: u64,
    pub classes: usize,
    /// Values per regression target (0: a classification buffer); the targets are the
    /// `rehearsal.targets` tensor.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target_dim: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// A named f32 tensor in PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A decoded checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub meta: Meta,
    /// Sorted by name.
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

impl Checkpoint {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Encodes as safetensors bytes. Deterministic: the header's keys are sorted (the
    /// safetensors crate writes its metadata map in hash order), so the same checkpoint
    /// always gives the same bytes. [`Checkpoint::from_bytes`] reads it back through the
    /// safetensors crate, which validates the layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        use serde_json::{json, Map, Value};
        let mut tensors = self.tensors.clone();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let meta_json = serde_json::to_string(&self.meta)
            .map_err(|e| Error::invalid("checkpoint metadata", e))?;
        let mut info = Map::new();
        info.insert(META_KEY.into(), Value::String(meta_json.clone()));
        info.insert(
            CHECKSUM_KEY.into(),
            Value::String(checksum(&meta_json, &tensors)),
        );
        info.insert("format".into(), Value::String("pt".into()));
        let mut header = Map::new(); // serde_json's Map is ordered by key
        header.insert("__metadata__".into(), Value::Object(info));
        let mut offset = 0usize;
        for t in &tensors {
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
        for t in &tensors {
            for v in &t.data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Decodes and verifies a checkpoint; `name` (a path or "upload") appears in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Checkpoint> {
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
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("unreadable header ({e})")))?;
        let info = header.metadata().as_ref().ok_or_else(|| {
            bad("no __metadata__ (a safetensors file, but not one written by accrete)".into())
        })?;
        let meta_json = info.get(META_KEY).ok_or_else(|| {
            bad(format!(
                "no \"{META_KEY}\" metadata (a safetensors file, but not one written by accrete)"
            ))
        })?;
        let probe: serde_json::Value = serde_json::from_str(meta_json)
            .map_err(|e| bad(format!("metadata is not JSON ({e})")))?;
        let version = probe
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(Error::data(name, format!("checkpoint format {version} is newer than this accrete understands ({FORMAT_VERSION}); upgrade accrete")));
        }
        let meta: Meta = serde_json::from_value(probe).map_err(|e| {
            bad(format!(
                "metadata does not match format {FORMAT_VERSION} ({e})"
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
        Ok(Checkpoint { meta, tensors })
    }
}

/// The F32 tensors of any safetensors file: an accrete checkpoint (its checksum is verified)
/// or weights exported from PyTorch (`safetensors.torch.save_file(model.state_dict(), …)`).
pub fn weights_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<NamedTensor>> {
    let has_accrete_meta = SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, h)| h.metadata().as_ref().map(|m| m.contains_key(META_KEY)))
        .unwrap_or(false);
    if has_accrete_meta {
        return Ok(Checkpoint::from_bytes(bytes, name)?.tensors);
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::data(
            name,
            format!("not a valid safetensors file, truncated or corrupted ({e})"),
        )
    })?;
    let mut out = Vec::new();
    for (tname, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::data(
                name,
                format!(
                    "tensor {tname} is {:?}; export float32 weights (model.float())",
                    view.dtype()
                ),
            ));
        }
        out.push(NamedTensor {
            name: tname,
            shape: view.shape().to_vec(),
            data: bytemuck::pod_collect_to_vec(view.data()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// PyTorch's names for an update rule's state tensors, in accrete's state order.
pub fn state_names(rule: &crate::kernels::optim::Rule) -> &'static [&'static str] {
    use crate::kernels::optim::Rule;
    match rule {
        Rule::Sgd => &[],
        Rule::Momentum { .. } => &["momentum_buffer"],
        Rule::Adagrad { .. } => &["sum"],
        Rule::RmsProp { .. } => &["square_avg"],
        Rule::Adam { .. } | Rule::AdamW { .. } => &["exp_avg", "exp_avg_sq"],
    }
}
