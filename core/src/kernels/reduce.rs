//! Reductions: row/column sums and means, row argmax. Fixed summation order (no atomics),
//! so results are bit-reproducible. Shapes: x [rows, cols] (its last dimension is cols).

use super::shader;
use super::softmax::RowParams;
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("reduce", "common", "row_reduce_lib");
pub const ARGMAX: Shader = shader!("argmax", "common", "row_reduce_lib");

/// Sum or mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
}

fn scale(r: Reduce, count: usize) -> f32 {
    match r {
        Reduce::Sum => 1.0,
        Reduce::Mean => 1.0 / count.max(1) as f32,
    }
}

fn check_out(op: &'static str, out: &Tensor, want: usize) -> Result<()> {
    if out.len() != want {
        return Err(Error::shape(
            op,
            format!("output must have {want} elements, got {:?}", out.shape()),
        ));
    }
    Ok(())
}

/// `out[r] = Σ_c x[r, c]` (or the mean). out: [rows].
pub fn rows_into(r: Reduce, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = x.as_matrix();
    check_out("row reduction", out, rows)?;
    let gpu = x.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: scale(r, cols),
        b: 0.0,
    };
    gpu.dispatch(
        &SHADER,
        "",
        "rows",
        &p,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid(rows as u64)?,
    )
}

/// `out[c] = Σ_r x[r, c]` (or the mean). out: [cols]. (The bias gradient.)
pub fn cols_into(r: Reduce, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = x.as_matrix();
    check_out("column reduction", out, cols)?;
    let gpu = x.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: scale(r, rows),
        b: 0.0,
    };
    gpu.dispatch(
        &SHADER,
        "",
        "cols",
        &p,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid(super::groups_1d(cols))?,
    )
}

/// `out[r] = argmax_c x[r, c]` (first index on ties). out: [rows] u32.
pub fn argmax_into(x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = x.as_matrix();
    check_out("argmax", out, rows)?;
    out.expect_dtype("argmax", DType::U32)?;
    if cols == 0 {
        return Err(Error::shape("argmax", "rows have no elements"));
    }
    let gpu = x.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: 0.0,
        b: 0.0,
    };
    gpu.dispatch(
        &ARGMAX,
        "",
        "main",
        &p,
        &[Bind::T(x), Bind::T(out)],
        gpu.grid(rows as u64)?,
    )
}

/// Row sums / means into a new [rows] tensor.
pub fn rows(r: Reduce, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), &[x.as_matrix().0], DType::F32)?;
    x.gpu().run(&[&rows_into(r, x, &out)?])?;
    Ok(out)
}

/// Column sums / means into a new [cols] tensor.
pub fn cols(r: Reduce, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), &[x.as_matrix().1], DType::F32)?;
    x.gpu().run(&[&cols_into(r, x, &out)?])?;
    Ok(out)
}

/// Row argmax into a new [rows] u32 tensor.
pub fn argmax(x: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(x.gpu(), &[x.as_matrix().0], DType::U32)?;
    x.gpu().run(&[&argmax_into(x, &out)?])?;
    Ok(out)
}

/// f64 references.
pub mod reference {
    /// Row sums of a [rows, cols] matrix, and Σ|x| per row (for error bounds).
    pub fn rows(x: &[f32], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
        (0..rows)
            .map(|r| {
                let row = &x[r * cols..(r + 1) * cols];
                (
                    row.iter().map(|&v| v as f64).sum::<f64>(),
                    row.iter().map(|&v| (v as f64).abs()).sum::<f64>(),
                )
            })
            .unzip()
    }

    /// Column sums, and Σ|x| per column.
    pub fn cols(x: &[f32], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
        (0..cols)
            .map(|c| {
                let it = (0..rows).map(|r| x[r * cols + c] as f64);
                (it.clone().sum::<f64>(), it.map(f64::abs).sum::<f64>())
            })
            .unzip()
    }

    /// First index of the largest element per row.
    pub fn argmax(x: &[f32], cols: usize) -> Vec<u32> {
        x.chunks(cols)
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best as u32
            })
            .collect()
    }
}
