//! Matrix multiply with transposes and a fused epilogue: `C = act(op(A)·op(B) + bias)`.
//!
//! Shapes: `op(A)` is [M, K] (A stored [M, K], or [K, M] with `trans_a`); `op(B)` is [K, N]
//! (B stored [K, N], or [N, K] with `trans_b`); bias [N]; C [M, N]. Dense layers use
//! A·Bᵀ forward (x·Wᵀ with W [out, in], PyTorch's layout), A·B for the input gradient and
//! Aᵀ·B for the weight gradient.
//!
//! The kernel is a launch-time choice ([`Variant`]: kernel family, [`Tiles`], precision) so
//! it can be tuned per device and size:
//! - [`Kernel::Tiled`] (`shaders/matmul.wgsl`): scalar loads, strided register block;
//! - [`Kernel::Vec4`] (`shaders/matmul_vec4.wgsl`): vec4 loads and workgroup reads, register
//!   blocks in quads (4×4, 8×8 per thread), vec4 global loads where the stored matrix's
//!   contiguous dimension is a multiple of 4 and scalar loads otherwise;
//! - [`Kernel::Vec4DoubleBuffered`]: the same with two tile buffers, one barrier per step;
//! - [`Precision::F16`] on the vec4 kernels (needs `SHADER_F16`): operands rounded to f16 in
//!   workgroup memory, exact products, f32 sums.
//!
//! Every f32 variant evaluates the same chain per element — `acc = fma(a_k, b_k, acc)` for
//! k = 0, 1, … from 0, then `+ bias` and the activation — so they give bit-identical results
//! (the tests check this). Without an explicit choice, [`choose`] picks the variant with a
//! deterministic rule of the device and shape ([`Variant::heuristic`]), or, when autotuning
//! is on ([`crate::gpu::AutotuneMode`]), the fastest f32 candidate timed for the shape class
//! ([`autotune`]). f16 is never picked automatically: it changes the rounding.

use super::{consts, shader, Activation, ConstVal};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, GpuTimer, Shader, Tensor, TunedEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SHADER: Shader = shader!("matmul", "activation_fns");
/// The vec4 / double-buffered / f16-tile kernels.
pub const SHADER_VEC4: Shader = shader!("matmul_vec4", "activation_fns");

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
        if gpu.summary().device_type == "Cpu" {
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

/// What to compute: transposes, epilogue and the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulSpec {
    pub trans_a: bool,
    pub trans_b: bool,
    pub activation: Activation,
    /// The [`Kernel::Tiled`] kernel with these tiles. `None` (and no `variant`) lets
    /// [`choose`] pick.
    pub tiles: Option<Tiles>,
    /// An explicit kernel variant (any family, any precision); set at most one of `tiles`
    /// and `variant`.
    pub variant: Option<Variant>,
}

impl Default for MatmulSpec {
    fn default() -> Self {
        MatmulSpec {
            trans_a: false,
            trans_b: false,
            activation: Activation::Identity,
            tiles: None,
            variant: None,
        }
    }
}

/// Kernel family of a [`Variant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// `shaders/matmul.wgsl`: scalar loads, one tile buffer, `tm × tn` outputs per thread.
    Tiled,
    /// `shaders/matmul_vec4.wgsl`: vec4 loads and reads; `tm`, `tn` and `bk` multiples of 4.
    Vec4,
    /// `shaders/matmul_vec4.wgsl` with two tile buffers: the next tile's global loads are
    /// issued before this tile's arithmetic, one barrier per depth step.
    Vec4DoubleBuffered,
}

/// Arithmetic of a [`Variant`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 operands, f32 fused multiply-adds.
    #[default]
    F32,
    /// Operands rounded to f16 as the tiles are stored in workgroup memory (half the bytes);
    /// the product of two f16 values is exact in f32 and the sums are f32, as on tensor cores
    /// with f32 accumulation. Needs `SHADER_F16`; values must stay below 65504 in magnitude.
    F16,
}

impl Precision {
    /// Device features this precision needs: `SHADER_F16` for [`Precision::F16`].
    pub fn required_features(self) -> wgpu::Features {
        match self {
            Precision::F32 => wgpu::Features::empty(),
            Precision::F16 => wgpu::Features::SHADER_F16,
        }
    }

