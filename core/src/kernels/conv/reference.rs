//! f64 references, written directly from the definitions (not via im2col).

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
