//! Losses with their gradients, one row per sample.
//!
//! Softmax cross-entropy (labels as class indices, optional label smoothing ε):
//!   loss[r] = logsumexp(z_r) − Σ_c q_rc z_rc,   dz[r, c] = grad_scale·(softmax(z_r)_c − q_rc)
//! MSE: loss[r] = mean_c (y − t)²,   dy = 2(y − t)/(rows·cols)
//! The batch loss is the mean of `loss` (a row reduction), so nothing is read back per step.

use super::shader;
use super::softmax::RowParams;
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const XENT: Shader = shader!("loss_xent", "common", "row_reduce_lib");
pub const MSE: Shader = shader!("loss_mse", "common", "row_reduce_lib");
pub const DISTILL: Shader = shader!("loss_distill", "common", "row_reduce_lib");

/// Label value marking an unlabelled sample: distillation uses only its soft target.
pub const UNLABELLED: u32 = u32::MAX - 1;

fn check(op: &'static str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want {
        return Err(Error::shape(
            op,
            format!("expected shape {want:?}, got {:?}", t.shape()),
        ));
    }
    Ok(())
}

/// Label value marking a padding row: zero loss and gradient.
pub const PAD_LABEL: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct XentParams {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) smoothing: f32,
    pub(crate) grad_scale: f32,
    pub(crate) normalize: u32,
    pub(crate) _pad: [u32; 3],
}

/// How the cross-entropy gradient is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradScale {
    /// Multiply by this constant (e.g. 1/B).
    Fixed(f32),
    /// Gradient of the mean over the rows whose label is not [`PAD_LABEL`].
    MeanOverValid,
}

/// Fused softmax cross-entropy. logits, dlogits: [B, C]; labels: [B] u32; loss: [B].
/// Rows labelled [`PAD_LABEL`] get zero loss and gradient.
pub fn softmax_xent_into(
    logits: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dlogits: &Tensor,
    smoothing: f32,
    grad_scale: GradScale,
) -> Result<Dispatch> {
    let p = xent_params(logits, labels, loss, dlogits, smoothing, grad_scale)?;
    let gpu = logits.gpu();
    gpu.dispatch(
        &XENT,
        "",
        "main",
        &p,
        &[
            Bind::T(logits),
            Bind::T(labels),
            Bind::T(loss),
            Bind::T(dlogits),
        ],
        gpu.grid(p.rows as u64)?,
    )
}

/// Up to this many classes, a training step computes its cross-entropy and adds the epoch
/// metrics in one dispatch ([`softmax_xent_metrics_into`]); beyond it, a thread's serial
/// pass over a row would cost more than a dispatch, and the step uses [`softmax_xent_into`]
/// and `metrics::classify_into`.
pub const XENT_METRICS_MAX_CLASSES: usize = 64;

/// [`softmax_xent_into`] and `metrics::classify_into(loss, logits, labels, metrics)` in one
/// dispatch (one workgroup; each thread takes whole rows and sums their columns in order, so
/// the loss bits differ from [`softmax_xent_into`]'s tree sums). metrics: [4] f32, to which
/// (Σ loss, Σ correct, count) over the rows with a label below C are added.
pub fn softmax_xent_metrics_into(
    logits: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dlogits: &Tensor,
    smoothing: f32,
    grad_scale: GradScale,
    metrics: &Tensor,
) -> Result<Dispatch> {
    let p = xent_params(logits, labels, loss, dlogits, smoothing, grad_scale)?;
    if p.cols == 0 {
        return Err(Error::shape(
            "softmax cross-entropy metrics",
            "the logits need at least one class",
        ));
    }
    if metrics.len() != 4 || metrics.dtype() != DType::F32 {
        return Err(Error::shape(
            "softmax cross-entropy metrics",
            format!("the accumulator must be [4] f32, got {:?}", metrics.shape()),
        ));
    }
    logits.gpu().dispatch(
        &XENT,
        "",
        "with_metrics",
        &p,
        &[
            Bind::T(logits),
            Bind::T(labels),
            Bind::T(loss),
            Bind::T(dlogits),
            Bind::T(metrics),
        ],
        [1, 1, 1],
    )
}

