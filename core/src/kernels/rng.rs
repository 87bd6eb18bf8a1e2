//! Counter-based random numbers (Philox4x32-10), identical on every device and on the CPU.
//! Element i of a draw uses counter (i, stream, offset, 0) and key (seed_lo, seed_hi), so a
//! training run gets fresh numbers per step by bumping `offset`, with no RNG state on the GPU.

use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Shader, Tensor};

pub const SHADER: Shader = shader!("rng", "common", "philox");

/// Which stream of numbers: seed, stream (e.g. the layer) and offset (e.g. the step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RngKey {
    pub seed: u64,
    pub stream: u32,
    pub offset: u32,
}

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on [lo, hi).
    Uniform { lo: f32, hi: f32 },
    /// Normal via Box–Muller.
    Normal { mean: f32, std: f32 },
    /// Dropout mask: 0 with probability `rate`, else 1/(1 − rate) (inverted dropout).
    DropoutMask { rate: f32 },
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) seed_lo: u32,
    pub(crate) seed_hi: u32,
    pub(crate) stream: u32,
    pub(crate) offset: u32,
    pub(crate) threshold: u32,
    pub(crate) a: f32,
    pub(crate) b: f32,
}

/// 24-bit threshold for a keep/drop decision: drop when (word >> 8) < threshold.
pub fn dropout_threshold(rate: f32) -> u32 {
    (rate as f64 * 16_777_216.0).round() as u32
}

/// Fills `out` with numbers from `dist` under `key`.
pub fn fill_into(dist: Distribution, key: RngKey, out: &Tensor) -> Result<Dispatch> {
    fill_impl(dist, key, None, out)
}

/// Like [`fill_into`], with `counter[1]` (the global step, see [`crate::kernels::step`])
/// added to the key's offset on the GPU, so one recorded dispatch draws anew every step.
pub fn fill_stepped_into(
    dist: Distribution,
    key: RngKey,
    counter: &Tensor,
    out: &Tensor,
) -> Result<Dispatch> {
    fill_impl(dist, key, Some(counter), out)
}

fn fill_impl(
    dist: Distribution,
    key: RngKey,
    counter: Option<&Tensor>,
    out: &Tensor,
) -> Result<Dispatch> {
    let mut p = Params {
        n: out.len() as u32,
        seed_lo: key.seed as u32,
        seed_hi: (key.seed >> 32) as u32,
        stream: key.stream,
        offset: key.offset,
        threshold: 0,
        a: 0.0,
        b: 0.0,
    };
    let entry = match dist {
        Distribution::Uniform { lo, hi } => {
            (p.a, p.b) = (lo, hi);
            "draw_uniform"
        }
        Distribution::Normal { mean, std } => {
            (p.a, p.b) = (mean, std);
            "draw_normal"
        }
        Distribution::DropoutMask { rate } => {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(
                    "dropout rate",
                    format!("{rate} is outside [0, 1)"),
                ));
            }
            p.a = (1.0 / (1.0 - rate as f64)) as f32;
            p.threshold = dropout_threshold(rate);
            "draw_bernoulli"
        }
    };
    let gpu = out.gpu();
    let counter = counter.map_or(Bind::Dummy, Bind::T);
    gpu.dispatch(
        &SHADER,
        "",
        entry,
        &p,
        &[Bind::T(out), counter],
        gpu.grid(groups_1d(out.len()))?,
    )
}

/// Philox4x32-10 on the CPU: the reference the shader must match bit for bit.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    let round = |c: [u32; 4], k: [u32; 2]| {
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ]
    };
    let mut c = round(counter, key);
    let mut k = key;
    for _ in 1..10 {
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
        c = round(c, k);
    }
    c
}

/// The words element `i` draws under `key`.
pub fn words(key: RngKey, i: u32) -> [u32; 4] {
    philox(
        [i, key.stream, key.offset, 0],
        [key.seed as u32, (key.seed >> 32) as u32],
    )
}

/// A uniform f32 in [0, 1) with 24 random bits (exact on every device).
pub fn u01(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// f64 references for each distribution.
pub mod reference {
    use super::{dropout_threshold, u01, words, Distribution, RngKey};

    pub fn fill(dist: Distribution, key: RngKey, n: usize) -> Vec<f64> {
        (0..n as u32)
            .map(|i| {
                let w = words(key, i);
                match dist {
                    Distribution::Uniform { lo, hi } => {
                        lo as f64 + (hi as f64 - lo as f64) * u01(w[0]) as f64
                    }
                    Distribution::Normal { mean, std } => {
                        let u1 = 1.0 - u01(w[0]) as f64;
                        let u2 = u01(w[1]) as f64;
                        mean as f64
                            + std as f64
                                * (-2.0 * u1.ln()).sqrt()
                                * (std::f64::consts::TAU * u2).cos()
                    }
                    Distribution::DropoutMask { rate } => {
                        if (w[0] >> 8) >= dropout_threshold(rate) {
                            1.0 / (1.0 - rate as f64)
                        } else {
                            0.0
                        }
                    }
                }
            })
            .collect()
    }
}
