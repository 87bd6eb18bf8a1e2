//! Philox RNG: the shader matches the CPU twin bit for bit (and the CPU twin matches the
//! Random123 known-answer vectors); uniform and dropout draws are exact on every device;
//! normals match the f64 Box–Muller within the error of log/cos. Gather copies rows exactly.

use accrete::kernels::gather::{self, gather_into, PAD_INDEX};
use accrete::kernels::rng::{self, fill_into, philox, Distribution, RngKey};
use accrete::Tensor;
use accrete_tests::*;

#[test]
fn philox_known_answers() {
    // Random123's kat_vectors for philox4x32_10.
    assert_eq!(
        philox([0, 0, 0, 0], [0, 0]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        philox([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

fn draw(dist: Distribution, key: RngKey, n: usize) -> Vec<f32> {
    let out = poisoned(&[n]);
    gpu().run(&[&fill_into(dist, key, &out).unwrap()]).unwrap();
    read(&out)
}

#[test]
fn uniform_and_dropout_are_exact() {
    let key = RngKey {
        seed: 0x1234_5678_9abc_def0,
        stream: 3,
        offset: 17,
    };
    for n in [1usize, 255, 257, 4099] {
        let got = draw(Distribution::Uniform { lo: 0.0, hi: 1.0 }, key, n);
        let want: Vec<f32> = (0..n as u32)
            .map(|i| rng::u01(rng::words(key, i)[0]))
            .collect();
        assert_eq!(got, want, "uniform n={n}");
        let mask = draw(Distribution::DropoutMask { rate: 0.25 }, key, n);
        let want = rng::reference::fill(Distribution::DropoutMask { rate: 0.25 }, key, n);
        assert_eq!(
            mask,
            want.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            "dropout n={n}"
        );
    }
}

#[test]
fn scaled_uniform_and_normal_match_the_reference() {
    let key = RngKey {
        seed: 42,
        stream: 0,
        offset: 0,
    };
    let n = 20_000;
    let dist = Distribution::Uniform { lo: -0.5, hi: 2.0 };
    let got = draw(dist, key, n);
    let want = rng::reference::fill(dist, key, n);
    assert_close("uniform[-0.5, 2)", &got, &want, |i| {
        2.0 * EPS * want[i].abs().max(2.5)
    });
    let dist = Distribution::Normal {
        mean: 1.0,
        std: 2.0,
    };
    let got = draw(dist, key, n);
    let want = rng::reference::fill(dist, key, n);
    // √(−2 ln u1): log within 2⁻²¹ absolute near 1 or 3 ULP, cos(2πu2) within 2⁻¹¹ absolute
    // on [−π, π] per the WGSL spec (the dominant term), scaled by std·√(−2 ln u1) ≤ 2·5.8.
    assert_close("normal", &got, &want, |i| {
        let radius = ((want[i] - 1.0) / 2.0).abs().max(1.0);
        2.0 * (2f64.powi(-11) * 5.8 + 8.0 * EPS * radius) + 2f64.powi(-19)
    });
    let mean = got.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = got.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        (mean - 1.0).abs() < 0.05 && (var - 4.0).abs() < 0.15,
        "mean {mean} var {var}"
    );
}

#[test]
fn streams_and_offsets_differ() {
    let base = RngKey {
        seed: 7,
        stream: 0,
        offset: 0,
    };
    let u = Distribution::Uniform { lo: 0.0, hi: 1.0 };
    let a = draw(u, base, 64);
    assert_ne!(a, draw(u, RngKey { stream: 1, ..base }, 64));
    assert_ne!(a, draw(u, RngKey { offset: 1, ..base }, 64));
    assert_ne!(a, draw(u, RngKey { seed: 8, ..base }, 64));
    assert_eq!(a, draw(u, base, 64));
}

#[test]
fn dropout_rate_is_checked() {
    let out = poisoned(&[4]);
    let err = fill_into(
        Distribution::DropoutMask { rate: 1.0 },
        RngKey::default(),
        &out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("dropout rate"), "{err}");
}

#[test]
fn gather_rows_f32_and_u32_with_padding() {
    let (rows, cols) = (37, 13);
    let src: Vec<f32> = uniform(&mut rng(5), rows * cols, -1.0, 1.0);
    let tsrc = upload(&[rows, cols], &src);
    let idx: Vec<u32> = vec![36, 0, 5, 5, PAD_INDEX, 17, 1, 2, 3, 36, 12];
    let tidx = Tensor::from_u32(gpu(), &[idx.len()], &idx).unwrap();
    for (offset, take) in [(0usize, 11usize), (3, 8), (10, 1)] {
        let out = poisoned(&[take, cols]);
        gpu()
            .run(&[&gather_into(&tsrc, &tidx, offset, &out).unwrap()])
            .unwrap();
        let bits: Vec<u32> = src.iter().map(|v| v.to_bits()).collect();
        let want = gather::reference(&bits, cols, &idx[offset..offset + take], 0);
        assert_eq!(
            read(&out).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want,
            "offset {offset}"
        );
    }
    let labels: Vec<u32> = (0..rows as u32).map(|i| i * 3 % 10).collect();
    let tl = Tensor::from_u32(gpu(), &[rows], &labels).unwrap();
    let out = poisoned_u32(&[idx.len()]);
    gpu()
        .run(&[&gather_into(&tl, &tidx, 0, &out).unwrap()])
        .unwrap();
    assert_eq!(
        read_u32(&out),
        gather::reference(&labels, 1, &idx, PAD_INDEX)
    );
    let too_many = poisoned(&[12, cols]);
    let err = gather_into(&tsrc, &tidx, 0, &too_many).unwrap_err();
    assert!(err.to_string().contains("need 12 indices"), "{err}");
}

/// Features and labels gathered in one dispatch (`gather_pair_stepped_into`, a training
/// step's batch): the same words as two gathers, for the batch the step counter selects,
/// with padding indices; rows that disagree are refused.
#[test]
fn gather_pair_copies_features_and_labels_by_the_step_counter() {
    use accrete::kernels::gather::{gather_pair_stepped_into, gather_stepped_into};
    use accrete::kernels::step;
    let (n, c, h, w, batch) = (23, 2, 3, 5, 4);
    let per = c * h * w;
    let feats = uniform(&mut rng(8), n * per, -1.0, 1.0);
    let tf = upload(&[n, c, h, w], &feats);
    let labels: Vec<u32> = (0..n as u32).map(|i| i * 7 % 10).collect();
    let tl = Tensor::from_u32(gpu(), &[n], &labels).unwrap();
    let idx: Vec<u32> = vec![3, 1, 4, 1, 22, 0, PAD_INDEX, 9, 21, PAD_INDEX, 2, 6];
    let tidx = Tensor::from_u32(gpu(), &[idx.len()], &idx).unwrap();
    let bits: Vec<u32> = feats.iter().map(|v| v.to_bits()).collect();
    for k in 0..3u32 {
        // counter[0]: the batch within the recorded chunk.
        let counter = Tensor::from_u32(gpu(), &[4], &[k, 0, 0, 0]).unwrap();
        let (xo, yo) = (poisoned(&[batch, c, h, w]), poisoned_u32(&[batch]));
        let (x2, y2) = (poisoned(&[batch, c, h, w]), poisoned_u32(&[batch]));
        let pair = gather_pair_stepped_into((&tf, &xo), (&tl, &yo), &tidx, &counter).unwrap();
        let two = [
            gather_stepped_into(&tf, &tidx, &counter, &x2).unwrap(),
            gather_stepped_into(&tl, &tidx, &counter, &y2).unwrap(),
        ];
        gpu().run(&[&pair, &two[0], &two[1]]).unwrap();
        let sel = &idx[k as usize * batch..(k as usize + 1) * batch];
        let got: Vec<u32> = read(&xo).iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            got,
            gather::reference(&bits, per, sel, 0),
            "features, step {k}"
        );
        assert_eq!(read_u32(&yo), gather::reference(&labels, 1, sel, PAD_INDEX));
        let two_bits: Vec<u32> = read(&x2).iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, two_bits, "step {k}");
        assert_eq!(read_u32(&yo), read_u32(&y2), "step {k}");
    }
    let counter = step::counter(gpu(), 0).unwrap();
    let short = poisoned_u32(&[batch - 1]);
    let err = gather_pair_stepped_into(
        (&tf, &poisoned(&[batch, c, h, w])),
        (&tl, &short),
        &tidx,
        &counter,
    )
    .unwrap_err();
    assert!(err.to_string().contains("same rows"), "{err}");
}
