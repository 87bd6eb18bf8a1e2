//! Kernels that keep training state beside the update: EWC's Fisher and penalty
//! (`shaders/ewc_fisher.wgsl`, `ewc_penalty.wgsl`) and dynamic loss scaling
//! (`loss_scale.wgsl`).

use super::{bad, Segs};
use crate::cpu::{Call, Kernel};
use crate::error::Result;
use crate::kernels::ewc::Params as EwcParams;
use crate::kernels::loss_scale::Params as ScaleParams;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    match (shader, entry) {
        ("ewc_fisher", "accumulate") => Some(fisher_accumulate),
        ("ewc_fisher", "finish") => Some(fisher_finish),
        ("ewc_penalty", "main") => Some(penalty),
        ("loss_scale", "scale") => Some(scale),
        ("loss_scale", "unscale") => Some(unscale),
        ("loss_scale", "update") => Some(update),
        _ => None,
    }
}

/// `p.n`, checked against the lengths of the bindings it indexes.
fn count(call: &Call<'_>, n: u32, lens: &[usize]) -> Result<usize> {
    let n = n as usize;
    match lens.iter().find(|&&l| l < n) {
        Some(l) => Err(bad(call, format!("n {n} exceeds a {l}-element binding"))),
        None => Ok(n),
    }
}

/// acc = fma(g, g, acc).
fn fisher_accumulate(call: &Call<'_>) -> Result<()> {
    let p: EwcParams = call.params()?;
    let g = call.f32(1)?;
    let acc = call.f32_mut(2)?;
    let n = count(call, p.n, &[g.len(), acc.len()])?;
    for (a, &v) in acc[..n].iter_mut().zip(&g[..n]) {
        *a = v.mul_add(v, *a);
    }
    Ok(())
}

/// fisher = fma(decay, fisher, scale·acc); anchor = values; acc = 0.
fn fisher_finish(call: &Call<'_>) -> Result<()> {
    let p: EwcParams = call.params()?;
    let values = call.f32(1)?;
    let acc = call.f32_mut(2)?;
    let fisher = call.f32_mut(3)?;
    let anchor = call.f32_mut(4)?;
    let n = count(
        call,
        p.n,
        &[values.len(), acc.len(), fisher.len(), anchor.len()],
    )?;
    let (decay, scale) = (p.a, p.b);
    for i in 0..n {
        fisher[i] = decay.mul_add(fisher[i], scale * acc[i]);
        anchor[i] = values[i];
        acc[i] = 0.0;
    }
    Ok(())
}

/// grads = fma(λ·F, θ − θ*, grads).
fn penalty(call: &Call<'_>) -> Result<()> {
    let p: EwcParams = call.params()?;
    let values = call.f32(1)?;
    let fisher = call.f32(2)?;
    let anchor = call.f32(3)?;
    let grads = call.f32_mut(4)?;
    let n = count(
        call,
        p.n,
        &[values.len(), fisher.len(), anchor.len(), grads.len()],
    )?;
    let weight = p.a;
    for i in 0..n {
        grads[i] = (weight * fisher[i]).mul_add(values[i] - anchor[i], grads[i]);
    }
    Ok(())
}

/// 2⁻²⁴ and 2²⁴, the bounds of S.
const MIN_SCALE: f32 = 5.960_464_5e-8;
const MAX_SCALE: f32 = 16_777_216.0;

/// The scaler's S.
fn scale_of(call: &Call<'_>, scaler: &[u32]) -> Result<f32> {
    scaler
        .first()
        .map(|&b| f32::from_bits(b))
        .ok_or_else(|| bad(call, "empty loss scaler"))
}

/// x ×= S.
fn scale(call: &Call<'_>) -> Result<()> {
    let p: ScaleParams = call.params()?;
    let x = call.f32_mut(1)?;
    let s = scale_of(call, call.u32(2)?)?;
    let n = count(call, p.n, &[x.len()])?;
    for v in &mut x[..n] {
        *v *= s;
    }
    Ok(())
}

/// The listed gradient segments ×= 1/S; a non-finite result sets counter[2].
fn unscale(call: &Call<'_>) -> Result<()> {
    let p: ScaleParams = call.params()?;
    let x = call.f32_mut(1)?;
    let s = scale_of(call, call.u32(2)?)?;
    let counter = call.u32_mut(3)?;
    if counter.len() < 3 {
        return Err(bad(call, "step counter needs 3 or more elements"));
    }
    let segs = Segs::new(call, call.u32(4)?, p.segments)?;
    let inv = 1.0 / s;
    let len = x.len();
    let mut flag = false;
    for grp in 0..p.n {
        segs.group(call, grp, len, |_, i, _| {
            let g = x[i] * inv;
            x[i] = g;
            flag |= g.to_bits() & 0x7f80_0000 == 0x7f80_0000;
        })?;
    }
    if flag {
        counter[2] |= 1;
    }
    Ok(())
}

/// After the optimizer: S backs off (flag set) or grows after `interval` clean steps; the
/// flag is cleared.
fn update(call: &Call<'_>) -> Result<()> {
    let p: ScaleParams = call.params()?;
    let scaler = call.u32_mut(2)?;
    let counter = call.u32_mut(3)?;
    if scaler.len() < 3 || counter.len() < 3 {
        return Err(bad(call, "scaler and step counter need 3 or more elements"));
    }
    let mut s = f32::from_bits(scaler[0]);
    if counter[2] != 0 {
        s = (s * p.backoff).max(MIN_SCALE);
        scaler[1] = 0;
        scaler[2] = scaler[2].wrapping_add(1);
    } else {
        scaler[1] = scaler[1].wrapping_add(1);
        if scaler[1] >= p.interval {
            s = (s * p.growth).min(MAX_SCALE);
            scaler[1] = 0;
        }
    }
    scaler[0] = s.to_bits();
    counter[2] = 0;
    Ok(())
}
