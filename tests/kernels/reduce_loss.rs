//! Reductions (row/column sums and means, argmax) and losses (softmax cross-entropy with
//! label smoothing, MSE) against f64 references.
//!
//! Summation bounds: a sum of n terms in any fixed order has |error| ≤ (n − 1)·2⁻²⁴·Σ|xᵢ|;
//! we allow n·2⁻²³·Σ|xᵢ|.

use accrete::kernels::loss::{
    self, mse_into, mse_masked_into, softmax_xent_into, GradScale, PAD_LABEL,
};
use accrete::kernels::reduce::{self, argmax_into, cols_into, rows_into, Reduce};
use accrete::{DType, Tensor};
use accrete_tests::*;

const SHAPES: [(usize, usize); 7] = [
    (1, 1),
    (1, 300),
    (300, 1),
    (7, 13),
    (33, 64),
    (5, 65),
    (64, 129),
];

#[test]
fn row_and_column_sums_and_means() {
    for &(rows, cols) in &SHAPES {
        let x = uniform(&mut rng((rows * 7 + cols) as u64), rows * cols, -3.0, 3.0);
        let t = upload(&[rows, cols], &x);
        for red in [Reduce::Sum, Reduce::Mean] {
            let out = poisoned(&[rows]);
            gpu().run(&[&rows_into(red, &t, &out).unwrap()]).unwrap();
            let (s, mag) = reduce::reference::rows(&x, rows, cols);
            let div = if red == Reduce::Mean {
                cols as f64
            } else {
                1.0
            };
            let want: Vec<f64> = s.iter().map(|v| v / div).collect();
            assert_close(
                &format!("rows {red:?} {rows}x{cols}"),
                &read(&out),
                &want,
                |i| (cols as f64 + 2.0) * EPS * mag[i] / div,
            );

            let out = poisoned(&[cols]);
            gpu().run(&[&cols_into(red, &t, &out).unwrap()]).unwrap();
            let (s, mag) = reduce::reference::cols(&x, rows, cols);
            let div = if red == Reduce::Mean {
                rows as f64
            } else {
                1.0
            };
            let want: Vec<f64> = s.iter().map(|v| v / div).collect();
            assert_close(
                &format!("cols {red:?} {rows}x{cols}"),
                &read(&out),
                &want,
                |i| (rows as f64 + 2.0) * EPS * mag[i] / div,
            );
        }
    }
}

#[test]
fn argmax_takes_the_first_maximum() {
    for &(rows, cols) in &SHAPES {
        let mut x = uniform(&mut rng((rows * 3 + cols) as u64), rows * cols, -1.0, 1.0);
        // Ties: duplicate each row's maximum later in the row.
        for r in 0..rows {
            let row = &mut x[r * cols..(r + 1) * cols];
            let m = row.iter().cloned().fold(f32::MIN, f32::max);
            if cols > 2 {
                row[cols - 1] = m;
            }
        }
        let out = poisoned_u32(&[rows]);
        gpu()
            .run(&[&argmax_into(&upload(&[rows, cols], &x), &out).unwrap()])
            .unwrap();
        assert_eq!(
            read_u32(&out),
            reduce::reference::argmax(&x, cols),
            "argmax {rows}x{cols}"
        );
    }
}

#[test]
fn softmax_cross_entropy_with_and_without_smoothing() {
    for &(rows, cols) in &[(1, 1), (1, 2), (7, 10), (33, 3), (4, 100), (3, 257)] {
        for smoothing in [0.0f32, 0.1] {
            let mut r = rng((rows * 11 + cols) as u64);
            let x = uniform(&mut r, rows * cols, -10.0, 10.0);
            let labels: Vec<u32> = (0..rows).map(|i| ((i * 7 + 3) % cols) as u32).collect();
            let lossv = poisoned(&[rows]);
            let grad = poisoned(&[rows, cols]);
            let scale = 1.0 / rows as f32;
            let d = softmax_xent_into(
                &upload(&[rows, cols], &x),
                &Tensor::from_u32(gpu(), &[rows], &labels).unwrap(),
                &lossv,
                &grad,
                smoothing,
                GradScale::Fixed(scale),
            )
            .unwrap();
            gpu().run(&[&d]).unwrap();
            let (want_loss, want_grad) =
                loss::reference::softmax_xent(&x, &labels, cols, smoothing as f64, scale as f64);
            // lse: exp within (3 + 2·20) ULP of values ≤ 1, a sum of cols terms, log within
            // 2⁻²¹ absolute near 1; Σ q·z is a sum of cols terms of magnitude ≤ 10.
            assert_close(
                &format!("xent loss {rows}x{cols} ε={smoothing}"),
                &read(&lossv),
                &want_loss,
                |_| (cols as f64 + 50.0) * EPS * 10.0 + 2f64.powi(-21),
            );
            assert_close(
                &format!("xent grad {rows}x{cols} ε={smoothing}"),
                &read(&grad),
                &want_grad,
                |_| (cols as f64 + 50.0) * EPS * scale as f64,
            );
        }
    }
}

#[test]
fn cross_entropy_marks_out_of_range_labels_nan() {
    let lossv = poisoned(&[2]);
    let grad = poisoned(&[2, 3]);
    let labels = Tensor::from_u32(gpu(), &[2], &[1, 3]).unwrap();
    let d = softmax_xent_into(
        &upload(&[2, 3], &[0.0; 6]),
        &labels,
        &lossv,
        &grad,
        0.0,
        GradScale::Fixed(0.5),
    )
    .unwrap();
    gpu().run(&[&d]).unwrap();
    let l = read(&lossv);
    assert!(l[0].is_finite() && l[1].is_nan(), "{l:?}");
    let g = read(&grad);
    assert!(
        g[..3].iter().all(|v| v.is_finite()) && g[3..].iter().all(|v| v.is_nan()),
        "{g:?}"
    );
}

