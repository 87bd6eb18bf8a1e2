//! 2-D max and average pooling over NCHW tensors: size×size windows, stride S, no padding,
//! floor mode (PyTorch's defaults for `MaxPool2d(size, stride)` / `AvgPool2d(size, stride)`).
//!
//! Max pooling records, per output, the flat index h·W + w (within the input plane) of the
//! first maximum in row-major window order; NaN counts as larger than any number, so NaN
//! inputs propagate. The backward kernels are gathers (one thread per input element, fixed
//! order, no atomics): deterministic, correct for overlapping windows (stride < size), and
//! they overwrite all of dx (0 where no window reads an element).
//!
//! Tensors are checked by element count and type, so any view of the documented shape works.

use super::conv::{checked_product, expect_elems};
use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("pool", "common");

/// The geometry of a 2-D pooling layer over an NCHW batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub size: usize,
    pub stride: usize,
}

impl PoolGeom {
    /// ⌊(H − size)/S⌋ + 1 (meaningful once [`validate`](Self::validate) passes).
    pub fn out_h(&self) -> usize {
        self.height.saturating_sub(self.size) / self.stride.max(1) + 1
    }

    /// ⌊(W − size)/S⌋ + 1.
    pub fn out_w(&self) -> usize {
        self.width.saturating_sub(self.size) / self.stride.max(1) + 1
    }

    /// The input shape [B, C, H, W].
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    /// The output shape [B, C, OH, OW].
    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_h(), self.out_w()]
    }

    /// Checks size ≥ 1, stride ≥ 1, that the window fits in the image, and that every
    /// index fits the shaders' 32-bit arithmetic.
    pub fn validate(&self) -> Result<()> {
        let bad = |d: String| Err(Error::invalid(format!("pooling geometry {self:?}"), d));
        if self.size == 0 {
            return bad("the window size must be at least 1".into());
        }
        if self.stride == 0 {
            return bad("the stride must be at least 1".into());
        }
        if self.size > self.height || self.size > self.width {
            return bad(format!(
                "a {s}×{s} window does not fit the {h}×{w} image (pooling has no padding)",
                s = self.size,
                h = self.height,
                w = self.width
            ));
        }
        if checked_product(&self.input_shape()).is_none() {
            return bad(format!(
                "the tensors are too large for 32-bit indexing (at most {} elements)",
                u32::MAX
            ));
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) batch: u32,
    pub(crate) channels: u32,
    pub(crate) height: u32,
    pub(crate) width: u32,
    pub(crate) size: u32,
    pub(crate) stride: u32,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    pub(crate) scale: f32,
    pub(crate) _pad: [u32; 3],
}

impl Params {
    fn new(g: &PoolGeom) -> Params {
        Params {
            batch: g.batch as u32,
            channels: g.channels as u32,
            height: g.height as u32,
            width: g.width as u32,
            size: g.size as u32,
            stride: g.stride as u32,
            out_h: g.out_h() as u32,
            out_w: g.out_w() as u32,
            scale: avg_scale(g),
            _pad: [0; 3],
        }
    }
}

/// 1/size², rounded to f32: the factor the average kernels multiply by.
pub fn avg_scale(g: &PoolGeom) -> f32 {
    (1.0 / (g.size * g.size) as f64) as f32
}

const IN: &str = "[B, C, H, W]";
const OUT: &str = "[B, C, OH, OW]";

