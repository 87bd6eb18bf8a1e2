//! `shaders/loss_replay.wgsl`: the DER / DER++ rehearsal loss (Buzzega et al. 2020).

use crate::cpu::kernels::elementwise::rows::{count_valid, row_max, wg_sum};
use crate::cpu::kernels::elementwise::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::loss_replay::Params;

const PAD: u32 = u32::MAX;

/// Entry `main`: rows < fresh are new, the rest replayed (their stored logits `s` read).
/// Bindings 1 z, 2 s, 3 labels, 4 loss, 5 dz.
pub(super) fn main(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    let fresh = (p.fresh as usize).min(rows);
    let z = take(call, "logits", call.f32(1)?, rows * cols)?;
    let s = take(call, "stored logits", call.f32(2)?, rows * cols)?;
    let labels = take(call, "labels", call.u32(3)?, rows)?;
    let loss = take_mut(call, "loss", call.f32_mut(4)?, rows)?;
    let dz = take_mut(call, "dz", call.f32_mut(5)?, rows * cols)?;
    let valid_new = count_valid(&labels[..fresh]);
    let valid_rep = count_valid(&labels[fresh..]);
    for (r, l) in loss.iter_mut().enumerate() {
        let span = r * cols..(r + 1) * cols;
        let (zr, sr, dr) = (&z[span.clone()], &s[span.clone()], &mut dz[span]);
        let y = labels[r];
        let replayed = r >= fresh;
        let valid = if replayed { valid_rep } else { valid_new };
        let m = row_max(zr);
        let se = wg_sum(cols, |c| (zr[c] - m).exp());
        let zy = wg_sum(cols, |c| if c as u32 == y { zr[c] } else { 0.0 });
        let sq = if replayed {
            wg_sum(cols, |c| {
                let d = zr[c] - sr[c];
                d * d
            })
        } else {
            0.0
        };
        let pad = y == PAD;
        let bad = y >= p.cols && !pad;
        let a = if replayed { p.alpha } else { 0.0 };
        let b = if replayed { p.beta } else { 1.0 };
        let inv_n = 1.0 / valid.max(1.0);
        let inv_s = 1.0 / se;
        let two_a_c = 2.0 * a / p.cols as f32;
        for (c, d) in dr.iter_mut().enumerate() {
            let v = zr[c];
            let prob = (v - m).exp() * inv_s;
            let mut g = b * (prob - if c as u32 == y { 1.0 } else { 0.0 });
            if replayed {
                g += two_a_c * (v - sr[c]);
            }
            *d = if bad {
                f32::NAN
            } else if pad {
                0.0
            } else {
                g * inv_n
            };
        }
        let ce = m + se.ln() - zy;
        let lr = b * ce + a * sq / p.cols as f32;
        *l = if bad {
            f32::NAN
        } else if pad {
            0.0
        } else {
            lr
        };
    }
    Ok(())
}
