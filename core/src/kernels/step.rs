//! The GPU step counter (see shaders/step.wgsl): `[step in chunk, global step, 0, 0]` (u32).
//! Schedule-driven optimizer updates, stepped gathers and dropout read it, and `advance`
//! moves it on at the end of each recorded step.

use super::shader;
use crate::error::Result;
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};

pub const SHADER: Shader = shader!("step");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// A counter tensor set to (0, `global_step`).
pub fn counter(gpu: &Gpu, global_step: u64) -> Result<Tensor> {
    Tensor::from_u32(gpu, &[4], &[0, global_step as u32, 0, 0])
}

/// Resets the counter to (0, `global_step`) before recording a new chunk.
pub fn reset(counter: &Tensor, global_step: u64) -> Result<()> {
    counter.write_u32(&[0, global_step as u32, 0, 0])
}

/// `counter[0] += 1; counter[1] += 1`.
pub fn advance_into(counter: &Tensor) -> Result<Dispatch> {
    counter.expect_dtype("step counter", DType::U32)?;
    let p = Params { n: 1, _pad: [0; 3] };
    counter
        .gpu()
        .dispatch(&SHADER, "", "advance", &p, &[Bind::T(counter)], [1, 1, 1])
}
