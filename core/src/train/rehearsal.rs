//! Rehearsal: a reservoir sample of every sample seen so far (Vitter's Algorithm R, driven
//! by Philox so it is the same on every platform), `per_batch` of which are mixed into
//! every batch of a new chunk, which limits forgetting in class-incremental runs.

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RehearsalSpec {
    pub size: usize,
    #[serde(default = "default_per_batch")]
    pub per_batch: usize,
}

/// The rehearsal buffer: a uniform sample of every sample seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservoir {
    pub spec: RehearsalSpec,
    pub data: Option<Dataset>,
    /// Samples offered so far (Algorithm R's n).
    pub seen: u64,
}

impl Reservoir {
    pub fn new(spec: RehearsalSpec) -> Self {
        Reservoir {
            spec,
            data: None,
            seen: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers every sample of `chunk`: the first `size` fill the buffer; sample number n
    /// (0-based) then replaces slot j = uniform(0..=n) when j < size.
    pub fn offer(&mut self, chunk: &Dataset, seed: u64) {
        let cap = self.spec.size;
        if cap == 0 {
            return;
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
                data.features[j * d..(j + 1) * d].copy_from_slice(x);
                data.labels[j] = chunk.labels[i];
                data.targets[j * t..(j + 1) * t]
                    .copy_from_slice(&chunk.targets[i * t..(i + 1) * t]);
            }
        }
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
    /// Turns rehearsal on (or changes its settings, keeping the buffer's samples).
    pub fn enable_rehearsal(&mut self, spec: RehearsalSpec) {
        match &mut self.rehearsal {
            Some(r) => r.spec = spec,
            None => self.rehearsal = Some(Reservoir::new(spec)),
        }
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
