//! matmul with row sums (`matmul_row_sums_into`: op(B) gets a virtual column of ones, whose
//! output column is `Σ_k op(A)[i, k]` — a dense layer's bias gradient from its weight-gradient
//! GEMM): for every f32 variant and transpose, at sizes where the ones column lands inside the
//! last column tile and where it needs a tile of its own, both outputs NaN-poisoned. The
//! product must be bit-identical to `matmul_into`'s; the row sums are checked against the f64
//! reference with a sequential sum's bound ((K + 2)·2⁻²³·Σ_k |a_ik|), and are the same bits
//! for every variant (each is the chain `acc = fma(a_k, 1, acc)` from 0).

use accrete::kernels::matmul::{matmul_into, matmul_row_sums_into, MatmulSpec, Precision, Variant};
use accrete::kernels::Activation;
use accrete::Tensor;
use accrete_tests::*;

fn bits(t: &Tensor) -> Vec<u32> {
    read(t).iter().map(|x| x.to_bits()).collect()
}

#[test]
fn row_sums_every_f32_variant_every_transpose() {
    let mut seed = 7000;
    for &(m, k, n) in &[
        (1, 1, 1),
        (37, 29, 41),
        (36, 20, 44),
        (33, 70, 32),
        (130, 24, 64),
        (5, 3, 127),
    ] {
        for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
            seed += 1;
            let mut r = rng(seed);
            let a = uniform(&mut r, m * k, -1.0, 1.0);
            let b = uniform(&mut r, k * n, -1.0, 1.0);
            let a_t = upload(&if ta { [k, m] } else { [m, k] }, &a);
            let b_t = upload(&if tb { [n, k] } else { [k, n] }, &b);
            // f64 row sums of op(A) and their bound.
            let at = |i: usize, kk: usize| a[if ta { kk * m + i } else { i * k + kk }] as f64;
            let want: Vec<f64> = (0..m).map(|i| (0..k).map(|kk| at(i, kk)).sum()).collect();
            let mag: Vec<f64> = (0..m)
                .map(|i| (0..k).map(|kk| at(i, kk).abs()).sum())
                .collect();
            let mut first: Option<(&str, Vec<u32>)> = None;
            for (name, v) in Variant::ALL
                .iter()
                .filter(|(_, v)| v.precision == Precision::F32)
            {
                let spec = MatmulSpec {
                    trans_a: ta,
                    trans_b: tb,
                    variant: Some(*v),
                    ..Default::default()
                };
                let what = format!("{name} {m}x{k}x{n} ta={ta} tb={tb}");
                let plain = poisoned(&[m, n]);
                let c = poisoned(&[m, n]);
                let sums = poisoned(&[m]);
                let d0 = matmul_into(&a_t, &b_t, None, &plain, &spec).unwrap();
                let d1 = matmul_row_sums_into(&a_t, &b_t, &c, &sums, &spec).unwrap();
                gpu().run(&[&d0, &d1]).unwrap();
                assert_eq!(bits(&c), bits(&plain), "{what}: product differs");
                let got = read(&sums);
                assert_close(&format!("{what}: row sums"), &got, &want, |i| {
                    (k as f64 + 2.0) * EPS * mag[i] + SUBNORMAL
                });
                let got_bits: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
                match &first {
                    None => first = Some((name, got_bits)),
                    Some((f, want_bits)) => {
                        assert_eq!(&got_bits, want_bits, "{what}: row sums differ from {f}")
                    }
                }
            }
        }
    }
}

/// As the trainer binds them: the product and the row sums are neighbouring views of one
/// buffer (a weight gradient and its bias gradient in a parameter arena).
#[test]
fn row_sums_into_views_of_one_buffer() {
    let (m, k, n) = (10, 9, 70);
    let mut r = rng(7100);
    let a = uniform(&mut r, k * m, -1.0, 1.0);
    let b = uniform(&mut r, k * n, -1.0, 1.0);
    let (a_t, b_t) = (upload(&[k, m], &a), upload(&[k, n], &b));
    let arena = poisoned(&[m * n + 2 * Tensor::VIEW_ALIGN]);
    let c = arena.view(0, &[m, n]).unwrap();
    let at = (m * n).next_multiple_of(Tensor::VIEW_ALIGN);
    let sums = arena.view(at, &[m]).unwrap();
    let spec = MatmulSpec {
        trans_a: true,
        ..Default::default()
    };
    let d = matmul_row_sums_into(&a_t, &b_t, &c, &sums, &spec).unwrap();
    gpu().run(&[&d]).unwrap();
    let want: Vec<f64> = (0..m)
        .map(|i| (0..k).map(|kk| a[kk * m + i] as f64).sum())
        .collect();
    let mag: Vec<f64> = (0..m)
        .map(|i| (0..k).map(|kk| (a[kk * m + i] as f64).abs()).sum())
        .collect();
    assert_close("row sums in a view", &read(&sums), &want, |i| {
        (k as f64 + 2.0) * EPS * mag[i] + SUBNORMAL
    });
    let full = read(&arena);
    assert!(
        full[..m * n].iter().all(|x| x.is_finite()),
        "product unwritten"
    );
    // Nothing between or after the two views is touched.
    assert!(full[m * n..at].iter().all(|x| x.is_nan()));
    assert!(full[at + m..].iter().all(|x| x.is_nan()));
}

#[test]
fn row_sums_refusals() {
    let a = upload(&[4, 3], &[0.5; 12]);
    let b = upload(&[3, 5], &[0.25; 15]);
    let c = poisoned(&[4, 5]);
    let err =
        matmul_row_sums_into(&a, &b, &c, &poisoned(&[5]), &MatmulSpec::default()).unwrap_err();
    assert!(err.to_string().contains("4 elements"), "{err}");
    let gelu = MatmulSpec {
        activation: Activation::Gelu,
        ..Default::default()
    };
    let err = matmul_row_sums_into(&a, &b, &c, &poisoned(&[4]), &gelu).unwrap_err();
    assert!(err.to_string().contains("identity activation"), "{err}");
    if gpu()
        .features()
        .contains(Variant::F16_64X64.required_features())
    {
        let f16 = MatmulSpec {
            variant: Some(Variant::F16_64X64),
            ..Default::default()
        };
        let err = matmul_row_sums_into(&a, &b, &c, &poisoned(&[4]), &f16).unwrap_err();
        assert!(err.to_string().contains("f32 variant"), "{err}");
    }
}
