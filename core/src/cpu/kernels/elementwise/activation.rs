//! `shaders/activation.wgsl` with `shaders/lib/activation_fns.wgsl`: activation layers.
//!
//! [`act_forward`] and [`act_grad`] are the library's functions (same codes, same stable
//! forms), usable by any CPU kernel with a fused activation.

use super::take;
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::activation::Params;

const GELU_C: f32 = 0.797_884_6; // √(2/π)
const GELU_A: f32 = 0.044715;

/// tanh that never overflows: tanh(±15) is ±1 to f32 precision.
#[inline(always)]
fn safe_tanh(x: f32) -> f32 {
    x.clamp(-15.0, 15.0).tanh()
}

/// Stable logistic: never evaluates e^{+large}.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `f(x)` for activation `code` (0 identity, 1 relu, 2 leaky relu, 3 elu, 4 gelu (tanh
/// form), 5 sigmoid, 6 tanh; any other code is the identity, as in the WGSL).
#[inline(always)]
pub(crate) fn act_forward(code: u32, x: f32, alpha: f32) -> f32 {
    match code {
        1 => x.max(0.0),
        2 => {
            if x > 0.0 {
                x
            } else {
                alpha * x
            }
        }
        3 => {
            if x > 0.0 {
                x
            } else {
                alpha * (x.exp() - 1.0)
            }
        }
        4 => {
            let t = safe_tanh(GELU_C * (x + GELU_A * x * x * x));
            0.5 * x * (1.0 + t)
        }
        5 => sigmoid(x),
        6 => safe_tanh(x),
        _ => x,
    }
}

/// `f'(x)`, the derivative with respect to the pre-activation.
#[inline(always)]
pub(crate) fn act_grad(code: u32, x: f32, alpha: f32) -> f32 {
    match code {
        1 => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        2 => {
            if x > 0.0 {
                1.0
            } else {
                alpha
            }
        }
        3 => {
            if x > 0.0 {
                1.0
            } else {
                alpha * x.exp()
            }
        }
        4 => {
            let u = GELU_C * (x + GELU_A * x * x * x);
            let t = safe_tanh(u);
            let du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
        }
        5 => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        6 => {
            let t = safe_tanh(x);
            1.0 - t * t
        }
        _ => 1.0,
    }
}

/// `out[i] = f(x[i])`, one loop per code so each is compiled (and vectorized) on its own.
fn forward_code<const CODE: u32>(x: &[f32], out: &mut [f32], alpha: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = act_forward(CODE, v, alpha);
    }
}

/// `xs[i] = f(xs[i])`.
fn in_place_code<const CODE: u32>(xs: &mut [f32], alpha: f32) {
    for v in xs.iter_mut() {
        *v = act_forward(CODE, *v, alpha);
    }
}

/// `dx[i] = dy[i] · f'(x[i])`.
fn backward_code<const CODE: u32>(x: &[f32], dy: &[f32], dx: &mut [f32], alpha: f32) {
    for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
        *o = g * act_grad(CODE, v, alpha);
    }
}

/// `xs[i] = f(xs[i])` for activation `code`, the `match` resolved once per slice (the same
/// bits as [`act_forward`] per element).
pub(crate) fn act_forward_slice(code: u32, xs: &mut [f32], alpha: f32) {
    let f = match code {
        1 => in_place_code::<1>,
        2 => in_place_code::<2>,
        3 => in_place_code::<3>,
        4 => in_place_code::<4>,
        5 => in_place_code::<5>,
        6 => in_place_code::<6>,
        _ => return,
    };
    f(xs, alpha)
}

/// `out[i] = d[i] · f'(z[i])` for activation `code` (`out = d` for the identity).
pub(crate) fn act_grad_mul(code: u32, d: &[f32], z: &[f32], alpha: f32, out: &mut [f32]) {
    let f = match code {
        1 => backward_code::<1>,
        2 => backward_code::<2>,
        3 => backward_code::<3>,
        4 => backward_code::<4>,
        5 => backward_code::<5>,
        6 => backward_code::<6>,
        _ => {
            out.copy_from_slice(d);
            return;
        }
    };
    f(z, d, out, alpha)
}

/// Entry `forward`: bindings 1 x, 3 out.
pub(super) fn forward(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let code = call.consts.u32("ACT")?;
    let n = p.n as usize;
    let x = take(call, "x", call.f32(1)?, n)?;
    let out = &mut call.f32_mut(3)?[..];
    let out = super::take_mut(call, "out", out, n)?;
    let f = match code {
        1 => forward_code::<1>,
        2 => forward_code::<2>,
        3 => forward_code::<3>,
        4 => forward_code::<4>,
        5 => forward_code::<5>,
        6 => forward_code::<6>,
        _ => forward_code::<0>,
    };
    f(x, out, p.alpha);
    Ok(())
}

/// Entry `backward`: bindings 1 x, 2 dy, 3 out (= dx).
pub(super) fn backward(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let code = call.consts.u32("ACT")?;
    let n = p.n as usize;
    let x = take(call, "x", call.f32(1)?, n)?;
    let dy = take(call, "dy", call.f32(2)?, n)?;
    let dx = super::take_mut(call, "dx", call.f32_mut(3)?, n)?;
    act_grad_mul(code, dy, x, p.alpha, dx);
    Ok(())
}