/// The checked parameters of a softmax cross-entropy launch.
fn xent_params(
    logits: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dlogits: &Tensor,
    smoothing: f32,
    grad_scale: GradScale,
) -> Result<XentParams> {
    let (rows, cols) = match logits.shape() {
        [r, c] => (*r, *c),
        s => {
            return Err(Error::shape(
                "softmax cross-entropy",
                format!("logits must be [batch, classes], got {s:?}"),
            ))
        }
    };
    if !(0.0..1.0).contains(&smoothing) {
        return Err(Error::invalid(
            "label smoothing",
            format!("{smoothing} is outside [0, 1)"),
        ));
    }
    labels.expect_dtype("softmax cross-entropy labels", DType::U32)?;
    check("softmax cross-entropy labels", labels, &[rows])?;
    check("softmax cross-entropy loss", loss, &[rows])?;
    check("softmax cross-entropy gradient", dlogits, &[rows, cols])?;
    let (scale, normalize) = match grad_scale {
        GradScale::Fixed(s) => (s, 0),
        GradScale::MeanOverValid => (1.0, 1),
    };
    Ok(XentParams {
        rows: rows as u32,
        cols: cols as u32,
        smoothing,
        grad_scale: scale,
        normalize,
        _pad: [0; 3],
    })
}

/// Distillation: loss = α·CE(labels) + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)),
/// gradient averaged over non-padding rows. student, teacher, dstudent: [B, C]; labels [B];
/// loss [B]. Rows labelled [`UNLABELLED`] get only the soft term.
pub fn distill_into(
    student: &Tensor,
    teacher: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dstudent: &Tensor,
    alpha: f32,
    temperature: f32,
) -> Result<Dispatch> {
    let (rows, cols) = match student.shape() {
        [r, c] => (*r, *c),
        s => {
            return Err(Error::shape(
                "distillation",
                format!("student logits must be [batch, classes], got {s:?}"),
            ))
        }
    };
    check("distillation teacher logits", teacher, &[rows, cols])?;
    check("distillation labels", labels, &[rows])?;
    labels.expect_dtype("distillation labels", DType::U32)?;
    check("distillation loss", loss, &[rows])?;
    check("distillation gradient", dstudent, &[rows, cols])?;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::invalid(
            "distillation alpha",
            format!("{alpha} must be in [0, 1]"),
        ));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::invalid(
            "distillation temperature",
            format!("{temperature} must be positive"),
        ));
    }
    let gpu = student.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: alpha,
        b: temperature,
    };
    let binds = [
        Bind::T(student),
        Bind::T(teacher),
        Bind::T(labels),
        Bind::T(loss),
        Bind::T(dstudent),
    ];
    gpu.dispatch(&DISTILL, "", "main", &p, &binds, gpu.grid(rows as u64)?)
}

/// Mean squared error. y, target, dy: [B, D]; loss: [B] (per-row mean).
pub fn mse_into(y: &Tensor, target: &Tensor, loss: &Tensor, dy: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = y.as_matrix();
    check("mse target", target, y.shape())?;
    check("mse gradient", dy, y.shape())?;
    check("mse loss", loss, &[rows])?;
    let gpu = y.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: 1.0 / cols.max(1) as f32,
        b: 2.0 / (rows * cols).max(1) as f32,
    };
    gpu.dispatch(
        &MSE,
        "",
        "main",
        &p,
        &[Bind::T(y), Bind::T(target), Bind::T(loss), Bind::T(dy)],
        gpu.grid(rows as u64)?,
    )
}

