//! EWC's kernels (shaders/ewc_fisher.wgsl, shaders/ewc_penalty.wgsl) against their f64
//! references; the penalty's gradient also against central differences of the f64 penalty.
//!
//! Tolerances. Fisher: N fused multiply-adds of squares (each rounded once, |error| ≤ ε/2 of
//! the running sum) then one scale and one fma with the decayed old value: we allow
//! (N + 4)·ε·(Σ g²/N + decay·|F_old|), ε = 2⁻²³. Penalty: one product, one difference, one
//! fma: 4·ε·(|g| + λ·F·(|θ| + |θ*|)). Finite differences of the quadratic (h = 1e-3, exact
//! up to f64 rounding ~1e-12) against the f32 gradient: the same bound.

use accrete::kernels::ewc::{fisher_accumulate_into, fisher_finish_into, penalty_into, reference};
use accrete_tests::*;

#[test]
fn fisher_is_the_decayed_old_plus_the_mean_of_squared_per_sample_gradients() {
    for (k, &n) in AWKWARD.iter().enumerate() {
        for (samples, decay) in [(1usize, 1.0f32), (5, 0.9), (33, 0.5)] {
            let mut r = rng((k * 100 + samples) as u64);
            let per: Vec<Vec<f32>> = (0..samples)
                .map(|_| uniform(&mut r, n, -2.0, 2.0))
                .collect();
            let old = uniform(&mut r, n, 0.0, 1.0);
            let values = uniform(&mut r, n, -1.0, 1.0);
            let grads = poisoned(&[n]);
            let acc = upload(&[n], &vec![0.0; n]);
            let fisher = upload(&[n], &old);
            let anchor = poisoned(&[n]);
            let vt = upload(&[n], &values);
            let accumulate = fisher_accumulate_into(&grads, &acc).unwrap();
            for g in &per {
                grads.write_f32(g).unwrap();
                gpu().run(&[&accumulate]).unwrap();
            }
            let finish =
                fisher_finish_into(&vt, &acc, &fisher, &anchor, decay, 1.0 / samples as f32)
                    .unwrap();
            gpu().run(&[&finish]).unwrap();
            let want = reference::fisher(&old, &per, decay as f64);
            let s = samples as f64;
            assert_close(
                &format!("Fisher n {n} samples {samples} decay {decay}"),
                &read(&fisher),
                &want,
                |i| {
                    let mean_sq = per.iter().map(|g| (g[i] as f64).powi(2)).sum::<f64>() / s;
                    (s + 4.0) * EPS * (mean_sq + decay as f64 * old[i] as f64)
                },
            );
            // The anchor is the parameters, exactly; the accumulator is cleared.
            assert_eq!(read(&anchor), values, "anchor n {n}");
            assert!(read(&acc).iter().all(|&v| v == 0.0), "accumulator n {n}");
        }
    }
}

#[test]
fn penalty_gradient_matches_the_reference_and_finite_differences() {
    const H: f64 = 1e-3;
    for (k, &n) in AWKWARD.iter().enumerate() {
        let mut r = rng(k as u64 + 77);
        let values = uniform(&mut r, n, -2.0, 2.0);
        let fisher = uniform(&mut r, n, 0.0, 3.0);
        let anchor = uniform(&mut r, n, -2.0, 2.0);
        let grads = uniform(&mut r, n, -1.0, 1.0);
        for weight in [0.0f32, 0.5, 250.0] {
            let g = upload(&[n], &grads);
            let d = penalty_into(
                &upload(&[n], &values),
                &upload(&[n], &fisher),
                &upload(&[n], &anchor),
                &g,
                weight,
            )
            .unwrap();
            gpu().run(&[&d]).unwrap();
            let got = read(&g);
            let w = weight as f64;
            let tol = |i: usize| {
                4.0 * EPS
                    * (grads[i].abs() as f64
                        + w * fisher[i] as f64 * (values[i].abs() + anchor[i].abs()) as f64)
            };
            let want = reference::penalised(&grads, &values, &fisher, &anchor, w);
            assert_close(&format!("EWC penalty n {n} λ {weight}"), &got, &want, tol);
            // Against central differences of the penalty itself.
            let x: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            let fd: Vec<f64> = (0..n)
                .map(|i| {
                    let (mut up, mut down) = (x.clone(), x.clone());
                    up[i] += H;
                    down[i] -= H;
                    grads[i] as f64
                        + (reference::penalty(&up, &fisher, &anchor, w)
                            - reference::penalty(&down, &fisher, &anchor, w))
                            / (2.0 * H)
                })
                .collect();
            assert_close(
                &format!("EWC penalty vs finite differences n {n} λ {weight}"),
                &got,
                &fd,
                |i| tol(i) + 1e-9 * (1.0 + w),
            );
        }
    }
}

#[test]
fn ewc_kernels_refuse_mismatched_sizes() {
    let a = upload(&[4], &[0.0; 4]);
    let b = upload(&[5], &[0.0; 5]);
    let e = fisher_accumulate_into(&a, &b).err().unwrap().to_string();
    assert!(e.contains("4 elements against 5"), "{e}");
    let e = penalty_into(&a, &a, &b, &a, 1.0).err().unwrap().to_string();
    assert!(e.contains("EWC penalty"), "{e}");
}
