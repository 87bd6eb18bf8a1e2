//! The f64 reference of matmul, and the error model of f16 operands with f32 sums that every
//! test and bench of an f16 GEMM (matmul's f16 tiles, the f16 convolution tiles) bounds its
//! results with.
//!
//! **One conversion f32 → f16.** WGSL rounds a value that f16 cannot represent to one of its
//! two f16 neighbours (not necessarily the nearest), and an implementation may flush f16
//! subnormals (|x| < 2⁻¹⁴) to zero. Between 2⁻¹⁴ and 65504 the neighbours are one f16 ulp
//! apart, and with an 11-bit significand ulp(x) = 2^(⌊log₂|x|⌋ − 10) ≤ 2⁻¹⁰·|x|; below 2⁻¹⁴
//! the result (a subnormal neighbour, 2⁻¹⁴, or a flushed 0) is within 2⁻¹⁴ of x. So
//! |fl16(x) − x| ≤ e(x) = 2⁻¹⁰·|x| + 2⁻¹⁴, and e(0) = 0 (0 converts exactly)
//! ([`f16_conversion_error`]). Values above 65504 in magnitude overflow: callers keep
//! operands below it.
//!
//! **A dot product of f16 operands summed in f32.** With a16 = fl16(a), b16 = fl16(b), the
//! product a16·b16 is exact in f32 (11 + 11 significant bits ≤ 24), and
//! a16·b16 − a·b = (a16 − a)·b + a·(b16 − b) + (a16 − a)·(b16 − b), so
//!
//! |Σ_k a16_k·b16_k − Σ_k a_k·b_k| ≤ Σ_k e(a_k)·|b_k| + |a_k|·e(b_k) + e(a_k)·e(b_k)
//!
//! ([`f16_product_bound`], per element of a product [`f16_matmul_bound`]). The f32 sum of the
//! exact products then adds the f32 chain's own error, γ·Σ_k |a16_k·b16_k| ≤
//! γ·Σ_k (|a_k| + e(a_k))·(|b_k| + e(b_k)), with the γ of the kernel's chain (the tests use
//! (K + 2)·2⁻²³ for K fused multiply-adds and the bias). For bilinear references other than a
//! plain product (convolutions), [`f16_operand_bounds`] gives e and |x| + e per operand, and
//! the three sums are the reference evaluated on (e_a, |b|), (|a|, e_b) and (e_a, e_b).

use crate::kernels::Activation;

/// `act(op(A)·op(B) + bias)` in f64, and `Σ_k |a_ik·b_kj|` per element (for error bounds).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut s_abs) = (0.0f64, 0.0f64);
            for kk in 0..k {
                let av = if trans_a {
                    a[kk * m + i]
                } else {
                    a[i * k + kk]
                } as f64;
                let bv = if trans_b {
                    b[j * k + kk]
                } else {
                    b[kk * n + j]
                } as f64;
                s += av * bv;
                s_abs += (av * bv).abs();
            }
            if let Some(bias) = bias {
                s += bias[j] as f64;
                s_abs += (bias[j] as f64).abs();
            }
            c[i * n + j] = act.forward_f64(s);
            mag[i * n + j] = s_abs;
        }
    }
    (c, mag)
}

/// 2⁻¹⁰: an f16 ulp relative to the value (11-bit significand), for normal f16 values.
pub const F16_RELATIVE_ERROR: f64 = 1.0 / 1024.0;
/// 2⁻¹⁴: the smallest normal f16; below it a conversion may flush to 0.
pub const F16_ABSOLUTE_ERROR: f64 = 1.0 / 16384.0;

/// e(x): the worst-case error of converting the f32 `x` to f16 in WGSL (module doc):
/// 2⁻¹⁰·|x| + 2⁻¹⁴, and 0 for 0.
pub fn f16_conversion_error(x: f32) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        (x as f64).abs() * F16_RELATIVE_ERROR + F16_ABSOLUTE_ERROR
    }
}

/// For the product of the f32 values `a` and `b` after both are converted to f16: the bound
/// e(a)·|b| + |a|·e(b) + e(a)·e(b) on |a16·b16 − a·b|, and (|a| + e(a))·(|b| + e(b)) ≥
/// |a16·b16|, the magnitude the f32 sum then works on.
pub fn f16_product_bound(a: f32, b: f32) -> (f64, f64) {
    let (av, bv) = (a as f64, b as f64);
    let (da, db) = (f16_conversion_error(a), f16_conversion_error(b));
    (
        da * bv.abs() + av.abs() * db + da * db,
        (av.abs() + da) * (bv.abs() + db),
    )
}

/// For each element of op(A)·op(B) (shapes as [`matmul`]): the sums over k of
/// [`f16_product_bound`] — the bound on |Σ a16·b16 − Σ a·b| from rounding the operands to f16,
/// and Σ |a16·b16|'s bound, to which the caller applies its f32 chain's γ.
#[allow(clippy::too_many_arguments)]
pub fn f16_matmul_bound(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut err = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut e, mut g) = (0.0, 0.0);
            for kk in 0..k {
                let av = if trans_a {
                    a[kk * m + i]
                } else {
                    a[i * k + kk]
                };
                let bv = if trans_b {
                    b[j * k + kk]
                } else {
                    b[kk * n + j]
                };
                let (de, dg) = f16_product_bound(av, bv);
                e += de;
                g += dg;
            }
            err[i * n + j] = e;
            mag[i * n + j] = g;
        }
    }
    (err, mag)
}