/// MSE over the rows of a training batch whose label is not [`PAD_LABEL`]: those rows get
/// zero loss and gradient, the others loss[r] = mean_c (y − t)² and
/// dy = 2(y − t)/(valid·cols), the gradient of the mean over the valid rows.
pub fn mse_masked_into(
    y: &Tensor,
    target: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    dy: &Tensor,
) -> Result<Dispatch> {
    let (rows, cols) = y.as_matrix();
    check("mse target", target, y.shape())?;
    check("mse gradient", dy, y.shape())?;
    check("mse loss", loss, &[rows])?;
    check("mse labels", labels, &[rows])?;
    labels.expect_dtype("mse labels", DType::U32)?;
    let gpu = y.gpu();
    let p = RowParams {
        rows: rows as u32,
        cols: cols as u32,
        a: 1.0 / cols.max(1) as f32,
        b: 0.0,
    };
    let binds = [
        Bind::T(y),
        Bind::T(target),
        Bind::T(loss),
        Bind::T(dy),
        Bind::T(labels),
    ];
    gpu.dispatch(&MSE, "", "masked", &p, &binds, gpu.grid(rows as u64)?)
}

/// f64 references.
pub mod reference {
    /// Per-row loss and gradient of softmax cross-entropy with smoothing ε.
    pub fn softmax_xent(
        logits: &[f32],
        labels: &[u32],
        cols: usize,
        smoothing: f64,
        grad_scale: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut loss = Vec::new();
        let mut grad = Vec::new();
        for (row, &y) in logits.chunks(cols).zip(labels) {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            if y == super::PAD_LABEL {
                loss.push(0.0);
                grad.extend(row.iter().map(|_| 0.0));
                continue;
            }
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            let lse = m + s.ln();
            let q = |c: usize| {
                (1.0 - smoothing) * f64::from(u8::from(c == y as usize)) + smoothing / cols as f64
            };
            loss.push(
                lse - row
                    .iter()
                    .enumerate()
                    .map(|(c, &z)| q(c) * z as f64)
                    .sum::<f64>(),
            );
            grad.extend(
                row.iter()
                    .enumerate()
                    .map(|(c, &z)| grad_scale * ((z as f64 - lse).exp() - q(c))),
            );
        }
        (loss, grad)
    }

    /// Per-row distillation loss and its gradient (mean over non-padding rows).
    pub fn distill(
        z: &[f32],
        t: &[f32],
        labels: &[u32],
        cols: usize,
        alpha: f64,
        temp: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let valid = labels
            .iter()
            .filter(|&&l| l != super::PAD_LABEL)
            .count()
            .max(1) as f64;
        let softmax = |row: &[f32], scale: f64| -> Vec<f64> {
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64 * scale));
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 * scale - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        let (mut loss, mut grad) = (Vec::new(), Vec::new());
        for ((zr, tr), &y) in z.chunks(cols).zip(t.chunks(cols)).zip(labels) {
            if y == super::PAD_LABEL {
                loss.push(0.0);
                grad.extend(zr.iter().map(|_| 0.0));
                continue;
            }
            let labelled = (y as usize) < cols;
            let a = if labelled { alpha } else { 0.0 };
            let (p, ps, pt) = (
                softmax(zr, 1.0),
                softmax(zr, 1.0 / temp),
                softmax(tr, 1.0 / temp),
            );
            let hard = if labelled { -p[y as usize].ln() } else { 0.0 };
            let kl: f64 = pt.iter().zip(&ps).map(|(a, b)| a * (a.ln() - b.ln())).sum();
            loss.push(a * hard + (1.0 - a) * temp * temp * kl);
            for c in 0..cols {
                let onehot = if c == y as usize { 1.0 } else { 0.0 };
                grad.push((a * (p[c] - onehot) + (1.0 - a) * temp * (ps[c] - pt[c])) / valid);
            }
        }
        (loss, grad)
    }

    /// Per-row mean squared error and the gradient of the overall mean.
    pub fn mse(y: &[f32], t: &[f32], cols: usize) -> (Vec<f64>, Vec<f64>) {
        let n = y.len() as f64;
        let loss = y
            .chunks(cols)
            .zip(t.chunks(cols))
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
                    .sum::<f64>()
                    / cols as f64
            })
            .collect();
        let grad = y
            .iter()
            .zip(t)
            .map(|(&p, &q)| 2.0 * (p as f64 - q as f64) / n)
            .collect();
        (loss, grad)
    }
}
