//! Elementwise kernels, activations and softmax against f64 references on awkward sizes,
//! with NaN-poisoned outputs.
//!
//! Tolerances: one rounded f32 operation is within 2⁻²⁴·|result| (half an ULP); fma-based
//! axpy likewise. Activations use WGSL's accuracy for exp (3 + 2|x| ULP), propagated
//! through the formula with a unit floor, since tanh/sigmoid/ELU/GELU are built from exp.

use accrete::kernels::activation;
use accrete::kernels::elementwise::{axpy_into, bias_add_into, binary_into, scale_into, BinaryOp};
use accrete::kernels::softmax::{self, softmax_into};
use accrete::kernels::Activation;
use accrete_tests::*;

const SIZES: [usize; 6] = [1, 7, 255, 256, 257, 1000];

#[test]
fn binary_ops() {
    for (s, &n) in SIZES.iter().enumerate() {
        let mut r = rng(10 + s as u64);
        let x = uniform(&mut r, n, -4.0, 4.0);
        let y = uniform(&mut r, n, -4.0, 4.0);
        let (tx, ty) = (upload(&[n], &x), upload(&[n], &y));
        for op in BinaryOp::ALL {
            let out = poisoned(&[n]);
            gpu()
                .run(&[&binary_into(op, &tx, &ty, &out).unwrap()])
                .unwrap();
            let want: Vec<f64> = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| op.apply_f64(a as f64, b as f64))
                .collect();
            assert_close(&format!("{op:?} n={n}"), &read(&out), &want, |i| {
                0.5 * EPS * want[i].abs()
            });
        }
    }
}

#[test]
fn bias_add_scale_axpy() {
    for &(rows, cols) in &[(1, 1), (7, 13), (33, 10), (300, 3)] {
        let mut r = rng(rows as u64 * 31 + cols as u64);
        let x = uniform(&mut r, rows * cols, -2.0, 2.0);
        let b = uniform(&mut r, cols, -2.0, 2.0);
        let tx = upload(&[rows, cols], &x);
        let out = poisoned(&[rows, cols]);
        gpu()
            .run(&[&bias_add_into(&tx, &upload(&[cols], &b), &out).unwrap()])
            .unwrap();
        let want: Vec<f64> = (0..rows * cols)
            .map(|i| x[i] as f64 + b[i % cols] as f64)
            .collect();
        assert_close("bias_add", &read(&out), &want, |i| {
            0.5 * EPS * want[i].abs()
        });

        let out = poisoned(&[rows, cols]);
        gpu()
            .run(&[&scale_into(-1.75, &tx, &out).unwrap()])
            .unwrap();
        let want: Vec<f64> = x.iter().map(|&v| -1.75 * v as f64).collect();
        assert_close("scale", &read(&out), &want, |i| 0.5 * EPS * want[i].abs());

        let y = uniform(&mut r, rows * cols, -2.0, 2.0);
        let ty = upload(&[rows, cols], &y);
        gpu().run(&[&axpy_into(0.3, &tx, &ty).unwrap()]).unwrap();
        let want: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| 0.3f32 as f64 * a as f64 + b as f64)
            .collect();
        assert_close("axpy", &read(&ty), &want, |i| {
            0.5 * EPS * want[i].abs() + EPS * 0.3 * x[i].abs() as f64
        });
    }
}

#[test]
fn bias_add_rejects_a_mismatched_bias() {
    let x = upload(&[4, 3], &[0.0; 12]);
    let out = poisoned(&[4, 3]);
    let err = bias_add_into(&x, &upload(&[4], &[0.0; 4]), &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not match the last dimension"),
        "{err}"
    );
}

/// Inputs covering both branches, zero, and the saturated tails.
fn activation_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut x = uniform(&mut rng(seed), n, -8.0, 8.0);
    x.extend([0.0, -0.0, 1e-7, -1e-7, 20.0, -20.0, 90.0, -90.0]);
    x
}

#[test]
fn activations_forward_and_backward() {
    for (s, act) in Activation::ALL.iter().enumerate() {
        let x = activation_inputs(1000, 40 + s as u64);
        let n = x.len();
        let tx = upload(&[n], &x);
        let out = poisoned(&[n]);
        gpu()
            .run(&[&activation::forward_into(*act, &tx, &out).unwrap()])
            .unwrap();
        let want: Vec<f64> = x.iter().map(|&v| act.forward_f64(v as f64)).collect();
        assert_close(&format!("{act:?} forward"), &read(&out), &want, |i| {
            act_tol(*act, x[i] as f64).0 + SUBNORMAL
        });

        let dy = uniform(&mut rng(90 + s as u64), n, -1.0, 1.0);
        let dx = poisoned(&[n]);
        gpu()
            .run(&[&activation::backward_into(*act, &tx, &upload(&[n], &dy), &dx).unwrap()])
            .unwrap();
        let want: Vec<f64> = x
            .iter()
            .zip(&dy)
            .map(|(&v, &g)| g as f64 * act.grad_f64(v as f64))
            .collect();
        assert_close(&format!("{act:?} backward"), &read(&dx), &want, |i| {
            act_tol(*act, x[i] as f64).1 * (dy[i] as f64).abs()
                + 0.5 * EPS * want[i].abs()
                + SUBNORMAL
        });
    }
}

#[test]
fn softmax_rows() {
    for &(rows, cols) in &[(1, 1), (3, 10), (5, 63), (4, 65), (2, 1000), (70, 7)] {
        let mut r = rng(rows as u64 * 1000 + cols as u64);
        let mut x = uniform(&mut r, rows * cols, -30.0, 30.0);
        x[0] = 80.0; // large logits must not overflow
        let out = poisoned(&[rows, cols]);
        gpu()
            .run(&[&softmax_into(&upload(&[rows, cols], &x), &out).unwrap()])
            .unwrap();
        let got = read(&out);
        let want = softmax::reference::softmax(&x, cols);
        // exp(x − m) within (3 + 2|x − m|) ULP, the sum within cols·ε relative, one division.
        assert_close(&format!("softmax {rows}x{cols}"), &got, &want, |i| {
            let row = i / cols;
            let m = x[row * cols..(row + 1) * cols]
                .iter()
                .fold(f32::MIN, |a, &b| a.max(b));
            let spread = (m - x[i]) as f64;
            (6.0 + 2.0 * spread + cols as f64) * EPS * want[i] + SUBNORMAL
        });
        for row in got.chunks(cols) {
            let s: f64 = row.iter().map(|&v| v as f64).sum();
            assert!(
                (s - 1.0).abs() < (cols as f64 + 8.0) * EPS,
                "row sums to {s}"
            );
        }
    }
}
