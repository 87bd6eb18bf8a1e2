//! The GEMM's micro-kernels: `acc[r][j] += Σ_kk ap[kk][r] · bp[kk][j]` in order of kk, on an
//! `MR × NR` tile held in registers, for each instruction set the CPU backend runs on.
//!
//! Every kernel computes each element as the same chain `acc = acc + a·b` (fused where the
//! kernel says so), so which kernel ran — and so which tile shape — never changes the bits
//! between two kernels that agree on fusing: AVX-512 and AVX2+FMA give the same results.

/// Which micro-kernel this CPU runs (chosen once, at first use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 12 × 32 tile in 24 zmm registers, fused multiply-add.
    Avx512,
    /// 6 × 16 tile in 12 ymm registers, fused multiply-add.
    Avx2Fma,
    /// 4 × 8 tile of wasm `simd128` vectors; multiply, then add (wasm SIMD has no exact FMA).
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_feature = "simd128")),
        allow(dead_code)
    )]
    Simd128,
    /// 6 × 16 tile the compiler vectorises (NEON, SSE): fused where the target has FMA
    /// (aarch64), else multiply then add.
    Portable,
}

impl Isa {
    /// The instruction set this CPU's GEMM uses.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            static HAS: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
            *HAS.get_or_init(|| {
                if std::is_x86_feature_detected!("avx512f") {
                    Isa::Avx512
                } else if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                {
                    Isa::Avx2Fma
                } else {
                    Isa::Portable
                }
            })
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            Isa::Simd128
        }
        #[cfg(not(any(
            target_arch = "x86_64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        {
            Isa::Portable
        }
    }

    /// A name for reports (`accrete devices`, the browser's adapter info).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512",
            Isa::Avx2Fma => "AVX2+FMA",
            Isa::Simd128 => "wasm simd128",
            Isa::Portable if cfg!(target_arch = "aarch64") => "NEON",
            Isa::Portable if cfg!(target_arch = "x86_64") => "SSE2",
            Isa::Portable => "scalar",
        }
    }
}

/// Whether the portable kernel fuses (aarch64 always has FMA; elsewhere a fused multiply-add
/// without hardware support would be a slow library call).
const PORTABLE_FUSED: bool = cfg!(target_arch = "aarch64");

/// The compiler-vectorised kernel (also the reference the intrinsic kernels are tested on).
#[inline(always)]
pub(crate) fn generic<const MR: usize, const NR: usize, const FUSED: bool>(
    ap: &[f32],
    bp: &[f32],
    acc: &mut [[f32; NR]; MR],
) {
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

/// The portable 6 × 16 kernel.
pub(crate) fn portable(ap: &[f32], bp: &[f32], acc: &mut [[f32; 16]; 6]) {
    generic::<6, 16, PORTABLE_FUSED>(ap, bp, acc)
}

/// The AVX2+FMA 6 × 16 kernel (the compiler's vectorisation of [`generic`] is as good as
/// hand-written intrinsics here: 12 accumulators, two B vectors, one broadcast).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma(ap: &[f32], bp: &[f32], acc: &mut [[f32; 16]; 6]) {
    assert!(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"));
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run(ap: &[f32], bp: &[f32], acc: &mut [[f32; 16]; 6]) {
        generic::<6, 16, true>(ap, bp, acc)
    }
    // SAFETY: the CPU has AVX2 and FMA (asserted above; cached by std after the first call).
    unsafe { run(ap, bp, acc) }
}

/// The AVX-512 12 × 32 kernel: 24 accumulators, two B vectors per step, A broadcast.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512(ap: &[f32], bp: &[f32], acc: &mut [[f32; 32]; 12]) {
    assert!(std::is_x86_feature_detected!("avx512f"));
    let kc = ap.len() / 12;
    assert!(bp.len() >= kc * 32 && ap.len() == kc * 12);
    // SAFETY: the CPU has AVX-512F (asserted above); the loops read ap[..12 kc] and
    // bp[..32 kc], in bounds by the assertion.
    unsafe { avx512_run(ap.as_ptr(), bp.as_ptr(), kc, acc) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_run(mut a: *const f32, mut b: *const f32, kc: usize, acc: &mut [[f32; 32]; 12]) {
    use std::arch::x86_64::*;
    macro_rules! tile {
        ($($r:literal)*) => {{
            // Two accumulators per row, named so they stay in registers.
            let mut lo = [_mm512_setzero_ps(); 12];
            let mut hi = [_mm512_setzero_ps(); 12];
            $(
                lo[$r] = unsafe { _mm512_loadu_ps(acc[$r].as_ptr()) };
                hi[$r] = unsafe { _mm512_loadu_ps(acc[$r].as_ptr().add(16)) };
            )*
            for _ in 0..kc {
                let (b0, b1) = unsafe { (_mm512_loadu_ps(b), _mm512_loadu_ps(b.add(16))) };
                $(
                    let ar = _mm512_set1_ps(unsafe { *a.add($r) });
                    lo[$r] = _mm512_fmadd_ps(ar, b0, lo[$r]);
                    hi[$r] = _mm512_fmadd_ps(ar, b1, hi[$r]);
                )*
                a = unsafe { a.add(12) };
                b = unsafe { b.add(32) };
            }
            $(
                unsafe {
                    _mm512_storeu_ps(acc[$r].as_mut_ptr(), lo[$r]);
                    _mm512_storeu_ps(acc[$r].as_mut_ptr().add(16), hi[$r]);
                }
            )*
        }};
    }
    tile!(0 1 2 3 4 5 6 7 8 9 10 11);
}

/// The wasm `simd128` 4 × 8 kernel: 8 accumulators, two B vectors, A splatted; a multiply
/// then an add (the same bits as [`generic`] without fusing).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) fn simd128(ap: &[f32], bp: &[f32], acc: &mut [[f32; 8]; 4]) {
    use std::arch::wasm32::*;
    let kc = ap.len() / 4;
    assert!(bp.len() >= kc * 8 && ap.len() == kc * 4);
    // SAFETY: every load and store below is of 4 f32 inside `acc` (rows of 8) or inside
    // bp[..8 kc] (asserted); v128 loads and stores need no alignment.
    unsafe {
        let mut c = [[f32x4_splat(0.0); 2]; 4];
        for r in 0..4 {
            let row = acc[r].as_ptr() as *const v128;
            c[r] = [v128_load(row), v128_load(row.add(1))];
        }
        let mut b = bp.as_ptr() as *const v128;
        for a in ap.chunks_exact(4) {
            let (b0, b1) = (v128_load(b), v128_load(b.add(1)));
            for r in 0..4 {
                let ar = f32x4_splat(a[r]);
                c[r][0] = f32x4_add(c[r][0], f32x4_mul(ar, b0));
                c[r][1] = f32x4_add(c[r][1], f32x4_mul(ar, b1));
            }
            b = b.add(2);
        }
        for r in 0..4 {
            let row = acc[r].as_mut_ptr() as *mut v128;
            v128_store(row, c[r][0]);
            v128_store(row.add(1), c[r][1]);
        }
    }
}
