//! Transfer learning: start a model from another model's weights (an accrete checkpoint, or
//! a safetensors file exported from PyTorch with `nn.Sequential` names). Layers whose
//! tensors match by name and shape are loaded; the rest keep their fresh initialisation
//! (e.g. a new head with another number of classes). Frozen layers are set in the spec
//! ([`crate::nn::ModelSpec::freeze`]) before the trainer is built.

use super::Trainer;
use crate::checkpoint::NamedTensor;
use crate::error::Result;
use serde::Serialize;

/// What [`Trainer::load_weights`] did, for the user to read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TransferReport {
    /// Parameters copied from the source.
    pub loaded: Vec<String>,
    /// Parameters left at their fresh initialisation, with the reason.
    pub reinitialized: Vec<(String, String)>,
    /// Layers whose parameters are frozen.
    pub frozen: Vec<usize>,
    /// Source tensors that matched no parameter (optimizer state, other layers).
    pub unused: Vec<String>,
}

impl Trainer {
    /// Loads every parameter whose name and shape match a tensor of `source` — by accrete's
    /// name (`layers.{i}.weight`) or, failing that, by PyTorch's `nn.Sequential` name
    /// ([`crate::nn::torch`]); optimizer state starts from zero (a fresh fine-tune).
    pub fn load_weights(&mut self, source: &[NamedTensor]) -> Result<TransferReport> {
        let mut report = TransferReport::default();
        let mut used = vec![false; source.len()];
        for p in &self.model.params {
            let torch = crate::nn::torch::torch_name(&self.model.spec, &p.name);
            let found = source.iter().position(|t| t.name == p.name).or_else(|| {
                let torch = torch.as_deref()?;
                source.iter().position(|t| t.name == torch)
            });
            match found {
                Some(i) if source[i].shape == p.value.shape() => {
                    p.value.write_f32(&source[i].data)?;
                    used[i] = true;
                    report.loaded.push(p.name.clone());
                }
                Some(i) => {
                    used[i] = true;
                    report.reinitialized.push((
                        p.name.clone(),
                        format!(
                            "shape {:?} in the source, {:?} here",
                            source[i].shape,
                            p.value.shape()
                        ),
                    ));
                }
                None => report
                    .reinitialized
                    .push((p.name.clone(), "not in the source".into())),
            }
            for s in &p.state {
                s.write_f32(&vec![0.0; s.len()])?;
            }
        }
        report.unused = source
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(t, _)| t.name.clone())
            .collect();
        report.frozen = self
            .model
            .spec
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.has_params() && !l.trainable())
            .map(|(i, _)| i)
            .collect();
        Ok(report)
    }
}
