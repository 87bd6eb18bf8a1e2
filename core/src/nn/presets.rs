//! Reference architectures used by the benchmarks, the default run and the demos.

use super::spec::{LayerSpec, ModelSpec};
use crate::kernels::Activation;

fn dense(units: usize, activation: Activation) -> LayerSpec {
    LayerSpec::Dense {
        units,
        activation,
        trainable: true,
        init: None,
        bias_init: None,
        share: None,
    }
}

/// A ReLU multilayer perceptron: input → hidden… → classes (logits).
pub fn mlp(input: usize, hidden: &[usize], classes: usize) -> ModelSpec {
    let mut layers: Vec<LayerSpec> = hidden.iter().map(|&u| dense(u, Activation::Relu)).collect();
    layers.push(dense(classes, Activation::Identity));
    ModelSpec {
        input: vec![input],
        layers,
        init: None,
        bias_init: None,
    }
}

/// The Fashion-MNIST MLP of the benchmarks: 784-512-256-10.
pub fn fashion_mlp() -> ModelSpec {
    mlp(784, &[512, 256], 10)
}

/// The Fashion-MNIST CNN of the benchmarks: conv32-pool-conv64-pool-fc128-fc10
/// (3×3 convolutions with padding 1, 2×2 max pooling, ReLU).
pub fn fashion_cnn() -> ModelSpec {
    let conv = |filters| LayerSpec::Conv2d {
        filters,
        kernel: 3,
        stride: 1,
        padding: 1,
        activation: Activation::Relu,
        trainable: true,
        init: None,
        bias_init: None,
    };
    ModelSpec {
        input: vec![1, 28, 28],
        layers: vec![
            conv(32),
            LayerSpec::Maxpool2d {
                size: 2,
                stride: None,
            },
            conv(64),
            LayerSpec::Maxpool2d {
                size: 2,
                stride: None,
            },
            LayerSpec::Flatten {},
            dense(128, Activation::Relu),
            dense(10, Activation::Identity),
        ],
        init: None,
        bias_init: None,
    }
}
