//! Whether a model fits a device: its parameters, and its activations for a batch, must each
//! fit in one GPU buffer the kernels can bind. Checked before anything is allocated on the
//! host or the GPU, so an oversized model or batch gets a clear error instead of a device
//! failure.

use super::ModelSpec;
use crate::error::{Error, Result};

/// Refuses a model whose parameters, or whose activations for a batch of `batch` samples,
/// would not fit in one GPU buffer of `max_bytes` (the device's largest bindable buffer,
/// [`crate::Gpu::max_binding_bytes`]).
pub fn check_fits(spec: &ModelSpec, batch: usize, max_bytes: u64) -> Result<()> {
    let bytes = |shape: &[usize], rows: usize| {
        shape
            .iter()
            .try_fold(rows as u64 * 4, |a, &d| a.checked_mul(d as u64))
            .unwrap_or(u64::MAX)
    };
    let over = |what: String, needed: u64| {
        Err(Error::OverLimit {
            what,
            needed,
            limit: max_bytes,
            limit_name: "max_storage_buffer_binding_size",
        })
    };
    let input = bytes(&spec.input, batch);
    if input > max_bytes {
        return over(
            format!(
                "the input of a batch of {batch} ({batch} × {:?})",
                spec.input
            ),
            input,
        );
    }
    for (i, (layer, sh)) in spec.layers.iter().zip(spec.shapes()?).enumerate() {
        let kind = layer.kind();
        if let Some(w) = &sh.weight {
            let b = bytes(w, 1);
            if b > max_bytes {
                return over(format!("layer {i} ({kind}): its weight matrix {w:?}"), b);
            }
        }
        let b = bytes(&sh.output, batch);
        if b > max_bytes {
            return over(
                format!(
                    "layer {i} ({kind}): its output for a batch of {batch} ({batch} × {:?})",
                    sh.output
                ),
                b,
            );
        }
    }
    Ok(())
}

/// The largest batch of at most `want` samples (at least 1) whose activations fit, found by
/// halving: the inference batch rule's device half.
pub fn fitting_batch(spec: &ModelSpec, want: usize, max_bytes: u64) -> usize {
    let mut b = want.max(1);
    while b > 1 && check_fits(spec, b, max_bytes).is_err() {
        b /= 2;
    }
    b
}
