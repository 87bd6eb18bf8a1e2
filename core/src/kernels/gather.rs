//! Row gather: `out[r, :] = src[idx[offset + r], :]`, assembling a batch from a dataset that
//! lives on the GPU. Works on f32 and u32 tensors alike (raw 32-bit copies). An index past
//! the end of `src` (e.g. `u32::MAX`) pads a short last batch: a zero row for f32 data, a
//! row of `u32::MAX` (the loss's padding label) for u32 data.

use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("gather", "common");

/// Marks a padding row in an index buffer.
pub const PAD_INDEX: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    rows: u32,
    cols: u32,
    src_rows: u32,
    offset: u32,
    fill: u32,
    _pad: [u32; 3],
}

/// Gathers `out.shape()[0]` rows starting at `idx[offset]`. src: [S, ...]; out: [R, ...]
/// with the same trailing dimensions and dtype; idx: u32 with at least offset + R entries.
pub fn gather_into(src: &Tensor, idx: &Tensor, offset: usize, out: &Tensor) -> Result<Dispatch> {
    gather_impl(src, idx, offset, None, out)
}

/// Gathers batch number `counter[0]`: rows `idx[counter·R .. counter·R + R]`, where R is
/// `out.shape()[0]`. The caller guarantees idx holds R entries for every step it records.
pub fn gather_stepped_into(
    src: &Tensor,
    idx: &Tensor,
    counter: &Tensor,
    out: &Tensor,
) -> Result<Dispatch> {
    counter.expect_dtype("gather step counter", DType::U32)?;
    gather_impl(src, idx, 0, Some(counter), out)
}

fn gather_impl(
    src: &Tensor,
    idx: &Tensor,
    offset: usize,
    counter: Option<&Tensor>,
    out: &Tensor,
) -> Result<Dispatch> {
    idx.expect_dtype("gather indices", DType::U32)?;
    if src.dtype() != out.dtype()
        || src.shape().get(1..) != out.shape().get(1..)
        || src.shape().is_empty()
    {
        return Err(Error::shape(
            "gather",
            format!(
                "source {:?} {:?} and output {:?} {:?} differ in row shape or type",
                src.dtype(),
                src.shape(),
                out.dtype(),
                out.shape()
            ),
        ));
    }
    let rows = out.shape()[0];
    let cols: usize = out.shape()[1..].iter().product();
    if offset + rows > idx.len() {
        return Err(Error::shape(
            "gather",
            format!(
                "{rows} rows from offset {offset} need {} indices, the index buffer has {}",
                offset + rows,
                idx.len()
            ),
        ));
    }
    let gpu = src.gpu();
    let p = Params {
        rows: rows as u32,
        cols: cols as u32,
        src_rows: src.shape()[0] as u32,
        offset: offset as u32,
        // Padding rows of labels read as PAD_INDEX (= loss::PAD_LABEL), of features as 0.
        fill: if src.dtype() == DType::U32 {
            PAD_INDEX
        } else {
            0
        },
        _pad: [0; 3],
    };
    let counter = counter.map_or(Bind::Dummy, Bind::T); // the dummy buffer reads as 0
    gpu.dispatch(
        &SHADER,
        "",
        "main",
        &p,
        &[Bind::T(src), Bind::T(idx), Bind::T(out), counter],
        gpu.grid(groups_1d(rows * cols))?,
    )
}

/// f64-free reference (a copy): rows of `src` ([_, cols]) picked by `idx`.
pub fn reference(src: &[u32], cols: usize, idx: &[u32], fill: u32) -> Vec<u32> {
    let src_rows = src.len() / cols.max(1);
    idx.iter()
        .flat_map(|&i| {
            (0..cols).map(move |c| {
                if (i as usize) < src_rows {
                    src[i as usize * cols + c]
                } else {
                    fill
                }
            })
        })
        .collect()
}