    /// Checks [`Self::required_features`] against `have` (the adapter named `adapter`): an
    /// error about `what` naming the missing feature, ending with `remedy`.
    pub fn check_features(
        self,
        have: wgpu::Features,
        adapter: &str,
        what: String,
        remedy: &str,
    ) -> Result<()> {
        let missing = self.required_features() - have;
        if missing.is_empty() {
            return Ok(());
        }
        let adapter = if adapter.is_empty() {
            "this adapter".to_string()
        } else {
            format!("the adapter {adapter:?}")
        };
        Err(Error::invalid(
            what,
            format!(
                "needs the device feature {}, which {adapter} does not offer; {remedy}",
                crate::gpu::feature_names(missing)
            ),
        ))
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

    /// The deterministic choice without autotuning: the tiled 32×32 kernel on CPU adapters
    /// (cheap barriers matter most there); elsewhere the double-buffered 128×128 / 8×8 kernel
    /// when the product has at least 128 such tiles (enough workgroups to fill a large GPU's
    /// ~132 multiprocessors) and depth 64, else the vec4 64×64 / 4×4 kernel (four times the
    /// workgroups) — the first of these the device can run. All are f32 and give the same
    /// bits, so the rule only decides speed.
    pub fn heuristic(gpu: &Gpu, m: usize, k: usize, n: usize) -> Variant {
        if gpu.summary().device_type == "Cpu" {
            return Variant::tiled(Tiles::MEDIUM);
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
    pub fn candidates(gpu: &Gpu) -> Vec<(&'static str, Variant)> {
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

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
}

/// (M, K, N) of `op(A)·op(B)`, checking that the inner dimensions agree.
pub fn dims(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<(usize, usize, usize)> {
    let two = |t: &Tensor, name: &str| -> Result<(usize, usize)> {
        match t.shape() {
            [r, c] => Ok((*r, *c)),
            s => Err(Error::shape(
                "matmul",
                format!("{name} must be 2-D, got {s:?}"),
            )),
        }
    };
    let (ar, ac) = two(a, "A")?;
    let (br, bc) = two(b, "B")?;
    let (m, k) = if spec.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if spec.trans_b { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner dimensions differ: op(A) is [{m}, {k}] and op(B) is [{kb}, {n}] (A {:?}{}, B {:?}{})",
                a.shape(),
                if spec.trans_a { "ᵀ" } else { "" },
                b.shape(),
                if spec.trans_b { "ᵀ" } else { "" },
            ),
        ));
    }
    Ok((m, k, n))
}

/// Builds `c = act(op(a)·op(b) + bias)` writing every element of `c` ([M, N]).
pub fn matmul_into(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
) -> Result<Dispatch> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    if c.shape() != [m, n] {
        return Err(Error::shape(
            "matmul",
            format!("output must be [{m}, {n}], got {:?}", c.shape()),
        ));
    }
    if let Some(bias) = bias {
        if bias.len() != n {
            return Err(Error::shape(
                "matmul",
                format!("bias must have {n} elements, got {:?}", bias.shape()),
            ));
        }
    }
    let variant = choose(a, b, spec)?;
    variant.validate(gpu)?;
    let tiles = variant.tiles;
    let mut items = vec![
        ("BM", ConstVal::U(tiles.bm)),
        ("BN", ConstVal::U(tiles.bn)),
        ("BK", ConstVal::U(tiles.bk)),
        ("TM", ConstVal::U(tiles.tm)),
        ("TN", ConstVal::U(tiles.tn)),
        ("TRANS_A", ConstVal::B(spec.trans_a)),
        ("TRANS_B", ConstVal::B(spec.trans_b)),
        ("HAS_BIAS", ConstVal::B(bias.is_some())),
        ("ACT", ConstVal::U(spec.activation.code())),
    ];
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        alpha: spec.activation.alpha(),
    };
    let bias = bias.map_or(Bind::Dummy, Bind::T);
    let groups = [
        (n as u32).div_ceil(tiles.bn),
        (m as u32).div_ceil(tiles.bm),
        1,
    ];
    if variant.kernel == Kernel::Tiled {
        return gpu.dispatch(
            &SHADER,
            &consts(&items),
            "main",
            &params,
            &[Bind::T(a), Bind::T(b), bias, Bind::T(c)],
            groups,
        );
    }
    let (vec_a, vec_b) = quad_loads(a, b, m, k, n, spec);
    let stages = if variant.kernel == Kernel::Vec4DoubleBuffered {
        2
    } else {
        1
    };
    items.extend([
        ("STAGES", ConstVal::U(stages)),
        ("VEC_A", ConstVal::B(vec_a)),
        ("VEC_B", ConstVal::B(vec_b)),
    ]);
    // `enable` must precede every declaration, so it leads the injected prefix.
    let (enable, elem) = match variant.precision {
        Precision::F32 => ("", "f32"),
        Precision::F16 => ("enable f16;\n", "f16"),
    };
    let defs = format!(
        "{enable}{}alias TILE_S = {elem};\nalias TILE_V = vec4<{elem}>;\n",
        consts(&items)
    );
    // Each operand is read either as quads or as scalars; the other binding is the dummy.
    let (a4, a1) = if vec_a {
        (Bind::T(a), Bind::Dummy)
    } else {
        (Bind::Dummy, Bind::T(a))
    };
    let (b4, b1) = if vec_b {
        (Bind::T(b), Bind::Dummy)
    } else {
        (Bind::Dummy, Bind::T(b))
    };
    gpu.dispatch(
        &SHADER_VEC4,
        &defs,
        "main",
        &params,
        &[a4, b4, bias, Bind::T(c), a1, b1],
        groups,
    )
}

