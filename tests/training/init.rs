//! Initialisation and learning: the playground's two interleaved spirals (the generator of
//! web/demo/lib/datasets.js, ported) must be learned by a 2-32-32-2 tanh MLP with the default
//! initialisation (PyTorch's), Adam 0.01, batch 32, judged on held-out points.

use accrete::data::Dataset;
use accrete::kernels::Activation;
use accrete::nn::{Init, LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete_tests::*;
use rand::Rng;

/// Two interleaved spiral arms, `n` points (alternating labels), noise as the playground's
/// (0.15 → 0.018 standard deviation, Box–Muller).
pub fn two_spirals(n: usize, noise: f32, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let gauss = |r: &mut rand::rngs::SmallRng| {
        let u: f32 = r.random::<f32>().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * r.random::<f32>()).cos()
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let half = n.div_ceil(2) as f32;
    for i in 0..n {
        let label = (i % 2) as u32;
        let t = (i / 2) as f32 / half * 0.92 + 0.08 * r.random::<f32>();
        let angle = t * 3.2 * std::f32::consts::PI + label as f32 * std::f32::consts::PI;
        let radius = 0.1 + 0.85 * t;
        x.push(radius * angle.cos() + noise * 0.12 * gauss(&mut r));
        x.push(radius * angle.sin() + noise * 0.12 * gauss(&mut r));
        y.push(label);
    }
    Dataset::new(x, y, vec![2], 2).unwrap()
}

fn spiral_net(act: Activation, init: Option<Init>) -> ModelSpec {
    let mut spec = ModelSpec::new(
        vec![2],
        vec![
            LayerSpec::dense(32, act),
            LayerSpec::dense(32, act),
            LayerSpec::dense(2, Activation::Identity),
        ],
    );
    spec.init = init;
    spec
}

/// Held-out accuracy after `epochs` epochs on 800 training points.
fn spiral_accuracy(act: Activation, init: Option<Init>, seed: u64, epochs: usize) -> f64 {
    let train = GpuDataset::upload(gpu(), &two_spirals(800, 0.15, 100 + seed)).unwrap();
    let test = GpuDataset::upload(gpu(), &two_spirals(400, 0.15, 200 + seed)).unwrap();
    let spec = TrainSpec {
        batch_size: 32,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(
        gpu(),
        spiral_net(act, init),
        OptimizerSpec::adam(0.01),
        spec,
        seed,
    )
    .unwrap();
    for _ in 0..epochs {
        pollster::block_on(t.fit_epoch(&train)).unwrap();
    }
    pollster::block_on(t.evaluate(&test, 200)).unwrap().accuracy
}

#[test]
fn tanh_spirals_learn_with_the_default_init() {
    // 100 epochs of 800 points (2 500 steps), as in the measurement.
    let acc = spiral_accuracy(Activation::Tanh, None, 1, 100);
    eprintln!("tanh spirals, default init: held-out accuracy {acc:.3}");
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

/// The comparison behind the default (`cargo test -p accrete-tests --test training
/// init_comparison -- --ignored --nocapture`): held-out accuracy per scheme, activation and
/// seed. Slow on lavapipe (27 runs × 100 epochs), hence ignored.
#[test]
#[ignore]
fn init_comparison() {
    for act in [Activation::Tanh, Activation::Sigmoid, Activation::Elu] {
        for init in [
            Init::Torch,
            Init::Auto,
            Init::XavierNormal,
            Init::HeNormal,
            Init::LecunNormal,
        ] {
            let accs: Vec<String> = (1..=3)
                .map(|s| format!("{:.3}", spiral_accuracy(act, Some(init), s, 100)))
                .collect();
            eprintln!("{act:?} {init:?}: {}", accs.join(" "));
        }
    }
}
