//! Convolution support: im2col (unfold the K×K patches of an NCHW image into the rows of a
//! matrix, so that a 2-D convolution is one matmul) and its adjoint col2im.
//!
//! With x [B, C, H, W], weights W [F, C, K, K] (PyTorch's layout, viewed as [F, C·K·K]) and
//! cols = im2col(x) [B·OH·OW, C·K·K] (row (b·OH + oh)·OW + ow, column (c·K + kh)·K + kw):
//! - forward: Y_mat = cols·Wᵀ + bias, [B·OH·OW, F]; permute::swap_last_two (b = B,
//!   p = OH·OW, q = F) turns it into NCHW [B, F, OH, OW];
//! - backward: with dY_mat [B·OH·OW, F] (swap_last_two of dY with b = B, p = F, q = OH·OW),
//!   dW = dY_matᵀ·cols, db = column sums of dY_mat, dcols = dY_mat·W and dx = col2im(dcols).
//!
//! col2im is a gather (one thread per dx element, fixed summation order, no atomics), so it
//! is deterministic and overwrites all of dx.
//!
//! The implicit-GEMM kernels compute the same three products without the cols buffer, each
//! workgroup gathering its tile of patches straight from the NCHW tensors
//! (shaders/conv_fwd.wgsl, conv_wgrad.wgsl, conv_dgrad.wgsl; the forward and the input
//! gradient share their workgroup GEMM, conv_gemm.wgsl):
//! - [`implicit_forward_into`]: y = act(conv(x, W) + bias) written NCHW, optionally keeping
//!   the pre-activation z — one dispatch instead of im2col, matmul, permute, activation;
//! - [`implicit_wgrad_into`]: dW and db (as an extra column of ones) from dz = dy·act'(z),
//!   split over the output positions with a fixed-order second pass — two dispatches instead
//!   of the activation backward, permute, matmul, column sum;
//! - [`implicit_dgrad_into`]: dx from dz — one dispatch instead of matmul and col2im.
//!
//! [`ConvSpec::precision`] chooses the GEMM tiles' element type: f32, or f16 (operands
//! rounded to f16 in workgroup memory, f32 sums; needs `SHADER_F16`), as matmul's
//! [`Precision`].
//!
//! Tensors are checked by element count and type, so callers may pass any view (reshape is
//! free) of the documented shape.
//!
//! The module's parts: the geometry and layer description (here), the im2col / col2im
//! launchers (`im2col.rs`), the implicit-GEMM launchers (`implicit.rs`), their workgroup tiles
//! ([`ConvTiles`], `tiles.rs`) and the f64 references ([`reference`](mod@reference)).

mod im2col;
mod implicit;
pub mod reference;
mod tiles;

pub use super::matmul::Precision;
pub use im2col::{col2im, col2im_into, im2col, im2col_into, SHADER};
pub use implicit::{
    implicit_dgrad_into, implicit_forward_into, implicit_wgrad_into, WeightGrad, DGRAD, FORWARD,
    WGRAD,
};
// The uniform blocks (read by the CPU kernels and by tests of the shaders' layouts).
pub(crate) use im2col::Params;
pub(crate) use implicit::ConvParams;
pub use tiles::ConvTiles;

use super::Activation;
use crate::error::{Error, Result};
use crate::gpu::{DType, Tensor};

