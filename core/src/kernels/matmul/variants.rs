//! The matmul variant catalogue: tile shapes ([`Tiles`]), kernel configurations
//! ([`Variant`]: family, tiles, precision) with their names, what a device must offer to run
//! them (validation), the deterministic choice without autotuning ([`Variant::heuristic`],
//! [`Variant::heuristic_f16`]) and the candidates autotuning times.

use super::{Kernel, Precision};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use serde::{Deserialize, Serialize};

/// Workgroup tile of C (`bm` × `bn`), depth step `bk`, and outputs per thread (`tm` × `tn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl Tiles {
    /// 64×64 tile, 4×4 per thread, 256 threads: the discrete-GPU default.
    pub const LARGE: Tiles = Tiles {
        bm: 64,
        bn: 64,
        bk: 8,
        tm: 4,
        tn: 4,
    };
    /// 32×32 tile, 4×4 per thread, 64 threads: cheaper barriers, suits CPU adapters.
    pub const MEDIUM: Tiles = Tiles {
        bm: 32,
        bn: 32,
        bk: 8,
        tm: 4,
        tn: 4,
    };
    /// 16×16 tile, one output per thread: the plain tiled kernel.
    pub const SMALL: Tiles = Tiles {
        bm: 16,
        bn: 16,
        bk: 16,
        tm: 1,
        tn: 1,
    };
    /// 128×64 tile, 8×4 per thread, 256 threads: more reuse for large matrices.
    pub const WIDE: Tiles = Tiles {
        bm: 128,
        bn: 64,
        bk: 8,
        tm: 8,
        tn: 4,
    };

    /// The tiled kernel's named tile shapes (all of them are also in [`Variant::ALL`]).
    pub const VARIANTS: [(&'static str, Tiles); 4] = [
        ("small16x16", Tiles::SMALL),
        ("medium32x32_4x4", Tiles::MEDIUM),
        ("large64x64_4x4", Tiles::LARGE),
        ("wide128x64_8x4", Tiles::WIDE),
    ];

    /// The tiled kernel's tiles for a device: small workgroups on CPU adapters, large tiles
    /// elsewhere. (`matmul` itself picks with [`Variant::heuristic`] when nothing is set.)
    pub fn for_device(gpu: &Gpu) -> Tiles {
        if gpu.is_cpu() || gpu.summary().device_type == "Cpu" {
            Tiles::MEDIUM
        } else {
            Tiles::LARGE
        }
    }

    /// Why the thread grid of these (positive) tiles does not fit a workgroup on a device
    /// with `lim`: bm/tm × bn/tn threads, within the per-workgroup and per-axis limits.
    fn workgroup_problem(&self, lim: &wgpu::Limits) -> Option<String> {
        if !self.bm.is_multiple_of(self.tm) || !self.bn.is_multiple_of(self.tn) {
            return Some("bm must be a multiple of tm and bn of tn".into());
        }
        let threads = (self.bm / self.tm) * (self.bn / self.tn);
        (threads > lim.max_compute_invocations_per_workgroup
            || self.bn / self.tn > lim.max_compute_workgroup_size_x
            || self.bm / self.tm > lim.max_compute_workgroup_size_y)
            .then(|| {
                format!(
                    "{threads} threads per workgroup exceeds the device limit of {}",
                    lim.max_compute_invocations_per_workgroup
                )
            })
    }

    fn validate(&self, gpu: &Gpu) -> Result<()> {
        let bad = |d: &str| Err(Error::invalid(format!("matmul tiles {self:?}"), d));
        if [self.bm, self.bn, self.bk, self.tm, self.tn].contains(&0) {
            return bad("every tile size must be positive");
        }
        let lim = gpu.limits();
        if let Some(why) = self.workgroup_problem(lim) {
            return bad(&why);
        }
        let shared = 4 * self.bk * (self.bm + self.bn);
        if shared > lim.max_compute_workgroup_storage_size {
            return bad(&format!(
                "{shared} bytes of workgroup memory exceeds the device limit of {}",
                lim.max_compute_workgroup_storage_size
            ));
        }
        Ok(())
    }
}

/// One matmul kernel configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub kernel: Kernel,
    pub tiles: Tiles,
    pub precision: Precision,
}

const fn t(bm: u32, bn: u32, bk: u32, tm: u32, tn: u32) -> Tiles {
    Tiles { bm, bn, bk, tm, tn }
}

impl Variant {
    pub const fn tiled(tiles: Tiles) -> Variant {
        Variant {
            kernel: Kernel::Tiled,
            tiles,
            precision: Precision::F32,
        }
    }
    const fn vec4(tiles: Tiles, double: bool, precision: Precision) -> Variant {
        Variant {
            kernel: if double {
                Kernel::Vec4DoubleBuffered
            } else {
                Kernel::Vec4
            },
            tiles,
            precision,
        }
    }

