//! Matrix multiply with transposes and a fused epilogue: `C = act(op(A)·op(B) + bias)`.
//!
//! Shapes: `op(A)` is [M, K] (A stored [M, K], or [K, M] with `trans_a`); `op(B)` is [K, N]
//! (B stored [K, N], or [N, K] with `trans_b`); bias [N]; C [M, N]. Dense layers use
//! A·Bᵀ forward (x·Wᵀ with W [out, in], PyTorch's layout), A·B for the input gradient and
//! Aᵀ·B for the weight gradient.
//!
//! Tile shapes are a launch-time choice ([`Tiles`]) so they can be tuned per device and size.

use super::{consts, shader, Activation, ConstVal};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, Shader, Tensor};
use serde::{Deserialize, Serialize};

pub const SHADER: Shader = shader!("matmul", "activation_fns");

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

    /// The variants the benchmark sweeps and the tests check.
    pub const VARIANTS: [(&'static str, Tiles); 4] = [
        ("small16x16", Tiles::SMALL),
        ("medium32x32_4x4", Tiles::MEDIUM),
        ("large64x64_4x4", Tiles::LARGE),
        ("wide128x64_8x4", Tiles::WIDE),
    ];

    /// The default for a device: small workgroups on CPU adapters, large tiles elsewhere.
    pub fn for_device(gpu: &Gpu) -> Tiles {
        if gpu.summary().device_type == "Cpu" {
            Tiles::MEDIUM
        } else {
            Tiles::LARGE
        }
    }

    fn validate(&self, gpu: &Gpu) -> Result<()> {
        let bad = |d: &str| Err(Error::invalid(format!("matmul tiles {self:?}"), d));
        if [self.bm, self.bn, self.bk, self.tm, self.tn].contains(&0) {
            return bad("every tile size must be positive");
        }
        if !self.bm.is_multiple_of(self.tm) || !self.bn.is_multiple_of(self.tn) {
            return bad("bm must be a multiple of tm and bn of tn");
        }
        let threads = (self.bm / self.tm) * (self.bn / self.tn);
        let lim = gpu.limits();
        if threads > lim.max_compute_invocations_per_workgroup
            || self.bn / self.tn > lim.max_compute_workgroup_size_x
            || self.bm / self.tm > lim.max_compute_workgroup_size_y
        {
            return bad(&format!(
                "{threads} threads per workgroup exceeds the device limit of {}",
                lim.max_compute_invocations_per_workgroup
            ));
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

/// What to compute: transposes, epilogue and tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulSpec {
    pub trans_a: bool,
    pub trans_b: bool,
    pub activation: Activation,
    /// `None` picks [`Tiles::for_device`].
    pub tiles: Option<Tiles>,
}

impl Default for MatmulSpec {
    fn default() -> Self {
        MatmulSpec {
            trans_a: false,
            trans_b: false,
            activation: Activation::Identity,
            tiles: None,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
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
    let tiles = spec.tiles.unwrap_or_else(|| Tiles::for_device(gpu));
    tiles.validate(gpu)?;
    let defs = consts(&[
        ("BM", ConstVal::U(tiles.bm)),
        ("BN", ConstVal::U(tiles.bn)),
        ("BK", ConstVal::U(tiles.bk)),
        ("TM", ConstVal::U(tiles.tm)),
        ("TN", ConstVal::U(tiles.tn)),
        ("TRANS_A", ConstVal::B(spec.trans_a)),
        ("TRANS_B", ConstVal::B(spec.trans_b)),
        ("HAS_BIAS", ConstVal::B(bias.is_some())),
        ("ACT", ConstVal::U(spec.activation.code())),
    ]);
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
    gpu.dispatch(
        &SHADER,
        &defs,
        "main",
        &params,
        &[Bind::T(a), Bind::T(b), bias, Bind::T(c)],
        groups,
    )
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
