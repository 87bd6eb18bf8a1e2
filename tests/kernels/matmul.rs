//! matmul against its f64 reference: every transpose combination, every kernel variant
//! (tiled, vec4, double-buffered, f16 tiles), awkward sizes, the fused bias + activation
//! epilogue, empty shapes, shape errors and determinism. Outputs start as NaN, so an element
//! a kernel skips fails. Tolerance: a chain of K fused multiply-adds (plus the bias add) has
//! |error| ≤ (K + 2)·2⁻²³·Σ_k |a_ik·b_kj| (Higham's γ bound with margin), followed by the
//! activation's own error and its derivative's amplification. The f16 variants round each
//! operand to f16 first (the error model of `reference::f16_matmul_bound`: 2⁻¹⁰|x| + 2⁻¹⁴ per
//! conversion) and then run the same f32 chain on the rounded values.

use accrete::kernels::matmul::{
    choose, matmul, matmul_into, reference, Kernel, MatmulSpec, Precision, Tiles, Variant,
};
use accrete::kernels::Activation;
use accrete::{DType, Error, Tensor};
use accrete_tests::*;

fn check(m: usize, k: usize, n: usize, spec: MatmulSpec, with_bias: bool, seed: u64) {
    check_result(m, k, n, spec, with_bias, seed);
}

/// Runs one product on NaN-poisoned output and checks it against the f64 reference with the
/// tolerance of the variant's precision; returns the output and the largest |err| / f32-bound
/// (above 1 only for f16 variants, whose operands are rounded).
fn check_result(
    m: usize,
    k: usize,
    n: usize,
    spec: MatmulSpec,
    with_bias: bool,
    seed: u64,
) -> (Vec<f32>, f64) {
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
    let f16 = spec.variant.is_some_and(|v| v.precision == Precision::F16);
    let (in_err, mag16) = if f16 {
        let (e, mut g) = reference::f16_matmul_bound(&a, &b, m, k, n, spec.trans_a, spec.trans_b);
        if with_bias {
            for (i, g) in g.iter_mut().enumerate() {
                *g += bias[i % n].abs() as f64;
            }
        }
        (e, g)
    } else {
        (vec![0.0; m * n], mag.clone())
    };
    let what = format!("matmul {m}x{k}x{n} {spec:?} bias={with_bias}");
    assert_close(&what, &got, &want_act, |i| {
        // f16: the operands' rounding, then the f32 chain on the rounded values.
        let pre = in_err[i] + (k as f64 + 2.0) * EPS * mag16[i];
        // |f'| ≤ 1.13 (GELU's maximum; 1 for the others) carries the product's error through
        // the activation, which adds its own (see act_tol).
        1.13 * pre + act_tol(act, want[i]).0 + SUBNORMAL
    });
    let worst = got
        .iter()
        .zip(&want_act)
        .enumerate()
        .map(|(i, (&g, &w))| {
            let f32_bound = 1.13 * (k as f64 + 2.0) * EPS * mag[i] + act_tol(act, want[i]).0;
            (g as f64 - w).abs() / (f32_bound + SUBNORMAL)
        })
        .fold(0.0, f64::max);
    (got, worst)
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

/// Every named variant (tiled, vec4, double-buffered, f16 tiles) at sizes that are not
/// multiples of any tile, sizes whose rows are multiples of 4 (the vec4-load path) and
/// one-element edges, every transpose, with the bias + activation epilogue.
#[test]
fn every_variant_every_transpose() {
    let f16_ok = gpu()
        .features()
        .contains(Variant::F16_64X64.required_features());
    for (i, (name, v)) in Variant::ALL.iter().enumerate() {
        if v.precision == Precision::F16 && !f16_ok {
            eprintln!("skipping {name}: this adapter has no SHADER_F16");
            continue;
        }
        for &(m, k, n) in &[
            (1, 1, 1),
            (37, 29, 41),
            (130, 70, 67),
            (36, 20, 44),
            (132, 24, 136),
            (5, 3, 130),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                let act = [Activation::Identity, Activation::Gelu, Activation::Relu][(m + n) % 3];
                let spec = MatmulSpec {
                    trans_a: ta,
                    trans_b: tb,
                    activation: act,
                    variant: Some(*v),
                    ..Default::default()
                };
                eprintln!("variant {name}: {m}x{k}x{n} ta={ta} tb={tb} {act:?}");
                let (_, worst) = check_result(m, k, n, spec, true, 3000 + i as u64);
                // The f16 tiles must really round: K = 29 products of random f32 values
                // cannot all survive f16 rounding within the f32 bound.
                if v.precision == Precision::F16 && (m, k) == (37, 29) {
                    assert!(worst > 1.0, "{name} looks like f32 (worst {worst})");
                }
            }
        }
    }
}

