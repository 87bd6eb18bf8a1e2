//! The data-movement kernels around convolutions: `shaders/im2col.wgsl` (`im2col`,
//! `col2im`), `shaders/pool.wgsl` (max and average pooling, forward and backward) and
//! `shaders/permute.wgsl` (`main`: swap the last two axes). Same outputs, element for
//! element, as the WGSL (each writes every element of its destination).

use crate::cpu::Call;
use crate::error::Result;

/// The im2col geometry: [batch, channels, height, width, kernel, stride, padding, out_h, out_w].
fn im2col_dims(call: &Call<'_>) -> Result<[usize; 9]> {
    let p: crate::kernels::conv::Params = call.params()?;
    Ok([
        p.batch, p.channels, p.height, p.width, p.kernel, p.stride, p.padding, p.out_h, p.out_w,
    ]
    .map(|v| v as usize))
}

/// `im2col::im2col`: cols[(b·OH + oh)·OW + ow, (c·K + kh)·K + kw] = the padded input tap.
pub(super) fn im2col(call: &Call<'_>) -> Result<()> {
    let [b, c, h, w, k, s, pad, oh, ow] = im2col_dims(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    let plen = c * k * k;
    call.need("x", src.len(), b * c * h * w)?;
    call.need("cols", dst.len(), b * oh * ow * plen)?;
    for r in 0..b * oh * ow {
        let (bi, y, x) = (r / (oh * ow), (r / ow) % oh, r % ow);
        let row = &mut dst[r * plen..(r + 1) * plen];
        for (j, v) in row.iter_mut().enumerate() {
            let (ci, kh, kw) = (j / (k * k), (j / k) % k, j % k);
            let (hp, wp) = (y * s + kh, x * s + kw);
            *v = if hp >= pad && hp < h + pad && wp >= pad && wp < w + pad {
                src[((bi * c + ci) * h + hp - pad) * w + wp - pad]
            } else {
                0.0
            };
        }
    }
    Ok(())
}

/// `im2col::col2im`: dx[b, c, h, w] = Σ (kh, then kw) of the dcols entries copied from it.
pub(super) fn col2im(call: &Call<'_>) -> Result<()> {
    let [b, c, h, w, k, s, pad, oh, ow] = im2col_dims(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    let plen = c * k * k;
    call.need("dcols", src.len(), b * oh * ow * plen)?;
    call.need("dx", dst.len(), b * c * h * w)?;
    if s == 0 {
        return call.need("stride", 0, 1);
    }
    for (i, out) in dst[..b * c * h * w].iter_mut().enumerate() {
        let (x, y, ci, bi) = (i % w, (i / w) % h, (i / (w * h)) % c, i / (w * h * c));
        let (hp, wp) = (y + pad, x + pad);
        let mut acc = 0.0f32;
        for kh in 0..k.min(hp + 1) {
            let dh = hp - kh;
            let o_h = dh / s;
            if dh % s != 0 || o_h >= oh {
                continue;
            }
            let row0 = (bi * oh + o_h) * ow;
            let col0 = (ci * k + kh) * k;
            for kw in 0..k.min(wp + 1) {
                let dw = wp - kw;
                let o_w = dw / s;
                if dw % s != 0 || o_w >= ow {
                    continue;
                }
                acc += src[(row0 + o_w) * plen + col0 + kw];
            }
        }
        *out = acc;
    }
    Ok(())
}

struct Pool {
    planes: usize,
    h: usize,
    w: usize,
    size: usize,
    stride: usize,
    oh: usize,
    ow: usize,
    scale: f32,
}

impl Pool {
    fn of(call: &Call<'_>) -> Result<Pool> {
        let p: crate::kernels::pool::Params = call.params()?;
        let g = Pool {
            planes: p.batch as usize * p.channels as usize,
            h: p.height as usize,
            w: p.width as usize,
            size: p.size as usize,
            stride: p.stride as usize,
            oh: p.out_h as usize,
            ow: p.out_w as usize,
            scale: p.scale,
        };
        if g.stride == 0 {
            return call.need("stride", 0, 1).map(|_| g);
        }
        Ok(g)
    }
    fn x_len(&self) -> usize {
        self.planes * self.h * self.w
    }
    fn y_len(&self) -> usize {
        self.planes * self.oh * self.ow
    }
    /// The window positions o with o·S ≤ i < o·S + size, clipped to [0, n).
    fn windows(&self, i: usize, n: usize) -> std::ops::Range<usize> {
        let lo = if i + 1 > self.size {
            (i + 1 - self.size).div_ceil(self.stride)
        } else {
            0
        };
        lo..(i / self.stride + 1).min(n)
    }
}

/// `pool::max_forward`: the window's maximum (first wins ties; the first NaN wins) and its
/// flat index h·W + w in the plane.
pub(super) fn max_forward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    let arg = call.u32_mut(3)?;
    call.need("x", src.len(), g.x_len())?;
    call.need("y", dst.len(), g.y_len())?;
    call.need("argmax", arg.len(), g.y_len())?;
    for i in 0..g.y_len() {
        let (x, y, plane) = (i % g.ow, (i / g.ow) % g.oh, i / (g.ow * g.oh));
        let base = plane * g.h * g.w;
        let (h0, w0) = (y * g.stride, x * g.stride);
        let mut best_k = h0 * g.w + w0;
        let mut best = src[base + best_k];
        for kh in 0..g.size {
            for kw in 0..g.size {
                let k = (h0 + kh) * g.w + w0 + kw;
                let v = src[base + k];
                if !best.is_nan() && (v.is_nan() || v > best) {
                    best = v;
                    best_k = k;
                }
            }
        }
        dst[i] = best;
        arg[i] = best_k as u32;
    }
    Ok(())
}

/// `pool::max_backward`: dx[h, w] = Σ dy over the windows whose argmax is (h, w).
pub(super) fn max_backward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    let arg = call.u32(3)?;
    call.need("dy", src.len(), g.y_len())?;
    call.need("argmax", arg.len(), g.y_len())?;
    call.need("dx", dst.len(), g.x_len())?;
    for (i, out) in dst[..g.x_len()].iter_mut().enumerate() {
        let (x, y, plane) = (i % g.w, (i / g.w) % g.h, i / (g.w * g.h));
        let k = (y * g.w + x) as u32;
        let mut acc = 0.0f32;
        for oh in g.windows(y, g.oh) {
            for ow in g.windows(x, g.ow) {
                let o = (plane * g.oh + oh) * g.ow + ow;
                if arg[o] == k {
                    acc += src[o];
                }
            }
        }
        *out = acc;
    }
    Ok(())
}

