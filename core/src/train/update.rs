//! The optimizer part of a training step: global-norm clipping and the parameter update,
//! built either per tensor (one update dispatch per parameter, 2 per parameter + 1 for
//! clipping) or multi-tensor (one update dispatch per parameter arena — one for a normal
//! model — and 3 for clipping). Both give bit-identical weights; multi-tensor is the default.

use crate::error::Result;
use crate::gpu::{Dispatch, Tensor};
use crate::kernels::clip::GlobalNormClip;
use crate::kernels::elementwise::{axpy_into, scale_into};
use crate::kernels::loss_scale;
use crate::kernels::optim::{
    update_multi_scheduled_into, update_scheduled_into, MultiClip, Rule, Segment,
};
use crate::nn::graph::ConvAlgo;
use crate::nn::Model;
use crate::optim::OptimizerSpec;

/// Which kernels a training step is built from. The defaults are the fast paths; the others
/// stay available for comparison (tests, `accrete bench train --update/--conv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepKernels {
    /// One update dispatch for all parameters (true) or one per parameter tensor (false).
    pub multi_tensor_update: bool,
    /// How convolution layers are computed.
    pub conv: ConvAlgo,
}

impl Default for StepKernels {
    fn default() -> Self {
        StepKernels {
            multi_tensor_update: true,
            conv: ConvAlgo::default(),
        }
    }
}

/// The segment table of each arena: its trainable parameters with their lr multipliers
/// `layer_scales[layer]` (frozen layers are left out, so they are never updated).
fn arena_segments(model: &Model, layer_scales: &[f32]) -> Vec<Vec<Segment>> {
    let mut out = vec![Vec::new(); model.arenas.len()];
    for p in &model.params {
        if !model.spec.layers[p.layer].trainable() {
            continue;
        }
        out[p.arena].push(Segment {
            offset: p.offset,
            len: p.value.len(),
            lr_scale: layer_scales.get(p.layer).copied().unwrap_or(1.0),
        });
    }
    out
}

/// Mixed precision: the unscaling of every arena's trainable gradients (one dispatch per
/// arena), flagging the step when one overflowed (see kernels::loss_scale).
pub(crate) fn unscale_dispatches(
    model: &Model,
    scaler: &Tensor,
    counter: &Tensor,
) -> Result<Vec<Dispatch>> {
    let mut out = Vec::new();
    let ones = vec![1.0; model.spec.layers.len()];
    for (a, segs) in model.arenas.iter().zip(arena_segments(model, &ones)) {
        out.extend(loss_scale::unscale_into(&a.grads, &segs, scaler, counter)?);
    }
    Ok(out)
}

/// The clipping dispatches (none without `clip_norm`).
pub(crate) fn clip_dispatches(
    model: &Model,
    optimizer: &OptimizerSpec,
    kernels: &StepKernels,
) -> Result<Vec<Dispatch>> {
    let Some(max) = optimizer.clip_norm else {
        return Ok(Vec::new());
    };
    let gpu = model.gpu();
    if kernels.multi_tensor_update {
        let ones = vec![1.0; model.spec.layers.len()];
        let segs = arena_segments(model, &ones);
        let sets: Vec<(&Tensor, &[Segment])> = model
            .arenas
            .iter()
            .zip(&segs)
            .map(|(a, s)| (&a.grads, s.as_slice()))
            .collect();
        Ok(MultiClip::new(gpu, &sets, max)?.dispatches)
    } else {
        let grads: Vec<&Tensor> = model
            .params
            .iter()
            .filter(|p| model.spec.layers[p.layer].trainable())
            .map(|p| &p.grad)
            .collect();
        Ok(GlobalNormClip::new(gpu, &grads, max)?.dispatches)
    }
}

/// The update dispatches reading the learning rate from row `counter[0]` of `sched`, each
/// layer's scaled by `layer_scales[layer]` (the plan's `layer_lr` factors).
#[allow(clippy::too_many_arguments)]
pub(crate) fn update_dispatches(
    model: &Model,
    optimizer: &OptimizerSpec,
    rule: &Rule,
    kernels: &StepKernels,
    layer_scales: &[f32],
    sched: &Tensor,
    counter: &Tensor,
) -> Result<Vec<Dispatch>> {
    let mut out = Vec::new();
    if kernels.multi_tensor_update {
        for (a, segs) in model.arenas.iter().zip(arena_segments(model, layer_scales)) {
            if segs.is_empty() {
                continue;
            }
            let state: Vec<&Tensor> = a.state.iter().collect();
            out.push(update_multi_scheduled_into(
                rule,
                optimizer.penalty(),
                &a.values,
                &a.grads,
                &state,
                &segs,
                sched,
                counter,
            )?);
        }
        return Ok(out);
    }
    for p in &model.params {
        if !model.spec.layers[p.layer].trainable() {
            continue;
        }
        let state: Vec<&Tensor> = p.state.iter().collect();
        out.push(update_scheduled_into(
            rule,
            optimizer.penalty(),
            layer_scales.get(p.layer).copied().unwrap_or(1.0),
            &p.value,
            &p.grad,
            &state,
            sched,
            counter,
        )?);
    }
    Ok(out)
}

/// Gradient accumulation, micro-step `j` of `k` (k ≥ 2), one accumulator per arena in
/// `accum`: `a = g` at j = 0, `a += g` in between, and at j = k − 1 `a += g; g = a · (1/k)`,
/// so the update sees the mean of the k micro-batch gradients, summed in micro-batch order.
pub(crate) fn accumulate_dispatches(
    model: &Model,
    accum: &[Tensor],
    j: usize,
    k: usize,
) -> Result<Vec<Dispatch>> {
    let mut out = Vec::new();
    for (a, acc) in model.arenas.iter().zip(accum) {
        if j == 0 {
            out.push(scale_into(1.0, &a.grads, acc)?);
        } else {
            out.push(axpy_into(1.0, &a.grads, acc)?);
            if j + 1 == k {
                out.push(scale_into(1.0 / k as f32, acc, &a.grads)?);
            }
        }
    }
    Ok(out)
}