/// The f32 variants evaluate the same fused multiply-add chain per element, so they agree
/// bit for bit: an autotuned choice cannot change results on this device.
#[test]
fn f32_variants_are_bit_identical() {
    for (seed, &(m, k, n, ta, tb)) in [
        (37, 29, 41, false, false),
        (64, 48, 36, false, true),
        (33, 100, 20, true, false),
        (130, 12, 131, true, true),
    ]
    .iter()
    .enumerate()
    {
        let mut r = rng(4000 + seed as u64);
        let a = uniform(&mut r, m * k, -1.0, 1.0);
        let b = uniform(&mut r, k * n, -1.0, 1.0);
        let bias = upload(&[n], &uniform(&mut r, n, -1.0, 1.0));
        let ta_t = upload(&if ta { [k, m] } else { [m, k] }, &a);
        let tb_t = upload(&if tb { [n, k] } else { [k, n] }, &b);
        let mut first: Option<(&str, Vec<u32>)> = None;
        for (name, v) in Variant::ALL
            .iter()
            .filter(|(_, v)| v.precision == Precision::F32)
        {
            let c = poisoned(&[m, n]);
            let spec = MatmulSpec {
                trans_a: ta,
                trans_b: tb,
                activation: Activation::Gelu,
                variant: Some(*v),
                ..Default::default()
            };
            let d = matmul_into(&ta_t, &tb_t, Some(&bias), &c, &spec).unwrap();
            gpu().run(&[&d]).unwrap();
            let bits: Vec<u32> = read(&c).iter().map(|x| x.to_bits()).collect();
            match &first {
                None => first = Some((name, bits)),
                Some((f, want)) => {
                    let diff = bits.iter().zip(want).filter(|(x, y)| x != y).count();
                    assert_eq!(
                        diff, 0,
                        "{name} differs from {f} in {diff} elements ({m}x{k}x{n} ta={ta} tb={tb})"
                    );
                }
            }
        }
    }
}

#[test]
fn variant_choice_and_errors() {
    let a = upload(&[40, 36], &[0.5; 40 * 36]);
    let b = upload(&[36, 44], &[0.25; 36 * 44]);
    // Without autotuning the choice is the deterministic heuristic (and never f16).
    let auto = choose(&a, &b, &MatmulSpec::default()).unwrap();
    assert_eq!(auto, Variant::heuristic(gpu(), 40, 36, 44));
    assert_eq!(auto.precision, Precision::F32);
    // tiles alone still mean the tiled kernel with those tiles.
    let tiled = MatmulSpec {
        tiles: Some(Tiles::WIDE),
        ..Default::default()
    };
    assert_eq!(choose(&a, &b, &tiled).unwrap(), Variant::tiled(Tiles::WIDE));
    let both = MatmulSpec {
        tiles: Some(Tiles::WIDE),
        variant: Some(Variant::VEC4_64X64),
        ..Default::default()
    };
    let err = matmul(&a, &b, None, &both).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    // Invalid vec4 tiles are refused with the reason.
    let odd = MatmulSpec {
        variant: Some(Variant {
            kernel: Kernel::Vec4,
            tiles: Tiles {
                bm: 64,
                bn: 64,
                bk: 6,
                tm: 4,
                tn: 4,
            },
            precision: Precision::F32,
        }),
        ..Default::default()
    };
    let err = matmul(&a, &b, None, &odd).unwrap_err();
    assert!(err.to_string().contains("multiples of 4"), "{err}");
    let big = MatmulSpec {
        variant: Some(Variant {
            kernel: Kernel::Vec4DoubleBuffered,
            tiles: Tiles {
                bm: 256,
                bn: 256,
                bk: 64,
                tm: 16,
                tn: 16,
            },
            precision: Precision::F32,
        }),
        ..Default::default()
    };
    let err = matmul(&a, &b, None, &big).unwrap_err();
    assert!(err.to_string().contains("workgroup memory"), "{err}");
    // f16 on the tiled kernel does not exist.
    let f16_tiled = MatmulSpec {
        variant: Some(Variant {
            precision: Precision::F16,
            ..Variant::tiled(Tiles::LARGE)
        }),
        ..Default::default()
    };
    assert!(matmul(&a, &b, None, &f16_tiled).is_err());
    // A device without SHADER_F16 gets a clear refusal naming the feature.
    let err = Variant::F16_64X64
        .check_features(Default::default(), "some adapter")
        .unwrap_err();
    assert!(err.to_string().contains("SHADER_F16"), "{err}");
    assert!(err.to_string().contains("f32 variant"), "{err}");
    // Names round-trip.
    for (name, v) in Variant::ALL {
        assert_eq!(v.name(), name);
        assert_eq!(Variant::named(name), Some(v));
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
                ..Default::default()
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