fn launch(
    g: &PoolGeom,
    entry: &str,
    storage: &[Bind<'_>],
    threads: usize,
    gpu: &crate::gpu::Gpu,
) -> Result<Dispatch> {
    gpu.dispatch(
        &SHADER,
        "",
        entry,
        &Params::new(g),
        storage,
        gpu.grid(groups_1d(threads))?,
    )
}

/// Max pooling: y = each window's maximum, argmax = the flat index h·W + w of its first
/// maximum within the input plane. x: [B, C, H, W]; y: [B, C, OH, OW]; argmax: u32
/// [B, C, OH, OW]. Every element of y and argmax is written.
pub fn max_forward_into(x: &Tensor, g: &PoolGeom, y: &Tensor, argmax: &Tensor) -> Result<Dispatch> {
    g.validate()?;
    let (op, out) = ("max_pool forward", g.output_shape());
    expect_elems(op, "the input", x, DType::F32, IN, &g.input_shape())?;
    expect_elems(op, "the output", y, DType::F32, OUT, &out)?;
    expect_elems(op, "the argmax", argmax, DType::U32, OUT, &out)?;
    let bind = [Bind::T(x), Bind::T(y), Bind::T(argmax)];
    launch(g, "max_forward", &bind, y.len(), x.gpu())
}

/// Max pooling gradient: dx[b, c, h, w] = Σ dy over the windows containing (h, w) whose
/// argmax is h·W + w. dy, argmax: [B, C, OH, OW]; dx: [B, C, H, W], fully overwritten.
pub fn max_backward_into(
    dy: &Tensor,
    argmax: &Tensor,
    g: &PoolGeom,
    dx: &Tensor,
) -> Result<Dispatch> {
    g.validate()?;
    let (op, out) = ("max_pool backward", g.output_shape());
    expect_elems(op, "the output gradient", dy, DType::F32, OUT, &out)?;
    expect_elems(op, "the argmax", argmax, DType::U32, OUT, &out)?;
    expect_elems(
        op,
        "the input gradient",
        dx,
        DType::F32,
        IN,
        &g.input_shape(),
    )?;
    let bind = [Bind::T(dy), Bind::T(dx), Bind::T(argmax)];
    launch(g, "max_backward", &bind, dx.len(), dx.gpu())
}

/// Average pooling: y = (1/size²)·Σ window. x: [B, C, H, W]; y: [B, C, OH, OW].
pub fn avg_forward_into(x: &Tensor, g: &PoolGeom, y: &Tensor) -> Result<Dispatch> {
    g.validate()?;
    let op = "avg_pool forward";
    expect_elems(op, "the input", x, DType::F32, IN, &g.input_shape())?;
    expect_elems(op, "the output", y, DType::F32, OUT, &g.output_shape())?;
    launch(
        g,
        "avg_forward",
        &[Bind::T(x), Bind::T(y)],
        y.len(),
        x.gpu(),
    )
}

/// Average pooling gradient: dx[b, c, h, w] = (1/size²)·Σ dy over the windows containing
/// (h, w). dy: [B, C, OH, OW]; dx: [B, C, H, W], fully overwritten.
pub fn avg_backward_into(dy: &Tensor, g: &PoolGeom, dx: &Tensor) -> Result<Dispatch> {
    g.validate()?;
    let op = "avg_pool backward";
    expect_elems(
        op,
        "the output gradient",
        dy,
        DType::F32,
        OUT,
        &g.output_shape(),
    )?;
    expect_elems(
        op,
        "the input gradient",
        dx,
        DType::F32,
        IN,
        &g.input_shape(),
    )?;
    launch(
        g,
        "avg_backward",
        &[Bind::T(dy), Bind::T(dx)],
        dx.len(),
        dx.gpu(),
    )
}

/// Max pooling into new tensors: (y, argmax).
pub fn max_forward(x: &Tensor, g: &PoolGeom) -> Result<(Tensor, Tensor)> {
    g.validate()?;
    let y = Tensor::uninit(x.gpu(), &g.output_shape(), DType::F32)?;
    let argmax = Tensor::uninit(x.gpu(), &g.output_shape(), DType::U32)?;
    x.gpu().run(&[&max_forward_into(x, g, &y, &argmax)?])?;
    Ok((y, argmax))
}

/// Average pooling into a new tensor.
pub fn avg_forward(x: &Tensor, g: &PoolGeom) -> Result<Tensor> {
    g.validate()?;
    let y = Tensor::uninit(x.gpu(), &g.output_shape(), DType::F32)?;
    x.gpu().run(&[&avg_forward_into(x, g, &y)?])?;
    Ok(y)
}

/// f64 references (argmax exact), written per output window (scatter form).
pub mod reference {
    use super::PoolGeom;

    fn is_nan_or_above(v: f32, best: f32) -> bool {
        !best.is_nan() && (v.is_nan() || v > best)
    }

    /// Visits every window: (plane index b·C + c, output index, flat input indices of its
    /// elements in row-major order within the plane).
    fn windows(g: &PoolGeom, mut f: impl FnMut(usize, usize, &mut dyn Iterator<Item = usize>)) {
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        for plane in 0..g.batch * g.channels {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let (h0, w0) = (oh * g.stride, ow * g.stride);
                    let mut it =
                        (0..g.size * g.size).map(|t| (h0 + t / g.size) * g.width + w0 + t % g.size);
                    f(plane, (plane * oh_n + oh) * ow_n + ow, &mut it);
                }
            }
        }
    }

    /// (y, argmax): each window's maximum and the flat index h·W + w of its first maximum
    /// (NaN beats every number; the first NaN wins).
    pub fn max_forward(x: &[f32], g: &PoolGeom) -> (Vec<f64>, Vec<u32>) {
        let n = g.batch * g.channels * g.out_h() * g.out_w();
        let (mut y, mut arg) = (vec![0.0; n], vec![0u32; n]);
        let plane_len = g.height * g.width;
        windows(g, |plane, o, it| {
            let xs = &x[plane * plane_len..(plane + 1) * plane_len];
            let first = it.next().expect("a window has at least one element");
            let best = it.fold(
                first,
                |b, k| if is_nan_or_above(xs[k], xs[b]) { k } else { b },
            );
            y[o] = xs[best] as f64;
            arg[o] = best as u32;
        });
        (y, arg)
    }

    /// dx [B, C, H, W]: each dy is added to the input element its argmax names.
    pub fn max_backward(dy: &[f32], argmax: &[u32], g: &PoolGeom) -> Vec<f64> {
        let plane_len = g.height * g.width;
        let mut dx = vec![0.0; g.batch * g.channels * plane_len];
        windows(g, |plane, o, _| {
            dx[plane * plane_len + argmax[o] as usize] += dy[o] as f64;
        });
        dx
    }

    /// Window means (the exact 1/size², not the kernel's rounded factor).
    pub fn avg_forward(x: &[f32], g: &PoolGeom) -> Vec<f64> {
        let plane_len = g.height * g.width;
        let mut y = vec![0.0; g.batch * g.channels * g.out_h() * g.out_w()];
        let n = (g.size * g.size) as f64;
        windows(g, |plane, o, it| {
            y[o] = it.map(|k| x[plane * plane_len + k] as f64).sum::<f64>() / n;
        });
        y
    }

    /// dx [B, C, H, W]: each dy/size² is added to every element of its window.
    pub fn avg_backward(dy: &[f32], g: &PoolGeom) -> Vec<f64> {
        let plane_len = g.height * g.width;
        let mut dx = vec![0.0; g.batch * g.channels * plane_len];
        let n = (g.size * g.size) as f64;
        windows(g, |plane, o, it| {
            for k in it {
                dx[plane * plane_len + k] += dy[o] as f64 / n;
            }
        });
        dx
    }
}
