//! The implicit-GEMM launchers: the forward (with the bias and activation epilogue), the
//! weight and bias gradients (split over the output positions, reduced in a fixed order) and
//! the input gradient, each gathering its patches straight from the NCHW tensors.

use super::{checked_product, expect_elems, ConvSpec, ConvTiles, Precision};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};
use crate::kernels::{consts, groups_1d, shader, Activation, ConstVal};

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

/// The launch preparation the three implicit kernels share.
impl ConvSpec {
    /// Checks the geometry, the filter count, the output's indexing and the features, and
    /// returns the tiles of a GEMM with `columns` columns (the spec's, or the device default).
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
    pub(crate) batch: u32,
    pub(crate) channels: u32,
    pub(crate) height: u32,
    pub(crate) width: u32,
    pub(crate) padding: u32,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    pub(crate) filters: u32,
    pub(crate) split_len: u32,
    pub(crate) alpha: f32,
    pub(crate) splits: u32,
    pub(crate) _pad: u32,
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
