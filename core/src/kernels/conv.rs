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

pub use super::matmul::Precision;
use super::{consts, groups_1d, shader, Activation, ConstVal};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};

pub const SHADER: Shader = shader!("im2col", "common");
/// Implicit-GEMM forward.
pub const FORWARD: Shader = shader!(
    "conv_fwd",
    "activation_fns",
    "conv_geom",
    "conv_gemm",
    "conv_tap"
);
/// Implicit-GEMM weight and bias gradients.
pub const WGRAD: Shader = shader!(
    "conv_wgrad",
    "common",
    "activation_fns",
    "conv_geom",
    "conv_tap",
    "conv_dz"
);
/// Implicit-GEMM input gradient.
pub const DGRAD: Shader = shader!(
    "conv_dgrad",
    "activation_fns",
    "conv_geom",
    "conv_gemm",
    "conv_dz"
);

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

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    _pad: [u32; 3],
}

impl Params {
    fn new(g: &ConvGeom) -> Params {
        Params {
            batch: g.batch as u32,
            channels: g.channels as u32,
            height: g.height as u32,
            width: g.width as u32,
            kernel: g.kernel as u32,
            stride: g.stride as u32,
            padding: g.padding as u32,
            out_h: g.out_h() as u32,
            out_w: g.out_w() as u32,
            _pad: [0; 3],
        }
    }
}

/// `cols[(b·OH + oh)·OW + ow, (c·K + kh)·K + kw] = x[b, c, oh·S + kh − P, ow·S + kw − P]`
/// (0 in the padding). x: [B, C, H, W]; cols: [B·OH·OW, C·K·K], every element written.
pub fn im2col_into(x: &Tensor, g: &ConvGeom, cols: &Tensor) -> Result<Dispatch> {
    g.validate()?;
    expect_elems(
        "im2col",
        "the input",
        x,
        DType::F32,
        "[B, C, H, W]",
        &g.input_shape(),
    )?;
    expect_elems(
        "im2col",
        "the column matrix",
        cols,
        DType::F32,
        "[B·OH·OW, C·K·K]",
        &[g.rows(), g.patch()],
    )?;
    let gpu = x.gpu();
    gpu.dispatch(
        &SHADER,
        "",
        "im2col",
        &Params::new(g),
        &[Bind::T(x), Bind::T(cols)],
        gpu.grid(groups_1d(g.rows() * g.patch()))?,
    )
}

/// The adjoint of im2col: `dx[b, c, h, w] = Σ dcols[r, j]` over the entries im2col copies
/// from x[b, c, h, w]. dcols: [B·OH·OW, C·K·K]; dx: [B, C, H, W], fully overwritten.
pub fn col2im_into(dcols: &Tensor, g: &ConvGeom, dx: &Tensor) -> Result<Dispatch> {
    g.validate()?;
    expect_elems(
        "col2im",
        "the column gradient",
        dcols,
        DType::F32,
        "[B·OH·OW, C·K·K]",
        &[g.rows(), g.patch()],
    )?;
    expect_elems(
        "col2im",
        "the input gradient",
        dx,
        DType::F32,
        "[B, C, H, W]",
        &g.input_shape(),
    )?;
    let gpu = dx.gpu();
    gpu.dispatch(
        &SHADER,
        "",
        "col2im",
        &Params::new(g),
        &[Bind::T(dcols), Bind::T(dx)],
        gpu.grid(groups_1d(dx.len()))?,
    )
}

/// im2col into a new [B·OH·OW, C·K·K] tensor.
pub fn im2col(x: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    g.validate()?;
    let cols = Tensor::uninit(x.gpu(), &[g.rows(), g.patch()], DType::F32)?;
    x.gpu().run(&[&im2col_into(x, g, &cols)?])?;
    Ok(cols)
}

