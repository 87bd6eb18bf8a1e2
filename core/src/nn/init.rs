//! Seeded parameter initialisation, computed on the CPU from the Philox stream so that the
//! same seed gives the same bits on every device and platform (only f64 multiply-add on
//! 24-bit uniforms: no transcendental functions whose last bit could differ).
//!
//! Weights are uniform on [−a, a]: He (Kaiming) a = √(6 / fan_in) before ReLU-family
//! activations, Xavier (Glorot) a = √(6 / (fan_in + fan_out)) otherwise. Biases start at 0.

use super::spec::LayerSpec;
use crate::kernels::rng::{u01, words, RngKey};
use crate::kernels::Activation;

/// Stream offset separating initialisation draws from other uses of the seed.
const INIT_STREAM: u32 = 0x1000;

/// The initial weight values of layer `layer` with PyTorch-layout shape `shape`.
pub fn weights(spec: &LayerSpec, layer: usize, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let receptive: usize = shape[2..].iter().product();
    let fan_in = shape[1] * receptive;
    let fan_out = shape[0] * receptive;
    let act = match spec {
        LayerSpec::Dense { activation, .. } | LayerSpec::Conv2d { activation, .. } => *activation,
        _ => Activation::Identity,
    };
    let bound = match act {
        Activation::Relu | Activation::LeakyRelu | Activation::Elu | Activation::Gelu => {
            (6.0 / fan_in as f64).sqrt()
        }
        _ => (6.0 / (fan_in + fan_out) as f64).sqrt(),
    };
    let key = RngKey {
        seed,
        stream: INIT_STREAM + layer as u32,
        offset: 0,
    };
    (0..n as u32)
        .map(|i| (-bound + 2.0 * bound * u01(words(key, i)[0]) as f64) as f32)
        .collect()
}
