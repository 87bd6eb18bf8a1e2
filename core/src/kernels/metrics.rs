//! Loss and accuracy accumulated on the GPU over many steps (shaders/metrics.wgsl), read
//! back only at report points. `metrics` is [4] f32: (Σ loss, Σ correct, Σ samples, 0).

use super::shader;
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("metrics", "common", "row_reduce_lib");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) valid: u32,
    pub(crate) _pad: u32,
}

fn check(loss: &Tensor, metrics: &Tensor) -> Result<usize> {
    if metrics.len() != 4 || metrics.dtype() != DType::F32 {
        return Err(Error::shape(
            "metrics",
            format!("the accumulator must be [4] f32, got {:?}", metrics.shape()),
        ));
    }
    Ok(loss.len())
}

/// Adds a classification batch (rows labelled `PAD_LABEL` are skipped) to `metrics`.
pub fn classify_into(
    loss: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    metrics: &Tensor,
) -> Result<Dispatch> {
    let rows = check(loss, metrics)?;
    let (lr, cols) = logits.as_matrix();
    if lr != rows || labels.len() != rows || cols == 0 {
        return Err(Error::shape(
            "metrics",
            format!(
                "loss {:?}, logits {:?} and labels {:?} disagree",
                loss.shape(),
                logits.shape(),
                labels.shape()
            ),
        ));
    }
    labels.expect_dtype("metrics labels", DType::U32)?;
    let p = Params {
        rows: rows as u32,
        cols: cols as u32,
        valid: rows as u32,
        _pad: 0,
    };
    let binds = [
        Bind::T(loss),
        Bind::T(logits),
        Bind::T(labels),
        Bind::T(metrics),
    ];
    loss.gpu()
        .dispatch(&SHADER, "", "classify", &p, &binds, [1, 1, 1])
}

/// Adds the first `valid` rows of a regression batch's per-row losses to `metrics`.
pub fn regress_into(loss: &Tensor, valid: usize, metrics: &Tensor) -> Result<Dispatch> {
    let rows = check(loss, metrics)?;
    let p = Params {
        rows: rows as u32,
        cols: 0,
        valid: valid.min(rows) as u32,
        _pad: 0,
    };
    let binds = [Bind::T(loss), Bind::Skip, Bind::Skip, Bind::T(metrics)];
    loss.gpu()
        .dispatch(&SHADER, "", "regress", &p, &binds, [1, 1, 1])
}

/// Adds a regression batch's per-row losses to `metrics`, skipping rows labelled `PAD_LABEL`
/// (the padding of an epoch's last batch).
pub fn regress_labelled_into(loss: &Tensor, labels: &Tensor, metrics: &Tensor) -> Result<Dispatch> {
    let rows = check(loss, metrics)?;
    if labels.len() != rows {
        return Err(Error::shape(
            "metrics",
            format!(
                "loss {:?} and labels {:?} disagree",
                loss.shape(),
                labels.shape()
            ),
        ));
    }
    labels.expect_dtype("metrics labels", DType::U32)?;
    let p = Params {
        rows: rows as u32,
        cols: 0,
        valid: rows as u32,
        _pad: 0,
    };
    let binds = [Bind::T(loss), Bind::Skip, Bind::T(labels), Bind::T(metrics)];
    loss.gpu()
        .dispatch(&SHADER, "", "regress_labelled", &p, &binds, [1, 1, 1])
}
