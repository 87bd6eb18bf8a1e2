//! `shaders/step.wgsl`: the step counter.

use crate::cpu::{Call, Kernel};
use crate::error::Result;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    match (shader, entry) {
        ("step", "advance") => Some(advance),
        _ => None,
    }
}

/// `counter[0] += 1; counter[1] += 1` (wrapping, as u32 arithmetic in WGSL).
fn advance(call: &Call<'_>) -> Result<()> {
    let c = call.u32_mut(1)?;
    c[0] = c[0].wrapping_add(1);
    c[1] = c[1].wrapping_add(1);
    Ok(())
}
