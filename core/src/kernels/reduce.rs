//! Reductions: row/column sums and means, row argmax. Fixed summation order (no atomics),
//! so results are bit-reproducible. Shapes: x [rows, cols] (its last dimension is cols).
//!
//! The column sum (every layer's bias gradient, each training step) has two kernels: the
//! serial one (one invocation per column) and, where the device has `wgpu::Features::SUBGROUP`
//! (native targets), one that splits each column's rows over a few subgroup lanes and combines
//! them with subgroup shuffles ([`ColsPath`]). [`cols_into`] picks the subgroup kernel when it
//! applies; the two differ in summation order, so their bits differ, but each is reproducible.

use super::softmax::RowParams;
use super::{consts, shader, ConstVal};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("reduce", "common", "row_reduce_lib");
pub const ARGMAX: Shader = shader!("argmax", "common", "row_reduce_lib");
pub const SUBGROUP: Shader = shader!("reduce_subgroup", "common");

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

/// Which kernel a column reduction uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColsPath {
    /// One invocation per column sums its rows in order (works everywhere).
    Serial,
    /// Each column's rows are split over a power-of-two number of lanes of one subgroup
    /// ([`subgroup_lanes`]) and combined with `subgroupShuffleXor`. Needs
    /// `wgpu::Features::SUBGROUP` and a native target.
    Subgroup,
    /// The subgroup kernel's in-shader fallback (taken if a subgroup's lanes are not numbered
    /// like the workgroup's invocations), forced on so that tests can check it.
    #[doc(hidden)]
    SubgroupFallback,
}

/// Whether [`ColsPath::Subgroup`] can run on `gpu` (SUBGROUP feature, native target).
///
/// Native only: naga 30 rejects the `enable subgroups;` directive ("not yet supported"), so
/// the shader uses the builtins without it, as naga allows once the device has SUBGROUP;
/// a browser's WGSL compiler requires the directive, so wasm builds keep the serial kernel.
pub fn has_subgroups(gpu: &crate::Gpu) -> bool {
    cfg!(not(target_arch = "wasm32")) && gpu.features().contains(wgpu::Features::SUBGROUP)
}

/// Lanes per column for the subgroup column sum of `rows` rows: the smallest power of two
/// ≥ ⌈rows / 4⌉ (about four rows per lane), at most the adapter's smallest subgroup size
/// (so a column's lanes share a subgroup) and at most 32. Depends only on `rows` and the
/// adapter, so a device always sums in the same order.
pub fn subgroup_lanes(rows: usize, subgroup_min_size: u32) -> u32 {
    let cap = if subgroup_min_size == 0 {
        1
    } else {
        1u32 << (31 - subgroup_min_size.leading_zeros())
    };
    let want = rows.div_ceil(4).clamp(1, 32).next_power_of_two() as u32;
    want.min(cap).min(32)
}

/// `out[c] = Σ_r x[r, c]` (or the mean). out: [cols]. (The bias gradient.)
///
/// Uses the subgroup kernel where it applies ([`has_subgroups`], and at least 2 lanes per
/// column, i.e. more than 4 rows on a device whose subgroups hold at least 2 lanes), else the
/// serial one. Use [`cols_into_path`] to choose.
pub fn cols_into(r: Reduce, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let gpu = x.gpu();
    let path = if has_subgroups(gpu) && subgroup_lanes_on(gpu, x.as_matrix().0) >= 2 {
        ColsPath::Subgroup
    } else {
        ColsPath::Serial
    };
    cols_into_path(r, x, out, path)
}

fn subgroup_min_size(gpu: &crate::Gpu) -> u32 {
    // The CPU backend has no subgroups (`has_subgroups` is false there): one lane.
    gpu.inner
        .wgpu()
        .map_or(1, |w| w.device.adapter_info().subgroup_min_size)
}

/// [`subgroup_lanes`] for `gpu`'s adapter.
pub fn subgroup_lanes_on(gpu: &crate::Gpu, rows: usize) -> u32 {
    subgroup_lanes(rows, subgroup_min_size(gpu))
}

/// [`cols_into`] with an explicit kernel. [`ColsPath::Subgroup`] on a device or target
/// without subgroups is an error.
pub fn cols_into_path(r: Reduce, x: &Tensor, out: &Tensor, path: ColsPath) -> Result<Dispatch> {
    let (rows, cols) = x.as_matrix();
    check_out("column reduction", out, cols)?;
    let gpu = x.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: scale(r, rows),
        b: 0.0,
    };
    let binds = [Bind::T(x), Bind::T(out)];
    if path == ColsPath::Serial {
        return gpu.dispatch(
            &SHADER,
            "",
            "cols",
            &p,
            &binds,
            gpu.grid(super::groups_1d(cols))?,
        );
    }
    if !has_subgroups(gpu) {
        return Err(Error::invalid(
            "column reduction",
            "the subgroup kernel needs wgpu::Features::SUBGROUP on a native target; \
             use ColsPath::Serial",
        ));
    }
    let lanes = subgroup_lanes_on(gpu, rows);
    let src = consts(&[
        ("TR", ConstVal::U(lanes)),
        (
            "FORCE_SERIAL",
            ConstVal::B(path == ColsPath::SubgroupFallback),
        ),
    ]);
    let per_group = (256 / lanes) as usize;
    gpu.dispatch(
        &SUBGROUP,
        &src,
        "cols",
        &p,
        &binds,
        gpu.grid(cols.div_ceil(per_group) as u64)?,
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
