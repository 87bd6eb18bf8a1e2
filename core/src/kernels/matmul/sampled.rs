//! A check of a product C = A·B of square n×n matrices on a sample of its rows against the
//! f64 reference, for sizes where computing all of C on the host is too slow (the matmul
//! bench's correctness check), with f32 or f16-operand tolerances from the error model in
//! [`super::reference`].

use super::reference;
use super::Precision;
use crate::kernels::Activation;

/// The rows of C that are checked, their f64 reference values and Σ|a·b|, and per element
/// Σ_k (|a_ik| + |b_kj|) (for the f16 bound).
pub struct SampledProduct {
    /// The checked rows.
    pub rows: Vec<usize>,
    values: Vec<Vec<f64>>,
    magnitudes: Vec<Vec<f64>>,
    abs_sums: Vec<Vec<f64>>,
}

impl SampledProduct {
    /// The f64 reference for the sampled rows of A·B (A and B n×n, row-major).
    pub fn of(a: &[f32], b: &[f32], n: usize, rows: Vec<usize>) -> SampledProduct {
        let (values, magnitudes) = rows
            .iter()
            .map(|&i| {
                let a_row = &a[i * n..(i + 1) * n];
                reference::matmul(a_row, b, None, 1, n, n, false, false, Activation::Identity)
            })
            .unzip();
        let mut col_abs = vec![0.0f64; n];
        for row in b.chunks_exact(n) {
            for (s, &v) in col_abs.iter_mut().zip(row) {
                *s += f64::from(v.abs());
            }
        }
        let abs_sums = rows
            .iter()
            .map(|&i| {
                let row_abs: f64 = a[i * n..(i + 1) * n]
                    .iter()
                    .map(|v| f64::from(v.abs()))
                    .sum();
                col_abs.iter().map(|c| row_abs + c).collect()
            })
            .collect();
        SampledProduct {
            rows,
            values,
            magnitudes,
            abs_sums,
        }
    }

    /// Compares the sampled rows of `c` (row-major, `n` columns, inner dimension `k`) with the
    /// reference: correct when every |c - ref| <= (k + 2)·2^-23·Σ|a·b| — for f16 variants
    /// applied to the rounded operands, plus the rounding itself: with |x16 − x| ≤ 2^-10|x| +
    /// 2^-14 per operand, Σ|a16·b16 − a·b| is at most (2^-9 + 2^-20)·Σ|a·b| plus
    /// (2^-14 + 2^-24)·Σ(|a| + |b|) plus k·2^-28 (matmul's f16 model, `reference::f16_dot_bound`).
    /// Also returns the largest |c - ref| / Σ|a·b| (infinite for a NaN or a non-zero
    /// error where Σ|a·b| = 0).
    pub fn check(&self, c: &[f32], n: usize, k: usize, precision: Precision) -> (bool, f64) {
        let expected = self;
        let factor = (k as f64 + 2.0) * f64::from(f32::EPSILON);
        let mut correct = true;
        let mut max_rel = 0.0f64;
        for (((&i, values), mags), abs_sums) in expected
            .rows
            .iter()
            .zip(&expected.values)
            .zip(&expected.magnitudes)
            .zip(&expected.abs_sums)
        {
            for (j, ((&want, &mag), &abs_sum)) in values.iter().zip(mags).zip(abs_sums).enumerate()
            {
                let input = match precision {
                    Precision::F32 => 0.0,
                    Precision::F16 => reference::f16_dot_bound(mag, abs_sum, k),
                };
                // A NaN or infinite output makes `err` NaN or infinite: never within tolerance.
                let err = (f64::from(c[i * n + j]) - want).abs();
                let within = err <= input + factor * (mag + input);
                correct &= within;
                let rel = if err.is_nan() {
                    f64::INFINITY
                } else if mag > 0.0 {
                    err / mag
                } else if err == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                };
                max_rel = max_rel.max(rel);
            }
        }
        (correct, max_rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected_for(a: &[f32], b: &[f32], n: usize) -> SampledProduct {
        SampledProduct::of(a, b, n, (0..n).collect())
    }

    #[test]
    fn check_accepts_exact_and_rejects_wrong_or_nan() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [0.5f32, -1.0, 0.25, 2.0];
        let e = expected_for(&a, &b, 2);
        let good = [1.0f32, 3.0, 2.5, 5.0];
        assert_eq!(e.check(&good, 2, 2, Precision::F32), (true, 0.0));
        let mut off = good;
        off[3] += 0.01;
        let (ok, rel) = e.check(&off, 2, 2, Precision::F32);
        assert!(!ok && rel > 5e-4, "{rel}");
        let mut nan = good;
        nan[0] = f32::NAN;
        assert_eq!(e.check(&nan, 2, 2, Precision::F32), (false, f64::INFINITY));
        // f16 operand rounding (~1e-3 relative) passes the f16 bound but not the f32 one.
        let mut rounded = good;
        rounded[3] *= 1.0 + 1.0 / 1024.0;
        assert!(!e.check(&rounded, 2, 2, Precision::F32).0);
        assert!(e.check(&rounded, 2, 2, Precision::F16).0);
        // 0.01 is within the f16 bound for Σ|a·b| = 11 (2^-9·11 ≈ 0.021), 0.1 is not.
        assert!(e.check(&off, 2, 2, Precision::F16).0);
        let mut far = good;
        far[3] += 0.1;
        assert!(!e.check(&far, 2, 2, Precision::F16).0);
    }
}
