//! Rehearsal: a reservoir sample of every sample seen so far (Vitter's Algorithm R, driven
//! by Philox so it is the same on every platform), `per_batch` of which are mixed into
//! every batch of a new chunk, which limits forgetting in class-incremental runs. With
//! `logit_weight` / `label_weight` the replayed rows get their own loss terms, Dark
//! Experience Replay (`der`).

use super::Trainer;
use crate::data::Dataset;
use crate::defaults;
use crate::error::{Error, Result};
use crate::kernels::gather::PAD_INDEX;
use crate::kernels::rng::{words, RngKey};
use serde::{Deserialize, Serialize};

const RESERVOIR_STREAM: u32 = 0x4000;
const REPLAY_STREAM: u32 = 0x5000;

fn default_per_batch() -> usize {
    defaults::REHEARSAL_PER_BATCH
}

/// Rehearsal settings: `size` samples kept from earlier chunks, `per_batch` of them replayed
/// in every batch (drawn with replacement).
///
/// Without `logit_weight` and `label_weight` the replayed rows join the batch's
/// cross-entropy (one mean over all rows). With either, the batch objective is Dark
/// Experience Replay's (Buzzega et al. 2020; shaders/loss_replay.wgsl):
/// `mean_new CE + α·mean_{replayed, classes} (z − z_stored)² + β·mean_replayed CE`, where
/// `z_stored` are the logits the model gave the sample when it entered the buffer (at the
/// end of its chunk, in one evaluation-mode forward pass on the GPU, as Avalanche does).
/// α = `logit_weight` alone is DER; with β = `label_weight` > 0 it is DER++.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct RehearsalSpec {
    pub size: usize,
    #[serde(default = "default_per_batch")]
    pub per_batch: usize,
    /// DER's α: the weight of the replayed rows' logit MSE; set, the buffer stores every
    /// entering sample's logits (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_weight: Option<f32>,
    /// DER++'s β: the weight of the replayed rows' own cross-entropy mean (default: off; 0
    /// when only `logit_weight` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_weight: Option<f32>,
}

impl RehearsalSpec {
    /// `size` samples, `per_batch` replayed in every batch, plain rehearsal.
    pub fn new(size: usize, per_batch: usize) -> RehearsalSpec {
        RehearsalSpec {
            size,
            per_batch,
            logit_weight: None,
            label_weight: None,
        }
    }

    /// Refuses negative or non-finite weights, and weights that cannot act (nothing
    /// replayed, or both 0).
    pub fn validate(&self, key: &str) -> Result<()> {
        for (name, w) in [
            ("logit_weight", self.logit_weight),
            ("label_weight", self.label_weight),
        ] {
            if let Some(w) = w.filter(|w| !w.is_finite() || *w < 0.0) {
                return Err(Error::invalid(
                    format!("{key}.{name}"),
                    format!("{w} must be a finite number ≥ 0 (e.g. 0.5)"),
                ));
            }
        }
        if self.replay_loss().is_none() {
            return Ok(());
        }
        if self.size == 0 || self.per_batch == 0 {
            return Err(Error::invalid(
                key,
                format!(
                    "logit_weight / label_weight weigh replayed samples, but size = {} and per_batch = {} replay none; make both at least 1",
                    self.size, self.per_batch
                ),
            ));
        }
        if self.logit_weight.unwrap_or(0.0) == 0.0 && self.label_weight.unwrap_or(0.0) == 0.0 {
            return Err(Error::invalid(
                key,
                "logit_weight and label_weight are both 0, so the replayed samples would not be learned from; give one a positive weight, or leave both out for plain rehearsal",
            ));
        }
        Ok(())
    }

    /// DER's weights (α, β), when the replayed rows have their own loss terms.
    pub fn replay_loss(&self) -> Option<(f32, f32)> {
        (self.logit_weight.is_some() || self.label_weight.is_some()).then(|| {
            (
                self.logit_weight.unwrap_or(0.0),
                self.label_weight.unwrap_or(0.0),
            )
        })
    }

    /// Whether the buffer keeps its samples' logits (DER's `logit_weight` is set).
    pub fn stores_logits(&self) -> bool {
        self.logit_weight.is_some()
    }
}

/// The rehearsal buffer: a uniform sample of every sample seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservoir {
    pub spec: RehearsalSpec,
    pub data: Option<Dataset>,
    /// Samples offered so far (Algorithm R's n).
    pub seen: u64,
    /// With DER, [len, outputs] row-major: the logits each sample had when it entered
    /// (empty otherwise).
    pub logits: Vec<f32>,
}

