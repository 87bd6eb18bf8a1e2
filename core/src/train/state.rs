//! The state that travels in a checkpoint, in one home: the metadata document ([`Meta`]:
//! specs, counters, cursor, history, schedule and scaler state), the names of the tensors
//! beside the weights (optimizer state, rehearsal buffer, early stopping's best epoch), and
//! the conversion between a [`Trainer`] and a [`Checkpoint`]. The bytes themselves are
//! [`crate::checkpoint`]'s.
//!
//! Tensor names: parameters as PyTorch's `nn.Sequential` state dict names them
//! (`layers.{i}.weight`, `layers.{i}.bias`), optimizer state as
//! `optimizer.{parameter}.{state}` with PyTorch's state names ([`Rule::state_names`]),
//! the rehearsal buffer as `rehearsal.{features,labels,targets}` (and DER's stored logits
//! `rehearsal.logits`), A-GEM's memory as `agem.{features,labels}`, and the best epoch's
//! weights and optimizer state under `early_stopping.best.`.

use super::history::{deserialize_events, Event};
use super::recovery::RECOVERY_BEST_PREFIX;
use super::{LossScaleState, RehearsalSpec, Reservoir, TrainSpec, Trainer};
use crate::checkpoint::{self, NamedTensor};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::matmul::Precision;
use crate::nn::ModelSpec;
use crate::optim::{LrState, OptimizerSpec};
use serde::{Deserialize, Serialize};

/// Version of the metadata layout; files with a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// Prefix of the tensors holding the best epoch's weights and optimizer state of the
/// current chunk (early stopping with `restore_best`).
pub(crate) const BEST_PREFIX: &str = "early_stopping.best.";
const REHEARSAL: &str = "rehearsal";

/// The checkpoint name of a parameter's optimizer state tensor.
pub(crate) fn optimizer_tensor(param: &str, state: &str) -> String {
    format!("optimizer.{param}.{state}")
}

/// Whether a checkpoint tensor is training state (optimizer state, the rehearsal buffer,
/// early stopping's snapshot) rather than a parameter of the model.
pub fn is_training_state(name: &str) -> bool {
    name.starts_with("optimizer.")
        || name.starts_with("rehearsal.")
        || name.starts_with(super::lwf::LWF_PREFIX)
        || name.starts_with(super::ewc::EWC_PREFIX)
        || name.starts_with("agem.")
        || name.starts_with("recovery.")
        || name.starts_with(BEST_PREFIX)
}

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
    /// The global step at which the current chunk started (the learning-rate plan's
    /// origin for per-chunk schedules); `None` in checkpoints written before it was kept,
    /// and then derived from the counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_start_step: Option<u64>,
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
    /// What happened so far: epochs, rollbacks, early stops.
    #[serde(default, deserialize_with = "deserialize_events")]
    pub history: Vec<Event>,
    /// Rehearsal settings and counters (its samples are the `rehearsal.*` tensors).
    #[serde(default)]
    pub rehearsal: Option<RehearsalState>,
    /// Loss of the last epoch the divergence-recovery policy accepted (its spike test
    /// compares against it), so a resumed run judges the next epoch as the original would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_loss: Option<f64>,
    /// The loss scaler's state under mixed precision (`train.mixed_precision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScaleState>,
    /// The run's planned total of optimizer steps, when the caller knows it (the CLI does:
    /// every chunk's steps × epochs): the end of a `cosine` schedule without `total_steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_steps: Option<u64>,
    /// Learning without Forgetting's settings (`[incremental] lwf`); inside a chunk, its
    /// teacher is the `lwf.teacher.*` tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwf: Option<super::LwfSpec>,
    /// Elastic Weight Consolidation's settings (`[incremental] ewc`); after a chunk's end,
    /// its Fisher and anchor are the `ewc.fisher.*` and `ewc.anchor.*` tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewc: Option<super::EwcSpec>,
    /// The recovery strategies' state (draws counter, best validation loss; the best state
    /// is the `recovery.best.*` tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<super::RecoveryState>,
    /// A-GEM's settings and memory counter (`[incremental] agem`); its samples are the
    /// `agem.{features,labels}` tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agem: Option<AgemState>,
}

/// A-GEM's settings and its memory's Algorithm R counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgemState {
    pub spec: super::AgemSpec,
    pub seen: u64,
    pub classes: usize,
}

