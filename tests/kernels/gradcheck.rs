//! Finite-difference gradient checks: the GPU backward pass (f32) against central differences
//! of an independent f64 CPU forward pass and loss (accrete::nn::reference), for every layer
//! type, every activation, and both losses.
//!
//! Tolerance: the f64 differences are exact to ~1e-9 (h = 1e-5, smooth points); the GPU's
//! f32 gradients carry relative errors of a few hundred ULPs after several layers. We allow
//! 2e-4 of the tensor's largest gradient, far above f32 noise and far below the O(1) errors
//! of a wrong index, transpose or missing term.

use accrete::kernels::loss::{self, mse_into, mse_masked_into, softmax_xent_into, GradScale};
use accrete::kernels::{step, Activation};
use accrete::nn::graph::ConvAlgo;
use accrete::nn::reference::{self, HostParams};
use accrete::nn::{Graph, LayerSpec, Model, ModelSpec};
use accrete::{DType, Tensor};
use accrete_tests::*;

const H: f64 = 1e-5;

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

/// A dense layer computing with layer `layer`'s weight (transposed or not).
fn tied(units: usize, activation: Activation, layer: usize, transpose: bool) -> LayerSpec {
    LayerSpec::Dense {
        units,
        activation,
        trainable: true,
        init: None,
        bias_init: None,
        share: Some(accrete::nn::Share { layer, transpose }),
    }
}

fn conv(
    filters: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    activation: Activation,
) -> LayerSpec {
    LayerSpec::Conv2d {
        filters,
        kernel,
        stride,
        padding,
        activation,
        trainable: true,
        init: None,
        bias_init: None,
    }
}

/// Runs forward + loss + backward on the GPU and compares every parameter gradient of every
/// trainable layer with central differences of the f64 reference loss.
fn check(spec: ModelSpec, batch: usize, smoothing: f32, seed: u64) {
    check_conv(spec, batch, smoothing, seed, ConvAlgo::default());
}

/// [`check`] with the convolutions computed by `conv`.
fn check_conv(spec: ModelSpec, batch: usize, smoothing: f32, seed: u64, conv: ConvAlgo) {
    let model = Model::new(gpu(), spec.clone(), seed).unwrap();
    // Random biases too, so bias gradients are exercised away from zero.
    let mut r = rng(seed + 100);
    for p in &model.params {
        if p.name.ends_with("bias") {
            p.value
                .write_f32(&uniform(&mut r, p.value.len(), -0.3, 0.3))
                .unwrap();
        }
    }
    let counter = step::counter(gpu(), 0).unwrap();
    let graph = Graph::with_conv(&model, batch, true, &counter, seed, conv).unwrap();
    let x = uniform(&mut r, graph.input.len(), -1.0, 1.0);
    graph.input.write_f32(&x).unwrap();
    let classes = spec.outputs().unwrap();
    let labels: Vec<u32> = (0..batch)
        .map(|i| (i * 7 + seed as usize) as u32 % classes as u32)
        .collect();
    let tl = Tensor::from_u32(gpu(), &[batch], &labels).unwrap();
    let loss_rows = poisoned(&[batch]);
    let xent = softmax_xent_into(
        &graph.output().unwrap(),
        &tl,
        &loss_rows,
        &graph.output_grad().unwrap(),
        smoothing,
        GradScale::MeanOverValid,
    )
    .unwrap();
    let mut all: Vec<&accrete::Dispatch> = graph.forward.iter().collect();
    all.push(&xent);
    all.extend(graph.backward.iter());
    gpu().run(&all).unwrap();

    let exported = pollster::block_on(model.export()).unwrap();
    let mut host: HostParams = exported
        .iter()
        .map(|(n, _, v)| (n.clone(), v.iter().map(|&f| f as f64).collect()))
        .collect();
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let loss_at = |host: &HostParams| {
        let logits = reference::forward(&spec, host, &xs, batch).unwrap();
        reference::cross_entropy(&logits, &labels, classes, smoothing as f64)
    };
    // The GPU loss itself agrees with the reference.
    let gpu_loss: f64 = read(&loss_rows).iter().map(|&v| v as f64).sum::<f64>() / batch as f64;
    let ref_loss = loss_at(&host);
    assert!(
        (gpu_loss - ref_loss).abs() < 1e-5 * ref_loss.abs().max(1.0),
        "loss {gpu_loss} vs {ref_loss}"
    );

    for p in &model.params {
        if !spec.layers[p.layer].trainable() {
            continue;
        }
        let got = read(&p.grad);
        let mut fd = vec![0.0; got.len()];
        for (j, d) in fd.iter_mut().enumerate() {
            let orig = host[&p.name][j];
            host.get_mut(&p.name).unwrap()[j] = orig + H;
            let up = loss_at(&host);
            host.get_mut(&p.name).unwrap()[j] = orig - H;
            let down = loss_at(&host);
            host.get_mut(&p.name).unwrap()[j] = orig;
            *d = (up - down) / (2.0 * H);
        }
        let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{}: all finite differences are zero", p.name);
        let worst = got
            .iter()
            .zip(&fd)
            .fold(0.0f64, |m, (&g, &f)| m.max((g as f64 - f).abs()));
        eprintln!(
            "∂L/∂{}: max |gpu − fd| = {worst:.2e}, {:.2e} of the largest gradient {scale:.2e}",
            p.name,
            worst / scale
        );
        assert_close(
            &format!("∂L/∂{} ({:?})", p.name, spec.layers[p.layer].kind()),
            &got,
            &fd,
            |_| 2e-4 * scale + 1e-9,
        );
    }
}

