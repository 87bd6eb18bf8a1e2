//! `shaders/metrics.wgsl`: loss and accuracy accumulated across steps.
//!
//! The loss totals are folded as the shader's 64 threads fold them (rows t, t + 64, … per
//! thread, then the tree), so they are the GPU's bits; the counts are exact integers.

use crate::cpu::kernels::elementwise::rows::{Lanes, RW};
use crate::cpu::kernels::elementwise::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::metrics::Params;

/// The first column holding the maximum of `row` (metrics.wgsl's `row_argmax`).
fn row_argmax(row: &[f32]) -> u32 {
    let (mut best, mut bv) = (0u32, row[0]);
    for (c, &v) in row.iter().enumerate().skip(1) {
        if v > bv {
            bv = v;
            best = c as u32;
        }
    }
    best
}

/// Entry `classify`: bindings 1 loss, 2 logits, 3 labels, 4 metrics.
pub(super) fn classify(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let loss = take(call, "loss", call.f32(1)?, rows)?;
    let logits = take(call, "logits", call.f32(2)?, rows * cols)?;
    let labels = take(call, "labels", call.u32(3)?, rows)?;
    let metrics = take_mut(call, "metrics", call.f32_mut(4)?, 3)?;
    let (mut total, mut correct, mut count) = (Lanes::splat(0.0), 0.0f32, 0.0f32);
    for (r, &y) in labels.iter().enumerate() {
        if y < p.cols {
            total.0[r % RW] += loss[r];
            count += 1.0;
            if row_argmax(&logits[r * cols..(r + 1) * cols]) == y {
                correct += 1.0;
            }
        }
    }
    metrics[0] += total.tree_sum();
    metrics[1] += correct;
    metrics[2] += count;
    Ok(())
}

/// Entry `regress`: the first `valid` rows. Bindings 1 loss, 4 metrics.
pub(super) fn regress(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let loss = take(call, "loss", call.f32(1)?, p.valid as usize)?;
    let metrics = take_mut(call, "metrics", call.f32_mut(4)?, 3)?;
    let mut total = Lanes::splat(0.0);
    for (r, &l) in loss.iter().enumerate() {
        total.0[r % RW] += l;
    }
    metrics[0] += total.tree_sum();
    metrics[2] += p.valid as f32;
    Ok(())
}

/// Entry `regress_labelled`: the rows not labelled PAD. Bindings 1 loss, 3 labels, 4 metrics.
pub(super) fn regress_labelled(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let rows = p.rows as usize;
    let loss = take(call, "loss", call.f32(1)?, rows)?;
    let labels = take(call, "labels", call.u32(3)?, rows)?;
    let metrics = take_mut(call, "metrics", call.f32_mut(4)?, 3)?;
    let (mut total, mut count) = (Lanes::splat(0.0), 0.0f32);
    for (r, (&l, &y)) in loss.iter().zip(labels).enumerate() {
        if y != u32::MAX {
            total.0[r % RW] += l;
            count += 1.0;
        }
    }
    metrics[0] += total.tree_sum();
    metrics[2] += count;
    Ok(())
}