/// Whether A and B can be loaded as aligned quads: the stored matrix's contiguous dimension
/// is a multiple of 4 (K for A, M for Aᵀ; N for B, K for Bᵀ) and it is not empty.
fn quad_loads(
    a: &Tensor,
    b: &Tensor,
    m: usize,
    k: usize,
    n: usize,
    spec: &MatmulSpec,
) -> (bool, bool) {
    let row_a = if spec.trans_a { m } else { k };
    let row_b = if spec.trans_b { k } else { n };
    (
        row_a.is_multiple_of(4) && !a.is_empty(),
        row_b.is_multiple_of(4) && !b.is_empty(),
    )
}

/// The variant [`matmul_into`] uses for these operands: `spec.variant`, else the tiled
/// kernel with `spec.tiles`, else — when autotuning is on — the tuned choice for the shape
/// class (tuning it now, natively, if it is new), else [`Variant::heuristic`].
pub fn choose(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<Variant> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    match (spec.variant, spec.tiles) {
        (Some(v), None) => return Ok(v),
        (None, Some(t)) => return Ok(Variant::tiled(t)),
        (Some(v), Some(t)) => {
            if v.tiles == t && v.kernel == Kernel::Tiled {
                return Ok(v);
            }
            return Err(Error::invalid(
                "matmul spec",
                format!(
                    "set either tiles ({t:?}) or variant ({}), not both",
                    v.name()
                ),
            ));
        }
        (None, None) => {}
    }
    let fallback = Variant::heuristic(gpu, m, k, n);
    if !gpu.autotune_mode().is_on() || m == 0 || n == 0 {
        return Ok(fallback);
    }
    let class = class_key(m, k, n, spec);
    if let Some(v) = cached_choice(gpu, &class) {
        return Ok(v);
    }
    #[cfg(not(target_arch = "wasm32"))]
    match now_or_never(autotune(a, b, spec)) {
        Some(Ok(t)) => return Ok(t.choice),
        Some(Err(e)) => gpu.autotune_warning(format!(
            "autotuning {class} failed ({e}); using {}",
            fallback.name()
        )),
        None => gpu.autotune_warning(format!(
            "autotuning {class} did not complete synchronously; using {}",
            fallback.name()
        )),
    }
    Ok(fallback)
}

/// The autotuning class of a problem: transposes, each of M, N, K rounded up to a power of
/// two, and whether A and B can be loaded as quads (which the kernels' speed depends on).
pub fn class_key(m: usize, k: usize, n: usize, spec: &MatmulSpec) -> String {
    let bucket = |x: usize| x.max(1).next_power_of_two();
    let row_a = if spec.trans_a { m } else { k };
    let row_b = if spec.trans_b { k } else { n };
    format!(
        "matmul f32 {}{} m{} n{} k{} quads{}{}",
        if spec.trans_a { 't' } else { 'n' },
        if spec.trans_b { 't' } else { 'n' },
        bucket(m),
        bucket(n),
        bucket(k),
        u8::from(row_a.is_multiple_of(4)),
        u8::from(row_b.is_multiple_of(4)),
    )
}

/// The cached choice for `class`, if it is an f32 variant this device can run.
fn cached_choice(gpu: &Gpu, class: &str) -> Option<Variant> {
    let entry = gpu.autotuned(class)?;
    match serde_json::from_value::<Variant>(entry.choice) {
        Ok(v) if v.precision == Precision::F32 && v.validate(gpu).is_ok() => Some(v),
        _ => None,
    }
}

/// What [`autotune`] decided for one problem class.
#[derive(Clone, Debug, Serialize)]
pub struct Tuned {
    /// The class key ([`class_key`]).
    pub class: String,
    pub choice: Variant,
    pub name: String,
    /// True when the choice came from the cache and nothing was timed.
    pub cached: bool,
    /// Seconds per multiply of each candidate timed (by name), on the class's first problem.
    pub seconds: BTreeMap<String, f64>,
    /// "timestamp" or "wall".
    pub timing: String,
    /// The problem the candidates were timed on, "MxKxN".
    pub measured_on: String,
}

