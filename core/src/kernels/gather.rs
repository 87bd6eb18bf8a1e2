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
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) src_rows: u32,
    pub(crate) offset: u32,
    pub(crate) fill: u32,
    pub(crate) cols2: u32,
    pub(crate) fill2: u32,
    pub(crate) _pad: u32,
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

/// Gathers batch number `counter[0]` of two datasets of the same rows in one dispatch:
/// [`gather_stepped_into`]`(src, idx, counter, out)` and the same for `src2` into `out2` (a
/// batch's features and labels). The copies are the same words as two gathers'.
pub fn gather_pair_stepped_into(
    (src, out): (&Tensor, &Tensor),
    (src2, out2): (&Tensor, &Tensor),
    idx: &Tensor,
    counter: &Tensor,
) -> Result<Dispatch> {
    counter.expect_dtype("gather step counter", DType::U32)?;
    let (rows, cols, fill) = check(src, idx, 0, out)?;
    let (rows2, cols2, fill2) = check(src2, idx, 0, out2)?;
    if rows2 != rows || src2.shape()[0] != src.shape()[0] {
        return Err(Error::shape(
            "gather pair",
            format!(
                "the two sources {:?}, {:?} and outputs {:?}, {:?} must have the same rows",
                src.shape(),
                src2.shape(),
                out.shape(),
                out2.shape()
            ),
        ));
    }
    let gpu = src.gpu();
    let p = Params {
        rows: rows as u32,
        cols: cols as u32,
        src_rows: src.shape()[0] as u32,
        offset: 0,
        fill,
        cols2: cols2 as u32,
        fill2,
        _pad: 0,
    };
    let binds = [
        Bind::T(src),
        Bind::T(idx),
        Bind::T(out),
        Bind::T(counter),
        Bind::T(src2),
        Bind::T(out2),
    ];
    let elems = rows * (cols + cols2);
    gpu.dispatch(&SHADER, "", "pair", &p, &binds, gpu.grid(groups_1d(elems))?)
}

/// Checks one gather's operands: (rows, columns, fill value of a padding row).
fn check(src: &Tensor, idx: &Tensor, offset: usize, out: &Tensor) -> Result<(usize, usize, u32)> {
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
    // Padding rows of labels read as PAD_INDEX (= loss::PAD_LABEL), of features as 0.
    let fill = if src.dtype() == DType::U32 {
        PAD_INDEX
    } else {
        0
    };
    Ok((rows, cols, fill))
}

fn gather_impl(
    src: &Tensor,
    idx: &Tensor,
    offset: usize,
    counter: Option<&Tensor>,
    out: &Tensor,
) -> Result<Dispatch> {
    let (rows, cols, fill) = check(src, idx, offset, out)?;
    let gpu = src.gpu();
    let p = Params {
        rows: rows as u32,
        cols: cols as u32,
        src_rows: src.shape()[0] as u32,
        offset: offset as u32,
        fill,
        cols2: 0,
        fill2: 0,
        _pad: 0,
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
