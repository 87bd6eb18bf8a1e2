//! `shaders/loss_xent.wgsl`: fused softmax cross-entropy with label smoothing.

use crate::cpu::kernels::elementwise::rows::{count_valid, row_max, wg_sum, Lanes, RW};
use crate::cpu::kernels::elementwise::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::loss::XentParams;

const PAD: u32 = u32::MAX;

/// The bound tensors: (x, labels, loss, dx), checked against the parameters.
type Bound<'a> = (&'a [f32], &'a [u32], &'a mut [f32], &'a mut [f32]);

fn bind<'a>(call: &Call<'a>, p: &XentParams) -> Result<Bound<'a>> {
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    Ok((
        take(call, "logits", call.f32(1)?, rows * cols)?,
        take(call, "labels", call.u32(2)?, rows)?,
        take_mut(call, "loss", call.f32_mut(3)?, rows)?,
        take_mut(call, "dlogits", call.f32_mut(4)?, rows * cols)?,
    ))
}

/// The gradient scale: grad_scale, divided by the non-padding rows when `normalize` is set.
fn grad_scale(p: &XentParams, labels: &[u32]) -> f32 {
    if p.normalize != 0 {
        p.grad_scale / count_valid(labels).max(1.0)
    } else {
        p.grad_scale
    }
}

/// dx for one row and its loss, given the row's max `m`, Σ exp(z − m) `s` and Σ q z `qz`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn finish_row(
    xr: &[f32],
    dr: &mut [f32],
    y: u32,
    (off, on, scale): (f32, f32, f32),
    (m, s, qz): (f32, f32, f32),
    cols: u32,
) -> f32 {
    let pad = y == PAD;
    let bad = y >= cols && !pad;
    let inv = 1.0 / s;
    for (c, (d, &z)) in dr.iter_mut().zip(xr).enumerate() {
        let prob = (z - m).exp() * inv;
        let g = scale * (prob - if c as u32 == y { on } else { off });
        *d = if bad {
            f32::NAN
        } else if pad {
            0.0
        } else {
            g
        };
    }
    if bad {
        f32::NAN
    } else if pad {
        0.0
    } else {
        m + s.ln() - qz
    }
}

/// Entry `main`: each row folded as its 64-thread workgroup folds it. Bindings 1 x,
/// 2 labels, 3 loss, 4 dx.
pub(super) fn main(call: &Call<'_>) -> Result<()> {
    let p: XentParams = call.params()?;
    let (x, labels, loss, dx) = bind(call, &p)?;
    let cols = p.cols as usize;
    if cols == 0 {
        // No classes: every label but PAD is out of range, so the loss is NaN (0 for PAD).
        for (l, &y) in loss.iter_mut().zip(labels.iter()) {
            *l = if y == PAD { 0.0 } else { f32::NAN };
        }
        return Ok(());
    }
    let off = p.smoothing / p.cols as f32;
    let on = 1.0 - p.smoothing + off;
    let scale = grad_scale(&p, labels);
    for (r, (xr, dr)) in x
        .chunks_exact(cols)
        .zip(dx.chunks_exact_mut(cols))
        .enumerate()
    {
        let y = labels[r];
        let m = row_max(xr);
        let s = wg_sum(cols, |c| (xr[c] - m).exp());
        let qz = wg_sum(cols, |c| if c as u32 == y { on } else { off } * xr[c]);
        loss[r] = finish_row(xr, dr, y, (off, on, scale), (m, s, qz), p.cols);
    }
    Ok(())
}

/// Entry `with_metrics`: one workgroup; thread t takes rows t, t + 64, … and folds each
/// row's columns in order; the metrics are added with the tree. Bindings 1 x, 2 labels,
/// 3 loss, 4 dx, 5 metrics.
pub(super) fn with_metrics(call: &Call<'_>) -> Result<()> {
    let p: XentParams = call.params()?;
    let (x, labels, loss, dx) = bind(call, &p)?;
    let metrics = take_mut(call, "metrics", call.f32_mut(5)?, 3)?;
    let cols = p.cols as usize;
    if cols == 0 {
        return Err(crate::cpu::kernels::elementwise::short(
            call,
            "logits (0 classes)",
            1,
            0,
        ));
    }
    let off = p.smoothing / p.cols as f32;
    let on = 1.0 - p.smoothing + off;
    let scale = grad_scale(&p, labels);
    let (mut total, mut correct, mut count) = (Lanes::splat(0.0), 0.0f32, 0.0f32);
    for (r, (xr, dr)) in x
        .chunks_exact(cols)
        .zip(dx.chunks_exact_mut(cols))
        .enumerate()
    {
        let y = labels[r];
        let (mut m, mut best) = (xr[0], 0u32);
        for (c, &z) in xr.iter().enumerate().skip(1) {
            if z > m {
                m = z;
                best = c as u32;
            }
        }
        let (mut s, mut qz) = (0.0f32, 0.0f32);
        for (c, &z) in xr.iter().enumerate() {
            s += (z - m).exp();
            qz += if c as u32 == y { on } else { off } * z;
        }
        let l = finish_row(xr, dr, y, (off, on, scale), (m, s, qz), p.cols);
        loss[r] = l;
        if y < p.cols {
            total.0[r % RW] += l;
            count += 1.0;
            correct += if best == y { 1.0 } else { 0.0 };
        }
    }
    metrics[0] += total.tree_sum();
    metrics[1] += correct;
    metrics[2] += count;
    Ok(())
}
