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
    /// Planes a thread takes at a time: about 16k elements of `plane` each.
    fn group_len(&self, plane: usize) -> usize {
        let planes = ((1 << 14) / plane.max(1)).clamp(1, self.planes.max(1));
        planes * plane.max(1)
    }

    /// `out` (whole planes of `plane` elements) cut into groups of planes, each with the
    /// index of its first plane.
    fn plane_groups<'a, T>(&self, out: &'a mut [T], plane: usize) -> Vec<(usize, &'a mut [T])> {
        let per = self.group_len(plane);
        out.chunks_mut(per)
            .enumerate()
            .map(|(i, c)| (i * per / plane.max(1), c))
            .collect()
    }

    /// Runs `f` on every group, on the pool's threads when there is enough work (each plane
    /// is computed alone, so the split does not change the result).
    fn share<I: Send>(&self, items: Vec<I>, f: impl Fn(I) + Sync) {
        let threads = if self.planes * self.h * self.w >= 1 << 16 {
            crate::cpu::threads()
        } else {
            1
        };
        crate::cpu::pool::for_parts(items, threads, |_, item| f(item));
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
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let items = g.plane_groups(&mut dst[..g.y_len()], plane_out);
    let args: Vec<&mut [u32]> = arg[..g.y_len()]
        .chunks_mut(g.group_len(plane_out))
        .collect();
    let items: Vec<_> = items.into_iter().zip(args).collect();
    g.share(items, |((p0, ys), args)| {
        for (j, (yp, ap)) in ys
            .chunks_exact_mut(plane_out)
            .zip(args.chunks_exact_mut(plane_out))
            .enumerate()
        {
            let xp = &src[(p0 + j) * plane_in..(p0 + j + 1) * plane_in];
            if g.size == 2 && g.stride == 2 {
                max_2x2(&g, xp, yp, ap);
                continue;
            }
            for y in 0..g.oh {
                for x in 0..g.ow {
                    let (h0, w0) = (y * g.stride, x * g.stride);
                    let mut best_k = h0 * g.w + w0;
                    let mut best = xp[best_k];
                    for kh in 0..g.size {
                        for kw in 0..g.size {
                            let k = (h0 + kh) * g.w + w0 + kw;
                            let v = xp[k];
                            if !best.is_nan() && (v.is_nan() || v > best) {
                                best = v;
                                best_k = k;
                            }
                        }
                    }
                    yp[y * g.ow + x] = best;
                    ap[y * g.ow + x] = best_k as u32;
                }
            }
        }
    });
    Ok(())
}

/// The 2 × 2, stride-2 max pool of one plane: the general loop's rule (a NaN wins and
/// stays; otherwise the first of equal maxima, taps in row order), unrolled.
fn max_2x2(g: &Pool, xp: &[f32], yp: &mut [f32], ap: &mut [u32]) {
    let w = g.w;
    for y in 0..g.oh {
        let (r0, r1) = (2 * y * w, (2 * y + 1) * w);
        let (row0, row1) = (&xp[r0..r0 + w], &xp[r1..r1 + w]);
        for x in 0..g.ow {
            let c = 2 * x;
            let taps = [
                (row0[c], r0 + c),
                (row0[c + 1], r0 + c + 1),
                (row1[c], r1 + c),
                (row1[c + 1], r1 + c + 1),
            ];
            let (mut best, mut best_k) = taps[0];
            for &(v, k) in &taps[1..] {
                // (Selects, not branches: the data decide nothing about the control flow.)
                let take = !best.is_nan() & (v.is_nan() | (v > best));
                best = if take { v } else { best };
                best_k = if take { k } else { best_k };
            }
            yp[y * g.ow + x] = best;
            ap[y * g.ow + x] = best_k as u32;
        }
    }
}

/// `pool::max_backward`: dx[h, w] = Σ dy over the windows whose argmax is (h, w). Each
/// window's gradient is added to its argmax (a valid one: inside the window) in window
/// order, which for every input element is the order of the shader's gather over the
/// windows containing it, so the sums are the same bits.
pub(super) fn max_backward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    let arg = call.u32(3)?;
    call.need("dy", src.len(), g.y_len())?;
    call.need("argmax", arg.len(), g.y_len())?;
    call.need("dx", dst.len(), g.x_len())?;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let items = g.plane_groups(&mut dst[..g.x_len()], plane_in);
    g.share(items, |(p0, dxs)| {
        dxs.fill(0.0);
        for (j, dxp) in dxs.chunks_exact_mut(plane_in).enumerate() {
            let o0 = (p0 + j) * plane_out;
            let (dyp, ap) = (&src[o0..o0 + plane_out], &arg[o0..o0 + plane_out]);
            for y in 0..g.oh {
                for x in 0..g.ow {
                    let o = y * g.ow + x;
                    let k = ap[o] as usize;
                    let inside = if g.size == 2 && g.stride == 2 {
                        // One of the window's four taps (no division per window).
                        let d = k.wrapping_sub(2 * (y * g.w + x));
                        k < plane_in && (d <= 1 || d == g.w || d == g.w + 1)
                    } else {
                        let (ky, kx) = (k / g.w.max(1), k % g.w.max(1));
                        k < plane_in
                            && (y * g.stride..y * g.stride + g.size).contains(&ky)
                            && (x * g.stride..x * g.stride + g.size).contains(&kx)
                    };
                    if inside {
                        dxp[k] += dyp[o];
                    }
                }
            }
        }
    });
    Ok(())
}

/// `pool::avg_forward`: scale · the window's sum (row by row, as the shader adds).
pub(super) fn avg_forward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    call.need("x", src.len(), g.x_len())?;
    call.need("y", dst.len(), g.y_len())?;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let items = g.plane_groups(&mut dst[..g.y_len()], plane_out);
    g.share(items, |(p0, ys)| {
        for (j, yp) in ys.chunks_exact_mut(plane_out).enumerate() {
            let xp = &src[(p0 + j) * plane_in..(p0 + j + 1) * plane_in];
            for y in 0..g.oh {
                for x in 0..g.ow {
                    let (h0, w0) = (y * g.stride, x * g.stride);
                    let mut acc = 0.0f32;
                    for kh in 0..g.size {
                        for kw in 0..g.size {
                            acc += xp[(h0 + kh) * g.w + w0 + kw];
                        }
                    }
                    yp[y * g.ow + x] = acc * g.scale;
                }
            }
        }
    });
    Ok(())
}

/// `pool::avg_backward`: dx[h, w] = scale · Σ dy over the windows containing (h, w).
pub(super) fn avg_backward(call: &Call<'_>) -> Result<()> {
    let g = Pool::of(call)?;
    let src = call.f32(1)?;
    let dst = call.f32_mut(2)?;
    call.need("dy", src.len(), g.y_len())?;
    call.need("dx", dst.len(), g.x_len())?;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let items = g.plane_groups(&mut dst[..g.x_len()], plane_in);
    g.share(items, |(p0, dxs)| {
        for (j, dxp) in dxs.chunks_exact_mut(plane_in).enumerate() {
            let dyp = &src[(p0 + j) * plane_out..(p0 + j + 1) * plane_out];
            for y in 0..g.h {
                let rows = g.windows(y, g.oh);
                for x in 0..g.w {
                    let mut acc = 0.0f32;
                    for oh in rows.clone() {
                        for ow in g.windows(x, g.ow) {
                            acc += dyp[oh * g.ow + ow];
                        }
                    }
                    dxp[y * g.w + x] = acc * g.scale;
                }
            }
        }
    });
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
