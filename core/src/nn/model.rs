//! A `Sequential` model on the GPU: its spec, and each parameter's value, gradient and
//! optimizer state tensors. Parameter names follow PyTorch's `nn.Sequential`:
//! `layers.{i}.weight` and `layers.{i}.bias`, i = the layer's index in the spec.

use super::init;
use super::spec::{LayerShapes, ModelSpec};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// Which tensor of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
}

/// One parameter tensor with its gradient and optimizer state.
pub struct Param {
    /// `layers.{i}.weight` / `layers.{i}.bias`.
    pub name: String,
    pub layer: usize,
    pub kind: ParamKind,
    pub value: Tensor,
    pub grad: Tensor,
    /// Optimizer state tensors (empty until an optimizer is attached).
    pub state: Vec<Tensor>,
}

/// A sequential model whose parameters live on the GPU.
pub struct Model {
    pub spec: ModelSpec,
    pub shapes: Vec<LayerShapes>,
    pub params: Vec<Param>,
    gpu: Gpu,
}

impl Model {
    /// Builds the model with seeded initial weights (He/Xavier uniform, zero biases).
    pub fn new(gpu: &Gpu, spec: ModelSpec, seed: u64) -> Result<Model> {
        let shapes = spec.shapes()?;
        let mut params = Vec::new();
        for (i, (layer, sh)) in spec.layers.iter().zip(&shapes).enumerate() {
            let (Some(ws), Some(bs)) = (&sh.weight, &sh.bias) else {
                continue;
            };
            let w = init::weights(layer, i, ws, seed);
            for (kind, shape, data) in [
                (ParamKind::Weight, ws, w),
                (ParamKind::Bias, bs, vec![0.0; bs.iter().product()]),
            ] {
                let name = format!(
                    "layers.{i}.{}",
                    if kind == ParamKind::Weight {
                        "weight"
                    } else {
                        "bias"
                    }
                );
                params.push(Param {
                    name,
                    layer: i,
                    kind,
                    value: Tensor::from_f32(gpu, shape, &data)?,
                    grad: Tensor::zeros(gpu, shape)?,
                    state: Vec::new(),
                });
            }
        }
        Ok(Model {
            spec,
            shapes,
            params,
            gpu: gpu.clone(),
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The weight or bias of layer `layer`.
    pub fn param(&self, layer: usize, kind: ParamKind) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.layer == layer && p.kind == kind)
    }

    /// Allocates (zeroed) optimizer state: `count` tensors per trainable parameter.
    pub fn reset_state(&mut self, count: usize) -> Result<()> {
        for p in &mut self.params {
            p.state = (0..count)
                .map(|_| Tensor::zeros(&self.gpu, p.value.shape()))
                .collect::<Result<_>>()?;
        }
        Ok(())
    }

    /// Reads every parameter back: (name, shape, values).
    pub async fn export(&self) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let mut out = Vec::with_capacity(self.params.len());
        for p in &self.params {
            out.push((
                p.name.clone(),
                p.value.shape().to_vec(),
                p.value.read_f32().await?,
            ));
        }
        Ok(out)
    }

    /// Overwrites the parameter `name` (PyTorch layout) with `data`.
    pub fn load(&self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        let p = self.params.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::invalid(
                format!("parameter {name}"),
                "the model has no such parameter",
            )
        })?;
        if p.value.shape() != shape {
            return Err(Error::shape(
                "load parameter",
                format!(
                    "{name} is {:?} in the model but {shape:?} in the source",
                    p.value.shape()
                ),
            ));
        }
        p.value.write_f32(data)
    }
}
