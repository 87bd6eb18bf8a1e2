//! The GEMM (the public path: natively the `gemm` crate, and accrete's own driver) against a
//! plain triple loop and an f64 sum, across thread counts and grids, and each micro-kernel
//! against the portable reference.

use super::micro::{self, Isa};
use super::*;

fn view(data: &[f32], rs: usize, cs: usize) -> View<'_> {
    View { data, rs, cs }
}

fn wave(n: usize, f: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * f).sin()).collect()
}

#[test]
fn sgemm_matches_a_plain_triple_loop_at_awkward_sizes() {
    // Small integers: every product and partial sum is exact, so the order of the sum
    // does not matter and the comparison can be exact.
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 17, 3),
        (13, 33, 300),
        (64, 16, 0),
        (50, 70, 513),
        (25, 65, 257),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
        for trans_b in [false, true] {
            // B as [k][n], or the same matrix stored transposed ([n][k]).
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let bv = if trans_b {
                view(&bt, 1, k)
            } else {
                view(&b, n, 1)
            };
            let mut c = vec![f32::NAN; m * n];
            sgemm(m, n, k, view(&a, k, 1), bv, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|q| a[i * k + q] * b[q * n + j]).sum();
                    assert_eq!(
                        c[i * n + j],
                        want,
                        "({i}, {j}) of {m}x{n}x{k}, B^T {trans_b}"
                    );
                }
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count_or_the_grid() {
    for &(m, n, k) in &[
        (203, 75, 301),
        (128, 512, 300),
        (12, 1000, 40),
        (700, 10, 128),
    ] {
        let a = wave(m * k, 0.37);
        let b = wave(k * n, 0.11);
        let av = view(&a, 1, m); // A stored [K, M] (transposed)
        let bv = view(&b, n, 1);
        // The public path (natively the `gemm` crate) and accrete's own driver.
        let run = |t: usize| {
            let mut c = vec![f32::NAN; m * n];
            sgemm_on(m, n, k, av, bv, &mut c, t);
            c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        let own = |t: usize| {
            let mut c = vec![f32::NAN; m * n];
            sgemm_own(m, n, k, av, bv, &mut c, t, None);
            c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        let own_one = own(1);
        for t in [2, 3, 7, 64] {
            assert_eq!(own(t), own_one, "own driver, {t} threads, {m}x{n}x{k}");
        }
        let one = run(1);
        // The chain of every element, in f64 for scale: within a few ulps of K terms.
        for i in (0..m).step_by(7) {
            for j in (0..n).step_by(5) {
                let (mut s, mut mag) = (0.0f64, 0.0f64);
                for q in 0..k {
                    let p = a[q * m + i] as f64 * b[q * n + j] as f64;
                    s += p;
                    mag += p.abs();
                }
                let got = f32::from_bits(one[i * n + j]) as f64;
                assert!(
                    (got - s).abs() <= 2.0 * k as f64 * f32::EPSILON as f64 * mag + 1e-30,
                    "({i}, {j}) of {m}x{n}x{k}: {got} vs {s}"
                );
            }
        }
        for t in [2, 3, 7, 64] {
            assert_eq!(run(t), one, "{t} threads, {m}x{n}x{k}");
        }
    }
}

#[test]
fn the_epilogue_sees_every_element_once_after_the_product() {
    let (m, n, k) = (97, 130, 260);
    let a = wave(m * k, 0.21);
    let b = wave(k * n, 0.05);
    let mut plain = vec![f32::NAN; m * n];
    sgemm_on(m, n, k, view(&a, k, 1), view(&b, n, 1), &mut plain, 1);
    for threads in [1, 3] {
        let seen: Vec<std::sync::atomic::AtomicU32> =
            (0..m * n).map(|_| Default::default()).collect();
        let post = |i: usize, j0: usize, row: &mut [f32]| {
            for (j, v) in (j0..).zip(row.iter_mut()) {
                seen[i * n + j].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *v = *v * 2.0 + j as f32;
            }
        };
        let mut c = vec![f32::NAN; m * n];
        sgemm_post(
            m,
            n,
            k,
            view(&a, k, 1),
            view(&b, n, 1),
            &mut c,
            threads,
            Some(&post),
        );
        for i in 0..m {
            for j in 0..n {
                assert_eq!(
                    seen[i * n + j].load(std::sync::atomic::Ordering::Relaxed),
                    1
                );
                assert_eq!(
                    c[i * n + j],
                    plain[i * n + j] * 2.0 + j as f32,
                    "({i}, {j})"
                );
            }
        }
    }
}

/// A micro-kernel's tile against [`micro::generic`] with the same fusing, bit for bit, from a
/// non-zero accumulator, over depths around the unrolling.
fn same_as_generic<const MR: usize, const NR: usize, const FUSED: bool>(kernel: Micro<'_, MR, NR>) {
    for kc in [0, 1, 2, 7, 64, 256] {
        let ap = wave(kc * MR, 0.7);
        let bp = wave(kc * NR, 0.3);
        let mut start = [[0.0f32; NR]; MR];
        for (r, row) in start.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = ((r * NR + j) as f32 * 0.13).cos();
            }
        }
        let mut want = start;
        micro::generic::<MR, NR, FUSED>(&ap, &bp, &mut want);
        let mut got = start;
        kernel(&ap, &bp, &mut got);
        for r in 0..MR {
            for j in 0..NR {
                assert_eq!(
                    got[r][j].to_bits(),
                    want[r][j].to_bits(),
                    "kc {kc} ({r}, {j})"
                );
            }
        }
    }
}

#[test]
fn each_micro_kernel_this_cpu_has_gives_the_references_bits() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            same_as_generic::<12, 32, true>(&micro::avx512);
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            same_as_generic::<6, 16, true>(&micro::avx2_fma);
        }
    }
    same_as_generic::<6, 16, { cfg!(target_arch = "aarch64") }>(&micro::portable);
    eprintln!("GEMM micro-kernel on this CPU: {}", Isa::detect().name());
}

#[test]
fn fused_kernels_agree_whatever_their_tile() {
    // AVX-512 (12 × 32) and AVX2 (6 × 16) must give the same product: each element is the
    // same fused chain. The reference for both is the fused generic kernel at either tile.
    let (m, n, k) = (30, 70, 300);
    let a = wave(m * k, 0.29);
    let b = wave(k * n, 0.17);
    let mut c = vec![f32::NAN; m * n];
    sgemm_own(m, n, k, view(&a, k, 1), view(&b, n, 1), &mut c, 1, None);
    if matches!(Isa::detect(), Isa::Avx512 | Isa::Avx2Fma) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for q in 0..k {
                    s = a[i * k + q].mul_add(b[q * n + j], s);
                }
                assert_eq!(c[i * n + j].to_bits(), s.to_bits(), "({i}, {j})");
            }
        }
    }
}
