//! The playground's two interleaved spirals (the generator of web/demo/lib/datasets.js,
//! ported) and the held-out accuracy of a 2-32-32-2 MLP on them: shared by the
//! initialisation test (tests/training/init.rs) and the comparison of schemes behind the
//! default (`cargo run -p accrete-tests --example init_comparison`).

use crate::{gpu, rng};
use accrete::data::Dataset;
use accrete::kernels::Activation;
use accrete::nn::{Init, LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
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

pub fn spiral_net(act: Activation, init: Option<Init>) -> ModelSpec {
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
pub fn spiral_accuracy(act: Activation, init: Option<Init>, seed: u64, epochs: usize) -> f64 {
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
