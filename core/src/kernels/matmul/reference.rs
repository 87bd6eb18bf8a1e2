//! f64 references.

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
