//! `shaders/axpy.wgsl` and `shaders/binary.wgsl`: scaled updates and binary operations.

use super::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::elementwise::{AxpyParams, BinParams};

/// `y[i] = fma(alpha, x[i], y[i])` (a fused multiply-add, as the shader's `fma`).
fn axpy_loop(alpha: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features the function is compiled for (checked).
        unsafe { axpy_fma(alpha, x, y) };
        return;
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = alpha.mul_add(v, *o);
    }
}

/// [`axpy_loop`] compiled with FMA, so `mul_add` is one vector instruction (without the
/// feature it is a libm call per element); the results are the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn axpy_fma(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = alpha.mul_add(v, *o);
    }
}

/// Entry `axpy`: `y = alpha·x + y` in place. Bindings 1 x, 2 y.
pub(super) fn axpy(call: &Call<'_>) -> Result<()> {
    let p: AxpyParams = call.params()?;
    let n = p.n as usize;
    let x = take(call, "x", call.f32(1)?, n)?;
    let y = take_mut(call, "y", call.f32_mut(2)?, n)?;
    axpy_loop(p.alpha, x, y);
    Ok(())
}

/// Entry `scale`: `y = alpha·x`. Bindings 1 x, 2 y.
pub(super) fn scale(call: &Call<'_>) -> Result<()> {
    let p: AxpyParams = call.params()?;
    let n = p.n as usize;
    let x = take(call, "x", call.f32(1)?, n)?;
    let y = take_mut(call, "y", call.f32_mut(2)?, n)?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = p.alpha * v;
    }
    Ok(())
}

/// Entry `binary`: `out = x OP y` (OP 0 add, 1 sub, anything else mul). Bindings 1 x, 2 y,
/// 3 out.
pub(super) fn binary(call: &Call<'_>) -> Result<()> {
    let p: BinParams = call.params()?;
    let op = call.consts.u32("OP")?;
    let n = p.n as usize;
    let x = take(call, "x", call.f32(1)?, n)?;
    let y = take(call, "y", call.f32(2)?, n)?;
    let out = take_mut(call, "out", call.f32_mut(3)?, n)?;
    let it = out.iter_mut().zip(x.iter().zip(y));
    match op {
        0 => it.for_each(|(o, (&a, &b))| *o = a + b),
        1 => it.for_each(|(o, (&a, &b))| *o = a - b),
        _ => it.for_each(|(o, (&a, &b))| *o = a * b),
    }
    Ok(())
}

/// Entry `bias_add`: `out[r, c] = x[r, c] + y[c]`, x and out viewed as [n / cols, cols].
/// Bindings 1 x, 2 y (the bias), 3 out.
pub(super) fn bias_add(call: &Call<'_>) -> Result<()> {
    let p: BinParams = call.params()?;
    let (n, cols) = (p.n as usize, p.cols as usize);
    let x = take(call, "x", call.f32(1)?, n)?;
    let out = take_mut(call, "out", call.f32_mut(3)?, n)?;
    if n == 0 {
        return Ok(());
    }
    if cols == 0 {
        return Err(super::short(call, "bias (0 columns)", 1, 0));
    }
    let bias = take(call, "bias", call.f32(2)?, cols)?;
    for (orow, xrow) in out.chunks_mut(cols).zip(x.chunks(cols)) {
        for ((o, &a), &b) in orow.iter_mut().zip(xrow).zip(bias) {
            *o = a + b;
        }
    }
    Ok(())
}