/// Times the f32 candidates ([`Variant::candidates`]) on these operands (the output goes to
/// a scratch tensor) and records the fastest for the shape class, in memory and — in
/// `Persist` mode — in the cache file. A class already tuned is answered from the cache.
/// Works whatever the autotune mode; [`matmul_into`] uses the choice only when the mode is on.
pub async fn autotune(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<Tuned> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    let class = class_key(m, k, n, spec);
    if let Some(choice) = cached_choice(gpu, &class) {
        let e = gpu.autotuned(&class).expect("cached entry");
        return Ok(Tuned {
            class,
            choice,
            name: choice.name(),
            cached: true,
            seconds: e.seconds,
            timing: e.timing,
            measured_on: e.measured_on,
        });
    }
    let measured_on = format!("{m}x{k}x{n}");
    let candidates = Variant::candidates(gpu);
    if m == 0 || n == 0 || candidates.is_empty() {
        let choice = Variant::heuristic(gpu, m, k, n);
        return Ok(Tuned {
            class,
            choice,
            name: choice.name(),
            cached: false,
            seconds: BTreeMap::new(),
            timing: "none".into(),
            measured_on,
        });
    }
    let scratch = Tensor::uninit(gpu, &[m, n], crate::gpu::DType::F32)?;
    let timer = GpuTimer::new(gpu);
    let mut seconds = BTreeMap::new();
    let mut best: Option<(Variant, f64)> = None;
    for (name, v) in candidates {
        let s = MatmulSpec {
            activation: Activation::Identity,
            tiles: None,
            variant: Some(v),
            ..*spec
        };
        let d = matmul_into(a, b, None, &scratch, &s)?;
        gpu.run(&[&d])?; // compiles the pipeline and warms up
        let once = timer.time(&[&d], 1).await?;
        // Short problems are repeated in one pass to about 2 ms, to rise above clock noise.
        let reps = (2e-3 / once.max(1e-7)).ceil().clamp(1.0, 20.0) as usize;
        let per = if reps > 1 {
            timer.time(&[&d], reps).await? / reps as f64
        } else {
            once
        };
        seconds.insert(name.to_string(), per);
        if best.is_none_or(|(_, t)| per < t) {
            best = Some((v, per));
        }
    }
    let (choice, _) = best.expect("at least one candidate");
    let timing = TunedEntry::timing_of(timer.source());
    gpu.record_autotuned(
        &class,
        TunedEntry {
            choice: serde_json::to_value(choice).expect("a variant serializes"),
            name: choice.name(),
            seconds: seconds.clone(),
            timing: timing.clone(),
            measured_on: measured_on.clone(),
        },
    );
    Ok(Tuned {
        class,
        choice,
        name: choice.name(),
        cached: false,
        seconds,
        timing,
        measured_on,
    })
}

/// Polls a future once. Natively, GPU read-backs complete inside the poll (the device is
/// waited on), so autotuning can run synchronously inside [`matmul_into`].
#[cfg(not(target_arch = "wasm32"))]
fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Allocates C and computes `act(op(a)·op(b) + bias)`.
pub fn matmul(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, spec: &MatmulSpec) -> Result<Tensor> {
    let (m, _, n) = dims(a, b, spec)?;
    let c = Tensor::uninit(a.gpu(), &[m, n], crate::gpu::DType::F32)?;
    let d = matmul_into(a, b, bias, &c, spec)?;
    a.gpu().run(&[&d])?;
    Ok(c)
}

/// f64 references.
pub mod reference {
    use super::Activation;

    /// `act(op(A)·op(B) + bias)` in f64, and `Σ_k |a_ik·b_kj|` per element (for error bounds).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        m: usize,
        k: usize,
        n: usize,
        trans_a: bool,
        trans_b: bool,
        act: Activation,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut c = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut s_abs) = (0.0f64, 0.0f64);
                for kk in 0..k {
                    let av = if trans_a {
                        a[kk * m + i]
                    } else {
                        a[i * k + kk]
                    } as f64;
                    let bv = if trans_b {
                        b[j * k + kk]
                    } else {
                        b[kk * n + j]
                    } as f64;
                    s += av * bv;
                    s_abs += (av * bv).abs();
                }
                if let Some(bias) = bias {
                    s += bias[j] as f64;
                    s_abs += (bias[j] as f64).abs();
                }
                c[i * n + j] = act.forward_f64(s);
                mag[i * n + j] = s_abs;
            }
        }
        (c, mag)
    }
}