#[test]
fn dense_stack_every_activation() {
    let acts = Activation::ALL;
    for (k, act) in acts.iter().enumerate() {
        let spec = ModelSpec {
            input: vec![5],
            layers: vec![
                dense(7, *act),
                dense(6, Activation::Tanh),
                dense(4, Activation::Identity),
            ],
            init: None,
            bias_init: None,
        };
        check(spec, 3, if k % 2 == 0 { 0.0 } else { 0.1 }, k as u64);
    }
}

#[test]
fn conv_maxpool_dense() {
    let spec = ModelSpec {
        input: vec![2, 6, 5],
        layers: vec![
            conv(3, 3, 1, 1, Activation::Tanh),
            LayerSpec::Maxpool2d {
                size: 2,
                stride: None,
            },
            conv(2, 2, 1, 0, Activation::Gelu),
            LayerSpec::Flatten {},
            dense(4, Activation::Sigmoid),
            LayerSpec::Activation {
                activation: Activation::Elu,
            },
            dense(3, Activation::Identity),
        ],
        init: None,
        bias_init: None,
    };
    check(spec.clone(), 2, 0.05, 11);
    // The im2col path: its weight-gradient GEMM also yields the bias gradient (a virtual
    // column of ones).
    check_conv(spec, 2, 0.05, 11, ConvAlgo::Im2col);
}

#[test]
fn strided_conv_avgpool_and_overlapping_maxpool() {
    let spec = ModelSpec {
        input: vec![1, 9, 8],
        layers: vec![
            conv(2, 3, 2, 1, Activation::LeakyRelu),
            LayerSpec::Avgpool2d {
                size: 2,
                stride: Some(1),
            },
            conv(3, 2, 1, 1, Activation::Identity),
            LayerSpec::Maxpool2d {
                size: 3,
                stride: Some(2),
            },
            LayerSpec::Flatten {},
            LayerSpec::Dropout { rate: 0.0 },
            dense(3, Activation::Identity),
        ],
        init: None,
        bias_init: None,
    };
    check(spec, 3, 0.0, 12);
}

#[test]
fn frozen_middle_layer_still_passes_gradients_down() {
    let spec = ModelSpec {
        input: vec![4],
        layers: vec![
            dense(6, Activation::Tanh),
            LayerSpec::Dense {
                units: 5,
                activation: Activation::Sigmoid,
                trainable: false,
                init: None,
                bias_init: None,
                share: None,
            },
            dense(3, Activation::Identity),
        ],
        init: None,
        bias_init: None,
    };
    check(spec, 4, 0.0, 13);
}

