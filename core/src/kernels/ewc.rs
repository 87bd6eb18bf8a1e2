//! Elastic Weight Consolidation's kernels: the diagonal empirical Fisher accumulated from
//! per-sample gradients and folded into the running estimate (shaders/ewc_fisher.wgsl),
//! and the quadratic penalty's gradient (shaders/ewc_penalty.wgsl).

use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Shader, Tensor};

pub const FISHER: Shader = shader!("ewc_fisher", "common");
pub const PENALTY: Shader = shader!("ewc_penalty", "common");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) a: f32,
    pub(crate) b: f32,
    pub(crate) _pad: u32,
}

fn same(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::shape(
            op,
            format!("{} elements against {}", a.len(), b.len()),
        ));
    }
    Ok(())
}

/// `acc += g²`, elementwise (one sample's gradient).
pub fn fisher_accumulate_into(g: &Tensor, acc: &Tensor) -> Result<Dispatch> {
    same("EWC Fisher accumulation", g, acc)?;
    let gpu = g.gpu();
    let p = Params {
        n: g.len() as u32,
        a: 0.0,
        b: 0.0,
        _pad: 0,
    };
    gpu.dispatch(
        &FISHER,
        "",
        "accumulate",
        &p,
        &[Bind::T(g), Bind::T(acc)],
        gpu.grid(groups_1d(g.len()))?,
    )
}

/// `fisher = decay·fisher + scale·acc`, `anchor = values`, `acc = 0`.
pub fn fisher_finish_into(
    values: &Tensor,
    acc: &Tensor,
    fisher: &Tensor,
    anchor: &Tensor,
    decay: f32,
    scale: f32,
) -> Result<Dispatch> {
    for t in [acc, fisher, anchor] {
        same("EWC Fisher", values, t)?;
    }
    let gpu = values.gpu();
    let p = Params {
        n: values.len() as u32,
        a: decay,
        b: scale,
        _pad: 0,
    };
    gpu.dispatch(
        &FISHER,
        "",
        "finish",
        &p,
        &[
            Bind::T(values),
            Bind::T(acc),
            Bind::T(fisher),
            Bind::T(anchor),
        ],
        gpu.grid(groups_1d(values.len()))?,
    )
}

/// `grads += weight·fisher·(values − anchor)`: the gradient of
/// `(weight/2)·Σ fisher·(values − anchor)²`.
pub fn penalty_into(
    values: &Tensor,
    fisher: &Tensor,
    anchor: &Tensor,
    grads: &Tensor,
    weight: f32,
) -> Result<Dispatch> {
    for t in [fisher, anchor, grads] {
        same("EWC penalty", values, t)?;
    }
    let gpu = values.gpu();
    let p = Params {
        n: values.len() as u32,
        a: weight,
        b: 0.0,
        _pad: 0,
    };
    gpu.dispatch(
        &PENALTY,
        "",
        "main",
        &p,
        &[
            Bind::T(values),
            Bind::T(fisher),
            Bind::T(anchor),
            Bind::T(grads),
        ],
        gpu.grid(groups_1d(values.len()))?,
    )
}

/// f64 references.
pub mod reference {
    /// The diagonal empirical Fisher folded into `old`: `decay·old + mean_s g_s²` over the
    /// per-sample gradients `per_sample` (each as long as `old`).
    pub fn fisher(old: &[f32], per_sample: &[Vec<f32>], decay: f64) -> Vec<f64> {
        let n = per_sample.len().max(1) as f64;
        (0..old.len())
            .map(|i| {
                decay * old[i] as f64
                    + per_sample
                        .iter()
                        .map(|g| (g[i] as f64).powi(2))
                        .sum::<f64>()
                        / n
            })
            .collect()
    }

    /// The penalty `(weight/2)·Σ F (θ − θ*)²`.
    pub fn penalty(values: &[f64], fisher: &[f32], anchor: &[f32], weight: f64) -> f64 {
        values
            .iter()
            .zip(fisher.iter().zip(anchor))
            .map(|(&v, (&f, &a))| f as f64 * (v - a as f64).powi(2))
            .sum::<f64>()
            * weight
            / 2.0
    }

    /// `grads + weight·F·(θ − θ*)`.
    pub fn penalised(
        grads: &[f32],
        values: &[f32],
        fisher: &[f32],
        anchor: &[f32],
        weight: f64,
    ) -> Vec<f64> {
        (0..grads.len())
            .map(|i| {
                grads[i] as f64 + weight * fisher[i] as f64 * (values[i] as f64 - anchor[i] as f64)
            })
            .collect()
    }
}
