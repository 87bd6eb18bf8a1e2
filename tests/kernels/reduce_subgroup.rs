//! The column sum's subgroup kernel (`ColsPath::Subgroup`, chosen by `cols_into` where the
//! device has `wgpu::Features::SUBGROUP`), its in-shader serial fallback, and the serial
//! kernel, against the f64 reference; and bit-reproducibility.
//!
//! Bound: each lane sums ⌈rows/TR⌉ terms in order, then log₂TR shuffle levels add partials:
//! at most rows − 1 roundings in all, so |error| ≤ (rows − 1)·2⁻²⁴·Σ|xᵢ|; the mean's scaling
//! adds one more. We allow (rows + 2)·2⁻²³·Σ|xᵢ|, as the serial kernel's test does.

use accrete::kernels::reduce::{
    self, cols_into, cols_into_path, has_subgroups, subgroup_lanes, ColsPath, Reduce,
};
use accrete::Tensor;
use accrete_tests::*;

/// (rows, cols): B = 1, odd N, B and N past a 256-invocation workgroup, lane counts 1..8+.
const SHAPES: [(usize, usize); 11] = [
    (1, 1),
    (1, 300),
    (2, 5),
    (7, 13),
    (13, 64),
    (33, 64),
    (5, 65),
    (64, 129),
    (300, 1),
    (257, 3),
    (129, 97),
];

/// The lane count the library uses for `rows` rows on the test device.
fn lanes(rows: usize) -> u32 {
    reduce::subgroup_lanes_on(gpu(), rows)
}

fn skip() -> bool {
    if !has_subgroups(gpu()) {
        eprintln!(
            "SKIPPED: adapter {:?} lacks wgpu::Features::SUBGROUP",
            gpu().summary().name
        );
        return true;
    }
    false
}

fn check(path: ColsPath, red: Reduce, rows: usize, cols: usize) -> Vec<f32> {
    let x = uniform(&mut rng((rows * 31 + cols) as u64), rows * cols, -3.0, 3.0);
    let t = upload(&[rows, cols], &x);
    let out = poisoned(&[cols]);
    gpu()
        .run(&[&cols_into_path(red, &t, &out, path).unwrap()])
        .unwrap();
    let (s, mag) = reduce::reference::cols(&x, rows, cols);
    let div = if red == Reduce::Mean {
        rows as f64
    } else {
        1.0
    };
    let want: Vec<f64> = s.iter().map(|v| v / div).collect();
    let got = read(&out);
    assert_close(
        &format!("{path:?} {red:?} {rows}x{cols} ({} lanes)", lanes(rows)),
        &got,
        &want,
        |i| (rows as f64 + 2.0) * EPS * mag[i] / div,
    );
    got
}

#[test]
fn lane_counts() {
    assert_eq!(subgroup_lanes(1, 8), 1);
    assert_eq!(subgroup_lanes(4, 8), 1);
    assert_eq!(subgroup_lanes(5, 8), 2);
    assert_eq!(subgroup_lanes(13, 8), 4);
    assert_eq!(subgroup_lanes(29, 8), 8);
    assert_eq!(subgroup_lanes(10_000, 8), 8);
    assert_eq!(subgroup_lanes(10_000, 64), 32);
    assert_eq!(subgroup_lanes(100, 6), 4);
    assert_eq!(subgroup_lanes(100, 0), 1);
    assert_eq!(subgroup_lanes(0, 32), 1);
}

#[test]
fn subgroup_column_sums_match_the_f64_reference() {
    if skip() {
        return;
    }
    eprintln!(
        "adapter {:?}: up to {} lanes per column",
        gpu().summary().name,
        lanes(usize::MAX)
    );
    for &(rows, cols) in &SHAPES {
        for red in [Reduce::Sum, Reduce::Mean] {
            check(ColsPath::Subgroup, red, rows, cols);
        }
    }
}

#[test]
fn subgroup_fallback_and_serial_kernels_match_the_f64_reference() {
    for &(rows, cols) in &SHAPES {
        check(ColsPath::Serial, Reduce::Sum, rows, cols);
        if !skip() {
            check(ColsPath::SubgroupFallback, Reduce::Sum, rows, cols);
        }
    }
}

