//! CPU twins of the loss and metric shaders: `loss_xent` (`main`, `with_metrics`),
//! `loss_mse` (`main`, `masked`), `loss_distill`, `loss_replay` and `metrics` (`classify`,
//! `regress`, `regress_labelled`).
//!
//! Each row's sums are folded as the shader's 64-thread workgroup folds them
//! ([`super::elementwise::rows::Lanes`]), padding rows (label 0xffffffff) get zero loss and
//! gradient, and a label ≥ C that is not padding makes the row NaN — exactly as in the WGSL.

use crate::cpu::Kernel;

mod distill;
mod metrics;
mod mse;
mod replay;
mod xent;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    Some(match (shader, entry) {
        ("loss_xent", "main") => xent::main,
        ("loss_xent", "with_metrics") => xent::with_metrics,
        ("loss_mse", "main") => mse::main,
        ("loss_mse", "masked") => mse::masked,
        ("loss_distill", "main") => distill::main,
        ("loss_replay", "main") => replay::main,
        ("metrics", "classify") => metrics::classify,
        ("metrics", "regress") => metrics::regress,
        ("metrics", "regress_labelled") => metrics::regress_labelled,
        _ => return None,
    })
}
