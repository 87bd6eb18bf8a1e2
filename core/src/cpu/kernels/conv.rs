//! The convolution kernels: `shaders/conv_fwd.wgsl` (`main`, `main_z`),
//! `shaders/conv_dgrad.wgsl` (`main`) and `shaders/conv_wgrad.wgsl` (`main`, `reduce`), as
//! im2col + [`sgemm`] per image (the WGSL's implicit GEMM without the tiles). Geometry as in
//! `shaders/lib/conv_geom.wgsl`: x [B, C, H, W], weights [F, C, KS, KS], output
//! [B, F, OH, OW], patch index k = (c·KS + kh)·KS + kw.
//!
//! Images (and the filter gradient's runs) are shared out to the pool's threads, each GEMM
//! then on one thread; with fewer images than threads the GEMMs take the threads instead.
//! Every output element is computed by the same code whichever thread runs it.

mod layout;

use super::elementwise::{act_forward, act_grad};
use super::matmul::gemm::{sgemm_on, View};
use crate::cpu::{Call, Kernel};
use crate::error::Result;
use crate::kernels::conv::ConvParams;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    match (shader, entry) {
        ("conv_fwd", "main") => Some(fwd),
        ("conv_fwd", "main_z") => Some(fwd_z),
        ("conv_dgrad", "main") => Some(dgrad),
        ("conv_wgrad", "main") => Some(wgrad),
        ("conv_wgrad", "reduce") => Some(wgrad_reduce),
        ("im2col", "im2col") => Some(layout::im2col),
        ("im2col", "col2im") => Some(layout::col2im),
        ("pool", "max_forward") => Some(layout::max_forward),
        ("pool", "max_backward") => Some(layout::max_backward),
        ("pool", "avg_forward") => Some(layout::avg_forward),
        ("pool", "avg_backward") => Some(layout::avg_backward),
        ("permute", "main") => Some(layout::permute),
        _ => None,
    }
}

/// The geometry of one dispatch, in `usize`.
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    oh: usize,
    ow: usize,
    f: usize,
    ks: usize,
    stride: usize,
    act: u32,
    alpha: f32,
}

impl Geom {
    fn of(call: &Call<'_>) -> Result<(Geom, ConvParams)> {
        let p: ConvParams = call.params()?;
        let g = Geom {
            b: p.batch as usize,
            c: p.channels as usize,
            h: p.height as usize,
            w: p.width as usize,
            pad: p.padding as usize,
            oh: p.out_h as usize,
            ow: p.out_w as usize,
            f: p.filters as usize,
            ks: call.consts.u32("KS")? as usize,
            stride: call.consts.u32("STRIDE")? as usize,
            act: call.consts.u32("ACT")?,
            alpha: p.alpha,
        };
        Ok((g, p))
    }
    fn depth(&self) -> usize {
        self.c * self.ks * self.ks
    }
    fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    fn x_len(&self) -> usize {
        self.b * self.c * self.h * self.w
    }
    fn y_len(&self) -> usize {
        self.b * self.f * self.ohw()
    }

    /// `cols[k * OHW + s] = x[b, c, oh·S + kh − P, ow·S + kw − P]` (0 in the padding) for
    /// image `xb` (its C·H·W values).
    fn im2col(&self, xb: &[f32], cols: &mut [f32]) {
        let (ohw, ks) = (self.ohw(), self.ks);
        for k in 0..self.depth() {
            let (c, r) = (k / (ks * ks), k % (ks * ks));
            let (kh, kw) = (r / ks, r % ks);
            let row = &mut cols[k * ohw..(k + 1) * ohw];
            for oh in 0..self.oh {
                let hp = oh * self.stride + kh;
                for ow in 0..self.ow {
                    let wp = ow * self.stride + kw;
                    row[oh * self.ow + ow] = if hp < self.pad
                        || hp >= self.h + self.pad
                        || wp < self.pad
                        || wp >= self.w + self.pad
                    {
                        0.0
                    } else {
                        xb[(c * self.h + hp - self.pad) * self.w + wp - self.pad]
                    };
                }
            }
        }
    }

