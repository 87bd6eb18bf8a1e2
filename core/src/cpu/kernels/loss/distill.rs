//! `shaders/loss_distill.wgsl`: knowledge distillation (Hinton et al. 2015).

use crate::cpu::kernels::elementwise::rows::{count_valid, row_max, wg_sum};
use crate::cpu::kernels::elementwise::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::softmax::RowParams;

const PAD: u32 = u32::MAX;

/// Entry `main`: bindings 1 z, 2 t, 3 labels, 4 loss, 5 dz; params (rows, cols, α, T).
pub(super) fn main(call: &Call<'_>) -> Result<()> {
    let p: RowParams = call.params()?;
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let z = take(call, "student logits", call.f32(1)?, rows * cols)?;
    let t = take(call, "teacher logits", call.f32(2)?, rows * cols)?;
    let labels = take(call, "labels", call.u32(3)?, rows)?;
    let loss = take_mut(call, "loss", call.f32_mut(4)?, rows)?;
    let dz = take_mut(call, "dz", call.f32_mut(5)?, rows * cols)?;
    let (alpha, temp) = (p.a, p.b);
    let inv_t = 1.0 / temp;
    let valid = count_valid(labels).max(1.0);
    let tt = temp * temp;
    for (r, l) in loss.iter_mut().enumerate() {
        let span = r * cols..(r + 1) * cols;
        let (zr, tr, dr) = (&z[span.clone()], &t[span.clone()], &mut dz[span]);
        let y = labels[r];
        let (mz, mt) = (row_max(zr), row_max(tr));
        let sz = wg_sum(cols, |c| (zr[c] - mz).exp());
        let szt = wg_sum(cols, |c| ((zr[c] - mz) * inv_t).exp());
        let stt = wg_sum(cols, |c| ((tr[c] - mt) * inv_t).exp());
        let labelled = y < p.cols;
        let a = if labelled { alpha } else { 0.0 };
        let (log_stt, log_szt) = (stt.ln(), szt.ln());
        let lpt = |c: usize| (tr[c] - mt) * inv_t - log_stt;
        let lps = |c: usize| (zr[c] - mz) * inv_t - log_szt;
        let kl = wg_sum(cols, |c| {
            let (pt, q) = (lpt(c), lps(c));
            pt.exp() * (pt - q)
        });
        let zy = wg_sum(cols, |c| if c as u32 == y { zr[c] } else { 0.0 });
        for (c, d) in dr.iter_mut().enumerate() {
            let (pt, ps) = (lpt(c).exp(), lps(c).exp());
            let hard_g = (zr[c] - mz).exp() / sz - if c as u32 == y { 1.0 } else { 0.0 };
            let g = (a * hard_g + (1.0 - a) * temp * (ps - pt)) / valid;
            *d = if y == PAD { 0.0 } else { g };
        }
        let hard = if labelled { mz + sz.ln() - zy } else { 0.0 };
        *l = if y == PAD {
            0.0
        } else {
            a * hard + (1.0 - a) * tt * kl
        };
    }
    Ok(())
}
