//! Activation layers: `out = f(x)` and `dx = dy · f'(x)` (x is the pre-activation).
//! Shapes: all tensors share one element count.

use super::elementwise::same_len;
use super::{consts, groups_1d, shader, Activation, ConstVal};
use crate::error::Result;
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("activation", "common", "activation_fns");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) alpha: f32,
    pub(crate) _pad: [u32; 2],
}

fn defs(act: Activation) -> String {
    consts(&[("ACT", ConstVal::U(act.code()))])
}

/// `out = f(x)`.
pub fn forward_into(act: Activation, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    same_len("activation forward", x, out)?;
    let gpu = x.gpu();
    let p = Params {
        n: x.len() as u32,
        alpha: act.alpha(),
        _pad: [0; 2],
    };
    gpu.dispatch(
        &SHADER,
        &defs(act),
        "forward",
        &p,
        &[Bind::T(x), Bind::Skip, Bind::T(out)],
        gpu.grid(groups_1d(x.len()))?,
    )
}

/// `f(x)` into a new tensor.
pub fn forward(act: Activation, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    x.gpu().run(&[&forward_into(act, x, &out)?])?;
    Ok(out)
}

/// `dx = dy · f'(x)`.
pub fn backward_into(act: Activation, x: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Dispatch> {
    same_len("activation backward", x, dy)?;
    same_len("activation backward", x, dx)?;
    let gpu = x.gpu();
    let p = Params {
        n: x.len() as u32,
        alpha: act.alpha(),
        _pad: [0; 2],
    };
    gpu.dispatch(
        &SHADER,
        &defs(act),
        "backward",
        &p,
        &[Bind::T(x), Bind::T(dy), Bind::T(dx)],
        gpu.grid(groups_1d(x.len()))?,
    )
}
