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

use super::elementwise::{act_forward_slice, act_grad_mul};
use super::matmul::gemm::{sgemm_on, View};
use crate::cpu::scratch::Scratch;
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
        self.im2col_range(xb, 0, self.ohw(), cols)
    }

    /// [`Self::im2col`] for the output positions `s0 .. s1` only:
    /// `cols[k * (s1 − s0) + s − s0]`.
    fn im2col_range(&self, xb: &[f32], s0: usize, s1: usize, cols: &mut [f32]) {
        let (len, ks, st) = (s1 - s0, self.ks, self.stride);
        for k in 0..self.depth() {
            let (c, r) = (k / (ks * ks), k % (ks * ks));
            let (kh, kw) = (r / ks, r % ks);
            let row = &mut cols[k * len..(k + 1) * len];
            let plane = &xb[c * self.h * self.w..(c + 1) * self.h * self.w];
            let (lo, hi) = self.valid_ow(kw);
            let mut sp = s0;
            while sp < s1 {
                let (oh, a) = (sp / self.ow, sp % self.ow);
                let b = self.ow.min(a + (s1 - sp));
                let out = &mut row[sp - s0..sp - s0 + (b - a)];
                let hp = oh * st + kh;
                if hp < self.pad || hp >= self.h + self.pad {
                    out.fill(0.0);
                } else {
                    let src = &plane[(hp - self.pad) * self.w..][..self.w];
                    // Zeros left of the image, the image's columns, zeros right of it.
                    let (m0, m1) = (lo.clamp(a, b), hi.clamp(a, b).max(lo.clamp(a, b)));
                    out[..m0 - a].fill(0.0);
                    out[m1 - a..].fill(0.0);
                    let mid = &mut out[m0 - a..m1 - a];
                    if st == 1 {
                        let at = m0 + kw - self.pad;
                        mid.copy_from_slice(&src[at..at + mid.len()]);
                    } else {
                        for (v, ow) in mid.iter_mut().zip(m0..) {
                            *v = src[ow * st + kw - self.pad];
                        }
                    }
                }
                sp += b - a;
            }
        }
    }

    /// The output columns `lo .. hi` whose tap `kw` reads inside the image (not the padding).
    fn valid_ow(&self, kw: usize) -> (usize, usize) {
        let st = self.stride;
        let lo = self.pad.saturating_sub(kw).div_ceil(st);
        let hi = (self.w + self.pad)
            .checked_sub(kw)
            .map_or(0, |e| e.div_ceil(st))
            .min(self.ow);
        (lo.min(hi), hi)
    }

    /// `dxb[c, h, w] += cols[k * OHW + s]` for every tap that reads (c, h, w), in order of
    /// k, then s.
    fn col2im_add(&self, cols: &[f32], dxb: &mut [f32]) {
        let (ohw, ks, st) = (self.ohw(), self.ks, self.stride);
        for k in 0..self.depth() {
            let (c, r) = (k / (ks * ks), k % (ks * ks));
            let (kh, kw) = (r / ks, r % ks);
            let row = &cols[k * ohw..(k + 1) * ohw];
            let plane = &mut dxb[c * self.h * self.w..(c + 1) * self.h * self.w];
            let (lo, hi) = self.valid_ow(kw);
            for oh in 0..self.oh {
                let hp = oh * st + kh;
                if hp < self.pad || hp >= self.h + self.pad || lo >= hi {
                    continue;
                }
                let dst = &mut plane[(hp - self.pad) * self.w..][..self.w];
                let src = &row[oh * self.ow + lo..oh * self.ow + hi];
                if st == 1 {
                    let at = lo + kw - self.pad;
                    for (d, &v) in dst[at..at + src.len()].iter_mut().zip(src) {
                        *d += v;
                    }
                } else {
                    for (&v, ow) in src.iter().zip(lo..) {
                        dst[ow * st + kw - self.pad] += v;
                    }
                }
            }
        }
    }

    /// dz = dy · act'(z) (dz = dy for the identity), as `shaders/lib/conv_dz.wgsl`, for
    /// image `b`'s positions `s0 .. s1` of every filter: `out[f * (s1 − s0) + s − s0]`.
    fn dz_into(&self, dy: &[f32], zin: &[f32], b: usize, s0: usize, s1: usize, out: &mut [f32]) {
        let (ohw, len) = (self.ohw(), s1 - s0);
        for f in 0..self.f {
            let at = (b * self.f + f) * ohw;
            let row = &mut out[f * len..(f + 1) * len];
            let d = &dy[at + s0..at + s1];
            let z = if self.act == 0 {
                d
            } else {
                &zin[at + s0..at + s1]
            };
            act_grad_mul(self.act, d, z, self.alpha, row);
        }
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
    if let Some(z) = z.as_deref() {
        call.need("z", z.len(), g.y_len())?;
    }
    let zs: Vec<Option<&mut [f32]>> = match z {
        Some(z) => z[..g.b * fo].chunks_mut(fo.max(1)).map(Some).collect(),
        None => (0..g.b).map(|_| None).collect(),
    };
    let images: Vec<_> = y[..g.b * fo]
        .chunks_mut(fo.max(1))
        .zip(zs)
        .enumerate()
        .collect();
    crate::cpu::pool::for_parts(images, outer, |_, (b, (yb, zb))| {
        let mut cols = Scratch::overwritten(depth * ohw);
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
        // z = conv + bias, y = act(z), on this image while it is in cache.
        for (f, row) in yb.chunks_exact_mut(ohw.max(1)).enumerate() {
            if has_bias {
                row.iter_mut().for_each(|v| *v += bias[f]);
            }
        }
        if let Some(zb) = zb {
            zb.copy_from_slice(yb);
        }
        act_forward_slice(g.act, yb, g.alpha);
    });
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
    let chw = g.c * g.h * g.w;
    let (outer, inner) = split_threads(g.b);
    let images: Vec<_> = dx[..g.x_len()].chunks_mut(chw.max(1)).enumerate().collect();
    crate::cpu::pool::for_parts(images, outer, |_, (b, dxb)| {
        dxb.fill(0.0);
        let mut dz = Scratch::overwritten(g.f * ohw);
        g.dz_into(dy, zin, b, 0, ohw, &mut dz);
        let mut cols = Scratch::overwritten(depth * ohw);
        // dcols[k, s] = Σ_f W[f, k] · dz[b, f, s]
        let a = View {
            data: wt,
            rs: 1,
            cs: depth,
        };
        let bv = View {
            data: &dz,
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
    let chw = g.c * g.h * g.w;
    // The CPU cuts the batch its own way: `runs` groups of whole images (a number fixed by
    // the geometry, not by the thread count or the GPU's split plan), each summed on its
    // own, then added in run order into partials[0] (the other partials 0, so the
    // reduction that follows keeps the sum). The same values in the same order whatever
    // the threads.
    let _ = split_len;
    let runs_n = g.b.clamp(1, 64);
    let (outer, inner) = split_threads(runs_n);
    let fk = g.f * cols_n;
    let mut sums = vec![0.0f32; runs_n * fk];
    let runs: Vec<_> = sums.chunks_mut(fk.max(1)).enumerate().collect();
    crate::cpu::pool::for_parts(runs, outer, |_, (r, part)| {
        part.fill(0.0);
        let mut dz = Scratch::overwritten(g.f * ohw);
        let mut cols = Scratch::overwritten(depth * ohw);
        // prodᵀ[k, f] = Σ_s cols_b[k, s] · dz[b, f, s]: C·KS·KS rows by F columns, which
        // fill the micro-kernel's tiles better than F × C·KS·KS for the usual F.
        let mut prod = Scratch::overwritten(depth * g.f);
        for b in (r * g.b / runs_n)..((r + 1) * g.b / runs_n) {
            g.dz_into(dy, zin, b, 0, ohw, &mut dz);
            g.im2col(&x[b * chw..(b + 1) * chw], &mut cols);
            let av = View {
                data: &cols,
                rs: ohw,
                cs: 1,
            };
            let bv = View {
                data: &dz,
                rs: 1,
                cs: ohw,
            };
            sgemm_on(depth, g.f, ohw, av, bv, &mut prod, inner);
            for (f, out) in part.chunks_exact_mut(cols_n).enumerate() {
                for (k, o) in out[..depth].iter_mut().enumerate() {
                    *o += prod[k * g.f + f];
                }
                out[depth] += dz[f * ohw..(f + 1) * ohw].iter().sum::<f32>();
            }
        }
    });
    let all = &mut partials[..splits * fk];
    all.fill(0.0);
    for run in sums.chunks_exact(fk.max(1)) {
        for (o, &v) in all[..fk].iter_mut().zip(run) {
            *o += v;
        }
    }
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
