//! GFLOP/s of the CPU backend's GEMM (core/src/cpu/kernels/matmul/gemm.rs) at 256/512/1024,
//! built standalone so that it needs no wgpu build:
//!   rustc -O --edition 2021 benchmarks/cpu_gemm.rs -o /tmp/cpu_gemm && /tmp/cpu_gemm
//! (benchmarks/cpu_gemm.sh runs it next to numpy's matmul in the same run, with `uptime`).

#[allow(dead_code)]
#[path = "../core/src/cpu/pool.rs"]
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
#[path = "../core/src/cpu/kernels/matmul/gemm.rs"]
mod gemm;

use gemm::View;

fn sgemm(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>, c: &mut [f32]) {
    gemm::sgemm_on(m, n, k, a, b, c, cpu::threads());
}

fn main() {
    println!("threads {}", cpu::threads());
    for n in [256usize, 512, 1024] {
        let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32) * 0.01).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i % 89) as f32) * 0.01).collect();
        let mut c = vec![0.0f32; n * n];
        let av = View {
            data: &a,
            rs: n,
            cs: 1,
        };
        let bv = View {
            data: &b,
            rs: n,
            cs: 1,
        };
        sgemm(n, n, n, av, bv, &mut c);
        let reps = (2e9 / (2.0 * (n as f64).powi(3))).ceil() as usize;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            sgemm(n, n, n, av, bv, &mut c);
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "accrete cpu gemm n={n}: {:.1} GFLOP/s",
            2.0 * (n as f64).powi(3) / s / 1e9
        );
    }
    mlp_gemms();
}

/// The GEMMs of one training step of the MLP 784-512-256-10 at batch 128 (forward
/// X·W, weight gradients Xᵀ·dZ, input gradients dZ·Wᵀ): an upper bound on samples/s.
fn mlp_gemms() {
    let (bs, dims) = (128usize, [784usize, 512, 256, 10]);
    let buf = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i % 31) as f32) * 0.01).collect() };
    let layers: Vec<_> = (0..3)
        .map(|l| {
            let (i, o) = (dims[l], dims[l + 1]);
            (i, o, buf(bs * i), buf(i * o), buf(bs * o))
        })
        .collect();
    let mut outs: Vec<_> = (0..3)
        .map(|l| {
            let (i, o) = (dims[l], dims[l + 1]);
            (
                vec![0.0f32; bs * o],
                vec![0.0f32; i * o],
                vec![0.0f32; bs * i],
            )
        })
        .collect();
    let mut step = || {
        for (l, ((i, o, x, w, dz), (y, dw, dx))) in layers.iter().zip(outs.iter_mut()).enumerate() {
            let (i, o) = (*i, *o);
            sgemm(
                bs,
                o,
                i,
                View {
                    data: x,
                    rs: i,
                    cs: 1,
                },
                View {
                    data: w,
                    rs: o,
                    cs: 1,
                },
                y,
            );
            sgemm(
                i,
                o,
                bs,
                View {
                    data: x,
                    rs: 1,
                    cs: i,
                },
                View {
                    data: dz,
                    rs: o,
                    cs: 1,
                },
                dw,
            );
            if l > 0 {
                sgemm(
                    bs,
                    i,
                    o,
                    View {
                        data: dz,
                        rs: o,
                        cs: 1,
                    },
                    View {
                        data: w,
                        rs: 1,
                        cs: o,
                    },
                    dx,
                );
            }
        }
    };
    step();
    let reps = 50;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        step();
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "MLP 784-512-256-10 batch 128, its GEMMs only: {:.2} ms/step = {:.0} samples/s",
        s * 1e3,
        bs as f64 / s
    );
}