    /// 32×32 tile, 4×4 per thread (64 threads), vec4 loads: for CPU adapters.
    pub const VEC4_32X32: Variant = Self::vec4(t(32, 32, 16, 4, 4), false, Precision::F32);
    /// 64×64 tile, 4×4 per thread (256 threads), vec4 loads: mid-sized products.
    pub const VEC4_64X64: Variant = Self::vec4(t(64, 64, 16, 4, 4), false, Precision::F32);
    /// 128×128 tile, 8×8 per thread (256 threads): twice the arithmetic per loaded value of 4×4.
    pub const VEC4_128X128: Variant = Self::vec4(t(128, 128, 8, 8, 8), false, Precision::F32);
    /// The 128×128 / 8×8 kernel with double-buffered tiles (depth 8, 16 KiB).
    pub const VEC4DB_128X128: Variant = Self::vec4(t(128, 128, 8, 8, 8), true, Precision::F32);
    /// The same with depth 16 (32 KiB of workgroup memory): half the barriers.
    pub const VEC4DB_128X128_K16: Variant = Self::vec4(t(128, 128, 16, 8, 8), true, Precision::F32);
    /// f16 tiles, 64×64 / 4×4.
    pub const F16_64X64: Variant = Self::vec4(t(64, 64, 16, 4, 4), false, Precision::F16);
    /// f16 tiles, 128×128 / 8×8, depth 16, double-buffered (16 KiB).
    pub const F16DB_128X128_K16: Variant = Self::vec4(t(128, 128, 16, 8, 8), true, Precision::F16);

