//! GFLOP/s of accrete's own GEMM driver (core/src/cpu/kernels/matmul/gemm.rs, the browser's
//! and `ACCRETE_CPU_GEMM=accrete`'s) beside the `gemm` crate (the CPU backend's native path)
//! and `matrixmultiply`, square 256/512/1024 and the MLP 784-512-256-10 step's eight GEMMs
//! at batch 128; ACCRETE_CPU_THREADS threads (default: all). Run by benchmarks/cpu_gemm.sh.
#![allow(clippy::all)]

#[allow(non_snake_case)]
fn T() -> usize {
    cpu::threads()
}

#[allow(dead_code)]
#[path = "../../../core/src/cpu/pool.rs"]
pub(crate) mod pool;
mod cpu {
    pub(crate) use super::pool;
    pub fn threads() -> usize {
        std::env::var("ACCRETE_CPU_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}
#[allow(dead_code)]
#[path = "../../../core/src/cpu/kernels/matmul/gemm.rs"]
mod ours;
use std::time::Instant;
fn time(f: &mut dyn FnMut(), n: usize) -> f64 {
    f();
    let reps = ((4e9 / (2.0 * (n as f64).powi(3))).ceil() as usize).max(3);
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    2.0 * (n as f64).powi(3) / (t.elapsed().as_secs_f64() / reps as f64) / 1e9
}
fn mlp() {
    // (m, n, k, a transposed, b transposed): the MLP step's GEMMs at batch 128.
    let shapes = [
        (128usize, 512usize, 784usize, false, false),
        (128, 256, 512, false, false),
        (128, 10, 256, false, false),
        (784, 512, 128, true, false),
        (512, 256, 128, true, false),
        (256, 10, 128, true, false),
        (128, 512, 256, false, true),
        (128, 256, 10, false, true),
    ];
    let bufs: Vec<_> = shapes
        .iter()
        .map(|&(m, n, k, _, _)| {
            (
                (0..m * k)
                    .map(|i| (i % 31) as f32 * 0.01)
                    .collect::<Vec<f32>>(),
                (0..k * n)
                    .map(|i| (i % 29) as f32 * 0.01)
                    .collect::<Vec<f32>>(),
                vec![0.0f32; m * n],
            )
        })
        .collect();
    let flops: f64 = shapes
        .iter()
        .map(|&(m, n, k, _, _)| 2.0 * (m * n * k) as f64)
        .sum();
    let mut bufs = bufs;
    for lib in 0..3 {
        let mut step = || {
            for (&(m, n, k, ta, tb), (a, b, c)) in shapes.iter().zip(bufs.iter_mut()) {
                let (ars, acs) = if ta { (1, m) } else { (k, 1) };
                let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
                match lib {
                    0 => ours::sgemm_own(
                        m,
                        n,
                        k,
                        ours::View {
                            data: a,
                            rs: ars,
                            cs: acs,
                        },
                        ours::View {
                            data: b,
                            rs: brs,
                            cs: bcs,
                        },
                        c,
                        T(),
                        None,
                    ),
                    1 => unsafe {
                        matrixmultiply::sgemm(
                            m,
                            k,
                            n,
                            1.0,
                            a.as_ptr(),
                            ars as isize,
                            acs as isize,
                            b.as_ptr(),
                            brs as isize,
                            bcs as isize,
                            0.0,
                            c.as_mut_ptr(),
                            n as isize,
                            1,
                        )
                    },
                    _ => unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            a.as_ptr(),
                            acs as isize,
                            ars as isize,
                            b.as_ptr(),
                            bcs as isize,
                            brs as isize,
                            0.0f32,
                            1.0f32,
                            false,
                            false,
                            false,
                            gemm::Parallelism::Rayon(T()),
                        )
                    },
                }
            }
        };
        step();
        let reps = 300;
        let t = Instant::now();
        for _ in 0..reps {
            step();
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "MLP step GEMMs, {}: {:.2} ms = {:.0} GFLOP/s",
            [
                "accrete's own driver",
                "matrixmultiply 0.3",
                "gemm 0.18 (accrete's native path)"
            ][lib],
            s * 1e3,
            flops / s / 1e9
        );
    }
}
fn main() {
    mlp();
    for n in [256usize, 512, 1024] {
        let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32) * 0.01).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i % 89) as f32) * 0.01).collect();
        let mut c = vec![0.0f32; n * n];
        let g_ours = time(
            &mut || {
                ours::sgemm_own(
                    n,
                    n,
                    n,
                    ours::View {
                        data: &a,
                        rs: n,
                        cs: 1,
                    },
                    ours::View {
                        data: &b,
                        rs: n,
                        cs: 1,
                    },
                    &mut c,
                    T(),
                    None,
                )
            },
            n,
        );
        let g_mm = time(
            &mut || unsafe {
                matrixmultiply::sgemm(
                    n,
                    n,
                    n,
                    1.0,
                    a.as_ptr(),
                    n as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            },
            n,
        );
        let g_gemm = time(
            &mut || unsafe {
                gemm::gemm(
                    n,
                    n,
                    n,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(T()),
                )
            },
            n,
        );
        println!("n={n}: accrete's own {g_ours:.1} · matrixmultiply {g_mm:.1} · gemm 0.18 {g_gemm:.1} GFLOP/s");
    }
}
