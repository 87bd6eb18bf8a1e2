//! DER's replay loss (shaders/loss_replay.wgsl) against its f64 reference, and its gradient
//! against central differences of the f64 batch objective.
//!
//! Tolerances. Loss of a row: a logsumexp and two sums over C columns, each with error
//! ≤ C·2⁻²⁴ of its magnitude, plus a few rounded ops (GPU exp/log a few ulps): we allow
//! (C + 8)·2ε × (β·(3·max|z| + ln C + 1) + α·max(loss, 1)), ε = 2⁻²³. Gradient: softmax
//! (C + 8 ulps of 1) and one rounded difference, over the row count:
//! (C + 8)·2ε × (2β + 2α·|z − s|/C) / N. Finite differences of the f64
//! objective (h = 1e-4, exact to ~h²·|L'''| ≈ 1e-8 here) against the f32 gradient: 1e-5 of the
//! largest gradient, far below the O(1/N) error of a missing or misplaced term.

use accrete::kernels::loss::PAD_LABEL;
use accrete::kernels::loss_replay::{reference, replay_loss_into};
use accrete::Tensor;
use accrete_tests::*;

/// (rows, cols, fresh): awkward sizes, a batch of only replayed rows, one of only new rows.
const CASES: [(usize, usize, usize); 6] = [
    (1, 1, 0),
    (5, 3, 2),
    (13, 10, 8),
    (40, 7, 0),
    (33, 65, 33),
    (97, 129, 64),
];

struct Batch {
    z: Vec<f32>,
    s: Vec<f32>,
    labels: Vec<u32>,
}

fn batch(rows: usize, cols: usize, fresh: usize, seed: u64) -> Batch {
    let mut r = rng(seed);
    let z = uniform(&mut r, rows * cols, -3.0, 3.0);
    let s = uniform(&mut r, rows * cols, -3.0, 3.0);
    let picks = uniform(&mut r, rows, 0.0, cols as f32);
    let labels = (0..rows)
        .map(|i| {
            // The last new row of a short batch is padding.
            if fresh > 1 && i == fresh - 1 {
                PAD_LABEL
            } else {
                (picks[i] as u32).min(cols as u32 - 1)
            }
        })
        .collect();
    Batch { z, s, labels }
}

fn run(
    b: &Batch,
    rows: usize,
    cols: usize,
    fresh: usize,
    alpha: f32,
    beta: f32,
) -> (Vec<f32>, Vec<f32>) {
    let z = upload(&[rows, cols], &b.z);
    let s = upload(&[rows, cols], &b.s);
    let labels = Tensor::from_u32(gpu(), &[rows], &b.labels).unwrap();
    let loss = poisoned(&[rows]);
    let dz = poisoned(&[rows, cols]);
    let d = replay_loss_into(&z, &s, &labels, &loss, &dz, fresh, alpha, beta).unwrap();
    gpu().run(&[&d]).unwrap();
    (read(&loss), read(&dz))
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn replay_loss_matches_the_f64_reference() {
    for (k, &(rows, cols, fresh)) in CASES.iter().enumerate() {
        // DER (β = 0), DER++ and a label-only replay term.
        for (alpha, beta) in [(0.5f32, 0.0f32), (0.1, 0.5), (0.0, 1.0)] {
            let b = batch(rows, cols, fresh, k as u64 * 31 + 7);
            let (loss, dz) = run(&b, rows, cols, fresh, alpha, beta);
            let (a, bw) = (alpha as f64, beta as f64);
            let (want_loss, want_dz) =
                reference::replay_loss(&wide(&b.z), &b.s, &b.labels, cols, fresh, a, bw);
            let count = |r: std::ops::Range<usize>| {
                b.labels[r]
                    .iter()
                    .filter(|&&y| y != PAD_LABEL)
                    .count()
                    .max(1) as f64
            };
            let (n_new, n_rep) = (count(0..fresh), count(fresh..rows));
            let c = cols as f64;
            let row_weights = |r: usize| {
                if r < fresh {
                    (0.0, 1.0, n_new)
                } else {
                    (a, bw, n_rep)
                }
            };
            let what = format!("{rows}x{cols} fresh {fresh} α {alpha} β {beta}");
            assert_close(&format!("replay loss {what}"), &loss, &want_loss, |r| {
                let row = &b.z[r * cols..(r + 1) * cols];
                let m = row.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
                let (ar, br, _) = row_weights(r);
                (c + 8.0)
                    * 2.0
                    * EPS
                    * (br * (3.0 * m + c.ln() + 1.0) + ar * want_loss[r].abs().max(1.0))
            });
            assert_close(&format!("replay gradient {what}"), &dz, &want_dz, |i| {
                let r = i / cols;
                let (ar, br, n) = row_weights(r);
                let d = (b.z[i] as f64 - b.s[i] as f64).abs();
                (c + 8.0) * 2.0 * EPS * (2.0 * br + 2.0 * ar * d / c) / n
            });
        }
    }
}

#[test]
fn replay_gradient_matches_finite_differences() {
    const H: f64 = 1e-4;
    for (k, &(rows, cols, fresh)) in CASES.iter().enumerate().skip(1) {
        let (alpha, beta) = (0.3f32, 0.7f32);
        let b = batch(rows, cols, fresh, k as u64 * 17 + 3);
        let (_, dz) = run(&b, rows, cols, fresh, alpha, beta);
        let z = wide(&b.z);
        let l = |z: &[f64]| {
            reference::replay_objective(z, &b.s, &b.labels, cols, fresh, alpha as f64, beta as f64)
        };
        let fd: Vec<f64> = (0..z.len())
            .map(|i| {
                let (mut up, mut down) = (z.clone(), z.clone());
                up[i] += H;
                down[i] -= H;
                (l(&up) - l(&down)) / (2.0 * H)
            })
            .collect();
        let max = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max > 0.0, "{rows}x{cols}: a zero gradient checks nothing");
        assert_close(
            &format!("replay gradient vs finite differences {rows}x{cols} fresh {fresh}"),
            &dz,
            &fd,
            |_| 1e-5 * max,
        );
    }
}

#[test]
fn replay_loss_refuses_bad_arguments() {
    let z = upload(&[4, 3], &[0.0; 12]);
    let labels = Tensor::from_u32(gpu(), &[4], &[0; 4]).unwrap();
    let loss = poisoned(&[4]);
    let dz = poisoned(&[4, 3]);
    let e = replay_loss_into(&z, &z, &labels, &loss, &dz, 5, 0.5, 0.5)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("5 new rows in a batch of 4"), "{e}");
    let e = replay_loss_into(&z, &z, &labels, &loss, &dz, 2, -0.5, 0.5)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("the logit weight -0.5 must be a finite number ≥ 0"),
        "{e}"
    );
    let s = upload(&[3, 3], &[0.0; 9]);
    let e = replay_loss_into(&z, &s, &labels, &loss, &dz, 2, 0.5, 0.5)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("stored logits"), "{e}");
}
