//! A dense layer's forward and backward dispatches, with its own weight or another layer's
//! ([`crate::nn::spec::Share`]).
//!
//! W is the weight tensor as stored ([out, in], PyTorch's layout, for the owner). The layer
//! computes `z = x·Wᵀ + b` with its own or an untransposed shared weight, `z = x·W + b` with a
//! transposed one; `y = act(z)`. Backward, with dZ = dY ⊙ act'(z):
//! - own weight: ∂W = dZᵀ·X and ∂b = Σ_rows dZ in one GEMM (its virtual column of ones);
//! - shared weight, untransposed: the same GEMM into a scratch tensor of W's shape;
//!   transposed: ∂W += (dZᵀ·X)ᵀ = Xᵀ·dZ into the scratch, ∂b a column sum of dZ;
//! - dX = dZ·W (untransposed) or dZ·Wᵀ (transposed).
//!
//! The scratch is added into the owner's gradient by an in-place axpy that the graph runs
//! right after the owner's own weight-gradient GEMM (which overwrites the gradient), so the
//! gradient the update reads is the sum of both uses, recorded in the step like any other
//! dispatch.

use super::{activation_backward, derivative_from_output, new, weight_and_bias_grad};
use crate::error::Result;
use crate::gpu::{Dispatch, Tensor};
use crate::kernels::matmul::{matmul_into, MatmulSpec, Precision, Variant};
use crate::kernels::reduce::{cols_into, Reduce};
use crate::kernels::{activation, elementwise, Activation};
use crate::nn::model::{Model, ParamKind};
use crate::nn::spec::LayerSpec;

/// Where a dense layer's dispatches go.
pub(super) struct DenseOut<'a> {
    pub forward: &'a mut Vec<Dispatch>,
    /// This layer's backward dispatches.
    pub backward: &'a mut Vec<Dispatch>,
    /// (owner layer, dispatch): gradient accumulations to run after the owner's backward.
    pub tied: &'a mut Vec<(usize, Dispatch)>,
}

/// Builds dense layer `i` over the input `x` ([B, in] or any shape of B·in elements) with
/// output gradient `dy` and input gradient `dx` (when the backward computes them); returns
/// the output [B, units].
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_layer(
    model: &Model,
    i: usize,
    batch: usize,
    precision: Precision,
    x: &Tensor,
    dy: Option<&Tensor>,
    dx: Option<&Tensor>,
    out: DenseOut<'_>,
) -> Result<Tensor> {
    let gpu = model.gpu();
    let LayerSpec::Dense {
        units,
        activation: act,
        trainable,
        ..
    } = &model.spec.layers[i]
    else {
        unreachable!("dense_layer on a {} layer", model.spec.layers[i].kind())
    };
    let variant = |m: usize, k: usize, n: usize| match precision {
        Precision::F32 => None,
        Precision::F16 => Some(Variant::heuristic_f16(m, k, n)),
    };
    let sh = &model.shapes[i];
    let (wp, transpose) = model.weight_of(i).expect("dense weight");
    let owner = wp.layer;
    let w = &wp.value;
    let bias = model.param(i, ParamKind::Bias).expect("dense bias");
    let (fan_in, fan_out) = (sh.input[0], *units);
    let out_shape = [batch, fan_out];
    let x2 = x.reshape(&[batch, fan_in])?;
    let y = new(gpu, &out_shape)?;
    // The activation is fused into the matmul's epilogue unless the backward needs the
    // pre-activation z (see `derivative_from_output`).
    let keep_z = dy.is_some() && *act != Activation::Identity && !derivative_from_output(*act);
    let z = if keep_z {
        new(gpu, &out_shape)?
    } else {
        y.clone()
    };
    let mm = MatmulSpec {
        trans_b: !transpose,
        activation: if keep_z { Activation::Identity } else { *act },
        variant: variant(batch, fan_in, fan_out),
        ..Default::default()
    };
    out.forward
        .push(matmul_into(&x2, w, Some(&bias.value), &z, &mm)?);
    if keep_z {
        out.forward.push(activation::forward_into(*act, &z, &y)?);
    }
    let Some(dy) = dy else {
        return Ok(y);
    };
    let bwd = out.backward;
    // z, or y where the derivative is the same function of y.
    let dz = activation_backward(gpu, *act, &z, dy, bwd)?;
    let dz_t_x = MatmulSpec {
        trans_a: true,
        variant: variant(fan_out, batch, fan_in),
        ..Default::default()
    };
    let weight_trained = model.spec.layers[owner].trainable();
    if owner == i {
        if *trainable {
            bwd.extend(weight_and_bias_grad(
                &dz, &x2, &wp.grad, &bias.grad, &dz_t_x,
            )?);
        }
    } else if weight_trained {
        let scratch = new(gpu, w.shape())?;
        match (transpose, *trainable) {
            (false, true) => bwd.extend(weight_and_bias_grad(
                &dz, &x2, &scratch, &bias.grad, &dz_t_x,
            )?),
            (false, false) => bwd.push(matmul_into(&dz, &x2, None, &scratch, &dz_t_x)?),
            (true, _) => {
                let x_t_dz = MatmulSpec {
                    trans_a: true,
                    variant: variant(fan_in, batch, fan_out),
                    ..Default::default()
                };
                bwd.push(matmul_into(&x2, &dz, None, &scratch, &x_t_dz)?);
                if *trainable {
                    bwd.push(cols_into(Reduce::Sum, &dz, &bias.grad)?);
                }
            }
        }
        out.tied
            .push((owner, elementwise::axpy_into(1.0, &scratch, &wp.grad)?));
    } else if *trainable {
        bwd.push(cols_into(Reduce::Sum, &dz, &bias.grad)?);
    }
    if let Some(dx) = dx {
        bwd.push(matmul_into(
            &dz,
            w,
            None,
            &dx.reshape(&[batch, fan_in])?,
            &MatmulSpec {
                trans_b: transpose,
                variant: variant(batch, fan_out, fan_in),
                ..Default::default()
            },
        )?);
    }
    Ok(y)
}
