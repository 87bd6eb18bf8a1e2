//! Batched transpose of the last two axes, `out[b][q][p] = x[b][p][q]` (exact copies of
//! 32-bit words, so f32 and u32 alike). Conv layers use it to turn the matmul output
//! [B·OH·OW, F] into NCHW [B, F, OH, OW] (b = B, p = OH·OW, q = F) and back
//! (b = B, p = F, q = OH·OW). The kernel moves 16×16 tiles through workgroup memory so that
//! reads and writes are both contiguous.

use super::conv::checked_product;
use super::shader;
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("permute", "common");

const TILE: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) batch: u32,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) tiles_p: u32,
    pub(crate) tiles_q: u32,
    pub(crate) _pad: [u32; 3],
}

/// `out[b][q][p] = x[b][p][q]`: x holds B·P·Q elements read as [B, P, Q] (any shape of
/// that size); out, of the same type and size, is written as [B, Q, P] in full.
pub fn swap_last_two_into(
    x: &Tensor,
    b: usize,
    p: usize,
    q: usize,
    out: &Tensor,
) -> Result<Dispatch> {
    let n = checked_product(&[b, p, q]).ok_or_else(|| {
        Error::shape(
            "swap_last_two",
            format!("[{b}, {p}, {q}] is too large for 32-bit indexing"),
        )
    })?;
    if x.len() != n || out.len() != n || x.dtype() != out.dtype() {
        return Err(Error::shape(
            "swap_last_two",
            format!(
                "input and output must both hold B·P·Q = {b}·{p}·{q} = {n} elements of one type, \
                 got input {:?} {:?} and output {:?} {:?}",
                x.dtype(),
                x.shape(),
                out.dtype(),
                out.shape()
            ),
        ));
    }
    let (tiles_p, tiles_q) = (p.div_ceil(TILE), q.div_ceil(TILE));
    let gpu = x.gpu();
    let params = Params {
        batch: b as u32,
        rows: p as u32,
        cols: q as u32,
        tiles_p: tiles_p as u32,
        tiles_q: tiles_q as u32,
        _pad: [0; 3],
    };
    gpu.dispatch(
        &SHADER,
        "",
        "main",
        &params,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid((b * tiles_p * tiles_q) as u64)?,
    )
}

/// [`swap_last_two_into`] into a new [b, q, p] tensor of x's type.
pub fn swap_last_two(x: &Tensor, b: usize, p: usize, q: usize) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), &[b, q, p], x.dtype())?;
    x.gpu().run(&[&swap_last_two_into(x, b, p, q, &out)?])?;
    Ok(out)
}

/// CPU reference (an exact copy).
pub mod reference {
    /// `out[b][q][p] = x[b][p][q]` for x [b, p, q].
    pub fn swap_last_two<T: Copy>(x: &[T], b: usize, p: usize, q: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(b * p * q);
        for bi in 0..b {
            for qi in 0..q {
                for pi in 0..p {
                    out.push(x[(bi * p + pi) * q + qi]);
                }
            }
        }
        out
    }
}