/// col2im into a new [B, C, H, W] tensor.
pub fn col2im(dcols: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let dx = Tensor::uninit(dcols.gpu(), &g.input_shape(), DType::F32)?;
    dcols.gpu().run(&[&col2im_into(dcols, g, &dx)?])?;
    Ok(dx)
}

/// Workgroup tile of the implicit-GEMM kernels: `bm` × `bn` outputs, depth step `bk`,
/// `tm` × `tn` outputs per thread. (Rows are output positions for the forward and input
/// gradient, filters for the weight gradient.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl ConvTiles {
    /// 64×64 tile, 4×4 per thread, 256 threads: discrete GPUs.
    pub const LARGE: ConvTiles = ConvTiles {
        bm: 64,
        bn: 64,
        bk: 8,
        tm: 4,
        tn: 4,
    };
    /// 128×32 tile, 8×2 per thread, 256 threads: GPUs, when the GEMM has ≤ 32 columns
    /// (few filters forward, few channels for the input gradient), where a 64-wide tile
    /// would compute half zeros.
    pub const TALL: ConvTiles = ConvTiles {
        bm: 128,
        bn: 32,
        bk: 8,
        tm: 8,
        tn: 2,
    };
    /// 32×32 tile, 4×4 per thread, 64 threads: cheaper barriers for CPU adapters.
    pub const MEDIUM: ConvTiles = ConvTiles {
        bm: 32,
        bn: 32,
        bk: 8,
        tm: 4,
        tn: 4,
    };

    /// The default for a device and a GEMM of `columns` columns: small workgroups on CPU
    /// adapters; on GPUs large tiles, tall ones for ≤ 32 columns.
    pub fn for_device(gpu: &Gpu, columns: usize) -> ConvTiles {
        if gpu.summary().device_type == "Cpu" {
            ConvTiles::MEDIUM
        } else if columns <= 32 {
            ConvTiles::TALL
        } else {
            ConvTiles::LARGE
        }
    }

    fn threads(&self) -> u32 {
        (self.bm / self.tm.max(1)) * (self.bn / self.tn.max(1))
    }

    /// Bytes of workgroup memory the GEMM tiles take at `precision` (2 per element for f16).
    pub fn shared_bytes(&self, precision: Precision) -> u32 {
        let elem = match precision {
            Precision::F32 => 4,
            Precision::F16 => 2,
        };
        elem * self.bk * (self.bm + self.bn)
    }

    /// Checks divisibility (each thread loads fixed rows: threads must be a multiple of `bm`
    /// and of `bk`) and the device's workgroup limits, with tiles of `precision`.
    pub fn validate(&self, gpu: &Gpu, precision: Precision) -> Result<()> {
        let bad = |d: String| Err(Error::invalid(format!("convolution tiles {self:?}"), d));
        if [self.bm, self.bn, self.bk, self.tm, self.tn].contains(&0) {
            return bad("every tile size must be positive".into());
        }
        if !self.bm.is_multiple_of(self.tm) || !self.bn.is_multiple_of(self.tn) {
            return bad("bm must be a multiple of tm and bn of tn".into());
        }
        let t = self.threads();
        if !t.is_multiple_of(self.bm) || !t.is_multiple_of(self.bk) {
            return bad(format!("{t} threads must be a multiple of bm and of bk"));
        }
        let lim = gpu.limits();
        let (tx, ty) = (self.bm / self.tm, self.bn / self.tn);
        if t > lim.max_compute_invocations_per_workgroup
            || tx.max(ty)
                > lim
                    .max_compute_workgroup_size_x
                    .min(lim.max_compute_workgroup_size_y)
        {
            return bad(format!(
                "{t} threads per workgroup exceed the device limits"
            ));
        }
        let shared = self.shared_bytes(precision);
        if shared > lim.max_compute_workgroup_storage_size {
            return bad(format!(
                "{shared} bytes of workgroup memory exceed the device limit of {}",
                lim.max_compute_workgroup_storage_size
            ));
        }
        Ok(())
    }
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

    fn prepare(&self, gpu: &Gpu, columns: usize) -> Result<ConvTiles> {
        self.geom.validate()?;
        let out = self.output_shape();
        if self.filters == 0 || checked_product(&out).is_none() {
            return Err(Error::invalid(
                format!("convolution {self:?}"),
                "needs at least one filter and an output within 32-bit indexing",
            ));
        }
        self.check_features(gpu.features(), &gpu.summary().name)?;
        let tiles = self
            .tiles
            .unwrap_or_else(|| ConvTiles::for_device(gpu, columns));
        tiles.validate(gpu, self.precision)?;
        Ok(tiles)
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

    /// The injected prefix: `enable f16;` when needed (it must precede every declaration),
    /// the constants, and `TILE_S`, the element type of the GEMM tiles.
    pub(crate) fn consts(&self, tiles: &ConvTiles, has_bias: bool) -> String {
        let (enable, elem) = match self.precision {
            Precision::F32 => ("", "f32"),
            Precision::F16 => ("enable f16;\n", "f16"),
        };
        let items = consts(&[
            ("BM", ConstVal::U(tiles.bm)),
            ("BN", ConstVal::U(tiles.bn)),
            ("BK", ConstVal::U(tiles.bk)),
            ("TM", ConstVal::U(tiles.tm)),
            ("TN", ConstVal::U(tiles.tn)),
            ("KS", ConstVal::U(self.geom.kernel as u32)),
            ("STRIDE", ConstVal::U(self.geom.stride as u32)),
            ("ACT", ConstVal::U(self.activation.code())),
            ("HAS_BIAS", ConstVal::B(has_bias)),
            ("TILE_F16", ConstVal::B(self.precision == Precision::F16)),
        ]);
        format!("{enable}{items}alias TILE_S = {elem};\n")
    }

    fn params(&self, split_len: usize, splits: usize) -> ConvParams {
        let g = &self.geom;
        ConvParams {
            batch: g.batch as u32,
            channels: g.channels as u32,
            height: g.height as u32,
            width: g.width as u32,
            padding: g.padding as u32,
            out_h: g.out_h() as u32,
            out_w: g.out_w() as u32,
            filters: self.filters as u32,
            split_len: split_len as u32,
            alpha: self.activation.alpha(),
            splits: splits as u32,
            _pad: 0,
        }
    }

    /// Checks the pre-activation the backward kernels read: required (shaped like the
    /// output) unless the activation is the identity.
    fn check_z<'a>(
        &self,
        op: &'static str,
        z: Option<&'a Tensor>,
        dy: &'a Tensor,
    ) -> Result<&'a Tensor> {
        match (z, self.activation) {
            (None, Activation::Identity) => Ok(dy),
            (None, act) => Err(Error::invalid(
                op,
                format!("the {act:?} activation needs the pre-activation z"),
            )),
            (Some(z), _) => {
                expect_elems(
                    op,
                    "the pre-activation",
                    z,
                    DType::F32,
                    "[B, F, OH, OW]",
                    &self.output_shape(),
                )?;
                Ok(z)
            }
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    filters: u32,
    split_len: u32,
    alpha: f32,
    splits: u32,
    _pad: u32,
}