    /// `dxb[c, h, w] += cols[k * OHW + s]` for every tap that reads (c, h, w).
    fn col2im_add(&self, cols: &[f32], dxb: &mut [f32]) {
        let (ohw, ks) = (self.ohw(), self.ks);
        for k in 0..self.depth() {
            let (c, r) = (k / (ks * ks), k % (ks * ks));
            let (kh, kw) = (r / ks, r % ks);
            let row = &cols[k * ohw..(k + 1) * ohw];
            for oh in 0..self.oh {
                let hp = oh * self.stride + kh;
                if hp < self.pad || hp >= self.h + self.pad {
                    continue;
                }
                for ow in 0..self.ow {
                    let wp = ow * self.stride + kw;
                    if wp < self.pad || wp >= self.w + self.pad {
                        continue;
                    }
                    dxb[(c * self.h + hp - self.pad) * self.w + wp - self.pad] +=
                        row[oh * self.ow + ow];
                }
            }
        }
    }

    /// dz = dy · act'(z) (dz = dy for the identity), as `shaders/lib/conv_dz.wgsl`.
    fn dz(&self, dy: &[f32], zin: &[f32]) -> Vec<f32> {
        if self.act == 0 {
            return dy.to_vec();
        }
        dy.iter()
            .zip(zin)
            .map(|(&d, &z)| d * act_grad(self.act, z, self.alpha))
            .collect()
    }
}

/// Writes the pre-activation (into `z` when given) and `y = act(z)`.
fn fwd_into(call: &Call<'_>, z: Option<&mut [f32]>, y: &mut [f32]) -> Result<()> {
    let (g, _) = Geom::of(call)?;
    let has_bias = call.consts.bool("HAS_BIAS")?;
    let x = call.f32(1)?;
    let wt = call.f32(2)?;
    let bias = if has_bias { call.f32(3)? } else { &[] };
    let (depth, ohw) = (g.depth(), g.ohw());
    call.need("x", x.len(), g.x_len())?;
    call.need("weights", wt.len(), g.f * depth)?;
    call.need("y", y.len(), g.y_len())?;
    if has_bias {
        call.need("bias", bias.len(), g.f)?;
    }
    let (chw, fo) = (g.c * g.h * g.w, g.f * ohw);
    let (outer, inner) = split_threads(g.b);
    let images: Vec<_> = y[..g.b * fo].chunks_mut(fo.max(1)).enumerate().collect();
    crate::cpu::pool::for_parts(images, outer, |_, (b, yb)| {
        let mut cols = vec![0.0f32; depth * ohw];
        g.im2col(&x[b * chw..(b + 1) * chw], &mut cols);
        let a = View {
            data: wt,
            rs: depth,
            cs: 1,
        };
        let bv = View {
            data: &cols,
            rs: ohw,
            cs: 1,
        };
        sgemm_on(g.f, ohw, depth, a, bv, yb, inner);
        if has_bias {
            for (f, row) in yb.chunks_exact_mut(ohw.max(1)).enumerate() {
                row.iter_mut().for_each(|v| *v += bias[f]);
            }
        }
    });
    let y = &mut y[..g.y_len()];
    if let Some(z) = z {
        call.need("z", z.len(), g.y_len())?;
        z[..y.len()].copy_from_slice(y);
    }
    if g.act != 0 {
        y.iter_mut()
            .for_each(|v| *v = act_forward(g.act, *v, g.alpha));
    }
    Ok(())
}

/// `conv_fwd::main`: y = act(conv(x, W) + bias).
fn fwd(call: &Call<'_>) -> Result<()> {
    let y = call.f32_mut(5)?;
    fwd_into(call, None, y)
}

/// `conv_fwd::main_z`: also keeps z.
fn fwd_z(call: &Call<'_>) -> Result<()> {
    let z = call.f32_mut(4)?;
    let y = call.f32_mut(5)?;
    fwd_into(call, Some(z), y)
}

/// `conv_dgrad::main`: dx = Σ dz · W over the taps that read each input element.
fn dgrad(call: &Call<'_>) -> Result<()> {
    let (g, _) = Geom::of(call)?;
    let dy = call.f32(1)?;
    let zin = call.f32(2)?;
    let wt = call.f32(3)?;
    let dx = call.f32_mut(4)?;
    let (depth, ohw) = (g.depth(), g.ohw());
    call.need("dy", dy.len(), g.y_len())?;
    if g.act != 0 {
        call.need("z", zin.len(), g.y_len())?;
    }
    call.need("weights", wt.len(), g.f * depth)?;
    call.need("dx", dx.len(), g.x_len())?;
    let dz = g.dz(&dy[..g.y_len()], zin);
    let (chw, fo) = (g.c * g.h * g.w, g.f * ohw);
    let (outer, inner) = split_threads(g.b);
    let images: Vec<_> = dx[..g.x_len()].chunks_mut(chw.max(1)).enumerate().collect();
    crate::cpu::pool::for_parts(images, outer, |_, (b, dxb)| {
        dxb.fill(0.0);
        let mut cols = vec![0.0f32; depth * ohw];
        // dcols[k, s] = Σ_f W[f, k] · dz[b, f, s]
        let a = View {
            data: wt,
            rs: 1,
            cs: depth,
        };
        let bv = View {
            data: &dz[b * fo..(b + 1) * fo],
            rs: ohw,
            cs: 1,
        };
        sgemm_on(depth, ohw, g.f, a, bv, &mut cols, inner);
        g.col2im_add(&cols, dxb);
    });
    Ok(())
}

