//! The CPU GEMM: `C = op(A) · op(B)` in f32, cache-blocked and register-blocked.
//!
//! B is packed once into column panels of `NR` columns (`[k][NR]`, zero-padded), by panels
//! shared out to the threads; C is cut into a fixed grid of parts (groups of `MR`-row blocks ×
//! groups of panels), which the pool's threads claim one by one. A part packs its rows of A
//! per depth block of [`KC`] and runs the `MR × NR` micro-kernel ([`micro`]) over its panels,
//! then applies the caller's epilogue to its rectangle of C while it is in cache.
//!
//! Every element of C is one chain `acc = acc + a_k · b_k` for k = 0, 1, …, K−1 from 0 (an
//! FMA where the CPU has one: AVX-512 or AVX2+FMA on x86_64, NEON on aarch64; a multiply and
//! an add in wasm), whatever tile, part or thread it falls in, so the result depends neither
//! on the thread count nor on the grid, nor on which of the fused kernels ran.

// (Paths spelled out so that benchmarks/cpu_gemm/ can include this file on its own.)
#[path = "gemm/micro.rs"]
mod micro;

pub(crate) use micro::Isa;

use crate::cpu::pool;
use std::cell::RefCell;

/// Depth block: a packed A block is `MR × KC`, a packed B block `KC × NR` per panel.
const KC: usize = 256;
/// Products smaller than this many multiply-adds run on one thread.
const SERIAL_WORK: usize = 1 << 18;
/// Packed-B buffers up to this many elements (16 MiB) are kept for the next product.
const KEEP_PACKED: usize = 1 << 22;

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

/// An epilogue: `post(i, j0, row)` is called once for each finished row segment
/// `C[i, j0 .. j0 + row.len()]`, on the thread that computed it.
pub(crate) type Post<'a> = &'a (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// `c[i * n + j] = Σ_k a(i, k) · b(k, j)` for an `m × k` view `a` and `k × n` view `b`
/// (`c` is `m × n`, row-major; overwritten). Views must be in bounds (checked by callers).
#[cfg(test)]
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
    sgemm_post(m, n, k, a, b, c, max_threads, None)
}

/// [`sgemm_on`], then `post` over every element of C (see [`Post`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_post(
    m: usize,
    n: usize,
    k: usize,
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    max_threads: usize,
    post: Option<Post<'_>>,
) {
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    let threads = if m * n * k.max(1) < SERIAL_WORK {
        1
    } else {
        max_threads.max(1)
    };
    #[cfg(not(target_arch = "wasm32"))]
    if k > 0 && !own_kernel() {
        return crate_gemm(m, n, k, a, b, c, threads, post);
    }
    sgemm_own(m, n, k, a, b, c, threads, post)
}

/// Whether `ACCRETE_CPU_GEMM=accrete` asks for accrete's own driver natively (for
/// comparisons); the `gemm` crate otherwise.
#[cfg(not(target_arch = "wasm32"))]
fn own_kernel() -> bool {
    static OWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| std::env::var("ACCRETE_CPU_GEMM").is_ok_and(|v| v == "accrete"))
}

/// The product by the `gemm` crate (its own packing and micro-kernels, its rayon threads
/// over output blocks; the bits do not depend on the thread count — tested in
/// `gemm/tests.rs`), then `post` row by row.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
fn crate_gemm(
    m: usize,
    n: usize,
    k: usize,
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    threads: usize,
    post: Option<Post<'_>>,
) {
    // The last element each view reads must lie inside its slice (the crate takes pointers).
    assert!(
        (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
        "A view out of bounds"
    );
    assert!(
        (k - 1) * b.rs + (n - 1) * b.cs < b.data.len(),
        "B view out of bounds"
    );
    assert!(c.len() >= m * n);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: A is m × k at (rs, cs), B k × n, C m × n row-major, all in bounds (asserted);
    // C does not overlap A or B (a &mut and two & borrows). read_dst = false: C = A·B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
    if let Some(post) = post {
        let rows: Vec<(usize, &mut [f32])> = c[..m * n].chunks_mut(n).enumerate().collect();
        pool::for_parts(rows, threads, |_, (i, row)| post(i, 0, row));
    }
}

/// The product by accrete's own driver and micro-kernels (the browser's, and natively with
/// `ACCRETE_CPU_GEMM=accrete`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_own(
    m: usize,
    n: usize,
    k: usize,
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    threads: usize,
    post: Option<Post<'_>>,
) {
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    let prob = Problem {
        m,
        n,
        k,
        a,
        b,
        threads,
        post,
    };
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => prob.run::<12, 32>(c, &micro::avx512),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => prob.run::<6, 16>(c, &micro::avx2_fma),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => prob.run::<4, 8>(c, &micro::simd128),
        _ => prob.run::<6, 16>(c, &micro::portable),
    }
}

