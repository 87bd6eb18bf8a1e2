//! Learning without Forgetting (Li & Hoiem 2016): at the start of every chunk after the
//! first, the model is snapshotted as a frozen teacher, and the chunk trains on
//! `(CE(labels) + λ·T²·KL(softmax(teacher/T) ‖ softmax(student/T))) / (1 + λ)` over every row of
//! the batch (new samples and, with rehearsal, replayed ones): the distillation loss of
//! [`super::DistillSpec`] (shaders/loss_distill.wgsl) with `alpha = 1 / (1 + λ)`, so the
//! teacher's forward pass and the loss run inside the recorded step. The overall factor
//! `1 / (1 + λ)` leaves Adam's steps unchanged (it is scale-invariant up to ε) and scales an
//! SGD step by it.
//!
//! The snapshot is state: checkpoints taken inside a chunk carry it (`lwf.teacher.*`), so
//! a resumed chunk distils from the same teacher.

use super::{DistillSpec, Trainer};
use crate::checkpoint::NamedTensor;
use crate::error::{Error, Result};
use crate::nn::Model;
use serde::{Deserialize, Serialize};

/// Prefix of the checkpoint tensors holding the chunk-start snapshot.
pub(crate) const LWF_PREFIX: &str = "lwf.teacher.";

fn weight() -> f32 {
    crate::defaults::LWF_WEIGHT
}
fn temperature() -> f32 {
    crate::defaults::LWF_TEMPERATURE
}

/// `[incremental] lwf = { weight, temperature }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct LwfSpec {
    /// λ, the distillation term's weight beside the labels' cross-entropy (default 1).
    #[serde(default = "weight")]
    pub weight: f32,
    /// The softmax temperature T of the distillation (default 2).
    #[serde(default = "temperature")]
    pub temperature: f32,
}

impl Default for LwfSpec {
    fn default() -> Self {
        LwfSpec {
            weight: weight(),
            temperature: temperature(),
        }
    }
}

impl LwfSpec {
    /// Refuses a negative or non-finite weight and a temperature that is not positive.
    pub fn validate(&self, key: &str) -> Result<()> {
        if !self.weight.is_finite() || self.weight < 0.0 {
            return Err(Error::invalid(
                format!("{key}.weight"),
                format!(
                    "{} must be a finite number ≥ 0 (the distillation term's weight; 1 weighs it like the labels)",
                    self.weight
                ),
            ));
        }
        if !self.temperature.is_finite() || self.temperature <= 0.0 {
            return Err(Error::invalid(
                format!("{key}.temperature"),
                format!("{} must be a finite number > 0 (e.g. 2)", self.temperature),
            ));
        }
        Ok(())
    }

    /// The distillation loss that implements it.
    pub fn distill(&self) -> DistillSpec {
        DistillSpec {
            alpha: 1.0 / (1.0 + self.weight),
            temperature: self.temperature,
        }
    }
}

impl Trainer {
    /// Turns Learning without Forgetting on (or changes its settings): from the next
    /// chunk's start on, every chunk after the first distils from the model as it was when
    /// the chunk started. Classification only; not together with [`Trainer::distill_from`].
    pub fn enable_lwf(&mut self, spec: LwfSpec) -> Result<()> {
        spec.validate("incremental.lwf")?;
        if self.train.loss != super::LossKind::SoftmaxCrossEntropy {
            return Err(Error::invalid(
                "incremental.lwf",
                "Learning without Forgetting distils class probabilities: it needs train.loss = \"softmax_cross_entropy\"",
            ));
        }
        self.refuse_with_der("incremental.lwf")?;
        if self.teacher.is_some() && self.lwf.is_none() {
            return Err(Error::invalid(
                "incremental.lwf",
                "the trainer already distils from a teacher (distill_from); use one or the other",
            ));
        }
        if let Some((_, d)) = &mut self.teacher {
            *d = spec.distill();
            self.program = None;
        }
        self.lwf = Some(spec);
        Ok(())
    }

    /// At a chunk's start: with LwF, snapshot the model as the chunk's teacher (none for the
    /// first chunk). Reads the parameters back once per chunk; nothing per step.
    pub(crate) async fn lwf_chunk_start(&mut self) -> Result<()> {
        let Some(spec) = &self.lwf else {
            return Ok(());
        };
        let spec = spec.distill();
        self.teacher = None;
        self.program = None;
        if self.cursor.chunk == 0 {
            return Ok(());
        }
        let teacher = Model::new(self.gpu(), self.model.spec.clone(), self.seed)?;
        for p in &self.model.params {
            teacher.load(&p.name, p.value.shape(), &p.value.read_f32().await?)?;
        }
        self.teacher = Some((teacher, spec));
        Ok(())
    }

    /// At a chunk's end: the chunk's teacher is no longer needed.
    pub(crate) fn lwf_chunk_end(&mut self) {
        if self.lwf.is_some() && self.teacher.take().is_some() {
            self.program = None;
        }
    }

    /// The LwF teacher's parameters as checkpoint tensors (inside a chunk), read back.
    pub(crate) async fn lwf_tensors(&self, out: &mut Vec<NamedTensor>) -> Result<()> {
        if let (Some(_), Some((teacher, _))) = (&self.lwf, &self.teacher) {
            for p in &teacher.params {
                out.push(NamedTensor {
                    name: format!("{LWF_PREFIX}{}", p.name),
                    shape: p.value.shape().to_vec(),
                    data: p.value.read_f32().await?,
                });
            }
        }
        Ok(())
    }

    /// Restores LwF from a checkpoint: its settings and, inside a chunk, the teacher.
    pub(crate) fn restore_lwf(
        &mut self,
        spec: Option<&LwfSpec>,
        tensors: &[NamedTensor],
    ) -> Result<()> {
        let Some(spec) = spec else {
            return Ok(());
        };
        self.enable_lwf(spec.clone())?;
        let mine: Vec<&NamedTensor> = tensors
            .iter()
            .filter(|t| t.name.starts_with(LWF_PREFIX))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let teacher = Model::new(self.gpu(), self.model.spec.clone(), self.seed)?;
        for p in &teacher.params {
            let name = format!("{LWF_PREFIX}{}", p.name);
            let t = mine.iter().find(|t| t.name == name).ok_or_else(|| {
                Error::data(
                    "checkpoint",
                    format!("the LwF teacher's tensor {name} is missing"),
                )
            })?;
            teacher.load(&p.name, &t.shape, &t.data)?;
        }
        self.teacher = Some((teacher, spec.distill()));
        self.program = None;
        Ok(())
    }
}
