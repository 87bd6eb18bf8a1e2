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
//! is on ([`crate::gpu::AutotuneMode`]), the fastest f32 candidate that the tuning pass
//! ([`tune_problems`], [`autotune`]) timed for the shape class. The pass is explicit and
//! async, run before the dispatches are built; a launch only reads its choices. f16 is never
//! picked automatically: it changes the rounding.
//!
//! The module's parts: the variant catalogue and its validation ([`Variant`], [`Tiles`],
//! `variants.rs`), the launch (`launch.rs`), autotuning's class keys, cache lookup and tuning
//! pass (`tuning.rs`), and the f64 reference with the f16 error model every f16 GEMM check
//! uses ([`reference`](mod@reference)).

mod launch;
pub mod reference;
mod sampled;
mod tuning;
mod variants;

pub use launch::{dims, matmul, matmul_into, matmul_row_sums_into, SHADER, SHADER_VEC4};
// The shader assembly, for the catalogue's naga check.
#[cfg(test)]
pub(crate) use launch::{shader_defs, Flags};
// The uniform block (read by the CPU kernels and by tests of the shaders' layouts).
pub(crate) use launch::Params;
pub use sampled::SampledProduct;
pub use tuning::{autotune, choose, class_key, tune_problems, MatmulProblem, Tuned};
pub use variants::{Tiles, Variant};

use super::Activation;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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
        // The CPU backend (crate::gpu::host::cpu_name) has no f16 arithmetic at all.
        let cpu = if adapter.starts_with("accrete CPU backend") {
            " (the CPU backend computes in f32 only: use f32 precision there, or a GPU with \
             SHADER_F16 for f16)"
        } else {
            ""
        };
        let adapter = if adapter.is_empty() {
            "this adapter".to_string()
        } else {
            format!("the adapter {adapter:?}")
        };
        Err(Error::invalid(
            what,
            format!(
                "needs the device feature {}, which {adapter} does not offer; {remedy}{cpu}",
                crate::gpu::feature_names(missing)
            ),
        ))
    }
}
