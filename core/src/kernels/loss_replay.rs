//! The loss of a rehearsal batch with stored logits (shaders/loss_replay.wgsl): Dark
//! Experience Replay (DER, DER++; Buzzega et al. 2020). A batch of `fresh` new rows and
//! `rows − fresh` replayed ones has the objective
//!   L = mean_new CE + α·mean_{replayed, classes} (z − s)² + β·mean_replayed CE,
//! s being the logits the model gave a replayed sample when it entered the buffer.

use super::shader;
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("loss_replay", "common", "row_reduce_lib");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) fresh: u32,
    pub(crate) _pad: u32,
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
    pub(crate) _pad1: [f32; 2],
}

fn check(what: &'static str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want {
        return Err(Error::shape(
            what,
            format!("expected shape {want:?}, got {:?}", t.shape()),
        ));
    }
    Ok(())
}

/// The replay loss and its gradient. logits, stored, dlogits: [B, C] (rows `fresh..B` are
/// the replayed ones; `stored` is read there only); labels: [B] u32 (`PAD_LABEL` rows get
/// zero loss and gradient); loss: [B], per row its own term (see the shader's header).
#[allow(clippy::too_many_arguments)]
pub fn replay_loss_into(
    logits: &Tensor,
    stored: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dlogits: &Tensor,
    fresh: usize,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch> {
    let (rows, cols) = match logits.shape() {
        [r, c] => (*r, *c),
        s => {
            return Err(Error::shape(
                "replay loss",
                format!("logits must be [batch, classes], got {s:?}"),
            ))
        }
    };
    check("replay loss stored logits", stored, &[rows, cols])?;
    check("replay loss labels", labels, &[rows])?;
    labels.expect_dtype("replay loss labels", DType::U32)?;
    check("replay loss", loss, &[rows])?;
    check("replay loss gradient", dlogits, &[rows, cols])?;
    if fresh > rows {
        return Err(Error::shape(
            "replay loss",
            format!("{fresh} new rows in a batch of {rows}"),
        ));
    }
    for (name, w) in [("logit weight", alpha), ("label weight", beta)] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::invalid(
                "replay loss",
                format!("the {name} {w} must be a finite number ≥ 0"),
            ));
        }
    }
    let gpu = logits.gpu();
    let p = Params {
        rows: rows as u32,
        cols: cols as u32,
        fresh: fresh as u32,
        _pad: 0,
        alpha,
        beta,
        _pad1: [0.0; 2],
    };
    let binds = [
        Bind::T(logits),
        Bind::T(stored),
        Bind::T(labels),
        Bind::T(loss),
        Bind::T(dlogits),
    ];
    gpu.dispatch(&SHADER, "", "main", &p, &binds, gpu.grid(rows as u64)?)
}

/// f64 references.
pub mod reference {
    use crate::kernels::loss::PAD_LABEL;

    fn counts(labels: &[u32], fresh: usize) -> (f64, f64) {
        let n = |l: &[u32]| l.iter().filter(|&&y| y != PAD_LABEL).count().max(1) as f64;
        (n(&labels[..fresh]), n(&labels[fresh..]))
    }

    /// Per-row loss and the gradient of the batch objective (see the module's docs), for
    /// logits `z` given in f64 (the kernel's f32 inputs widened).
    pub fn replay_loss(
        z: &[f64],
        s: &[f32],
        labels: &[u32],
        cols: usize,
        fresh: usize,
        alpha: f64,
        beta: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let (n_new, n_rep) = counts(labels, fresh);
        let (mut loss, mut grad) = (Vec::new(), Vec::new());
        for (r, (zr, &y)) in z.chunks(cols).zip(labels).enumerate() {
            if y == PAD_LABEL {
                loss.push(0.0);
                grad.extend(zr.iter().map(|_| 0.0));
                continue;
            }
            let lp = log_softmax(zr);
            let ce = -lp[y as usize];
            let sr = &s[r * cols..(r + 1) * cols];
            let (a, b, n) = if r < fresh {
                (0.0, 1.0, n_new)
            } else {
                (alpha, beta, n_rep)
            };
            let sq: f64 = zr
                .iter()
                .zip(sr)
                .map(|(&v, &t)| (v - t as f64).powi(2))
                .sum();
            loss.push(b * ce + a * sq / cols as f64);
            for c in 0..cols {
                let onehot = if c == y as usize { 1.0 } else { 0.0 };
                let g = b * (lp[c].exp() - onehot) + 2.0 * a * (zr[c] - sr[c] as f64) / cols as f64;
                grad.push(g / n);
            }
        }
        (loss, grad)
    }

    fn log_softmax(row: &[f64]) -> Vec<f64> {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lse = m + row.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
        row.iter().map(|&v| v - lse).collect()
    }

    /// The batch objective L itself (for finite differences of the gradient).
    pub fn replay_objective(
        z: &[f64],
        s: &[f32],
        labels: &[u32],
        cols: usize,
        fresh: usize,
        alpha: f64,
        beta: f64,
    ) -> f64 {
        let (n_new, n_rep) = counts(labels, fresh);
        let mut total = 0.0;
        for (r, (zr, &y)) in z.chunks(cols).zip(labels).enumerate() {
            if y == PAD_LABEL {
                continue;
            }
            let ce = -log_softmax(zr)[y as usize];
            if r < fresh {
                total += ce / n_new;
            } else {
                let sq: f64 = zr
                    .iter()
                    .zip(&s[r * cols..(r + 1) * cols])
                    .map(|(&v, &t)| (v - t as f64).powi(2))
                    .sum();
                total += (alpha * sq / cols as f64 + beta * ce) / n_rep;
            }
        }
        total
    }
}
