//! Dark Experience Replay (Buzzega et al. 2020), DER and DER++: rehearsal whose buffer also
//! keeps the logits each sample had when it entered, so replayed rows are pulled towards
//! the model's earlier outputs (`α·MSE`) as well as, with DER++, their labels (`β·CE`).
//! The settings are [`RehearsalSpec`]'s `logit_weight` and `label_weight`.
//!
//! Where the logits come from: samples enter the buffer at the end of their chunk
//! ([`super::Reservoir::offer`]), and the ones that entered get the chunk-end model's logits
//! from one evaluation-mode forward pass on the GPU (read back once per chunk, as
//! Avalanche's DER computes them after each experience; Mammoth records them during the
//! training step instead). Inside the step program the stored logits are gathered by the
//! epoch's index buffer beside the inputs and the loss is shaders/loss_replay.wgsl, so a
//! step does no host work. The logits are state: checkpoints carry them as
//! `rehearsal.logits`.

use super::{GpuDataset, LossKind, Reservoir, Trainer};
use crate::error::{Error, Result};
use crate::gpu::Tensor;
use std::collections::BTreeMap;

/// DER's loss in a step program: the first `fresh` rows are new, the others replayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ReplayLoss {
    pub fresh: usize,
    pub alpha: f32,
    pub beta: f32,
    /// Whether stored logits are gathered (α is configured).
    pub logits: bool,
}

/// DER needs class labels and cannot share the loss with a teacher.
pub(crate) fn check_compatible(t: &Trainer) -> Result<()> {
    if t.train.loss != LossKind::SoftmaxCrossEntropy {
        return Err(Error::invalid(
            "incremental.rehearsal",
            "logit_weight / label_weight (DER, DER++) weigh class logits and labels: they need train.loss = \"softmax_cross_entropy\"",
        ));
    }
    if t.lwf.is_some() || t.teacher.is_some() {
        return Err(Error::invalid(
            "incremental.rehearsal",
            "logit_weight / label_weight (DER, DER++) cannot be combined with LwF or a distillation teacher (both replace the loss); use one strategy",
        ));
    }
    Ok(())
}

impl Trainer {
    /// Refuses a teacher (LwF, distillation) beside DER's replay loss.
    pub(crate) fn refuse_with_der(&self, key: &str) -> Result<()> {
        if self
            .rehearsal
            .as_ref()
            .is_some_and(|r| r.spec.replay_loss().is_some())
        {
            return Err(Error::invalid(
                key,
                "the rehearsal buffer replays with logit_weight / label_weight (DER, DER++), which cannot be combined with a teacher (both replace the loss); use one strategy",
            ));
        }
        Ok(())
    }

    /// The DER loss for a chunk trained with `replay` (None: plain batches), with `b` new
    /// rows per batch; rebuilds the step program when it changes.
    pub(crate) fn set_replay_loss(&mut self, replay: Option<&Reservoir>, b: usize) {
        let want = replay.and_then(|r| {
            let (alpha, beta) = r.spec.replay_loss()?;
            Some(ReplayLoss {
                fresh: b,
                alpha,
                beta,
                logits: r.spec.stores_logits(),
            })
        });
        if want != self.replay_loss {
            self.replay_loss = want;
            self.program = None;
        }
    }

    /// The stored logits of the chunk-plus-buffer dataset `[chunk | buffer]` for the step's
    /// gather: zeros for the chunk's rows (never read), then the buffer's. None when the
    /// buffer keeps no logits.
    pub(crate) fn replay_logits_source(
        &self,
        chunk_len: usize,
        r: &Reservoir,
    ) -> Result<Option<Tensor>> {
        if !r.spec.stores_logits() {
            return Ok(None);
        }
        let c = self.model.spec.outputs()?;
        if r.logits.len() != r.len() * c {
            return Err(Error::invalid(
                "incremental.rehearsal.logit_weight",
                format!(
                    "the rehearsal buffer holds {} samples but logits for {} (DER was turned on after they entered, or the model's outputs changed); DER needs logit_weight from the first chunk on",
                    r.len(),
                    r.logits.len() / c.max(1)
                ),
            ));
        }
        let mut all = vec![0.0; chunk_len * c];
        all.extend_from_slice(&r.logits);
        Ok(Some(Tensor::from_f32(
            self.gpu(),
            &[chunk_len + r.len(), c],
            &all,
        )?))
    }

    /// At a chunk's end: offers the chunk to the rehearsal buffer and, with DER, stores the
    /// logits of the samples that entered (one forward pass over them).
    pub(crate) async fn offer_to_rehearsal(&mut self, chunk: &crate::data::Dataset) -> Result<()> {
        let seed = self.seed;
        let Some(r) = &mut self.rehearsal else {
            return Ok(());
        };
        let placed = r.offer(chunk, seed);
        if !r.spec.stores_logits() {
            return Ok(());
        }
        let c = self.model.spec.outputs()?;
        r.logits.resize(r.len() * c, 0.0);
        // The last sample placed in a slot is the one it holds.
        let last: BTreeMap<usize, usize> = placed.into_iter().collect();
        if last.is_empty() {
            return Ok(());
        }
        let (slots, samples): (Vec<usize>, Vec<usize>) = last.into_iter().unzip();
        let entered = GpuDataset::upload(self.gpu(), &chunk.select(&samples))?;
        let batch = self.inference_batch(samples.len());
        let z = self.logits(&entered, batch).await?;
        let r = self.rehearsal.as_mut().expect("checked above");
        for (k, slot) in slots.into_iter().enumerate() {
            r.logits[slot * c..(slot + 1) * c].copy_from_slice(&z[k * c..(k + 1) * c]);
        }
        Ok(())
    }
}
