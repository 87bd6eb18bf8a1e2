//! The cross-entropy fused with the epoch metrics (`softmax_xent_metrics_into`, one dispatch
//! for a training step's loss and metrics): loss rows and gradient against the f64 reference
//! (as the per-row kernel is checked), the accumulated (Σ loss, Σ correct, count) against f64
//! sums over the labelled rows, added onto a non-zero accumulator; padding rows, out-of-range
//! labels (NaN loss, skipped by the metrics), more rows than threads, both gradient scalings.
//! Every output starts poisoned (NaN).

use accrete::kernels::loss::{
    self, softmax_xent_into, softmax_xent_metrics_into, GradScale, PAD_LABEL,
};
use accrete::kernels::metrics;
use accrete::Tensor;
use accrete_tests::*;

#[test]
fn fused_loss_and_metrics_match_the_reference() {
    let cases = [
        (1, 1, 0.0f32, false),
        (7, 10, 0.1, false),
        (130, 10, 0.0, true),
        (33, 3, 0.05, true),
        (5, 64, 0.1, true),
        (9, 70, 0.0, false),
    ];
    for (rows, cols, smoothing, mean) in cases {
        let mut r = rng((rows * 13 + cols) as u64);
        let x = uniform(&mut r, rows * cols, -6.0, 6.0);
        let labels: Vec<u32> = (0..rows)
            .map(|i| match i % 5 {
                3 if rows > 1 => PAD_LABEL,
                4 if rows > 1 => cols as u32 + 2, // out of range: NaN loss, not counted
                _ => ((i * 7 + 3) % cols) as u32,
            })
            .collect();
        let valid = labels.iter().filter(|&&l| l != PAD_LABEL).count();
        let (scale, gs) = if mean {
            (1.0 / valid.max(1) as f64, GradScale::MeanOverValid)
        } else {
            (0.25, GradScale::Fixed(0.25))
        };
        let (lossv, grad) = (poisoned(&[rows]), poisoned(&[rows, cols]));
        let acc0 = [1.5f32, 2.0, 3.0, 0.0];
        let acc = upload(&[4], &acc0);
        let d = softmax_xent_metrics_into(
            &upload(&[rows, cols], &x),
            &Tensor::from_u32(gpu(), &[rows], &labels).unwrap(),
            &lossv,
            &grad,
            smoothing,
            gs,
            &acc,
        )
        .unwrap();
        gpu().run(&[&d]).unwrap();
        let what = format!("fused xent {rows}x{cols} ε={smoothing} mean={mean}");
        let (mut want_loss, mut want_grad) =
            loss::reference::softmax_xent(&x, &labels, cols, smoothing as f64, scale);
        let got_loss = read(&lossv);
        let got_grad = read(&grad);
        let mut sum = 0.0;
        let mut correct = 0.0;
        let mut count = 0.0;
        for (i, &y) in labels.iter().enumerate() {
            let row = &x[i * cols..(i + 1) * cols];
            if y != PAD_LABEL && y as usize >= cols {
                assert!(got_loss[i].is_nan(), "{what}: row {i} loss {}", got_loss[i]);
                let g = &got_grad[i * cols..(i + 1) * cols];
                assert!(g.iter().all(|v| v.is_nan()), "{what}: row {i} grad {g:?}");
                // Checked; compare the rest.
                want_loss[i] = 0.0;
                want_grad[i * cols..(i + 1) * cols].fill(0.0);
                continue;
            }
            if y == PAD_LABEL {
                continue;
            }
            sum += want_loss[i];
            count += 1.0;
            // First maximum, as metrics.wgsl's argmax.
            let best = (1..cols).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            correct += f64::from(u8::from(best == y as usize));
        }
        let finite = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .map(|&x| if x.is_nan() { 0.0 } else { x })
                .collect()
        };
        let loss_tol = (cols as f64 + 50.0) * EPS * 6.0 + 2f64.powi(-21);
        assert_close(
            &format!("{what}: loss"),
            &finite(&got_loss),
            &want_loss,
            |_| loss_tol,
        );
        assert_close(
            &format!("{what}: grad"),
            &finite(&got_grad),
            &want_grad,
            |_| (cols as f64 + 50.0) * EPS * scale,
        );
        let want_acc = [
            acc0[0] as f64 + sum,
            acc0[1] as f64 + correct,
            acc0[2] as f64 + count,
            0.0,
        ];
        // The sum of `count` row losses, each within loss_tol, plus the tree's rounding.
        let sum_tol = count * loss_tol + (rows as f64 + 2.0) * EPS * (sum.abs() + 1.5);
        assert_close(&format!("{what}: metrics"), &read(&acc), &want_acc, |i| {
            if i == 0 {
                sum_tol
            } else {
                0.0
            }
        });
    }
}

/// The fused kernel's metrics agree with the two-dispatch path's (same rows counted, same
/// argmax), and its refusals name the problem.
#[test]
fn fused_metrics_agree_with_the_two_dispatches_and_refuse_bad_arguments() {
    let (rows, cols) = (50, 10);
    let x = uniform(&mut rng(5), rows * cols, -4.0, 4.0);
    let labels: Vec<u32> = (0..rows as u32).map(|i| i % cols as u32).collect();
    let (xt, lt) = (
        upload(&[rows, cols], &x),
        Tensor::from_u32(gpu(), &[rows], &labels).unwrap(),
    );
    let (l1, g1, m1) = (
        poisoned(&[rows]),
        poisoned(&[rows, cols]),
        upload(&[4], &[0.0; 4]),
    );
    let (l2, g2, m2) = (
        poisoned(&[rows]),
        poisoned(&[rows, cols]),
        upload(&[4], &[0.0; 4]),
    );
    let fused =
        softmax_xent_metrics_into(&xt, &lt, &l1, &g1, 0.0, GradScale::MeanOverValid, &m1).unwrap();
    let xent = softmax_xent_into(&xt, &lt, &l2, &g2, 0.0, GradScale::MeanOverValid).unwrap();
    let classify = metrics::classify_into(&l2, &xt, &lt, &m2).unwrap();
    gpu().run(&[&fused, &xent, &classify]).unwrap();
    let (a, b) = (read(&m1), read(&m2));
    assert_eq!(a[1..], b[1..], "correct and count");
    assert!((a[0] - b[0]).abs() <= 1e-5 * b[0].abs(), "{a:?} vs {b:?}");

    let wrong = upload(&[3], &[0.0; 3]);
    let err = softmax_xent_metrics_into(&xt, &lt, &l1, &g1, 0.0, GradScale::MeanOverValid, &wrong)
        .unwrap_err();
    assert!(err.to_string().contains("[4] f32"), "{err}");
    let err = softmax_xent_metrics_into(&xt, &lt, &l1, &g1, 1.0, GradScale::MeanOverValid, &m1)
        .unwrap_err();
    assert!(err.to_string().contains("label smoothing"), "{err}");
}