/// The name of the GEMM's instruction set on this CPU ("AVX-512", "AVX2+FMA", …).
pub(crate) fn simd_name() -> &'static str {
    Isa::detect().name()
}

struct Problem<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: View<'a>,
    b: View<'a>,
    threads: usize,
    post: Option<Post<'a>>,
}

thread_local! {
    /// The packed B of the last product on this thread, kept so that a step's GEMMs do not
    /// allocate (and zero) a panel buffer each.
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// C as a pointer, for parts that write disjoint rectangles of it from several threads.
struct Out {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: the parts of one product write disjoint rectangles of C (the grid's cells), and
// `run` does not return before every part has finished.
unsafe impl Sync for Out {}

/// A micro-kernel on an `MR × NR` tile.
type Micro<'a, const MR: usize, const NR: usize> =
    &'a (dyn Fn(&[f32], &[f32], &mut [[f32; NR]; MR]) + Sync);

impl Problem<'_> {
    fn run<const MR: usize, const NR: usize>(&self, c: &mut [f32], micro: Micro<'_, MR, NR>) {
        let (m, n, k) = (self.m, self.n, self.k);
        let panels = n.div_ceil(NR);
        let mut bp = PACKED_B.with(|s| std::mem::take(&mut *s.borrow_mut()));
        bp.resize(panels * k * NR, 0.0);
        self.pack_b::<NR>(&mut bp);

        // The grid: about four parts per thread, rows first, then panels.
        let blocks = m.div_ceil(MR);
        let want = if self.threads > 1 {
            4 * self.threads
        } else {
            1
        };
        let row_groups = blocks.min(want);
        let blocks_per = blocks.div_ceil(row_groups);
        let row_groups = blocks.div_ceil(blocks_per);
        let col_groups = panels.min(want.div_ceil(row_groups));
        let panels_per = panels.div_ceil(col_groups);
        let col_groups = panels.div_ceil(panels_per);
        let cells: Vec<(usize, usize)> = (0..row_groups)
            .flat_map(|r| (0..col_groups).map(move |q| (r, q)))
            .collect();
        let out = Out {
            ptr: c.as_mut_ptr(),
            len: c.len(),
        };
        let bp_ref = &bp[..];
        pool::for_parts(cells, self.threads, |_, (r, q)| {
            let rows = (r * blocks_per * MR)..(m.min((r + 1) * blocks_per * MR));
            let pans = (q * panels_per)..(panels.min((q + 1) * panels_per));
            self.cell::<MR, NR>(rows, pans, bp_ref, &out, micro);
        });
        if bp.len() <= KEEP_PACKED {
            PACKED_B.with(|s| *s.borrow_mut() = bp);
        }
    }

    /// Packs B into `bp` (`panels × k × NR`, padding columns zero), panels shared out.
    fn pack_b<const NR: usize>(&self, bp: &mut [f32]) {
        let (n, k, b) = (self.n, self.k, self.b);
        if k == 0 {
            return;
        }
        let panel = k * NR;
        let panels = bp.len() / panel;
        let per = if self.threads > 1 {
            panels.div_ceil(2 * self.threads)
        } else {
            panels
        };
        let parts: Vec<&mut [f32]> = bp.chunks_mut(per * panel).collect();
        pool::for_parts(parts, self.threads, |i, part| {
            for (pi, dst) in part.chunks_exact_mut(panel).enumerate() {
                let p = i * per + pi;
                let cols = NR.min(n - p * NR);
                if b.rs == 1 && b.cs != 1 {
                    // B stored transposed: read each column along k (contiguous), 64
                    // depths at a time so the panel rows written stay in L1.
                    for k0 in (0..k).step_by(64) {
                        let k1 = k.min(k0 + 64);
                        for j in 0..NR {
                            if j < cols {
                                let col = &b.data[(p * NR + j) * b.cs + k0..][..k1 - k0];
                                for (kk, &v) in (k0..).zip(col) {
                                    dst[kk * NR + j] = v;
                                }
                            } else {
                                for kk in k0..k1 {
                                    dst[kk * NR + j] = 0.0;
                                }
                            }
                        }
                    }
                    continue;
                }
                for (kk, row) in dst.chunks_exact_mut(NR).enumerate() {
                    if b.cs == 1 {
                        let at = kk * b.rs + p * NR;
                        row[..cols].copy_from_slice(&b.data[at..at + cols]);
                    } else {
                        for (j, v) in row[..cols].iter_mut().enumerate() {
                            *v = b.at(kk, p * NR + j);
                        }
                    }
                    row[cols..].fill(0.0);
                }
            }
        });
    }

    /// One cell of the grid: C[rows, panels' columns], then the epilogue over it.
    fn cell<const MR: usize, const NR: usize>(
        &self,
        rows: std::ops::Range<usize>,
        pans: std::ops::Range<usize>,
        bp: &[f32],
        out: &Out,
        micro: Micro<'_, MR, NR>,
    ) {
        let (n, k, a) = (self.n, self.k, self.a);
        let col0 = pans.start * NR;
        let col1 = n.min(pans.end * NR);
        // SAFETY: this cell's rows × [col0, col1) are written by no other cell (the grid's
        // cells are disjoint) and lie inside C (rows < m, col1 <= n, len = m n). Each call
        // makes a fresh slice; none outlives the statement that uses it.
        let row_of = |i: usize| unsafe {
            debug_assert!(i * n + col1 <= out.len);
            std::slice::from_raw_parts_mut(out.ptr.add(i * n + col0), col1 - col0)
        };
        if k == 0 {
            for i in rows.clone() {
                row_of(i).fill(0.0);
            }
        }
        // Depth blocks of equal size, at most KC (288 = 144 + 144, not 256 + 32).
        let kb = k.div_ceil(KC).max(1);
        let kc_max = k.div_ceil(kb).max(1);
        let mut ap = vec![0.0f32; MR * kc_max];
        let mut k0 = 0;
        while k0 < k {
            let kc = kc_max.min(k - k0);
            let mut i0 = rows.start;
            while i0 < rows.end {
                let mr = MR.min(rows.end - i0);
                pack_a::<MR>(a, i0, mr, k0, kc, &mut ap[..kc * MR]);
                for p in pans.clone() {
                    let nr = NR.min(n - p * NR);
                    let j = p * NR - col0;
                    let bpan = &bp[p * k * NR + k0 * NR..p * k * NR + (k0 + kc) * NR];
                    let mut acc = [[0.0f32; NR]; MR];
                    if k0 > 0 {
                        for (r, acc_r) in acc.iter_mut().enumerate().take(mr) {
                            acc_r[..nr].copy_from_slice(&row_of(i0 + r)[j..j + nr]);
                        }
                    }
                    micro(&ap[..kc * MR], bpan, &mut acc);
                    for (r, acc_r) in acc.iter().enumerate().take(mr) {
                        row_of(i0 + r)[j..j + nr].copy_from_slice(&acc_r[..nr]);
                    }
                }
                i0 += MR;
            }
            k0 += kc;
        }
        if let Some(post) = self.post {
            for i in rows {
                post(i, col0, row_of(i));
            }
        }
    }
}

/// Packs rows `i0 .. i0 + mr` of A, depths `k0 .. k0 + kc`, as `ap[kk][r]` (rows past `mr`
/// zero), reading A along its contiguous direction.
fn pack_a<const MR: usize>(
    a: View<'_>,
    i0: usize,
    mr: usize,
    k0: usize,
    kc: usize,
    ap: &mut [f32],
) {
    if a.cs == 1 {
        for r in 0..MR {
            if r < mr {
                let row = &a.data[(i0 + r) * a.rs + k0..][..kc];
                for (kk, &v) in row.iter().enumerate() {
                    ap[kk * MR + r] = v;
                }
            } else {
                for kk in 0..kc {
                    ap[kk * MR + r] = 0.0;
                }
            }
        }
    } else if a.rs == 1 {
        for (kk, dst) in ap.chunks_exact_mut(MR).enumerate() {
            let col = &a.data[(k0 + kk) * a.cs + i0..][..mr];
            dst[..mr].copy_from_slice(col);
            dst[mr..].fill(0.0);
        }
    } else {
        for (kk, dst) in ap.chunks_exact_mut(MR).enumerate() {
            for (r, v) in dst.iter_mut().enumerate() {
                *v = if r < mr { a.at(i0 + r, k0 + kk) } else { 0.0 };
            }
        }
    }
}

#[cfg(test)]
#[path = "gemm/tests.rs"]
mod tests;
