//! An f64 CPU forward pass of a whole model, written independently of the GPU kernels, so
//! tests can check the GPU's gradients against finite differences of an exact loss.
//! Dropout is the identity here (evaluation semantics).
//!
//! Parameters are looked up by name (`layers.{i}.weight` / `.bias`) in PyTorch layout; a
//! dense layer that shares a weight reads its owner's `layers.{l}.weight`.

use super::spec::{LayerSpec, ModelSpec};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Parameter values by name.
pub type HostParams = HashMap<String, Vec<f64>>;

/// Logits [batch, outputs] for inputs `x` ([batch, ...spec.input]).
pub fn forward(spec: &ModelSpec, params: &HostParams, x: &[f64], batch: usize) -> Result<Vec<f64>> {
    let shapes = spec.shapes()?;
    let mut cur = x.to_vec();
    let get = |name: String| {
        params
            .get(&name)
            .ok_or_else(|| Error::invalid(name, "missing from the parameters"))
    };
    for (i, (layer, sh)) in spec.layers.iter().zip(&shapes).enumerate() {
        let per_in: usize = sh.input.iter().product();
        let per_out: usize = sh.output.iter().product();
        let mut out = vec![0.0; batch * per_out];
        match layer {
            LayerSpec::Dense {
                units,
                activation,
                share,
                ..
            } => {
                // A shared weight is the owner's tensor; transposed, element (o, k) of the
                // weight this layer uses is the owner's (k, o).
                let (owner, transpose) = share.map_or((i, false), |s| (s.layer, s.transpose));
                let (w, b) = (
                    get(format!("layers.{owner}.weight"))?,
                    get(format!("layers.{i}.bias"))?,
                );
                let at = |o: usize, k: usize| {
                    if transpose {
                        w[k * units + o]
                    } else {
                        w[o * per_in + k]
                    }
                };
                for n in 0..batch {
                    for o in 0..*units {
                        let s: f64 = (0..per_in)
                            .map(|k| cur[n * per_in + k] * at(o, k))
                            .sum::<f64>()
                            + b[o];
                        out[n * units + o] = activation.forward_f64(s);
                    }
                }
            }
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                activation,
                ..
            } => {
                let (w, b) = (
                    get(format!("layers.{i}.weight"))?,
                    get(format!("layers.{i}.bias"))?,
                );
                let (c, h, wd) = (sh.input[0], sh.input[1] as isize, sh.input[2] as isize);
                let (oh, ow) = (sh.output[1], sh.output[2]);
                let k = *kernel;
                for n in 0..batch {
                    for f in 0..*filters {
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut s = b[f];
                                for ci in 0..c {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let iy = (y * stride + ky) as isize - *padding as isize;
                                            let ix =
                                                (xo * stride + kx) as isize - *padding as isize;
                                            if iy >= 0 && iy < h && ix >= 0 && ix < wd {
                                                let xi = n * per_in
                                                    + (ci * h as usize + iy as usize) * wd as usize
                                                    + ix as usize;
                                                s += cur[xi] * w[((f * c + ci) * k + ky) * k + kx];
                                            }
                                        }
                                    }
                                }
                                out[n * per_out + (f * oh + y) * ow + xo] =
                                    activation.forward_f64(s);
                            }
                        }
                    }
                }
            }
            LayerSpec::Maxpool2d { size, stride } | LayerSpec::Avgpool2d { size, stride } => {
                let s = stride.unwrap_or(*size);
                let (c, h, wd) = (sh.input[0], sh.input[1], sh.input[2]);
                let (oh, ow) = (sh.output[1], sh.output[2]);
                let is_max = matches!(layer, LayerSpec::Maxpool2d { .. });
                for n in 0..batch {
                    for ci in 0..c {
                        for y in 0..oh {
                            for xo in 0..ow {
                                let vals = (0..*size)
                                    .flat_map(|ky| (0..*size).map(move |kx| (ky, kx)))
                                    .map(|(ky, kx)| {
                                        cur[n * per_in + (ci * h + y * s + ky) * wd + xo * s + kx]
                                    });
                                out[n * per_out + (ci * oh + y) * ow + xo] = if is_max {
                                    vals.fold(f64::NEG_INFINITY, f64::max)
                                } else {
                                    vals.sum::<f64>() / (size * size) as f64
                                };
                            }
                        }
                    }
                }
            }
            LayerSpec::Flatten {} | LayerSpec::Dropout { .. } => out.copy_from_slice(&cur),
            LayerSpec::Activation { activation } => {
                for (o, &v) in out.iter_mut().zip(&cur) {
                    *o = activation.forward_f64(v);
                }
            }
        }
        cur = out;
    }
    Ok(cur)
}

/// Mean softmax cross-entropy with label smoothing ε over a [batch, classes] logit matrix.
pub fn cross_entropy(logits: &[f64], labels: &[u32], classes: usize, smoothing: f64) -> f64 {
    let mut total = 0.0;
    for (row, &y) in logits.chunks(classes).zip(labels) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for (c, &z) in row.iter().enumerate() {
            let q = (1.0 - smoothing) * f64::from(u8::from(c == y as usize))
                + smoothing / classes as f64;
            total += q * (lse - z);
        }
    }
    total / labels.len() as f64
}
