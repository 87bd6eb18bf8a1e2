//! `shaders/loss_mse.wgsl`: mean squared error and its gradient.

use crate::cpu::kernels::elementwise::rows::{count_valid, wg_sum};
use crate::cpu::kernels::elementwise::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::softmax::RowParams;

/// `loss[r] = row_scale·Σ_c d²` and `dy = scale·d` (d = y − t) for one row, or zeros for a
/// padding row.
#[inline]
fn row(yr: &[f32], tr: &[f32], dr: &mut [f32], scale: f32, row_scale: f32, pad: bool) -> f32 {
    for ((g, &a), &b) in dr.iter_mut().zip(yr).zip(tr) {
        *g = if pad { 0.0 } else { scale * (a - b) };
    }
    let s = wg_sum(yr.len(), |c| {
        let d = yr[c] - tr[c];
        d * d
    });
    if pad {
        0.0
    } else {
        s * row_scale
    }
}

/// The shared body: `scale(labels)` gives the gradient scale, `pad(r)` whether row r is
/// padding. Bindings 1 y, 2 t, 3 loss, 4 dy.
fn run(call: &Call<'_>, labels: Option<&[u32]>) -> Result<()> {
    let p: RowParams = call.params()?;
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let y = take(call, "y", call.f32(1)?, rows * cols)?;
    let t = take(call, "target", call.f32(2)?, rows * cols)?;
    let loss = take_mut(call, "loss", call.f32_mut(3)?, rows)?;
    let dy = take_mut(call, "dy", call.f32_mut(4)?, rows * cols)?;
    let scale = match labels {
        Some(l) => 2.0 / (count_valid(l).max(1.0) * p.cols as f32),
        None => p.b,
    };
    for (r, l) in loss.iter_mut().enumerate() {
        let pad = labels.is_some_and(|lb| lb[r] == u32::MAX);
        let span = r * cols..(r + 1) * cols;
        *l = row(
            &y[span.clone()],
            &t[span.clone()],
            &mut dy[span],
            scale,
            p.a,
            pad,
        );
    }
    Ok(())
}

/// Entry `main`: every row counts.
pub(super) fn main(call: &Call<'_>) -> Result<()> {
    run(call, None)
}

/// Entry `masked`: rows labelled PAD get zero loss and gradient, the others the gradient
/// of the mean over the valid rows. Binding 5 labels.
pub(super) fn masked(call: &Call<'_>) -> Result<()> {
    let rows = call.params::<RowParams>()?.rows as usize;
    let labels = take(call, "labels", call.u32(5)?, rows)?;
    run(call, Some(labels))
}
