//! Dynamic loss scaling (shaders/loss_scale.wgsl): scale ∂L/∂logits by S before the
//! backward, unscale the gradients after it and flag a step whose gradients overflowed, then
//! adjust S — all on the GPU, from a 4-word scaler buffer and the step counter's word 2 (the
//! optimizer rules skip a flagged step).

use super::optim::{segment_table, Segment};
use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};

pub const SHADER: Shader = shader!("loss_scale", "common", "optim_segments");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) segments: u32,
    pub(crate) interval: u32,
    pub(crate) _pad: u32,
    pub(crate) growth: f32,
    pub(crate) backoff: f32,
    pub(crate) _pad1: u32,
    pub(crate) _pad2: u32,
}

fn params(n: u32) -> Params {
    Params {
        n,
        segments: 0,
        interval: 0,
        _pad: 0,
        growth: 1.0,
        backoff: 1.0,
        _pad1: 0,
        _pad2: 0,
    }
}

/// A scaler buffer holding `scale` (a power of two), `good_steps` clean steps since the last
/// change and `skipped` steps so far.
pub fn scaler(gpu: &Gpu, scale: f32, good_steps: u32, skipped: u32) -> Result<Tensor> {
    Tensor::from_u32(gpu, &[4], &[scale.to_bits(), good_steps, skipped, 0])
}

fn check_scaler(scaler: &Tensor) -> Result<()> {
    scaler.expect_dtype("loss scaler", DType::U32)?;
    if scaler.len() != 4 {
        return Err(Error::shape(
            "loss scaler",
            format!("has {} elements, expected 4", scaler.len()),
        ));
    }
    Ok(())
}

/// `x ×= S` (in place), S read from `scaler`.
pub fn scale_into(x: &Tensor, scaler: &Tensor) -> Result<Dispatch> {
    check_scaler(scaler)?;
    x.expect_dtype("scaled gradient", DType::F32)?;
    let gpu = x.gpu();
    let n = u32::try_from(x.len())
        .map_err(|_| Error::invalid("loss scaling", "too many elements for 32-bit indexing"))?;
    gpu.dispatch(
        &SHADER,
        "",
        "scale",
        &params(n),
        &[Bind::T(x), Bind::T(scaler), Bind::Skip, Bind::Skip],
        gpu.grid(groups_1d(x.len()))?,
    )
}

/// `g ×= 1/S` over the listed segments of the flat gradient buffer `grads`; a non-finite
/// result sets `counter[2]`. `None` when no segment is listed.
pub fn unscale_into(
    grads: &Tensor,
    segments: &[Segment],
    scaler: &Tensor,
    counter: &Tensor,
) -> Result<Option<Dispatch>> {
    check_scaler(scaler)?;
    grads.expect_dtype("gradients", DType::F32)?;
    counter.expect_dtype("step counter", DType::U32)?;
    if counter.len() < 4 {
        return Err(Error::shape(
            "step counter",
            "needs 4 elements (step::counter)",
        ));
    }
    let gpu = grads.gpu();
    let table = segment_table(gpu, segments, grads.len())?;
    if table.count == 0 {
        return Ok(None);
    }
    let mut p = params(
        u32::try_from(table.groups)
            .map_err(|_| Error::invalid("loss scaling", "too many workgroups"))?,
    );
    p.segments = table.count;
    gpu.dispatch(
        &SHADER,
        "",
        "unscale",
        &p,
        &[
            Bind::T(grads),
            Bind::T(scaler),
            Bind::T(counter),
            Bind::T(&table.rows),
        ],
        gpu.grid(table.groups)?,
    )
    .map(Some)
}

/// After the optimizer: an overflowed step (counter[2] set) multiplies S by `backoff` and
/// counts a skip; otherwise every `interval` clean steps S is multiplied by `growth`. Clears
/// the flag.
pub fn update_into(
    scaler: &Tensor,
    counter: &Tensor,
    growth: f32,
    backoff: f32,
    interval: u32,
) -> Result<Dispatch> {
    check_scaler(scaler)?;
    counter.expect_dtype("step counter", DType::U32)?;
    if counter.len() < 4 {
        return Err(Error::shape(
            "step counter",
            "needs 4 elements (step::counter)",
        ));
    }
    let mut p = params(1);
    p.growth = growth;
    p.backoff = backoff;
    p.interval = interval.max(1);
    scaler.gpu().dispatch(
        &SHADER,
        "",
        "update",
        &p,
        &[Bind::Skip, Bind::T(scaler), Bind::T(counter), Bind::Skip],
        [1, 1, 1],
    )
}
