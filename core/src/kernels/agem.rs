//! A-GEM's gradient projection (Chaudhry et al. 2019, shaders/agem_project.wgsl), entirely
//! on the GPU: over gradient arenas g_1..g_T with reference gradients r_1..r_T,
//! `dot = Σ_t g_t·r_t`, `rr = Σ_t r_t·r_t`, and when `dot < 0` every g_t becomes
//! `g_t − (dot / rr)·r_t`. The dot products stay in a GPU buffer ([`Projection::result`]:
//! [dot, rr, coef, 0]) so a training step needs no read-back; their summation order is
//! fixed, so the projection is bit-reproducible.

use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};

pub const SHADER: Shader = shader!("agem_project", "common");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) base: u32,
    pub(crate) _pad: [u32; 2],
}

/// The dispatches of one projection, in order, and the [dot, rr, coef, 0] result tensor.
pub struct Projection {
    pub dispatches: Vec<Dispatch>,
    /// [4]: g·g_ref, g_ref·g_ref (before the projection) and the applied coefficient
    /// (dot / rr when dot < 0, else 0).
    pub result: Tensor,
    _partials: Tensor,
}

impl Projection {
    /// Plans the projection of each `grads[t]` (modified in place when run) against
    /// `refs[t]` (same lengths).
    pub fn new(gpu: &Gpu, grads: &[&Tensor], refs: &[&Tensor]) -> Result<Self> {
        if grads.len() != refs.len() || grads.is_empty() {
            return Err(Error::shape(
                "A-GEM projection",
                format!(
                    "{} gradients against {} reference gradients (need the same number, at least 1)",
                    grads.len(),
                    refs.len()
                ),
            ));
        }
        for (g, r) in grads.iter().zip(refs) {
            if g.len() != r.len() {
                return Err(Error::shape(
                    "A-GEM projection",
                    format!("{} elements against {}", g.len(), r.len()),
                ));
            }
        }
        let total: u64 = grads.iter().map(|g| groups_1d(g.len())).sum();
        let partials = Tensor::uninit(gpu, &[2 * total.max(1) as usize], DType::F32)?;
        let result = Tensor::uninit(gpu, &[4], DType::F32)?;
        let mut dispatches = Vec::with_capacity(2 * grads.len() + 1);
        let mut base = 0u64;
        for (g, r) in grads.iter().zip(refs) {
            let p = Params {
                n: g.len() as u32,
                base: base as u32,
                _pad: [0; 2],
            };
            let groups = groups_1d(g.len());
            dispatches.push(gpu.dispatch(
                &SHADER,
                "",
                "dots",
                &p,
                &[Bind::T(g), Bind::T(r), Bind::T(&partials)],
                gpu.grid(groups)?,
            )?);
            base += groups;
        }
        let p = Params {
            n: total as u32,
            base: 0,
            _pad: [0; 2],
        };
        dispatches.push(gpu.dispatch(
            &SHADER,
            "",
            "finalize",
            &p,
            &[Bind::Skip, Bind::Skip, Bind::T(&partials), Bind::T(&result)],
            [1, 1, 1],
        )?);
        for (g, r) in grads.iter().zip(refs) {
            let p = Params {
                n: g.len() as u32,
                base: 0,
                _pad: [0; 2],
            };
            dispatches.push(gpu.dispatch(
                &SHADER,
                "",
                "project",
                &p,
                &[Bind::T(g), Bind::T(r), Bind::Skip, Bind::T(&result)],
                gpu.grid(groups_1d(g.len()))?,
            )?);
        }
        Ok(Projection {
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
    /// `(g·r, r·r)` over all arenas.
    pub fn dots(grads: &[Vec<f32>], refs: &[Vec<f32>]) -> (f64, f64) {
        let mut dot = 0.0;
        let mut rr = 0.0;
        for (g, r) in grads.iter().zip(refs) {
            for (&gi, &ri) in g.iter().zip(r) {
                dot += gi as f64 * ri as f64;
                rr += ri as f64 * ri as f64;
            }
        }
        (dot, rr)
    }

    /// The projected gradients: `g − (dot / rr)·r` when `dot < 0` and `rr > 0`, else `g`.
    pub fn project(grads: &[Vec<f32>], refs: &[Vec<f32>]) -> Vec<Vec<f64>> {
        let (dot, rr) = dots(grads, refs);
        let coef = if dot < 0.0 && rr > 0.0 { dot / rr } else { 0.0 };
        grads
            .iter()
            .zip(refs)
            .map(|(g, r)| {
                g.iter()
                    .zip(r)
                    .map(|(&gi, &ri)| gi as f64 - coef * ri as f64)
                    .collect()
            })
            .collect()
    }
}