#[test]
fn cross_entropy_rejects_bad_arguments() {
    let logits = upload(&[2, 3], &[0.0; 6]);
    let labels = Tensor::from_u32(gpu(), &[2], &[0, 1]).unwrap();
    let (l, g) = (poisoned(&[2]), poisoned(&[2, 3]));
    let err = softmax_xent_into(&logits, &labels, &l, &g, 1.5, GradScale::Fixed(0.5)).unwrap_err();
    assert!(err.to_string().contains("label smoothing"), "{err}");
    let wrong = Tensor::uninit(gpu(), &[2], DType::F32).unwrap();
    let err = softmax_xent_into(&logits, &wrong, &l, &g, 0.0, GradScale::Fixed(0.5)).unwrap_err();
    assert!(err.to_string().contains("U32"), "{err}");
}

#[test]
fn mean_squared_error() {
    for &(rows, cols) in &SHAPES {
        let mut r = rng((rows * 5 + cols) as u64);
        let y = uniform(&mut r, rows * cols, -2.0, 2.0);
        let t = uniform(&mut r, rows * cols, -2.0, 2.0);
        let (lossv, grad) = (poisoned(&[rows]), poisoned(&[rows, cols]));
        let d = mse_into(
            &upload(&[rows, cols], &y),
            &upload(&[rows, cols], &t),
            &lossv,
            &grad,
        )
        .unwrap();
        gpu().run(&[&d]).unwrap();
        let (want_loss, want_grad) = loss::reference::mse(&y, &t, cols);
        assert_close("mse loss", &read(&lossv), &want_loss, |i| {
            (cols as f64 + 4.0) * EPS * want_loss[i].abs()
        });
        assert_close("mse grad", &read(&grad), &want_grad, |i| {
            4.0 * EPS * want_grad[i].abs()
        });
    }
}

/// Training-batch MSE: padding rows (label PAD) get zero loss and gradient, the others the
/// gradient of the mean over the valid rows only.
#[test]
fn masked_mean_squared_error_skips_padding_rows() {
    for &(rows, cols) in &SHAPES {
        let mut r = rng((rows * 11 + cols) as u64);
        let y = uniform(&mut r, rows * cols, -2.0, 2.0);
        let t = uniform(&mut r, rows * cols, -2.0, 2.0);
        // Every third row is padding (but never all of them).
        let labels: Vec<u32> = (0..rows)
            .map(|i| if i % 3 == 2 { PAD_LABEL } else { 0 })
            .collect();
        let valid = labels.iter().filter(|&&l| l != PAD_LABEL).count() as f64;
        let (lossv, grad) = (poisoned(&[rows]), poisoned(&[rows, cols]));
        let tl = Tensor::from_u32(gpu(), &[rows], &labels).unwrap();
        let d = mse_masked_into(
            &upload(&[rows, cols], &y),
            &upload(&[rows, cols], &t),
            &tl,
            &lossv,
            &grad,
        )
        .unwrap();
        gpu().run(&[&d]).unwrap();
        let (mut want_loss, mut want_grad) = (Vec::new(), Vec::new());
        for ((yr, tr), &l) in y.chunks(cols).zip(t.chunks(cols)).zip(&labels) {
            let pad = l == PAD_LABEL;
            let diff: Vec<f64> = yr
                .iter()
                .zip(tr)
                .map(|(&a, &b)| a as f64 - b as f64)
                .collect();
            let row: f64 = diff.iter().map(|d| d * d).sum::<f64>() / cols as f64;
            want_loss.push(if pad { 0.0 } else { row });
            want_grad.extend(diff.iter().map(|d| {
                if pad {
                    0.0
                } else {
                    2.0 * d / (valid * cols as f64)
                }
            }));
        }
        assert_close("masked mse loss", &read(&lossv), &want_loss, |i| {
            (cols as f64 + 4.0) * EPS * want_loss[i].abs()
        });
        assert_close("masked mse grad", &read(&grad), &want_grad, |i| {
            4.0 * EPS * want_grad[i].abs()
        });
    }
}

#[test]
fn cross_entropy_padding_rows_and_mean_over_valid() {
    let (rows, cols) = (70, 5);
    let x = uniform(&mut rng(71), rows * cols, -3.0, 3.0);
    let labels: Vec<u32> = (0..rows)
        .map(|i| {
            if i % 3 == 2 {
                PAD_LABEL
            } else {
                (i % cols) as u32
            }
        })
        .collect();
    let valid = labels.iter().filter(|&&l| l != PAD_LABEL).count();
    let (lossv, grad) = (poisoned(&[rows]), poisoned(&[rows, cols]));
    let d = softmax_xent_into(
        &upload(&[rows, cols], &x),
        &Tensor::from_u32(gpu(), &[rows], &labels).unwrap(),
        &lossv,
        &grad,
        0.05,
        GradScale::MeanOverValid,
    )
    .unwrap();
    gpu().run(&[&d]).unwrap();
    let (want_loss, want_grad) =
        loss::reference::softmax_xent(&x, &labels, cols, 0.05, 1.0 / valid as f64);
    assert_close("padded xent loss", &read(&lossv), &want_loss, |_| {
        (cols as f64 + 50.0) * EPS * 3.0 + 2f64.powi(-21)
    });
    assert_close("padded xent grad", &read(&grad), &want_grad, |_| {
        (cols as f64 + 50.0) * EPS / valid as f64
    });
}
