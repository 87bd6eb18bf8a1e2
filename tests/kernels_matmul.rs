//! matmul against its f64 reference: every transpose combination, every tile variant,
//! awkward sizes, the fused bias + activation epilogue, empty shapes, shape errors and
//! determinism. Tolerance: a chain of K fused multiply-adds (plus the bias add) has
//! |error| ≤ (K + 2)·2⁻²³·Σ_k |a_ik·b_kj| (Higham's γ bound with margin), followed by the
//! activation's own error and its derivative's amplification.

use accrete::kernels::matmul::{matmul, matmul_into, reference, MatmulSpec, Tiles};
use accrete::kernels::Activation;
use accrete::{DType, Error, Tensor};
use accrete_tests::*;

fn check(m: usize, k: usize, n: usize, spec: MatmulSpec, with_bias: bool, seed: u64) {
    let mut r = rng(seed);
    let a = uniform(&mut r, m * k, -1.0, 1.0);
    let b = uniform(&mut r, k * n, -1.0, 1.0);
    let bias = uniform(&mut r, n, -1.0, 1.0);
    let a_shape = if spec.trans_a { [k, m] } else { [m, k] };
    let b_shape = if spec.trans_b { [n, k] } else { [k, n] };
    let (ta, tb) = (upload(&a_shape, &a), upload(&b_shape, &b));
    let tbias = upload(&[n], &bias);
    let c = poisoned(&[m, n]);
    let d = matmul_into(&ta, &tb, with_bias.then_some(&tbias), &c, &spec).unwrap();
    gpu().run(&[&d]).unwrap();
    let got = read(&c);
    let act = spec.activation;
    let (want, mag) = reference::matmul(
        &a,
        &b,
        with_bias.then_some(&bias[..]),
        m,
        k,
        n,
        spec.trans_a,
        spec.trans_b,
        Identity,
    );
    let want_act: Vec<f64> = want.iter().map(|&x| act.forward_f64(x)).collect();
    let what = format!("matmul {m}x{k}x{n} {spec:?} bias={with_bias}");
    assert_close(&what, &got, &want_act, |i| {
        let pre = (k as f64 + 2.0) * EPS * mag[i];
        // |f'| ≤ 1.13 (GELU's maximum; 1 for the others) carries the product's error through
        // the activation, which adds its own (see act_tol).
        1.13 * pre + act_tol(act, want[i]).0 + SUBNORMAL
    });
}

use Activation::Identity;

#[test]
fn every_transpose_and_awkward_size() {
    let mut seed = 0;
    for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
        for &m in &[1usize, 7, 33, 64] {
            for &k in &[1usize, 13, 97] {
                for &n in &[1usize, 31, 65] {
                    seed += 1;
                    let spec = MatmulSpec {
                        trans_a: ta,
                        trans_b: tb,
                        ..Default::default()
                    };
                    check(m, k, n, spec, false, seed);
                }
            }
        }
    }
}

#[test]
fn every_tile_variant() {
    for (i, (name, tiles)) in Tiles::VARIANTS.iter().enumerate() {
        for &(m, k, n) in &[(1, 1, 1), (37, 29, 41), (130, 70, 67)] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true)] {
                let spec = MatmulSpec {
                    trans_a: ta,
                    trans_b: tb,
                    tiles: Some(*tiles),
                    ..Default::default()
                };
                eprintln!("variant {name}: {m}x{k}x{n} ta={ta} tb={tb}");
                check(m, k, n, spec, true, 1000 + i as u64);
            }
        }
    }
}

#[test]
fn fused_bias_and_every_activation() {
    for (i, act) in Activation::ALL.iter().enumerate() {
        for &(ta, tb) in &[(false, false), (false, true)] {
            let spec = MatmulSpec {
                trans_a: ta,
                trans_b: tb,
                activation: *act,
                tiles: None,
            };
            check(33, 17, 45, spec, true, 2000 + i as u64);
        }
    }
}

#[test]
fn empty_shapes() {
    // M = 0 or N = 0: an empty result, nothing dispatched that could write out of bounds.
    let a = upload(&[0, 5], &[]);
    let b = upload(&[5, 3], &[0.5; 15]);
    let c = matmul(&a, &b, None, &MatmulSpec::default()).unwrap();
    assert_eq!(c.shape(), &[0, 3]);
    assert!(read(&c).is_empty());
    // K = 0: the product is all zeros, so C is the bias.
    let a = upload(&[4, 0], &[]);
    let b = upload(&[0, 3], &[]);
    let bias = upload(&[3], &[1.0, -2.0, 3.5]);
    let c = poisoned(&[4, 3]);
    let d = matmul_into(&a, &b, Some(&bias), &c, &MatmulSpec::default()).unwrap();
    gpu().run(&[&d]).unwrap();
    assert_eq!(read(&c), [1.0, -2.0, 3.5].repeat(4));
}

#[test]
fn shape_errors_are_clear() {
    let a = upload(&[4, 5], &[0.0; 20]);
    let b = upload(&[6, 3], &[0.0; 18]);
    let err = matmul(&a, &b, None, &MatmulSpec::default()).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("inner dimensions differ"), "{err}");
    let b = upload(&[5, 3], &[0.0; 15]);
    let bias = upload(&[4], &[0.0; 4]);
    let err = matmul(&a, &b, Some(&bias), &MatmulSpec::default()).unwrap_err();
    assert!(
        err.to_string().contains("bias must have 3 elements"),
        "{err}"
    );
    let bad = MatmulSpec {
        tiles: Some(Tiles {
            bm: 64,
            bn: 64,
            bk: 8,
            tm: 3,
            tn: 4,
        }),
        ..Default::default()
    };
    let err = matmul(&a, &b, None, &bad).unwrap_err();
    assert!(err.to_string().contains("multiple of tm"), "{err}");
    let huge = MatmulSpec {
        tiles: Some(Tiles {
            bm: 256,
            bn: 256,
            bk: 8,
            tm: 1,
            tn: 1,
        }),
        ..Default::default()
    };
    let err = matmul(&a, &b, None, &huge).unwrap_err();
    assert!(
        err.to_string().contains("threads per workgroup exceeds"),
        "{err}"
    );
}

#[test]
fn buffers_over_the_device_limit_are_refused() {
    let limit = gpu().max_binding_bytes();
    let elems = (limit / 4 + 1) as usize;
    match Tensor::uninit(gpu(), &[elems], DType::F32) {
        Err(Error::OverLimit {
            needed, limit: l, ..
        }) => assert!(needed > l),
        Err(e) if elems > u32::MAX as usize => assert!(e.to_string().contains("2^32"), "{e}"),
        other => panic!("expected an over-limit error, got {other:?}"),
    }
}

#[test]
fn deterministic() {
    let mut r = rng(77);
    let a = upload(&[70, 90], &uniform(&mut r, 70 * 90, -1.0, 1.0));
    let b = upload(&[90, 50], &uniform(&mut r, 90 * 50, -1.0, 1.0));
    let spec = MatmulSpec {
        activation: Activation::Gelu,
        ..Default::default()
    };
    let first = read(&matmul(&a, &b, None, &spec).unwrap());
    let second = read(&matmul(&a, &b, None, &spec).unwrap());
    assert_eq!(
        first.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        second.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}