/// `y = act(conv(x, w) + bias)` (NCHW [B, F, OH, OW]) in one dispatch, also writing the
/// pre-activation to `z` when given. x: [B, C, H, W]; w: [F, C, K, K]; bias: [F].
pub fn implicit_forward_into(
    spec: &ConvSpec,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    z: Option<&Tensor>,
    y: &Tensor,
) -> Result<Dispatch> {
    let gpu = x.gpu();
    let tiles = spec.prepare(gpu, spec.filters)?;
    let g = &spec.geom;
    let op = "conv forward";
    let out = spec.output_shape();
    expect_elems(
        op,
        "the input",
        x,
        DType::F32,
        "[B, C, H, W]",
        &g.input_shape(),
    )?;
    expect_elems(
        op,
        "the weights",
        w,
        DType::F32,
        "[F, C, K, K]",
        &[spec.filters, g.patch()],
    )?;
    if let Some(b) = bias {
        expect_elems(op, "the bias", b, DType::F32, "[F]", &[spec.filters])?;
    }
    expect_elems(op, "the output", y, DType::F32, "[B, F, OH, OW]", &out)?;
    if let Some(z) = z {
        expect_elems(
            op,
            "the pre-activation",
            z,
            DType::F32,
            "[B, F, OH, OW]",
            &out,
        )?;
    }
    let rows = g.rows() as u32;
    let groups = [
        rows.div_ceil(tiles.bm),
        (spec.filters as u32).div_ceil(tiles.bn),
        1,
    ];
    let (entry, zb) = match z {
        Some(z) => ("main_z", Bind::T(z)),
        None => ("main", Bind::Skip),
    };
    gpu.dispatch(
        &FORWARD,
        &spec.consts(&tiles, bias.is_some()),
        entry,
        &spec.params(0, 0),
        &[
            Bind::T(x),
            Bind::T(w),
            bias.map_or(Bind::Dummy, Bind::T),
            zb,
            Bind::T(y),
        ],
        groups,
    )
}