/// The rehearsal buffer's settings and Algorithm R counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RehearsalState {
    pub spec: RehearsalSpec,
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

/// A decoded checkpoint: its metadata and tensors (sorted by name).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub meta: Meta,
    pub tensors: Vec<NamedTensor>,
}

impl Checkpoint {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Encodes as `.safetensors` bytes (deterministic: the same checkpoint always gives
    /// the same bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta_json = serde_json::to_string(&self.meta)
            .map_err(|e| Error::invalid("checkpoint metadata", e))?;
        checkpoint::encode(&meta_json, &self.tensors)
    }

    /// Decodes and verifies a checkpoint; `name` (a path or "upload") starts every error.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Checkpoint> {
        let d = checkpoint::decode(bytes, name)?;
        let bad = |detail: String| {
            Error::data(
                name,
                format!("{detail}; the file is not a usable accrete checkpoint"),
            )
        };
        let probe: serde_json::Value = serde_json::from_str(&d.meta_json)
            .map_err(|e| bad(format!("metadata is not JSON ({e})")))?;
        let version = probe
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(Error::data(
                name,
                format!("checkpoint format {version} is newer than this accrete understands ({FORMAT_VERSION}); upgrade accrete"),
            ));
        }
        let meta: Meta = serde_json::from_value(probe).map_err(|e| {
            bad(format!(
                "metadata does not match format {FORMAT_VERSION} ({e})"
            ))
        })?;
        Ok(Checkpoint {
            meta,
            tensors: d.tensors,
        })
    }

    /// Reads and verifies a checkpoint file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_file(path: &std::path::Path) -> Result<Checkpoint> {
        Self::from_bytes(&checkpoint::read_bytes(path)?, &path.display().to_string())
    }

    /// The best epoch's weights and optimizer state (early stopping), if the file has them.
    fn best_snapshot(&self) -> Option<Vec<NamedTensor>> {
        self.prefixed(BEST_PREFIX)
    }

    /// The tensors named `prefix…`, without the prefix; `None` when there are none.
    fn prefixed(&self, prefix: &str) -> Option<Vec<NamedTensor>> {
        let found: Vec<NamedTensor> = self
            .tensors
            .iter()
            .filter_map(|x| {
                Some(NamedTensor {
                    name: x.name.strip_prefix(prefix)?.to_string(),
                    ..x.clone()
                })
            })
            .collect();
        (!found.is_empty()).then_some(found)
    }

    /// The rehearsal buffer described by `rs`, from the `{prefix}.*` tensors (`rehearsal`,
    /// or `agem` for A-GEM's memory).
    fn reservoir(&self, rs: &RehearsalState, prefix: &str) -> Result<Reservoir> {
        let mut r = Reservoir::new(rs.spec.clone());
        r.seen = rs.seen;
        let (Some(f), Some(l)) = (
            self.tensor(&format!("{prefix}.features")),
            self.tensor(&format!("{prefix}.labels")),
        ) else {
            return Ok(r);
        };
        let labels = l.data.iter().map(|&v| v as u32).collect();
        let mut d = Dataset::new(f.data.clone(), labels, f.shape[1..].to_vec(), rs.classes)?;
        if rs.target_dim > 0 {
            let t = self.tensor(&format!("{prefix}.targets")).ok_or_else(|| {
                Error::data(
                    "checkpoint",
                    "the regression rehearsal buffer's rehearsal.targets tensor is missing",
                )
            })?;
            if t.data.len() != d.len() * rs.target_dim {
                return Err(Error::data(
                    "checkpoint",
                    format!(
                        "rehearsal.targets holds {} values, expected {} × {}",
                        t.data.len(),
                        d.len(),
                        rs.target_dim
                    ),
                ));
            }
            d.targets = t.data.clone();
            d.target_dim = rs.target_dim;
        }
        if rs.spec.stores_logits() {
            let t = self.tensor(&format!("{prefix}.logits")).ok_or_else(|| {
                Error::data(
                    "checkpoint",
                    "the DER rehearsal buffer's rehearsal.logits tensor is missing (incremental.rehearsal has logit_weight)",
                )
            })?;
            if t.shape.first() != Some(&d.len()) || t.shape.len() != 2 {
                return Err(Error::data(
                    "checkpoint",
                    format!(
                        "rehearsal.logits is {:?}, expected [{}, outputs] (one row per buffered sample)",
                        t.shape,
                        d.len()
                    ),
                ));
            }
            r.logits = t.data.clone();
        }
        r.data = Some(d);
        Ok(r)
    }
}

