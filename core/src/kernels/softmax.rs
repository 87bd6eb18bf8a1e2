//! Row-wise numerically stable softmax. Shapes: x, out [rows, cols].

use super::elementwise::same_len;
use super::shader;
use crate::error::Result;
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("softmax", "common", "row_reduce_lib");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RowParams {
    pub rows: u32,
    pub cols: u32,
    pub a: f32,
    pub b: f32,
}

/// `out[r, :] = softmax(x[r, :])` with x viewed as a matrix over its last dimension.
pub fn softmax_into(x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    same_len("softmax", x, out)?;
    let (rows, cols) = x.as_matrix();
    let gpu = x.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: 0.0,
        b: 0.0,
    };
    gpu.dispatch(
        &SHADER,
        "",
        "main",
        &p,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid(rows as u64)?,
    )
}

/// Softmax into a new tensor.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    x.gpu().run(&[&softmax_into(x, &out)?])?;
    Ok(out)
}

/// f64 references.
pub mod reference {
    /// Row-wise softmax of a [rows, cols] matrix.
    pub fn softmax(x: &[f32], cols: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(cols.max(1)) {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            out.extend(row.iter().map(|&v| (v as f64 - m).exp() / s));
        }
        out
    }
}