/// How the weight gradient splits the B·OH·OW output positions: (positions per split, a
/// multiple of `bk`; number of splits). Enough splits that the launch has about `target`
/// workgroups, none empty.
fn wgrad_splits(spec: &ConvSpec, tiles: &ConvTiles, target: u64) -> (usize, usize) {
    let rows = spec.geom.rows().max(1);
    let tiles_out = (spec.filters as u64).div_ceil(tiles.bm as u64)
        * (spec.geom.patch() as u64 + 1).div_ceil(tiles.bn as u64);
    let want = target.div_ceil(tiles_out.max(1)).max(1) as usize;
    let bk = tiles.bk as usize;
    let len = rows.div_ceil(want).next_multiple_of(bk);
    (len, rows.div_ceil(len))
}

/// The weight-gradient launch plan: its dispatches (split products, then the fixed-order
/// reduction; they keep the scratch partials alive).
#[derive(Debug)]
pub struct WeightGrad {
    pub dispatches: Vec<Dispatch>,
    /// Number of splits of the output positions.
    pub splits: usize,
}

/// `dw = Σ dz ⊗ patches` ([F, C, K, K]) and `db = Σ dz` ([F]) with dz = dy·act'(z) (z: the
/// pre-activation, needed unless the activation is the identity). x: [B, C, H, W];
/// dy, z: [B, F, OH, OW]. Both gradients are fully overwritten.
pub fn implicit_wgrad_into(
    spec: &ConvSpec,
    x: &Tensor,
    dy: &Tensor,
    z: Option<&Tensor>,
    dw: &Tensor,
    db: &Tensor,
) -> Result<WeightGrad> {
    let gpu = x.gpu();
    let tiles = spec.prepare(gpu, spec.geom.patch() + 1)?;
    let g = &spec.geom;
    let op = "conv weight gradient";
    let out = spec.output_shape();
    expect_elems(
        op,
        "the input",
        x,
        DType::F32,
        "[B, C, H, W]",
        &g.input_shape(),
    )?;
    expect_elems(
        op,
        "the output gradient",
        dy,
        DType::F32,
        "[B, F, OH, OW]",
        &out,
    )?;
    let zt = spec.check_z(op, z, dy)?;
    expect_elems(
        op,
        "the weight gradient",
        dw,
        DType::F32,
        "[F, C, K, K]",
        &[spec.filters, g.patch()],
    )?;
    expect_elems(
        op,
        "the bias gradient",
        db,
        DType::F32,
        "[F]",
        &[spec.filters],
    )?;
    let target = if gpu.summary().device_type == "Cpu" {
        4
    } else {
        1024
    };
    let (split_len, splits) = wgrad_splits(spec, &tiles, target);
    let cols = g.patch() + 1;
    let partials = Tensor::uninit(gpu, &[splits, spec.filters, cols], DType::F32)?;
    let defs = spec.consts(&tiles, false);
    let p = spec.params(split_len, splits);
    let main = gpu.dispatch(
        &WGRAD,
        &defs,
        "main",
        &p,
        &[
            Bind::T(x),
            Bind::T(dy),
            Bind::T(zt),
            Bind::T(&partials),
            Bind::Skip,
            Bind::Skip,
        ],
        [
            (cols as u32).div_ceil(tiles.bn),
            (spec.filters as u32).div_ceil(tiles.bm),
            splits as u32,
        ],
    )?;
    let reduce = gpu.dispatch(
        &WGRAD,
        &defs,
        "reduce",
        &p,
        &[
            Bind::Skip,
            Bind::Skip,
            Bind::Skip,
            Bind::T(&partials),
            Bind::T(dw),
            Bind::T(db),
        ],
        gpu.grid(groups_1d(spec.filters * cols))?,
    )?;
    Ok(WeightGrad {
        dispatches: vec![main, reduce],
        splits,
    })
}