/// `pool::avg_forward`: scale · Σ window.
pub(super) fn avg_forward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    call.need("x", src.len(), g.x_len())?;
    call.need("y", dst.len(), g.y_len())?;
    for (i, out) in dst[..g.y_len()].iter_mut().enumerate() {
        let (x, y, plane) = (i % g.ow, (i / g.ow) % g.oh, i / (g.ow * g.oh));
        let base = plane * g.h * g.w;
        let (h0, w0) = (y * g.stride, x * g.stride);
        let mut acc = 0.0f32;
        for kh in 0..g.size {
            for kw in 0..g.size {
                acc += src[base + (h0 + kh) * g.w + w0 + kw];
            }
        }
        *out = acc * g.scale;
    }
    Ok(())
}

/// `pool::avg_backward`: dx[h, w] = scale · Σ dy over the windows containing (h, w).
pub(super) fn avg_backward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    call.need("dy", src.len(), g.y_len())?;
    call.need("dx", dst.len(), g.x_len())?;
    for (i, out) in dst[..g.x_len()].iter_mut().enumerate() {
        let (x, y, plane) = (i % g.w, (i / g.w) % g.h, i / (g.w * g.h));
        let mut acc = 0.0f32;
        for oh in g.windows(y, g.oh) {
            for ow in g.windows(x, g.ow) {
                acc += src[(plane * g.oh + oh) * g.ow + ow];
            }
        }
        *out = acc * g.scale;
    }
    Ok(())
}

/// `permute::main`: out[b, q, p] = x[b, p, q], as raw words.
pub(super) fn permute(call: &Call<'_>) -> Result<()> {
    let p: crate::kernels::permute::Params = call.params()?;
    let (b, rows, cols) = (p.batch as usize, p.rows as usize, p.cols as usize);
    let x = call.u32(1)?;
    let out = call.u32_mut(2)?;
    call.need("x", x.len(), b * rows * cols)?;
    call.need("out", out.len(), b * rows * cols)?;
    for bi in 0..b {
        let base = bi * rows * cols;
        for r in 0..rows {
            for q in 0..cols {
                out[base + q * rows + r] = x[base + r * cols + q];
            }
        }
    }
    Ok(())
}
