//! Elementwise arithmetic: add, sub, mul, scale, axpy, bias broadcast.
//! Shapes: x, y, out share a shape (bias_add: x, out [rows, cols], bias [cols]).

use super::{consts, groups_1d, shader, ConstVal};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const BINARY: Shader = shader!("binary", "common");
pub const AXPY: Shader = shader!("axpy", "common");

/// A binary elementwise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 3] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul];

    pub fn apply_f64(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BinParams {
    pub(crate) n: u32,
    pub(crate) cols: u32,
    pub(crate) _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AxpyParams {
    pub(crate) n: u32,
    pub(crate) alpha: f32,
    pub(crate) _pad: [u32; 2],
}

pub(crate) fn same_len(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::shape(
            op,
            format!("operands have {:?} and {:?} elements", a.shape(), b.shape()),
        ));
    }
    Ok(())
}

/// `out = x op y`, elementwise.
pub fn binary_into(op: BinaryOp, x: &Tensor, y: &Tensor, out: &Tensor) -> Result<Dispatch> {
    same_len("binary", x, y)?;
    same_len("binary", x, out)?;
    let gpu = x.gpu();
    let p = BinParams {
        n: x.len() as u32,
        cols: 1,
        _pad: [0; 2],
    };
    let defs = consts(&[("OP", ConstVal::U(op as u32))]);
    gpu.dispatch(
        &BINARY,
        &defs,
        "binary",
        &p,
        &[Bind::T(x), Bind::T(y), Bind::T(out)],
        gpu.grid(groups_1d(x.len()))?,
    )
}

/// `x op y` into a new tensor.
pub fn binary(op: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    x.gpu().run(&[&binary_into(op, x, y, &out)?])?;
    Ok(out)
}

/// `out[r, c] = x[r, c] + bias[c]` with x viewed as [len / cols, cols], cols = bias.len().
pub fn bias_add_into(x: &Tensor, bias: &Tensor, out: &Tensor) -> Result<Dispatch> {
    same_len("bias_add", x, out)?;
    let cols = bias.len();
    if cols == 0 || !x.len().is_multiple_of(cols) || x.as_matrix().1 != cols {
        return Err(Error::shape(
            "bias_add",
            format!(
                "bias {:?} does not match the last dimension of {:?}",
                bias.shape(),
                x.shape()
            ),
        ));
    }
    let gpu = x.gpu();
    let p = BinParams {
        n: x.len() as u32,
        cols: cols as u32,
        _pad: [0; 2],
    };
    let defs = consts(&[("OP", ConstVal::U(0))]);
    gpu.dispatch(
        &BINARY,
        &defs,
        "bias_add",
        &p,
        &[Bind::T(x), Bind::T(bias), Bind::T(out)],
        gpu.grid(groups_1d(x.len()))?,
    )
}

/// `y = alpha·x + y`, in place.
pub fn axpy_into(alpha: f32, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    same_len("axpy", x, y)?;
    let gpu = x.gpu();
    let p = AxpyParams {
        n: x.len() as u32,
        alpha,
        _pad: [0; 2],
    };
    gpu.dispatch(
        &AXPY,
        "",
        "axpy",
        &p,
        &[Bind::T(x), Bind::T(y)],
        gpu.grid(groups_1d(x.len()))?,
    )
}

/// `out = alpha·x`.
pub fn scale_into(alpha: f32, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    same_len("scale", x, out)?;
    let gpu = x.gpu();
    let p = AxpyParams {
        n: x.len() as u32,
        alpha,
        _pad: [0; 2],
    };
    gpu.dispatch(
        &AXPY,
        "",
        "scale",
        &p,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid(groups_1d(x.len()))?,
    )
}