/// The rehearsal buffer's tensors, named `{prefix}.*`, and its state for the metadata.
fn reservoir_tensors(r: &Reservoir, prefix: &str, out: &mut Vec<NamedTensor>) -> RehearsalState {
    if let Some(d) = &r.data {
        let mut shape = vec![d.len()];
        shape.extend_from_slice(&d.sample_shape);
        out.push(NamedTensor {
            name: format!("{prefix}.features"),
            shape,
            data: d.features.clone(),
        });
        out.push(NamedTensor {
            name: format!("{prefix}.labels"),
            shape: vec![d.len()],
            data: d.labels.iter().map(|&l| l as f32).collect(),
        });
        if !r.logits.is_empty() {
            out.push(NamedTensor {
                name: format!("{prefix}.logits"),
                shape: vec![d.len(), r.logits.len() / d.len().max(1)],
                data: r.logits.clone(),
            });
        }
        if d.target_dim > 0 {
            out.push(NamedTensor {
                name: format!("{prefix}.targets"),
                shape: vec![d.len(), d.target_dim],
                data: d.targets.clone(),
            });
        }
    }
    RehearsalState {
        spec: r.spec.clone(),
        seen: r.seen,
        classes: r.data.as_ref().map_or(0, |d| d.classes),
        target_dim: r.data.as_ref().map_or(0, |d| d.target_dim),
    }
}

impl Trainer {
    /// The parameters and their optimizer state as checkpoint tensors (read back from the
    /// GPU).
    pub(crate) async fn parameter_tensors(&self) -> Result<Vec<NamedTensor>> {
        let names = self.rule.state_names();
        let mut tensors = Vec::new();
        for p in &self.model.params {
            let shape = p.value.shape().to_vec();
            tensors.push(NamedTensor {
                name: p.name.clone(),
                shape: shape.clone(),
                data: p.value.read_f32().await?,
            });
            for (s, n) in p.state.iter().zip(names) {
                tensors.push(NamedTensor {
                    name: optimizer_tensor(&p.name, n),
                    shape: shape.clone(),
                    data: s.read_f32().await?,
                });
            }
        }
        Ok(tensors)
    }

    /// Writes parameters and optimizer state from `tensors` (named as
    /// [`Self::parameter_tensors`] names them), checking every shape; `source` names them
    /// in errors.
    pub(crate) fn load_parameter_tensors(
        &self,
        tensors: &[NamedTensor],
        source: &str,
    ) -> Result<()> {
        let find = |name: &str| {
            tensors.iter().find(|t| t.name == name).ok_or_else(|| {
                Error::data(
                    source,
                    format!("tensor {name} is missing; the file does not match the model"),
                )
            })
        };
        for p in &self.model.params {
            let w = find(&p.name)?;
            self.model.load(&p.name, &w.shape, &w.data)?;
            for (s, n) in p.state.iter().zip(self.rule.state_names()) {
                let st = find(&optimizer_tensor(&p.name, n))?;
                if st.shape != p.value.shape() {
                    return Err(Error::data(
                        source,
                        format!(
                            "optimizer state {} is {:?}, expected {:?}",
                            st.name,
                            st.shape,
                            p.value.shape()
                        ),
                    ));
                }
                s.write_f32(&st.data)?;
            }
        }
        Ok(())
    }