/// Shared weights: the gradient of a tied weight is the sum over both uses (the finite
/// differences perturb the one tensor both layers read), transposed and not, with the
/// sharing layer's bias its own; then with the owner frozen (only the sharing layer's bias
/// trains) and with the sharing layer frozen (the weight still trains through both uses).
#[test]
fn tied_dense_layers_sum_the_gradients_of_both_uses() {
    let layers = vec![
        dense(4, Activation::Tanh),              // W0 [4, 5]
        tied(5, Activation::Sigmoid, 0, true),   // x·W0: [4] → [5]
        dense(5, Activation::Tanh),              // W2 [5, 5]
        tied(5, Activation::Identity, 2, false), // x·W2ᵀ
        dense(3, Activation::Identity),
    ];
    let spec = ModelSpec::new(vec![5], layers);
    let model = Model::new(gpu(), spec.clone(), 0).unwrap();
    let names: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
    assert!(
        !names.contains(&"layers.1.weight") && !names.contains(&"layers.3.weight"),
        "a shared weight is one tensor: {names:?}"
    );
    check(spec.clone(), 4, 0.0, 21);
    let mut frozen_owner = spec.clone();
    frozen_owner.layers[0].set_trainable(false);
    check(frozen_owner, 3, 0.1, 22);
    let mut frozen_user = spec;
    frozen_user.layers[1].set_trainable(false);
    frozen_user.layers[3].set_trainable(false);
    check(frozen_user, 3, 0.0, 23);
}

/// The loss kernels' gradients against central differences of the f64 loss formulas.
#[test]
fn loss_gradients_match_finite_differences() {
    let (rows, cols) = (5, 4);
    let mut r = rng(14);
    let z = uniform(&mut r, rows * cols, -3.0, 3.0);
    let labels: Vec<u32> = vec![0, 3, 1, 1, 2];
    let xent_at = |zz: &[f64]| reference::cross_entropy(zz, &labels, cols, 0.1);
    let t = uniform(&mut r, rows * cols, -1.0, 1.0);
    let mse_at = |zz: &[f64]| {
        zz.iter()
            .zip(&t)
            .map(|(a, &b)| (a - b as f64).powi(2))
            .sum::<f64>()
            / (rows * cols) as f64
    };
    let fd = |f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
        let base: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        (0..base.len())
            .map(|j| {
                let (mut up, mut down) = (base.clone(), base.clone());
                up[j] += H;
                down[j] -= H;
                (f(&up) - f(&down)) / (2.0 * H)
            })
            .collect()
    };
    let tz = upload(&[rows, cols], &z);
    let (l, g) = (poisoned(&[rows]), poisoned(&[rows, cols]));
    let tl = Tensor::from_u32(gpu(), &[rows], &labels).unwrap();
    gpu()
        .run(&[&softmax_xent_into(&tz, &tl, &l, &g, 0.1, GradScale::MeanOverValid).unwrap()])
        .unwrap();
    let want = fd(&xent_at);
    assert_close("∂xent/∂z", &read(&g), &want, |_| 1e-6);
    let (l, g) = (poisoned(&[rows]), poisoned(&[rows, cols]));
    gpu()
        .run(&[&mse_into(&tz, &upload(&[rows, cols], &t), &l, &g).unwrap()])
        .unwrap();
    let want = fd(&mse_at);
    assert_close("∂mse/∂y", &read(&g), &want, |_| 1e-6);
    // The training-batch MSE: row 2 is padding; the loss is the mean over the other rows.
    let mask: Vec<u32> = vec![0, 0, loss::PAD_LABEL, 0, 0];
    let masked_at = |zz: &[f64]| {
        let mut s = 0.0;
        for (i, (a, &b)) in zz.iter().zip(&t).enumerate() {
            if mask[i / cols] != loss::PAD_LABEL {
                s += (a - b as f64).powi(2);
            }
        }
        s / ((rows - 1) * cols) as f64
    };
    let (l, g) = (poisoned(&[rows]), poisoned(&[rows, cols]));
    let tm = Tensor::from_u32(gpu(), &[rows], &mask).unwrap();
    gpu()
        .run(&[&mse_masked_into(&tz, &upload(&[rows, cols], &t), &tm, &l, &g).unwrap()])
        .unwrap();
    let want = fd(&masked_at);
    assert_close("∂masked mse/∂y", &read(&g), &want, |_| 1e-6);
    let _ = (loss::PAD_LABEL, DType::F32);
}