impl Reservoir {
    pub fn new(spec: RehearsalSpec) -> Self {
        Reservoir {
            spec,
            data: None,
            seen: 0,
            logits: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers every sample of `chunk`: the first `size` fill the buffer; sample number n
    /// (0-based) then replaces slot j = uniform(0..=n) when j < size. Returns the
    /// placements (slot, sample of `chunk`) in order (a later one may overwrite a slot).
    pub fn offer(&mut self, chunk: &Dataset, seed: u64) -> Vec<(usize, usize)> {
        let cap = self.spec.size;
        let mut placed = Vec::new();
        if cap == 0 {
            return placed;
        }
        let d = chunk.sample_len();
        let t = chunk.target_dim;
        let data = self.data.get_or_insert_with(|| Dataset {
            features: Vec::new(),
            labels: Vec::new(),
            sample_shape: chunk.sample_shape.clone(),
            classes: chunk.classes,
            targets: Vec::new(),
            target_dim: t,
        });
        data.classes = data.classes.max(chunk.classes);
        for i in 0..chunk.len() {
            let n = self.seen;
            self.seen += 1;
            let x = &chunk.features[i * d..(i + 1) * d];
            if data.len() < cap {
                placed.push((data.len(), i));
                data.features.extend_from_slice(x);
                data.labels.push(chunk.labels[i]);
                data.targets
                    .extend_from_slice(&chunk.targets[i * t..(i + 1) * t]);
                continue;
            }
            let key = RngKey {
                seed,
                stream: RESERVOIR_STREAM,
                offset: (n >> 32) as u32,
            };
            let w = words(key, n as u32);
            let j = ((w[0] as u64) << 32 | w[1] as u64) % (n + 1);
            if (j as usize) < cap {
                let j = j as usize;
                placed.push((j, i));
                data.features[j * d..(j + 1) * d].copy_from_slice(x);
                data.labels[j] = chunk.labels[i];
                data.targets[j * t..(j + 1) * t]
                    .copy_from_slice(&chunk.targets[i * t..(i + 1) * t]);
            }
        }
        placed
    }
}

pub(crate) fn concat(a: &Dataset, b: &Dataset) -> Result<Dataset> {
    if a.sample_shape != b.sample_shape || a.target_dim != b.target_dim {
        return Err(Error::data(
            "rehearsal",
            format!(
                "chunk samples are {:?} (targets of {}) but the buffer holds {:?} (targets of {})",
                a.sample_shape, a.target_dim, b.sample_shape, b.target_dim
            ),
        ));
    }
    let mut out = a.clone();
    out.features.extend_from_slice(&b.features);
    out.labels.extend_from_slice(&b.labels);
    out.targets.extend_from_slice(&b.targets);
    out.classes = a.classes.max(b.classes);
    Ok(out)
}

impl Trainer {
    /// Turns rehearsal on (or changes its settings, keeping the buffer's samples). DER's
    /// weights need class labels (`softmax_cross_entropy`) and no teacher (LwF,
    /// `distill_from`).
    pub fn enable_rehearsal(&mut self, spec: RehearsalSpec) -> Result<()> {
        spec.validate("incremental.rehearsal")?;
        if spec.replay_loss().is_some() {
            super::der::check_compatible(self)?;
        }
        match &mut self.rehearsal {
            Some(r) => {
                if !spec.stores_logits() {
                    r.logits.clear();
                }
                r.spec = spec;
            }
            None => self.rehearsal = Some(Reservoir::new(spec)),
        }
        Ok(())
    }

    /// Batches of `b` shuffled new samples (indices 0..n, padded) followed by `per` replayed
    /// ones (indices n..n+m, drawn with replacement).
    pub(crate) fn replay_indices(&self, n: usize, b: usize, m: usize, per: usize) -> Vec<u32> {
        let fresh = self.epoch_indices(n, b, true);
        let key = RngKey {
            seed: self.seed,
            stream: REPLAY_STREAM,
            offset: self.epoch as u32,
        };
        let mut idx = Vec::with_capacity(fresh.len() / b * (b + per));
        for (s, batch) in fresh.chunks(b).enumerate() {
            idx.extend_from_slice(batch);
            for j in 0..per {
                let w = words(key, (s * per + j) as u32)[0];
                let k = ((w as u64 * m as u64) >> 32) as usize;
                idx.push((n + k) as u32);
            }
        }
        debug_assert!(idx.iter().all(|&i| i == PAD_INDEX || (i as usize) < n + m));
        idx
    }
}
