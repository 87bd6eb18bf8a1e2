//! End-to-end training on lavapipe: a 2-D spiral and a Fashion-MNIST subset; the loss must
//! fall and accuracy clear stated thresholds. Determinism: two runs, identical bytes.

use accrete::data::Dataset;
use accrete::kernels::Activation;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete_tests::*;

/// Three interleaved spiral arms, `per_class` points each, with a little noise.
pub fn spirals(per_class: usize, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let noise = uniform(&mut r, per_class * 3 * 2, -0.03, 0.03);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for c in 0..3 {
        for i in 0..per_class {
            let t = i as f32 / per_class as f32;
            let angle = t * 4.0 + c as f32 * 2.0 * std::f32::consts::PI / 3.0;
            let k = (c * per_class + i) * 2;
            x.push(t * angle.cos() + noise[k]);
            x.push(t * angle.sin() + noise[k + 1]);
            y.push(c as u32);
        }
    }
    Dataset::new(x, y, vec![2], 3).unwrap()
}

fn mlp(input: usize, hidden: &[usize], classes: usize) -> ModelSpec {
    let mut layers: Vec<LayerSpec> = hidden
        .iter()
        .map(|&u| LayerSpec::Dense {
            units: u,
            activation: Activation::Relu,
            trainable: true,
        })
        .collect();
    layers.push(LayerSpec::Dense {
        units: classes,
        activation: Activation::Identity,
        trainable: true,
    });
    ModelSpec {
        input: vec![input],
        layers,
    }
}

#[test]
fn spiral_mlp_learns() {
    let data = spirals(200, 1);
    let spec = mlp(2, &[64, 64], 3);
    let train = TrainSpec {
        batch_size: 32,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), train, 7).unwrap();
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let first = pollster::block_on(t.fit_epoch(&d)).unwrap();
    let mut last = first;
    for _ in 0..40 {
        last = pollster::block_on(t.fit_epoch(&d)).unwrap();
    }
    let eval = pollster::block_on(t.evaluate(&d, 100)).unwrap();
    eprintln!(
        "spiral: first epoch loss {:.4} acc {:.3}; last loss {:.4} acc {:.3}; eval acc {:.3}",
        first.loss, first.accuracy, last.loss, last.accuracy, eval.accuracy
    );
    assert_eq!(first.samples, 600);
    assert!(
        last.loss < first.loss * 0.3,
        "loss did not fall: {} → {}",
        first.loss,
        last.loss
    );
    assert!(eval.accuracy >= 0.95, "spiral accuracy {}", eval.accuracy);
    let probs = pollster::block_on(t.predict(&d, 64)).unwrap();
    assert_eq!(probs.len(), 600 * 3);
    for row in probs.chunks(3) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