    /// The named variants the benchmark sweeps and the tests check.
    pub const ALL: [(&'static str, Variant); 11] = [
        ("small16x16", Variant::tiled(Tiles::SMALL)),
        ("medium32x32_4x4", Variant::tiled(Tiles::MEDIUM)),
        ("large64x64_4x4", Variant::tiled(Tiles::LARGE)),
        ("wide128x64_8x4", Variant::tiled(Tiles::WIDE)),
        ("vec4_32x32_4x4", Variant::VEC4_32X32),
        ("vec4_64x64_4x4", Variant::VEC4_64X64),
        ("vec4_128x128_8x8", Variant::VEC4_128X128),
        ("vec4db_128x128_8x8", Variant::VEC4DB_128X128),
        ("vec4db_128x128x16_8x8", Variant::VEC4DB_128X128_K16),
        ("f16_64x64_4x4", Variant::F16_64X64),
        ("f16db_128x128x16_8x8", Variant::F16DB_128X128_K16),
    ];

    /// The named variant, if there is one by that name.
    pub fn named(name: &str) -> Option<Variant> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// The variant's name in [`Variant::ALL`], or one made of its parts.
    pub fn name(&self) -> String {
        if let Some((n, _)) = Self::ALL.iter().find(|(_, v)| v == self) {
            return n.to_string();
        }
        let Tiles { bm, bn, bk, tm, tn } = self.tiles;
        let family = match (self.kernel, self.precision) {
            (Kernel::Tiled, _) => "tiled",
            (Kernel::Vec4, Precision::F32) => "vec4",
            (Kernel::Vec4DoubleBuffered, Precision::F32) => "vec4db",
            (Kernel::Vec4, Precision::F16) => "f16",
            (Kernel::Vec4DoubleBuffered, Precision::F16) => "f16db",
        };
        format!("{family}_{bm}x{bn}x{bk}_{tm}x{tn}")
    }

    /// Device features the variant needs.
    pub fn required_features(&self) -> wgpu::Features {
        self.precision.required_features()
    }

    /// Checks `required_features` against `have`, saying which one is missing.
    pub fn check_features(&self, have: wgpu::Features, adapter: &str) -> Result<()> {
        self.precision.check_features(
            have,
            adapter,
            format!("matmul variant {}", self.name()),
            "use an f32 variant (precision F32)",
        )
    }

    /// Whether this device can run the variant: features, threads, workgroup memory.
    pub fn validate(&self, gpu: &Gpu) -> Result<()> {
        self.check_features(gpu.features(), &gpu.summary().name)?;
        if self.kernel == Kernel::Tiled {
            if self.precision != Precision::F32 {
                return Err(Error::invalid(
                    format!("matmul variant {}", self.name()),
                    "the tiled kernel computes in f32 only; f16 needs a vec4 kernel",
                ));
            }
            return self.tiles.validate(gpu);
        }
        let tl = self.tiles;
        let bad = |d: &str| {
            Err(Error::invalid(
                format!("matmul variant {} ({tl:?})", self.name()),
                d,
            ))
        };
        if [tl.bm, tl.bn, tl.bk, tl.tm, tl.tn].contains(&0) {
            return bad("every tile size must be positive");
        }
        if !tl.tm.is_multiple_of(4) || !tl.tn.is_multiple_of(4) || !tl.bk.is_multiple_of(4) {
            return bad("the vec4 kernels need tm, tn and bk to be multiples of 4");
        }
        let lim = gpu.limits();
        if let Some(why) = tl.workgroup_problem(lim) {
            return bad(&why);
        }
        let shared = self.shared_bytes();
        if shared > lim.max_compute_workgroup_storage_size {
            return bad(&format!(
                "{shared} bytes of workgroup memory exceeds the device limit of {}",
                lim.max_compute_workgroup_storage_size
            ));
        }
        if lim.max_storage_buffers_per_shader_stage < 6 {
            return bad(&format!(
                "the vec4 kernels bind 6 storage buffers; this device allows {}",
                lim.max_storage_buffers_per_shader_stage
            ));
        }
        Ok(())
    }

    /// Bytes of workgroup memory the kernel declares.
    pub fn shared_bytes(&self) -> u32 {
        let tl = self.tiles;
        let (stages, elem) = match (self.kernel, self.precision) {
            (Kernel::Tiled, _) => (1, 4),
            (Kernel::Vec4, p) => (1, if p == Precision::F16 { 2 } else { 4 }),
            (Kernel::Vec4DoubleBuffered, p) => (2, if p == Precision::F16 { 2 } else { 4 }),
        };
        stages * elem * tl.bk * (tl.bm + tl.bn)
    }

    /// The deterministic choice without autotuning. On CPU adapters (lavapipe, SwiftShader)
    /// the vec4 kernels: 64×64 / 4×4 when both M and N reach 64, else 32×32 / 4×4 (a thin
    /// product has too few 64-wide tiles) — measured on lavapipe at 2–4× the tiled 32×32
    /// kernel on square sizes 256–1024 and on the MLP's training GEMMs (PERFORMANCE.md).
    /// Elsewhere the double-buffered 128×128 / 8×8 kernel when the product has at least 128
    /// such tiles (enough workgroups to fill a large GPU's ~132 multiprocessors) and depth
    /// 64, else the vec4 64×64 / 4×4 kernel (four times the workgroups). Always the first of
    /// these the device can run, the tiled kernel last. All are f32 and give the same bits,
    /// so the rule only decides speed.
    ///
    /// On the CPU backend the tiles do not matter (one Rust GEMM runs whatever the variant):
    /// always the tiled 32×32 kernel, nothing compiled or timed.
    pub fn heuristic(gpu: &Gpu, m: usize, k: usize, n: usize) -> Variant {
        if gpu.is_cpu() {
            return Variant::tiled(Tiles::MEDIUM);
        }
        if gpu.summary().device_type == "Cpu" {
            let first = if m >= 64 && n >= 64 {
                Variant::VEC4_64X64
            } else {
                Variant::VEC4_32X32
            };
            return [first, Variant::VEC4_32X32]
                .into_iter()
                .find(|v| v.validate(gpu).is_ok())
                .unwrap_or(Variant::tiled(Tiles::MEDIUM));
        }
        let big = m.div_ceil(128) * n.div_ceil(128) >= 128 && k >= 64;
        let first = if big {
            Variant::VEC4DB_128X128_K16
        } else {
            Variant::VEC4_64X64
        };
        [first, Variant::VEC4_64X64, Variant::tiled(Tiles::LARGE)]
            .into_iter()
            .find(|v| v.validate(gpu).is_ok())
            .unwrap_or(Variant::tiled(Tiles::MEDIUM))
    }

    /// The f16-tile variant for an m×k · k×n product (mixed-precision training): the
    /// double-buffered 128×128 / 8×8 kernel when the product has at least 128 such tiles and
    /// depth 64, else the 64×64 / 4×4 one. Needs `SHADER_F16` (checked by `validate`).
    pub fn heuristic_f16(m: usize, k: usize, n: usize) -> Variant {
        if m.div_ceil(128) * n.div_ceil(128) >= 128 && k >= 64 {
            Variant::F16DB_128X128_K16
        } else {
            Variant::F16_64X64
        }
    }

    /// The f32 variants autotuning times on this device (those it can run), in a fixed order;
    /// ties go to the earlier one.
    /// None on the CPU backend, whose GEMM does not depend on the variant.
    pub fn candidates(gpu: &Gpu) -> Vec<(&'static str, Variant)> {
        if gpu.is_cpu() {
            return Vec::new();
        }
        let names: &[&str] = if gpu.summary().device_type == "Cpu" {
            &[
                "medium32x32_4x4",
                "large64x64_4x4",
                "vec4_32x32_4x4",
                "vec4_64x64_4x4",
            ]
        } else {
            &[
                "large64x64_4x4",
                "wide128x64_8x4",
                "vec4_64x64_4x4",
                "vec4_128x128_8x8",
                "vec4db_128x128_8x8",
                "vec4db_128x128x16_8x8",
            ]
        };
        names
            .iter()
            .filter_map(|n| Variant::named(n).map(|v| (*n, v)))
            .filter(|(_, v)| v.precision == Precision::F32 && v.validate(gpu).is_ok())
            .collect()
    }
}