#[test]
fn subgroup_sums_are_bit_reproducible_and_chosen_by_cols_into() {
    if skip() {
        return;
    }
    for &(rows, cols) in &[(33usize, 64usize), (129, 97), (7, 13)] {
        let a = check(ColsPath::Subgroup, Reduce::Sum, rows, cols);
        let b = check(ColsPath::Subgroup, Reduce::Sum, rows, cols);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "{rows}x{cols}: two runs differ");

        let x = uniform(&mut rng((rows * 31 + cols) as u64), rows * cols, -3.0, 3.0);
        let out = poisoned(&[cols]);
        gpu()
            .run(&[&cols_into(Reduce::Sum, &upload(&[rows, cols], &x), &out).unwrap()])
            .unwrap();
        let auto = read(&out);
        let lanes = lanes(rows);
        if lanes >= 2 {
            assert_eq!(bits(&auto), bits(&a), "{rows}x{cols}: cols_into ≠ Subgroup");
        }
        // Where the rows are split over lanes, the order differs from the serial kernel's;
        // with 1 lane the kernels add in the same order.
        let serial = check(ColsPath::Serial, Reduce::Sum, rows, cols);
        if lanes == 1 {
            assert_eq!(bits(&serial), bits(&a), "{rows}x{cols}: 1 lane ≠ serial");
        }
    }
}

/// The subgroup kernel's summation order in f32 on the CPU: lane k sums rows k, k + TR, ...
/// in order, then levels m = TR/2, ..., 1 add each lane's partner (lane ^ m).
fn emulate_subgroup(x: &[f32], rows: usize, cols: usize, tr: usize) -> Vec<f32> {
    (0..cols)
        .map(|c| {
            let mut part: Vec<f32> = (0..tr)
                .map(|k| (k..rows).step_by(tr).map(|r| x[r * cols + c]).sum())
                .collect();
            let mut m = tr / 2;
            while m > 0 {
                part = (0..tr).map(|i| part[i] + part[i ^ m]).collect();
                m /= 2;
            }
            part[0]
        })
        .collect()
}

/// The serial order: rows 0, 1, 2, ... in f32.
fn emulate_serial(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    emulate_subgroup(x, rows, cols, 1)
}

#[test]
fn each_kernel_adds_in_its_documented_order() {
    // f32 addition is correctly rounded, so emulating each kernel's order on the CPU must
    // reproduce its bits exactly; this shows the shuffle butterfly (not the fallback) ran.
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for &(rows, cols) in &SHAPES {
        let x = uniform(&mut rng((rows * 31 + cols) as u64), rows * cols, -3.0, 3.0);
        let t = upload(&[rows, cols], &x);
        let mut paths = vec![(ColsPath::Serial, emulate_serial(&x, rows, cols))];
        if has_subgroups(gpu()) {
            let tr = lanes(rows) as usize;
            paths.push((ColsPath::Subgroup, emulate_subgroup(&x, rows, cols, tr)));
            paths.push((ColsPath::SubgroupFallback, emulate_serial(&x, rows, cols)));
        } else {
            eprintln!("SKIPPED subgroup paths: adapter lacks wgpu::Features::SUBGROUP");
        }
        for (path, want) in paths {
            let out = poisoned(&[cols]);
            gpu()
                .run(&[&cols_into_path(Reduce::Sum, &t, &out, path).unwrap()])
                .unwrap();
            assert_eq!(
                bits(&read(&out)),
                bits(&want),
                "{path:?} {rows}x{cols} ({} lanes)",
                lanes(rows)
            );
        }
    }
}

#[test]
fn wrong_output_length_is_an_error_not_a_panic() {
    let t: Tensor = upload(&[3, 4], &[1.0; 12]);
    let out = poisoned(&[5]);
    for path in [ColsPath::Serial, ColsPath::Subgroup] {
        assert!(cols_into_path(Reduce::Sum, &t, &out, path).is_err());
    }
}