/// Per element of `v`: e(x) and |x| + e(x), as f32 rounded up (by a relative 10⁻⁶, far above
/// f32's rounding, so the bounds do not shrink), for references that take f32 operands: a
/// bilinear reference L with non-negative inputs gives the f16 rounding bound as
/// L(e_a, |b|) + L(|a|, e_b) + L(e_a, e_b) and the magnitude as L(|a| + e_a, |b| + e_b).
pub fn f16_operand_bounds(v: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let up = |x: f64| (x * (1.0 + 1e-6)) as f32;
    v.iter()
        .map(|&x| {
            let e = f16_conversion_error(x);
            (up(e), up((x as f64).abs() + e))
        })
        .unzip()
}

/// The f16 rounding bound of one dot product of `terms` products from its aggregates
/// Σ|a·b| and Σ(|a| + |b|), for checks that keep only those: Σ over the terms of
/// e(a)·|b| + |a|·e(b) + e(a)·e(b) with e(x) = 2⁻¹⁰|x| + 2⁻¹⁴ expands to
/// (2⁻⁹ + 2⁻²⁰)·Σ|a·b| + (2⁻¹⁴ + 2⁻²⁴)·Σ(|a| + |b|) + terms·2⁻²⁸ — exactly the sum of
/// [`f16_product_bound`]'s errors when no operand is 0, and above it otherwise (e(0) = 0).
pub fn f16_dot_bound(sum_abs_products: f64, sum_abs_operands: f64, terms: usize) -> f64 {
    (2f64.powi(-9) + 2f64.powi(-20)) * sum_abs_products
        + (2f64.powi(-14) + 2f64.powi(-24)) * sum_abs_operands
        + terms as f64 * 2f64.powi(-28)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every finite f16 value, decoded from its bits (sign, 5-bit exponent with bias 15,
    /// 10-bit fraction; exponent 0 is subnormal), sorted.
    fn all_f16() -> Vec<f64> {
        let mut v: Vec<f64> = (0u32..1 << 16)
            .filter(|bits| (bits >> 10) & 0x1f != 0x1f)
            .map(|bits| {
                let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
                let (exp, frac) = ((bits >> 10) & 0x1f, (bits & 0x3ff) as f64);
                sign * match exp {
                    0 => frac * 2f64.powi(-24),
                    e => (1.0 + frac / 1024.0) * 2f64.powi(e as i32 - 15),
                }
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Both f16 neighbours of x, and 0 where x could flush, lie within e(x), over a geometric
    /// sweep from 10⁻⁹ (subnormal and flushed) to 65504, both signs. (A relative term of 2⁻¹¹
    /// would fail just above each power of two, where the neighbours are 2⁻¹⁰|x| apart.)
    #[test]
    fn every_conversion_lies_within_the_model() {
        let f16 = all_f16();
        let mut x = 1.0e-9f32;
        let mut checked = 0;
        while x < 65504.0 {
            for v in [x, -x, x * 1.37, -x * 1.91] {
                if v.abs() >= 65504.0 {
                    continue;
                }
                let xv = v as f64;
                let hi = f16.partition_point(|&h| h < xv);
                let lo = f16.partition_point(|&h| h <= xv) - 1;
                let mut results = vec![f16[lo], f16[hi]];
                if xv.abs() < 2f64.powi(-14) {
                    results.push(0.0);
                }
                for r in results {
                    assert!((r - xv).abs() <= f16_conversion_error(v), "{v} -> {r}");
                }
                checked += 1;
            }
            x *= 1.1;
        }
        assert!(checked > 1000);
        assert_eq!(f16_conversion_error(0.0), 0.0);
        assert_eq!(f16_conversion_error(-0.0), 0.0);
    }

    /// The closed form the benches use is the per-product model summed (operands not 0), and
    /// above it where operands are 0.
    #[test]
    fn the_closed_form_is_the_summed_products() {
        let a = [0.75f32, -0.3, 1.5, -2.0e-5, 0.0];
        let b = [-0.5f32, 0.125, 3.0, 0.7, 0.9];
        for terms in [4, 5] {
            let (mut err, mut prod, mut ops) = (0.0, 0.0, 0.0);
            for (&x, &y) in a.iter().zip(&b).take(terms) {
                err += f16_product_bound(x, y).0;
                prod += (x as f64 * y as f64).abs();
                ops += (x as f64).abs() + (y as f64).abs();
            }
            let closed = f16_dot_bound(prod, ops, terms);
            if terms == 4 {
                assert!((closed - err).abs() <= 1e-15 * err, "{closed} vs {err}");
            } else {
                assert!(closed > err, "{closed} vs {err}");
            }
        }
        // The matmul bound is the per-product bound summed along k (A 1×2, B 2×1).
        let (e, g) = f16_matmul_bound(&a[..2], &b[..2], 1, 2, 1, false, false);
        let (p0, p1) = (f16_product_bound(a[0], b[0]), f16_product_bound(a[1], b[1]));
        assert_eq!((e[0], g[0]), (p0.0 + p1.0, p0.1 + p1.1));
    }
}
