//! A `Sequential` model on the GPU: its spec, and each parameter's value, gradient and
//! optimizer state tensors. Parameter names follow PyTorch's `nn.Sequential`:
//! `layers.{i}.weight` and `layers.{i}.bias`, i = the layer's index in the spec. A dense
//! layer that shares another's weight (`share`) has only its bias here: the weight is one
//! [`Param`], the owner's ([`Model::weight_of`]).
//!
//! Storage: the parameters are packed into flat *arenas* — one buffer of values, one of
//! gradients and one per optimizer state — and each [`Param`]'s tensors are views into them
//! at the same offset (aligned to [`Tensor::VIEW_ALIGN`], zero gaps between). Layers, the
//! checkpoint code and tests see ordinary per-parameter tensors; the optimizer updates a
//! whole arena in one dispatch (`kernels::optim::MultiUpdate`). A model normally has one
//! arena; a new one starts only where the next parameter would push the buffer past the
//! device's largest bindable size.

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
    /// The arena holding this parameter's tensors (index into [`Model::arenas`]).
    pub arena: usize,
    /// Offset of its tensors within the arena's buffers, in elements.
    pub offset: usize,
}

/// Flat buffers holding the values, gradients and optimizer states of a run of parameters.
pub struct Arena {
    /// [len] parameter values.
    pub values: Tensor,
    /// [len] gradients.
    pub grads: Tensor,
    /// [len] per optimizer state (empty until an optimizer is attached).
    pub state: Vec<Tensor>,
    /// Elements (parameters plus alignment gaps, which stay 0).
    pub len: usize,
}

/// A sequential model whose parameters live on the GPU.
pub struct Model {
    pub spec: ModelSpec,
    pub shapes: Vec<LayerShapes>,
    pub params: Vec<Param>,
    /// The flat buffers the parameters' tensors are views of.
    pub arenas: Vec<Arena>,
    gpu: Gpu,
}

/// Assigns each of `lens` an (arena, offset) with offsets aligned to [`Tensor::VIEW_ALIGN`],
/// starting a new arena when the current one would exceed `cap` elements; returns the
/// placements and each arena's length.
pub(crate) fn pack(lens: &[usize], cap: usize) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut places = Vec::with_capacity(lens.len());
    let mut arenas = vec![0usize];
    for &n in lens {
        let cur = arenas.len() - 1;
        let at = arenas[cur].next_multiple_of(Tensor::VIEW_ALIGN);
        if at + n > cap && arenas[cur] > 0 {
            arenas.push(n);
            places.push((cur + 1, 0));
        } else {
            arenas[cur] = at + n;
            places.push((cur, at));
        }
    }
    (places, arenas)
}

impl Model {
    /// Builds the model with seeded initial weights and biases ([`init`]: PyTorch's scheme unless the spec says otherwise).
    pub fn new(gpu: &Gpu, spec: ModelSpec, seed: u64) -> Result<Model> {
        let shapes = spec.shapes()?;
        // (name, layer, kind, shape, initial values) in parameter order.
        let mut init = Vec::new();
        for (i, sh) in shapes.iter().enumerate() {
            let (Some(ws), Some(bs)) = (&sh.weight, &sh.bias) else {
                continue;
            };
            let b = init::biases(&spec, i, ws, bs.iter().product(), seed);
            // A layer that shares another's weight has only its bias (nn::spec::Share).
            let w = match spec.layers[i].share() {
                None => Some((ParamKind::Weight, ws, init::weights(&spec, i, ws, seed))),
                Some(_) => None,
            };
            for (kind, shape, data) in w.into_iter().chain([(ParamKind::Bias, bs, b)]) {
                let name = format!(
                    "layers.{i}.{}",
                    if kind == ParamKind::Weight {
                        "weight"
                    } else {
                        "bias"
                    }
                );
                init.push((name, i, kind, shape.clone(), data));
            }
        }
        let lens: Vec<usize> = init.iter().map(|p| p.4.len()).collect();
        let cap = (gpu.max_binding_bytes() / 4) as usize;
        let (places, arena_lens) = pack(&lens, cap);
        let mut host = arena_lens
            .iter()
            .map(|&n| vec![0.0f32; n])
            .collect::<Vec<_>>();
        for (p, &(a, at)) in init.iter().zip(&places) {
            host[a][at..at + p.4.len()].copy_from_slice(&p.4);
        }
        let arenas = host
            .iter()
            .map(|h| {
                Ok(Arena {
                    values: Tensor::from_f32(gpu, &[h.len()], h)?,
                    grads: Tensor::zeros(gpu, &[h.len()])?,
                    state: Vec::new(),
                    len: h.len(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut params = Vec::with_capacity(init.len());
        for ((name, layer, kind, shape, _), &(arena, offset)) in init.into_iter().zip(&places) {
            let a = &arenas[arena];
            params.push(Param {
                name,
                layer,
                kind,
                value: a.values.view(offset, &shape)?,
                grad: a.grads.view(offset, &shape)?,
                state: Vec::new(),
                arena,
                offset,
            });
        }
        Ok(Model {
            spec,
            shapes,
            params,
            arenas,
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

    /// The weight layer `layer` computes with: its own, or the owner's when it shares one
    /// ([`crate::nn::spec::Share`]), with whether it is used transposed.
    pub fn weight_of(&self, layer: usize) -> Option<(&Param, bool)> {
        match self.spec.layers.get(layer)?.share() {
            Some(s) => Some((self.param(s.layer, ParamKind::Weight)?, s.transpose)),
            None => Some((self.param(layer, ParamKind::Weight)?, false)),
        }
    }

    /// Allocates (zeroed) optimizer state: `count` tensors per parameter, views of `count`
    /// flat buffers per arena.
    pub fn reset_state(&mut self, count: usize) -> Result<()> {
        for a in &mut self.arenas {
            a.state = (0..count)
                .map(|_| Tensor::zeros(&self.gpu, &[a.len]))
                .collect::<Result<_>>()?;
        }
        for p in &mut self.params {
            let a = &self.arenas[p.arena];
            p.state = a
                .state
                .iter()
                .map(|s| s.view(p.offset, p.value.shape()))
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