    /// Everything needed to continue exactly where this trainer is: weights, optimizer
    /// state, counters, schedule state, seed, cursor, history, rehearsal buffer, early
    /// stopping's best epoch and the loss scaler.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let mut tensors = self.parameter_tensors().await?;
        let rehearsal = self
            .rehearsal
            .as_ref()
            .map(|r| reservoir_tensors(r, REHEARSAL, &mut tensors));
        let agem = self.agem.as_ref().map(|m| {
            let rs = reservoir_tensors(&m.memory, super::agem::AGEM_PREFIX, &mut tensors);
            AgemState {
                spec: m.spec.clone(),
                seen: rs.seen,
                classes: rs.classes,
            }
        });
        self.lwf_tensors(&mut tensors).await?;
        self.ewc_tensors(&mut tensors).await?;
        for t in self.best_snapshot.iter().flatten() {
            tensors.push(NamedTensor {
                name: format!("{BEST_PREFIX}{}", t.name),
                ..t.clone()
            });
        }
        for t in self.recovery_memory.best.iter().flatten() {
            tensors.push(NamedTensor {
                name: format!("{RECOVERY_BEST_PREFIX}{}", t.name),
                ..t.clone()
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Checkpoint {
            meta: Meta {
                format_version: FORMAT_VERSION,
                model: self.model.spec.clone(),
                optimizer: self.optimizer.clone(),
                train: TrainSpec {
                    mixed_precision: self.mixed.as_ref().map(|(mp, _)| mp.clone()),
                    ..self.train.clone()
                },
                seed: self.seed,
                step: self.step,
                epoch: self.epoch,
                lr_state: self.lr_state.clone(),
                cursor: self.cursor.clone(),
                preprocessing: None,
                history: self.history.clone(),
                rehearsal,
                last_good_loss: self.last_good_loss,
                loss_scale: self.loss_scale().await?,
                planned_steps: self.planned_steps,
                lwf: self.lwf.clone(),
                ewc: self.ewc.clone(),
                recovery: (!self.recovery_memory.state.is_empty())
                    .then(|| self.recovery_memory.state.clone()),
                agem,
            },
            tensors,
        })
    }

    /// A trainer for evaluating or predicting with `ckpt` on `gpu`: [`Self::from_checkpoint`],
    /// except that a checkpoint trained with mixed precision on a device without
    /// `SHADER_F16` is evaluated with f32 GEMMs (its outputs then differ from the training
    /// device's in the low bits). Training it further needs `from_checkpoint`.
    pub fn for_inference(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Trainer> {
        let f16 = Precision::F16.required_features();
        if ckpt.meta.train.mixed_precision.is_some() && !gpu.features().contains(f16) {
            let mut c = ckpt.clone();
            c.meta.train.mixed_precision = None;
            c.meta.loss_scale = None;
            return Self::from_checkpoint(gpu, &c);
        }
        Self::from_checkpoint(gpu, ckpt)
    }

    /// A trainer that continues exactly where `ckpt` left off.
    pub fn from_checkpoint(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Trainer> {
        let m = &ckpt.meta;
        let mut t = Trainer::new(
            gpu,
            m.model.clone(),
            m.optimizer.clone(),
            m.train.clone(),
            m.seed,
        )?;
        t.restore(ckpt)?;
        t.best_snapshot = ckpt.best_snapshot();
        t.restore_lwf(m.lwf.as_ref(), &ckpt.tensors)?;
        t.restore_ewc(m.ewc.as_ref(), &ckpt.tensors)?;
        t.recovery_memory = super::recovery::RecoveryMemory {
            state: m.recovery.clone().unwrap_or_default(),
            best: ckpt.prefixed(RECOVERY_BEST_PREFIX),
        };
        t.rehearsal = m
            .rehearsal
            .as_ref()
            .map(|rs| ckpt.reservoir(rs, REHEARSAL))
            .transpose()?;
        if let Some(a) = &m.agem {
            t.enable_agem(a.spec.clone())?;
            let rs = RehearsalState {
                spec: RehearsalSpec::new(a.spec.size, a.spec.per_batch),
                seen: a.seen,
                classes: a.classes,
                target_dim: 0,
            };
            t.restore_agem_memory(ckpt.reservoir(&rs, super::agem::AGEM_PREFIX)?);
        }
        Ok(t)
    }

    /// Overwrites this trainer's parameters, optimizer state and counters with `ckpt`'s
    /// (same architecture and optimizer).
    pub fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        self.load_parameter_tensors(&ckpt.tensors, "checkpoint")?;
        let m = &ckpt.meta;
        self.step = m.step;
        self.epoch = m.epoch;
        self.lr_state = m.lr_state.clone();
        self.cursor = m.cursor.clone();
        self.history = m.history.clone();
        self.last_good_loss = m.last_good_loss;
        self.planned_steps = m.planned_steps;
        if let Some((mp, scaler)) = &self.mixed {
            // A checkpoint saved without mixed precision starts from the initial scale.
            let st = m
                .loss_scale
                .clone()
                .unwrap_or_else(|| LossScaleState::initial(mp));
            scaler.write_u32(&[st.scale.to_bits(), st.good_steps, st.skipped_steps, 0])?;
        }
        Ok(())
    }
}
