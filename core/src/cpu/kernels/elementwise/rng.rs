//! `shaders/rng.wgsl`: Philox4x32-10 draws keyed by (seed) at counter (i, stream, offset +
//! counter[1], 0) — the same words as the shader's, bit for bit ([`crate::kernels::rng::philox`]
//! is the CPU twin of `lib/philox.wgsl`), so dropout masks match every device's exactly.
//! Uniform values use the same integer → f32 conversion; normal values use f32 Box–Muller as
//! the shader does, with the host's `ln`, `sqrt` and `cos` (last-bit differences from a GPU).

use super::take_mut;
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::rng::{philox, u01, Params};

/// The Philox words of element `i` under `p`, `step` being `counter[1]`.
#[inline]
fn draw(p: &Params, step: u32, i: u32) -> [u32; 4] {
    philox(
        [i, p.stream, p.offset.wrapping_add(step), 0],
        [p.seed_lo, p.seed_hi],
    )
}

/// `(params, counter[1], out)`; a dummy counter (a one-off draw) reads 0, as on the GPU.
fn setup<'a>(call: &Call<'a>) -> Result<(Params, u32, &'a mut [f32])> {
    let p: Params = call.params()?;
    let c = call.u32(2)?;
    let step = if c.is_empty() {
        0
    } else {
        *c.get(1)
            .ok_or_else(|| super::short(call, "the step counter", 2, c.len()))?
    };
    let out = take_mut(call, "out", call.f32_mut(1)?, p.n as usize)?;
    Ok((p, step, out))
}

/// Entry `draw_uniform`: `out[i] = a + (b − a)·u01(w.x)`.
pub(super) fn draw_uniform(call: &Call<'_>) -> Result<()> {
    let (p, step, out) = setup(call)?;
    for (i, o) in out.iter_mut().enumerate() {
        *o = p.a + (p.b - p.a) * u01(draw(&p, step, i as u32)[0]);
    }
    Ok(())
}

/// Entry `draw_normal`: `out[i] = a + b·√(−2 ln u1)·cos(2π u2)`, u1 = 1 − u01(w.x), u2 = u01(w.y).
pub(super) fn draw_normal(call: &Call<'_>) -> Result<()> {
    let (p, step, out) = setup(call)?;
    for (i, o) in out.iter_mut().enumerate() {
        let w = draw(&p, step, i as u32);
        let u1 = 1.0 - u01(w[0]);
        let u2 = u01(w[1]);
        *o = p.a + p.b * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
    }
    Ok(())
}

/// Entry `draw_bernoulli`: `out[i] = (w.x >> 8) ≥ threshold ? a : 0` (an integer decision).
pub(super) fn draw_bernoulli(call: &Call<'_>) -> Result<()> {
    let (p, step, out) = setup(call)?;
    for (i, o) in out.iter_mut().enumerate() {
        *o = if (draw(&p, step, i as u32)[0] >> 8) >= p.threshold {
            p.a
        } else {
            0.0
        };
    }
    Ok(())
}