/// `dx = convᵀ(dz, w)` ([B, C, H, W], fully overwritten) with dz = dy·act'(z) (z: the
/// pre-activation, needed unless the activation is the identity). dy, z: [B, F, OH, OW];
/// w: [F, C, K, K].
pub fn implicit_dgrad_into(
    spec: &ConvSpec,
    dy: &Tensor,
    z: Option<&Tensor>,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    let gpu = dy.gpu();
    let tiles = spec.prepare(gpu, spec.geom.channels)?;
    let g = &spec.geom;
    let op = "conv input gradient";
    expect_elems(
        op,
        "the output gradient",
        dy,
        DType::F32,
        "[B, F, OH, OW]",
        &spec.output_shape(),
    )?;
    let zt = spec.check_z(op, z, dy)?;
    expect_elems(
        op,
        "the weights",
        w,
        DType::F32,
        "[F, C, K, K]",
        &[spec.filters, g.patch()],
    )?;
    expect_elems(
        op,
        "the input gradient",
        dx,
        DType::F32,
        "[B, C, H, W]",
        &g.input_shape(),
    )?;
    let rows = (g.batch * g.height * g.width) as u32;
    gpu.dispatch(
        &DGRAD,
        &spec.consts(&tiles, false),
        "main",
        &spec.params(0, 0),
        &[Bind::T(dy), Bind::T(zt), Bind::T(w), Bind::T(dx)],
        [
            rows.div_ceil(tiles.bm),
            (g.channels as u32).div_ceil(tiles.bn),
            1,
        ],
    )
}

/// f64 references, written directly from the definitions (not via im2col).
pub mod reference {
    use super::ConvGeom;

    /// Visits the taps of output position (oh, ow) in im2col column order (c, kh, kw),
    /// passing the input coordinates (h, w), or None where the tap lies in the padding.
    fn taps(
        g: &ConvGeom,
        oh: usize,
        ow: usize,
        mut f: impl FnMut(usize, usize, usize, Option<(usize, usize)>),
    ) {
        for c in 0..g.channels {
            for kh in 0..g.kernel {
                for kw in 0..g.kernel {
                    let h = (oh * g.stride + kh).checked_sub(g.padding);
                    let w = (ow * g.stride + kw).checked_sub(g.padding);
                    let hw = match (h, w) {
                        (Some(h), Some(w)) if h < g.height && w < g.width => Some((h, w)),
                        _ => None,
                    };
                    f(c, kh, kw, hw);
                }
            }
        }
    }

    fn x_index(g: &ConvGeom, b: usize, c: usize, h: usize, w: usize) -> usize {
        ((b * g.channels + c) * g.height + h) * g.width + w
    }

