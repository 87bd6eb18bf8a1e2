//! The CPU GEMM: `C = op(A) · op(B)` in f32, cache-blocked and register-blocked.
//!
//! B is packed once into column panels of [`NR`] columns (`[k][NR]`, zero-padded); each
//! thread takes a fixed, equal share of C's row blocks ([`MR`] rows), packs those rows of A
//! per depth block of [`KC`] and runs the `MR × NR` micro-kernel over every panel. Every
//! element of C is one chain `acc = acc + a_k · b_k` for k = 0, 1, …, K−1 from 0 (an FMA
//! where the CPU has one: AVX2+FMA on x86_64, NEON on aarch64), whatever tile or thread it
//! falls in, so the result does not depend on the thread count or on where the partition
//! falls.

/// Rows of the micro-kernel's tile.
pub(crate) const MR: usize = 6;
/// Columns of the micro-kernel's tile (two AVX vectors).
pub(crate) const NR: usize = 16;
/// Depth block: a packed A block is `MR × KC`, a packed B block `KC × NR` per panel.
const KC: usize = 256;

/// A strided matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `c[i * n + j] = Σ_k a(i, k) · b(k, j)` for an `m × k` view `a` and `k × n` view `b`
/// (`c` is `m × n`, row-major; overwritten). Views must be in bounds (checked by callers).
pub(crate) fn sgemm(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>, c: &mut [f32]) {
    sgemm_on(m, n, k, a, b, c, crate::cpu::threads());
}

/// [`sgemm`] on at most `max_threads` threads (products under 2¹⁸ multiply-adds on one).
pub(crate) fn sgemm_on(
    m: usize,
    n: usize,
    k: usize,
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    max_threads: usize,
) {
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let panels = n.div_ceil(NR);
    let mut bp = vec![0.0f32; panels * k * NR];
    for p in 0..panels {
        let cols = NR.min(n - p * NR);
        let dst = &mut bp[p * k * NR..(p + 1) * k * NR];
        for kk in 0..k {
            for j in 0..cols {
                dst[kk * NR + j] = b.at(kk, p * NR + j);
            }
        }
    }
    let blocks = m.div_ceil(MR);
    let work = m * n * k;
    let threads = if work < 1 << 18 {
        1
    } else {
        max_threads.min(blocks).max(1)
    };
    let per = blocks.div_ceil(threads);
    let rows_per = per * MR;
    let bp = &bp[..];
    run_split(c, rows_per * n, threads, |t, chunk| {
        let r0 = t * rows_per;
        let rows = chunk.len() / n;
        rows_block(r0, rows, n, k, a, bp, chunk);
    });
}

/// Splits `c` into consecutive chunks of `chunk` elements and runs `f(index, chunk)` on each,
/// on up to `threads` threads natively (one at a time in the browser).
pub(crate) fn run_split<F>(c: &mut [f32], chunk: usize, threads: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let chunk = chunk.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 {
        std::thread::scope(|s| {
            let mut parts = c.chunks_mut(chunk).enumerate();
            let first = parts.next();
            for (t, part) in parts {
                let f = &f;
                s.spawn(move || f(t, part));
            }
            if let Some((t, part)) = first {
                f(t, part);
            }
        });
        return;
    }
    let _ = threads;
    for (t, part) in c.chunks_mut(chunk).enumerate() {
        f(t, part);
    }
}

/// Rows `r0 .. r0 + rows` of C (`c` holds exactly those rows).
fn rows_block(r0: usize, rows: usize, n: usize, k: usize, a: View<'_>, bp: &[f32], c: &mut [f32]) {
    let panels = n.div_ceil(NR);
    let mut ap = [0.0f32; MR * KC];
    let mut k0 = 0;
    while k0 < k {
        let kc = KC.min(k - k0);
        let mut i0 = 0;
        while i0 < rows {
            let mr = MR.min(rows - i0);
            for kk in 0..kc {
                for r in 0..MR {
                    ap[kk * MR + r] = if r < mr {
                        a.at(r0 + i0 + r, k0 + kk)
                    } else {
                        0.0
                    };
                }
            }
            for p in 0..panels {
                let nr = NR.min(n - p * NR);
                let bpan = &bp[p * k * NR + k0 * NR..p * k * NR + (k0 + kc) * NR];
                let mut acc = [[0.0f32; NR]; MR];
                if k0 > 0 {
                    for r in 0..mr {
                        let row = &c[(i0 + r) * n + p * NR..][..nr];
                        acc[r][..nr].copy_from_slice(row);
                    }
                }
                micro(&ap[..kc * MR], bpan, &mut acc);
                for r in 0..mr {
                    c[(i0 + r) * n + p * NR..][..nr].copy_from_slice(&acc[r][..nr]);
                }
            }
            i0 += MR;
        }
        k0 += kc;
    }
}

/// `acc[r][j] += Σ_kk ap[kk][r] · bp[kk][j]`, in order of kk.
#[inline]
fn micro(ap: &[f32], bp: &[f32], acc: &mut [[f32; NR]; MR]) {
    #[cfg(target_arch = "x86_64")]
    {
        if fma_available() {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            unsafe { micro_fma(ap, bp, acc) };
            return;
        }
    }
    micro_generic::<false>(ap, bp, acc);
}

#[cfg(target_arch = "x86_64")]
fn fma_available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_fma(ap: &[f32], bp: &[f32], acc: &mut [[f32; NR]; MR]) {
    micro_generic::<true>(ap, bp, acc)
}

/// The micro-kernel body; `FUSED` uses a fused multiply-add (compiled inside a function
/// with the FMA feature, so it is one instruction), else a multiply and an add.
#[inline(always)]
fn micro_generic<const FUSED: bool>(ap: &[f32], bp: &[f32], acc: &mut [[f32; NR]; MR]) {
    let mut t = *acc;
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        for r in 0..MR {
            let ar = a[r];
            for j in 0..NR {
                t[r][j] = if FUSED {
                    ar.mul_add(b[j], t[r][j])
                } else {
                    t[r][j] + ar * b[j]
                };
            }
        }
    }
    *acc = t;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgemm_matches_a_plain_triple_loop_at_awkward_sizes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 3),
            (13, 33, 300),
            (64, 16, 0),
            (50, 70, 513),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
            let mut c = vec![f32::NAN; m * n];
            let av = View {
                data: &a,
                rs: k,
                cs: 1,
            };
            let bv = View {
                data: &b,
                rs: n,
                cs: 1,
            };
            sgemm(m, n, k, av, bv, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|q| a[i * k + q] * b[q * n + j]).sum();
                    assert_eq!(c[i * n + j], want, "({i}, {j}) of {m}x{n}x{k}");
                }
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (m, n, k) = (203, 75, 301);
        let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.11).cos()).collect();
        let av = View {
            data: &a,
            rs: 1,
            cs: m,
        }; // A stored [K, M] (transposed)
        let bv = View {
            data: &b,
            rs: n,
            cs: 1,
        };
        let run = |t: usize| {
            let mut c = vec![f32::NAN; m * n];
            sgemm_on(m, n, k, av, bv, &mut c, t);
            c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        let one = run(1);
        for t in [2, 3, 7, 64] {
            assert_eq!(run(t), one, "{t} threads");
        }
    }
}