/// The geometry of a 2-D convolution over an NCHW batch: square kernel, equal stride and
/// zero padding in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeom {
    /// Output height, ⌊(H + 2P − K)/S⌋ + 1 (meaningful once [`validate`](Self::validate) passes).
    pub fn out_h(&self) -> usize {
        out_len(self.height, self.padding, self.kernel, self.stride)
    }

    /// Output width, ⌊(W + 2P − K)/S⌋ + 1.
    pub fn out_w(&self) -> usize {
        out_len(self.width, self.padding, self.kernel, self.stride)
    }

    /// Patch length C·K·K: the columns of the im2col matrix.
    pub fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// B·OH·OW: the rows of the im2col matrix.
    pub fn rows(&self) -> usize {
        self.batch * self.out_h() * self.out_w()
    }

    /// The input shape [B, C, H, W].
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    /// Checks kernel ≥ 1, stride ≥ 1, that the kernel fits in the padded image, and that
    /// every index fits the shaders' 32-bit arithmetic.
    pub fn validate(&self) -> Result<()> {
        let bad = |d: String| Err(Error::invalid(format!("convolution geometry {self:?}"), d));
        if self.kernel == 0 {
            return bad("the kernel size must be at least 1".into());
        }
        if self.stride == 0 {
            return bad("the stride must be at least 1".into());
        }
        let (ph, pw) = (
            padded(self.height, self.padding),
            padded(self.width, self.padding),
        );
        if self.kernel > ph || self.kernel > pw {
            return bad(format!(
                "a {k}×{k} kernel does not fit the padded {ph}×{pw} image \
                 ({h}×{w} plus padding {p} on each side)",
                k = self.kernel,
                h = self.height,
                w = self.width,
                p = self.padding,
            ));
        }
        let (c, k) = (self.channels, self.kernel);
        let cols = [self.batch, self.out_h(), self.out_w(), c, k, k];
        let padded_x = [self.batch, self.channels, ph, pw];
        if checked_product(&cols).is_none() || checked_product(&padded_x).is_none() {
            return bad(format!(
                "the tensors are too large for 32-bit indexing (at most {} elements)",
                u32::MAX
            ));
        }
        Ok(())
    }
}

fn padded(n: usize, padding: usize) -> usize {
    n.saturating_add(padding.saturating_mul(2))
}

fn out_len(n: usize, padding: usize, kernel: usize, stride: usize) -> usize {
    padded(n, padding).saturating_sub(kernel) / stride.max(1) + 1
}

/// The product of `dims` if it (and so every index below it) fits in a u32.
pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= u32::MAX as usize)
}

/// Checks that `t` has `dtype` and the element count of `dims`; the message names the
/// operand, its documented layout (e.g. "[B, C, H, W]") and both shapes.
pub(crate) fn expect_elems(
    op: &'static str,
    name: &str,
    t: &Tensor,
    dtype: DType,
    layout: &str,
    dims: &[usize],
) -> Result<()> {
    let want: usize = dims.iter().product();
    if t.dtype() != dtype || t.len() != want {
        return Err(Error::shape(
            op,
            format!(
                "{name} must be {dtype:?} {layout} = {dims:?} ({want} elements), got {:?} {:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// A convolution layer for the implicit-GEMM kernels: geometry, filters, the activation
/// applied after the bias, tiles (`None`: [`ConvTiles::for_device`] for each kernel's
/// GEMM: F columns forward, C for the input gradient, C·K·K + 1 for the weight gradient)
/// and the precision of the GEMM tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub geom: ConvGeom,
    pub filters: usize,
    pub activation: Activation,
    pub tiles: Option<ConvTiles>,
    /// [`Precision::F32`] (the default): f32 tiles. [`Precision::F16`] (needs the device
    /// feature `SHADER_F16`): the forward, weight-gradient and input-gradient GEMM operands
    /// (x, weights, dz) are rounded to f16 as they are stored in workgroup memory (half the
    /// bytes) and converted back to f32 for the fused multiply-adds, which sum in f32, as
    /// matmul's f16 tiles do. The bias, the activation epilogue, dz = dy·act'(z) itself and
    /// the bias gradient stay f32 (the bias gradient sums the f32 dz, the same chain and bits
    /// as with f32 tiles). Operands must stay below 65504 in magnitude.
    pub precision: Precision,
}

impl ConvSpec {
    /// The output shape [B, F, OH, OW].
    pub fn output_shape(&self) -> [usize; 4] {
        let g = &self.geom;
        [g.batch, self.filters, g.out_h(), g.out_w()]
    }

    /// Device features the spec needs: `SHADER_F16` for [`Precision::F16`].
    pub fn required_features(&self) -> wgpu::Features {
        self.precision.required_features()
    }

    /// Checks `required_features` against `have` (the features of the adapter named
    /// `adapter`), saying which one is missing.
    pub fn check_features(&self, have: wgpu::Features, adapter: &str) -> Result<()> {
        self.precision.check_features(
            have,
            adapter,
            format!("convolution precision {:?} (f16 tiles)", self.precision),
            "use precision F32",
        )
    }
}
