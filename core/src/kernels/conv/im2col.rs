//! The im2col / col2im launchers: unfold the K×K patches of an NCHW batch into the rows of a
//! matrix (so that a convolution is one matmul) and gather them back (its adjoint).

use super::{expect_elems, ConvGeom};
use crate::error::Result;
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};
use crate::kernels::{groups_1d, shader};

pub const SHADER: Shader = shader!("im2col", "common");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) batch: u32,
    pub(crate) channels: u32,
    pub(crate) height: u32,
    pub(crate) width: u32,
    pub(crate) kernel: u32,
    pub(crate) stride: u32,
    pub(crate) padding: u32,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    pub(crate) _pad: [u32; 3],
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
