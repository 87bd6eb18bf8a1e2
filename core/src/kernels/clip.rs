//! Global-norm gradient clipping over many tensors, entirely on the GPU:
//! `norm = √(Σ_t Σ_i g_ti²)`, then every g_t is scaled by `min(1, max_norm / (norm + 1e-6))`.
//! The norm stays in a GPU buffer ([`GlobalNormClip::result`]: [norm, scale]) so a training
//! step needs no read-back.

use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};

pub const SHADER: Shader = shader!("clip", "common");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) base: u32,
    pub(crate) max_norm: f32,
    pub(crate) _pad: u32,
}

/// The dispatches of one clipping, in order, and the [norm, scale] result tensor.
pub struct GlobalNormClip {
    pub dispatches: Vec<Dispatch>,
    /// [2]: the pre-clip global norm and the applied scale.
    pub result: Tensor,
    _partials: Tensor,
}

impl GlobalNormClip {
    /// Plans clipping of `grads` (modified in place when run) to `max_norm`.
    pub fn new(gpu: &Gpu, grads: &[&Tensor], max_norm: f32) -> Result<Self> {
        if !(max_norm > 0.0 && max_norm.is_finite()) {
            return Err(Error::invalid(
                "clip max_norm",
                format!("{max_norm} must be positive"),
            ));
        }
        let total: u64 = grads.iter().map(|g| groups_1d(g.len())).sum();
        let partials = Tensor::uninit(gpu, &[total.max(1) as usize], DType::F32)?;
        let result = Tensor::uninit(gpu, &[2], DType::F32)?;
        let mut dispatches = Vec::with_capacity(2 * grads.len() + 1);
        let mut base = 0u64;
        for g in grads {
            let p = Params {
                n: g.len() as u32,
                base: base as u32,
                max_norm,
                _pad: 0,
            };
            let groups = groups_1d(g.len());
            dispatches.push(gpu.dispatch(
                &SHADER,
                "",
                "sumsq",
                &p,
                &[Bind::T(g), Bind::T(&partials)],
                gpu.grid(groups)?,
            )?);
            base += groups;
        }
        let p = Params {
            n: total as u32,
            base: 0,
            max_norm,
            _pad: 0,
        };
        dispatches.push(gpu.dispatch(
            &SHADER,
            "",
            "finalize",
            &p,
            &[Bind::Skip, Bind::T(&partials), Bind::T(&result)],
            [1, 1, 1],
        )?);
        for g in grads {
            let p = Params {
                n: g.len() as u32,
                base: 0,
                max_norm,
                _pad: 0,
            };
            dispatches.push(gpu.dispatch(
                &SHADER,
                "",
                "apply",
                &p,
                &[Bind::T(g), Bind::Skip, Bind::T(&result)],
                gpu.grid(groups_1d(g.len()))?,
            )?);
        }
        Ok(GlobalNormClip {
            dispatches,
            result,
            _partials: partials,
        })
    }

    /// All dispatches, for recording into a step.
    pub fn all(&self) -> Vec<&Dispatch> {
        self.dispatches.iter().collect()
    }
}

/// f64 references.
pub mod reference {
    /// Clips `grads` in place; returns (norm, scale).
    pub fn clip(grads: &mut [Vec<f64>], max_norm: f64) -> (f64, f64) {
        let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        let scale = (max_norm / (norm + 1e-6)).min(1.0);
        grads.iter_mut().flatten().for_each(|g| *g *= scale);
        (norm, scale)
    }
}
