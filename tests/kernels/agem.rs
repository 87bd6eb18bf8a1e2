//! A-GEM's projection (shaders/agem_project.wgsl) against its f64 reference, over one and
//! several arenas of awkward sizes, conflicting and agreeing gradients, a zero reference
//! and poisoned outputs.
//!
//! Tolerances. The dot products are sums of N products in f32 (a fixed tree, then a
//! sequential sum of partials): |error| ≤ (N + 2)·ε·Σ|g_i r_i| (and Σ r_i² for rr). The
//! projected g_i = fma(−coef, r_i, g_i) with coef = dot/rr carrying the relative error of
//! both sums plus one division: (|g_i| + |coef r_i|)·2ε + |r_i|·|Δcoef|.

use accrete::kernels::agem::{reference, Projection};
use accrete_tests::*;

fn run(grads: &[Vec<f32>], refs: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<f32>) {
    let g: Vec<_> = grads.iter().map(|v| upload(&[v.len()], v)).collect();
    let r: Vec<_> = refs.iter().map(|v| upload(&[v.len()], v)).collect();
    let p = Projection::new(
        gpu(),
        &g.iter().collect::<Vec<_>>(),
        &r.iter().collect::<Vec<_>>(),
    )
    .unwrap();
    // Poison the result: every slot must be written.
    p.result.write_f32(&[f32::NAN; 4]).unwrap();
    gpu().run(&p.all()).unwrap();
    (g.iter().map(read).collect(), read(&p.result))
}

fn check(what: &str, grads: &[Vec<f32>], refs: &[Vec<f32>]) -> f32 {
    let (got, result) = run(grads, refs);
    let n: usize = grads.iter().map(|g| g.len()).sum();
    let (dot, rr) = reference::dots(grads, refs);
    let abs_gr: f64 = grads
        .iter()
        .zip(refs)
        .flat_map(|(g, r)| g.iter().zip(r).map(|(&a, &b)| (a as f64 * b as f64).abs()))
        .sum();
    let tol_dot = (n as f64 + 2.0) * EPS * abs_gr;
    let tol_rr = (n as f64 + 2.0) * EPS * rr;
    assert_close(&format!("{what}: g·g_ref"), &result[..1], &[dot], |_| {
        tol_dot
    });
    assert_close(
        &format!("{what}: g_ref·g_ref"),
        &result[1..2],
        &[rr],
        |_| tol_rr,
    );
    assert_eq!(result[3], 0.0, "{what}: result[3]");
    let coef = if dot < 0.0 && rr > 0.0 { dot / rr } else { 0.0 };
    // Whether the projection applies is decided on the GPU's dot; near 0 the two may differ.
    if dot.abs() > tol_dot {
        let tol_coef = if coef == 0.0 {
            0.0
        } else {
            coef.abs() * (tol_dot / dot.abs() + tol_rr / rr + 2.0 * EPS)
        };
        assert_close(&format!("{what}: coef"), &result[2..3], &[coef], |_| {
            tol_coef
        });
        let want = reference::project(grads, refs);
        for (t, (g, (r, w))) in got.iter().zip(refs.iter().zip(&want)).enumerate() {
            assert_close(&format!("{what}: arena {t}"), g, w, |i| {
                (grads[t][i].abs() as f64 + (coef * r[i] as f64).abs()) * 2.0 * EPS
                    + r[i].abs() as f64 * tol_coef
            });
        }
        if coef != 0.0 {
            // After the projection g no longer conflicts with g_ref: g·g_ref ≈ 0.
            let after: f64 = got
                .iter()
                .zip(refs)
                .flat_map(|(g, r)| g.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64))
                .sum();
            let scale = (rr
                * got
                    .iter()
                    .flatten()
                    .map(|&v| (v as f64).powi(2))
                    .sum::<f64>())
            .sqrt();
            assert!(
                after >= -1e-5 * scale.max(1e-30) - 4.0 * tol_dot,
                "{what}: g_proj·g_ref = {after} (scale {scale})"
            );
        }
    }
    result[2]
}

#[test]
fn projection_matches_the_f64_reference_on_one_arena() {
    let mut projected = 0;
    for (k, &n) in AWKWARD
        .iter()
        .chain(&[255, 256, 257, 4097, 70_001])
        .enumerate()
    {
        for flip in [false, true] {
            let mut r = rng(k as u64 * 2 + flip as u64);
            let g = uniform(&mut r, n, -1.0, 1.0);
            // A reference that conflicts with g (flip) or agrees with it, plus noise.
            let noise = uniform(&mut r, n, -0.5, 0.5);
            let s = if flip { -1.0 } else { 1.0 };
            let rf: Vec<f32> = g.iter().zip(&noise).map(|(a, b)| s * a + b).collect();
            let coef = check(
                &format!("n {n} flip {flip}"),
                std::slice::from_ref(&g),
                &[rf],
            );
            if flip {
                assert!(
                    coef < 0.0,
                    "n {n}: a conflicting reference must project ({coef})"
                );
                projected += 1;
            } else {
                assert_eq!(coef, 0.0, "n {n}: an agreeing reference leaves g alone");
            }
        }
    }
    assert!(projected > 0);
}

#[test]
fn projection_sums_over_several_arenas() {
    for (k, sizes) in [[3usize, 300, 1], [256, 7, 1000], [97, 97, 97]]
        .iter()
        .enumerate()
    {
        let mut r = rng(100 + k as u64);
        let g: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| uniform(&mut r, n, -1.0, 1.0))
            .collect();
        // Only the first arena conflicts; the total decides.
        let rf: Vec<Vec<f32>> = g
            .iter()
            .enumerate()
            .map(|(t, v)| {
                let s = if t == 0 { -3.0 } else { 0.2 };
                v.iter().map(|x| s * x).collect()
            })
            .collect();
        check(&format!("arenas {sizes:?}"), &g, &rf);
    }
}

#[test]
fn a_zero_reference_leaves_the_gradient_unchanged() {
    let g = uniform(&mut rng(5), 513, -1.0, 1.0);
    let (got, result) = run(std::slice::from_ref(&g), &[vec![0.0; 513]]);
    assert_eq!(&result[..3], &[0.0, 0.0, 0.0]);
    assert_eq!(got[0], g);
}

#[test]
fn projection_refuses_mismatched_sizes() {
    let a = upload(&[4], &[0.0; 4]);
    let b = upload(&[5], &[0.0; 5]);
    let e = Projection::new(gpu(), &[&a], &[&b])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("4 elements against 5"), "{e}");
    let e = Projection::new(gpu(), &[&a, &a], &[&a])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("2 gradients against 1"), "{e}");
}