/// `conv_wgrad::main`: partials[s, f, k] = Σ over run s of the output positions of
/// dz[f, m] · A[m, k], with A's extra column of ones (k = C·KS·KS) giving Σ dz.
fn wgrad(call: &Call<'_>) -> Result<()> {
    let (g, p) = Geom::of(call)?;
    let x = call.f32(1)?;
    let dy = call.f32(2)?;
    let zin = call.f32(3)?;
    let partials = call.f32_mut(4)?;
    let (depth, ohw) = (g.depth(), g.ohw());
    let cols_n = depth + 1;
    let (splits, split_len) = (p.splits as usize, p.split_len as usize);
    call.need("x", x.len(), g.x_len())?;
    call.need("dy", dy.len(), g.y_len())?;
    if g.act != 0 {
        call.need("z", zin.len(), g.y_len())?;
    }
    call.need("partials", partials.len(), splits * g.f * cols_n)?;
    let dz = g.dz(&dy[..g.y_len()], zin);
    let rows = g.b * ohw;
    let chw = g.c * g.h * g.w;
    let (outer, inner) = split_threads(splits);
    let runs: Vec<_> = partials[..splits * g.f * cols_n]
        .chunks_mut((g.f * cols_n).max(1))
        .enumerate()
        .collect();
    crate::cpu::pool::for_parts(runs, outer, |_, (s, part)| {
        let mut img = vec![0.0f32; depth * ohw];
        let (m0, m1) = ((s * split_len).min(rows), ((s + 1) * split_len).min(rows));
        let len = m1 - m0;
        // D [F, len] and A [len, depth + 1] of this run, in m order.
        let mut d = vec![0.0f32; g.f * len];
        let mut a = vec![0.0f32; len * cols_n];
        let mut last_b = usize::MAX;
        for (i, m) in (m0..m1).enumerate() {
            let (b, sp) = (m / ohw, m % ohw);
            if b != last_b {
                g.im2col(&x[b * chw..(b + 1) * chw], &mut img);
                last_b = b;
            }
            for f in 0..g.f {
                d[f * len + i] = dz[(b * g.f + f) * ohw + sp];
            }
            let arow = &mut a[i * cols_n..(i + 1) * cols_n];
            for (k, v) in arow[..depth].iter_mut().enumerate() {
                *v = img[k * ohw + sp];
            }
            arow[depth] = 1.0;
        }
        let av = View {
            data: &d,
            rs: len,
            cs: 1,
        };
        let bv = View {
            data: &a,
            rs: cols_n,
            cs: 1,
        };
        sgemm_on(g.f, cols_n, len, av, bv, part, inner);
    });
    Ok(())
}

/// (threads over the parts, threads inside each part's GEMM) for `parts` independent parts.
fn split_threads(parts: usize) -> (usize, usize) {
    let threads = crate::cpu::threads();
    if parts >= threads {
        (threads, 1)
    } else {
        (1, threads)
    }
}

/// `conv_wgrad::reduce`: dw[f, k] / db[f] = Σ_s partials[s, f, k], s in order.
fn wgrad_reduce(call: &Call<'_>) -> Result<()> {
    let (g, p) = Geom::of(call)?;
    let partials = call.f32(4)?;
    let dw = call.f32_mut(5)?;
    let db = call.f32_mut(6)?;
    let depth = g.depth();
    let cols_n = depth + 1;
    let splits = p.splits as usize;
    call.need("partials", partials.len(), splits * g.f * cols_n)?;
    call.need("dw", dw.len(), g.f * depth)?;
    for e in 0..g.f * cols_n {
        let mut s = 0.0f32;
        for z in 0..splits {
            s += partials[z * g.f * cols_n + e];
        }
        let (f, k) = (e / cols_n, e % cols_n);
        if k < depth {
            dw[f * depth + k] = s;
        } else if let Some(v) = db.get_mut(f) {
            *v = s;
        }
    }
    Ok(())
}
