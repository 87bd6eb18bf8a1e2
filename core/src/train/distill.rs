//! Knowledge distillation: a student learns from labels and from a teacher's softened
//! outputs, loss = α·CE(labels) + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T))
//! (shaders/loss_distill.wgsl). The teacher's forward pass runs on the same gathered batch
//! inside the recorded step. Samples labelled `loss::UNLABELLED` learn from the teacher only.

use super::Trainer;
use crate::error::{Error, Result};
use crate::nn::Model;
use serde::{Deserialize, Serialize};

fn half() -> f32 {
    crate::defaults::DISTILL_ALPHA
}
fn four() -> f32 {
    crate::defaults::DISTILL_TEMPERATURE
}

/// Distillation weights: `alpha` on the hard labels, temperature `temperature`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    #[serde(default = "half")]
    pub alpha: f32,
    #[serde(default = "four")]
    pub temperature: f32,
}

impl Default for DistillSpec {
    fn default() -> Self {
        DistillSpec {
            alpha: half(),
            temperature: four(),
        }
    }
}

impl Trainer {
    /// Trains from now on against `teacher` (same input shape and number of outputs).
    pub fn distill_from(&mut self, teacher: Model, spec: DistillSpec) -> Result<()> {
        if teacher.spec.input != self.model.spec.input
            || teacher.spec.outputs()? != self.model.spec.outputs()?
        {
            return Err(Error::invalid(
                "distillation teacher",
                format!(
                    "the teacher maps {:?} to {} outputs but the student maps {:?} to {}",
                    teacher.spec.input,
                    teacher.spec.outputs()?,
                    self.model.spec.input,
                    self.model.spec.outputs()?
                ),
            ));
        }
        if !(0.0..=1.0).contains(&spec.alpha)
            || spec.temperature.is_nan()
            || spec.temperature <= 0.0
        {
            return Err(Error::invalid(
                "distillation",
                format!(
                    "alpha {} must be in [0, 1] and temperature {} positive",
                    spec.alpha, spec.temperature
                ),
            ));
        }
        self.refuse_with_der("distillation teacher")?;
        self.teacher = Some((teacher, spec));
        self.program = None;
        Ok(())
    }

    /// Stops distilling (plain cross-entropy from now on).
    pub fn stop_distilling(&mut self) {
        self.teacher = None;
        self.program = None;
    }
}
