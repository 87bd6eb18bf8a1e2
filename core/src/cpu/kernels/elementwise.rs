//! CPU twins of the element-wise, row-reduction, gather and RNG shaders:
//! `activation`, `axpy`, `binary`, `softmax`, `reduce` (serial `cols`; the subgroup kernel is
//! never chosen on the CPU device, which has no subgroups), `argmax`, `gather` and `rng`.
//!
//! The row reductions fold each row the way the WGSL does (RW = 64 strided partials combined
//! by the same fixed binary tree, see [`rows`]), so sums are the shader's sums; only the
//! transcendental functions (exp, log, tanh, cos) may differ from a GPU's in the last bits.

use crate::cpu::{Call, Kernel};
use crate::error::{Error, Result};

mod activation;
pub(super) use activation::{act_forward_slice, act_grad_mul};
mod basic;
mod gather;
mod rng;
pub(super) mod rows;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    Some(match (shader, entry) {
        ("activation", "forward") => activation::forward,
        ("activation", "backward") => activation::backward,
        ("axpy", "axpy") => basic::axpy,
        ("axpy", "scale") => basic::scale,
        ("binary", "binary") => basic::binary,
        ("binary", "bias_add") => basic::bias_add,
        ("softmax", "main") => rows::softmax,
        ("reduce", "rows") => rows::reduce_rows,
        ("reduce", "cols") => rows::reduce_cols,
        ("argmax", "main") => rows::argmax,
        ("gather", "main") => gather::main,
        ("gather", "pair") => gather::pair,
        ("rng", "draw_uniform") => rng::draw_uniform,
        ("rng", "draw_normal") => rng::draw_normal,
        ("rng", "draw_bernoulli") => rng::draw_bernoulli,
        _ => return None,
    })
}

/// The error for a binding shorter than the parameters say (a launcher bug or a bad
/// recorded program), naming the kernel and the binding.
pub(super) fn short(call: &Call<'_>, what: &str, need: usize, have: usize) -> Error {
    call.bug(format!(
        "{what} needs {need} elements, the binding has {have}"
    ))
}

/// `&s[..n]`, or the error naming the binding when it is shorter.
pub(super) fn take<'a, T>(call: &Call<'_>, what: &str, s: &'a [T], n: usize) -> Result<&'a [T]> {
    s.get(..n).ok_or_else(|| short(call, what, n, s.len()))
}

/// `&mut s[..n]`, or the error naming the binding when it is shorter.
pub(super) fn take_mut<'a, T>(
    call: &Call<'_>,
    what: &str,
    s: &'a mut [T],
    n: usize,
) -> Result<&'a mut [T]> {
    let have = s.len();
    s.get_mut(..n).ok_or_else(|| short(call, what, n, have))
}
