//! `shaders/softmax.wgsl`, `shaders/reduce.wgsl` (`rows`, serial `cols`) and
//! `shaders/argmax.wgsl`, with the fold of `shaders/lib/row_reduce_lib.wgsl`.
//!
//! A WGSL row reduction gives each of its RW = 64 threads the columns lid, lid + 64, … (folded
//! in order) and combines the 64 partials with a fixed binary tree. [`Lanes`] is that fold on
//! the CPU — the same additions in the same order, so the sums are the shader's bits — and
//! the loss kernels use it too.

use super::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::softmax::RowParams;

/// Threads of a row workgroup (`RW` in row_reduce_lib.wgsl).
pub(crate) const RW: usize = 64;

/// The shader's initial maximum (`-3.402823e38`).
pub(crate) const NEG_BIG: f32 = -3.402823e38;

/// The 64 per-thread partials of a workgroup reduction.
#[derive(Clone, Copy)]
pub(crate) struct Lanes(pub(crate) [f32; RW]);

impl Lanes {
    pub(crate) fn splat(v: f32) -> Lanes {
        Lanes([v; RW])
    }

    /// Thread `lid` of the shader folds `f(i)` for i = lid, lid + RW, … < n in order.
    #[inline]
    pub(crate) fn sum_strided(n: usize, mut f: impl FnMut(usize) -> f32) -> Lanes {
        let mut l = Lanes::splat(0.0);
        let mut i = 0;
        while i < n {
            let m = (n - i).min(RW);
            for (lane, acc) in l.0[..m].iter_mut().enumerate() {
                *acc += f(i + lane);
            }
            i += RW;
        }
        l
    }

    /// `tree_sum`: the fixed tree `red[l] += red[l + s]` for s = 32, 16, …, 1.
    #[inline]
    pub(crate) fn tree_sum(mut self) -> f32 {
        let mut s = RW / 2;
        while s > 0 {
            for l in 0..s {
                self.0[l] += self.0[l + s];
            }
            s >>= 1;
        }
        self.0[0]
    }
}

/// Σ f(i) for i < n, folded and combined as a 64-thread WGSL workgroup does.
#[inline]
pub(crate) fn wg_sum(n: usize, f: impl FnMut(usize) -> f32) -> f32 {
    Lanes::sum_strided(n, f).tree_sum()
}

/// The maximum of `row`, starting from the shader's `-3.402823e38` (so an empty or all-−∞
/// row gives that value, as on the GPU). Max is exact, so the order does not matter.
#[inline]
pub(crate) fn row_max(row: &[f32]) -> f32 {
    row.iter().fold(NEG_BIG, |m, &v| m.max(v))
}

/// The number of rows whose label is not PAD, as the shaders count it (an exact integer).
pub(crate) fn count_valid(labels: &[u32]) -> f32 {
    labels.iter().filter(|&&l| l != u32::MAX).count() as f32
}

/// (rows, cols) of a row kernel with `x` [rows, cols] and its output.
fn row_shape(call: &Call<'_>) -> Result<(usize, usize, RowParams)> {
    let p: RowParams = call.params()?;
    Ok((p.rows as usize, p.cols as usize, p))
}

/// Entry `softmax::main`: row-wise stable softmax. Bindings 1 x, 2 out.
pub(super) fn softmax(call: &Call<'_>) -> Result<()> {
    let (rows, cols, _) = row_shape(call)?;
    let x = take(call, "x", call.f32(1)?, rows * cols)?;
    let out = take_mut(call, "out", call.f32_mut(2)?, rows * cols)?;
    if cols == 0 {
        return Ok(());
    }
    for (xr, or) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = row_max(xr);
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = (v - m).exp();
        }
        let inv = 1.0 / wg_sum(cols, |c| or[c]);
        for o in or.iter_mut() {
            *o *= inv;
        }
    }
    Ok(())
}

/// Entry `reduce::rows`: `out[r] = scale · Σ_c x[r, c]` (the workgroup tree). Bindings 1 x,
/// 2 out.
pub(super) fn reduce_rows(call: &Call<'_>) -> Result<()> {
    let (rows, cols, p) = row_shape(call)?;
    let x = take(call, "x", call.f32(1)?, rows * cols)?;
    let out = take_mut(call, "out", call.f32_mut(2)?, rows)?;
    for (r, o) in out.iter_mut().enumerate() {
        let xr = &x[r * cols..(r + 1) * cols];
        *o = wg_sum(cols, |c| xr[c]) * p.a;
    }
    Ok(())
}

/// Entry `reduce::cols` (the serial kernel): `out[c] = scale · Σ_r x[r, c]`, rows added in
/// order for each column (summed a row at a time, so the loop runs along memory).
pub(super) fn reduce_cols(call: &Call<'_>) -> Result<()> {
    let (rows, cols, p) = row_shape(call)?;
    let x = take(call, "x", call.f32(1)?, rows * cols)?;
    let out = take_mut(call, "out", call.f32_mut(2)?, cols)?;
    out.fill(0.0);
    if cols == 0 {
        return Ok(());
    }
    for xr in x.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(xr) {
            *o += v;
        }
    }
    for o in out.iter_mut() {
        *o *= p.a;
    }
    Ok(())
}

/// argmax.wgsl's `better`: larger, or equal with a smaller index.
#[inline]
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    va > vb || (va == vb && ia < ib)
}

/// Entry `argmax::main`: the first index of each row's maximum, found as the shader does
/// (per-thread strided bests, then the tree), so NaNs behave the same. Bindings 1 x, 2 out
/// (u32).
pub(super) fn argmax(call: &Call<'_>) -> Result<()> {
    const NONE: u32 = u32::MAX;
    let (rows, cols, _) = row_shape(call)?;
    let x = take(call, "x", call.f32(1)?, rows * cols)?;
    let out = take_mut(call, "out", call.u32_mut(2)?, rows)?;
    for (r, o) in out.iter_mut().enumerate() {
        let xr = &x[r * cols..(r + 1) * cols];
        let mut bv = [NEG_BIG; RW];
        let mut bi = [NONE; RW];
        for (c, &v) in xr.iter().enumerate() {
            let l = c % RW;
            if bi[l] == NONE || better(v, c as u32, bv[l], bi[l]) {
                bv[l] = v;
                bi[l] = c as u32;
            }
        }
        let mut s = RW / 2;
        while s > 0 {
            for l in 0..s {
                let oi = bi[l + s];
                if oi != NONE && (bi[l] == NONE || better(bv[l + s], oi, bv[l], bi[l])) {
                    bv[l] = bv[l + s];
                    bi[l] = oi;
                }
            }
            s >>= 1;
        }
        *o = bi[0];
    }
    Ok(())
}