    /// Direct NCHW convolution: y[b, f, oh, ow] = bias[f] + Σ_{c,kh,kw} w[f, c, kh, kw] ·
    /// x[b, c, oh·S + kh − P, ow·S + kw − P] (zero padding). w: [F, C, K, K]; y: [B, F, OH, OW].
    /// (Called on |x|, |w|, |bias| it gives the Σ|terms| of each sum, for error bounds.)
    pub fn conv2d(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        g: &ConvGeom,
        filters: usize,
    ) -> Vec<f64> {
        let (oh_n, ow_n, k) = (g.out_h(), g.out_w(), g.kernel);
        let mut y = vec![0.0; g.batch * filters * oh_n * ow_n];
        for b in 0..g.batch {
            for f in 0..filters {
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let mut s = bias.map_or(0.0, |bias| bias[f] as f64);
                        taps(g, oh, ow, |c, kh, kw, hw| {
                            if let Some((h, wc)) = hw {
                                let wi = ((f * g.channels + c) * k + kh) * k + kw;
                                s += x[x_index(g, b, c, h, wc)] as f64 * w[wi] as f64;
                            }
                        });
                        y[((b * filters + f) * oh_n + oh) * ow_n + ow] = s;
                    }
                }
            }
        }
        y
    }

    /// Gradients of [`conv2d`] for the output gradient dy [B, F, OH, OW]:
    /// (dx [B, C, H, W], dw [F, C, K, K], db [F]). (Called on |x|, |w|, |dy| it gives the
    /// Σ|terms| of each sum, for error bounds.)
    pub fn conv2d_backward(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        g: &ConvGeom,
        filters: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (oh_n, ow_n, k) = (g.out_h(), g.out_w(), g.kernel);
        let mut dx = vec![0.0; g.batch * g.channels * g.height * g.width];
        let mut dw = vec![0.0; filters * g.patch()];
        let mut db = vec![0.0; filters];
        for b in 0..g.batch {
            for f in 0..filters {
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let d = dy[((b * filters + f) * oh_n + oh) * ow_n + ow] as f64;
                        db[f] += d;
                        taps(g, oh, ow, |c, kh, kw, hw| {
                            if let Some((h, wc)) = hw {
                                let xi = x_index(g, b, c, h, wc);
                                let wi = ((f * g.channels + c) * k + kh) * k + kw;
                                dw[wi] += d * x[xi] as f64;
                                dx[xi] += d * w[wi] as f64;
                            }
                        });
                    }
                }
            }
        }
        (dx, dw, db)
    }

    /// The im2col matrix [B·OH·OW, C·K·K] (exact copies, 0 in the padding).
    pub fn im2col(x: &[f32], g: &ConvGeom) -> Vec<f32> {
        let mut cols = Vec::with_capacity(g.rows() * g.patch());
        for b in 0..g.batch {
            for oh in 0..g.out_h() {
                for ow in 0..g.out_w() {
                    taps(g, oh, ow, |c, _, _, hw| {
                        cols.push(hw.map_or(0.0, |(h, w)| x[x_index(g, b, c, h, w)]));
                    });
                }
            }
        }
        cols
    }

    /// The adjoint of im2col: adds each dcols [B·OH·OW, C·K·K] entry onto the x element
    /// im2col copied it from, giving [B, C, H, W]. (On |dcols| it gives the Σ|terms| of
    /// each output, for error bounds.)
    pub fn col2im(dcols: &[f32], g: &ConvGeom) -> Vec<f64> {
        let mut dx = vec![0.0; g.batch * g.channels * g.height * g.width];
        let mut d = dcols.iter();
        for b in 0..g.batch {
            for oh in 0..g.out_h() {
                for ow in 0..g.out_w() {
                    taps(g, oh, ow, |c, _, _, hw| {
                        let v = *d.next().expect("dcols has B·OH·OW·C·K·K elements") as f64;
                        if let Some((h, w)) = hw {
                            dx[x_index(g, b, c, h, w)] += v;
                        }
                    });
                }
            }
        }
        dx
    }
}
