//! End-to-end training on lavapipe: a 2-D spiral and a Fashion-MNIST subset; the loss must
//! fall and accuracy clear stated thresholds. Determinism: two runs, identical bytes.

use accrete::data::idx;
use accrete::kernels::Activation;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete_tests::*;

fn mlp(input: usize, hidden: &[usize], classes: usize) -> ModelSpec {
    let mut layers: Vec<LayerSpec> = hidden
        .iter()
        .map(|&u| LayerSpec::Dense {
            units: u,
            activation: Activation::Relu,
            trainable: true,
            init: None,
            bias_init: None,
            share: None,
        })
        .collect();
    layers.push(LayerSpec::Dense {
        units: classes,
        activation: Activation::Identity,
        trainable: true,
        init: None,
        bias_init: None,
        share: None,
    });
    ModelSpec {
        input: vec![input],
        layers,
        init: None,
        bias_init: None,
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

fn train_cnn(seed: u64, epochs: usize) -> (Trainer, Vec<f64>) {
    let data = quadrant_images(300, 3);
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let train = TrainSpec {
        batch_size: 64,
        epochs,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), small_cnn(), OptimizerSpec::adam(0.01), train, seed).unwrap();
    let losses = (0..epochs)
        .map(|_| pollster::block_on(t.fit_epoch(&d)).unwrap().loss)
        .collect();
    (t, losses)
}

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, la) = train_cnn(5, 3);
    let (b, lb) = train_cnn(5, 3);
    let (c, _) = train_cnn(6, 3);
    let (wa, wb, wc) = pollster::block_on(async {
        (
            weight_bytes(&a).await,
            weight_bytes(&b).await,
            weight_bytes(&c).await,
        )
    });
    assert_eq!(la, lb, "loss curves differ between identical runs");
    assert!(
        wa == wb,
        "weights and optimizer state differ between identical runs"
    );
    assert!(wa != wc, "a different seed should give different weights");
    eprintln!("quadrant CNN losses per epoch: {la:?}");
    assert!(la[2] < la[0], "loss did not fall: {la:?}");
}

#[test]
fn frozen_layers_keep_their_bytes() {
    let data = spirals(50, 4);
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let mut spec = mlp(2, &[16, 16], 3);
    spec.layers[1].set_trainable(false);
    let mut t = Trainer::new(
        gpu(),
        spec,
        OptimizerSpec::adam(0.01),
        TrainSpec::default(),
        1,
    )
    .unwrap();
    let before = pollster::block_on(t.model.export()).unwrap();
    pollster::block_on(t.fit_epoch(&d)).unwrap();
    pollster::block_on(t.fit_epoch(&d)).unwrap();
    let after = pollster::block_on(t.model.export()).unwrap();
    for ((name, _, b), (_, _, a)) in before.iter().zip(&after) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert_eq!(
            same,
            name.starts_with("layers.1."),
            "{name}: frozen={} unchanged={same}",
            name.starts_with("layers.1.")
        );
    }
}

#[test]
fn fashion_mnist_subset_mlp() {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let train = idx::load_dir(dir, idx::Split::Train)
        .expect("Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    let test = idx::load_dir(dir, idx::Split::Test).unwrap();
    let train = train.take(2000).reshaped(&[784]).unwrap();
    let test = test.take(1000).reshaped(&[784]).unwrap();
    let ts = TrainSpec {
        batch_size: 128,
        epochs: 3,
        ..Default::default()
    };
    // accrete's earlier initialisation (He uniform, zero biases): with the `torch` default
    // this 3-epoch Adam 1e-3 budget reaches 0.722, not 0.74 (see nn::init).
    let mut spec = mlp(784, &[128], 10);
    spec.init = Some(accrete::nn::Init::Auto);
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(1e-3), ts, 0).unwrap();
    let (dtr, dte) = (
        GpuDataset::upload(gpu(), &train).unwrap(),
        GpuDataset::upload(gpu(), &test).unwrap(),
    );
    let stats: Vec<_> = (0..3)
        .map(|_| pollster::block_on(t.fit_epoch(&dtr)).unwrap())
        .collect();
    let eval = pollster::block_on(t.evaluate(&dte, 500)).unwrap();
    eprintln!(
        "Fashion-MNIST 2000/1000, MLP 784-128-10, 3 epochs: train loss {:.3} → {:.3}, test accuracy {:.3}",
        stats[0].loss, stats[2].loss, eval.accuracy
    );
    assert_eq!(eval.samples, 1000);
    assert!(stats[2].loss < stats[0].loss);
    assert!(eval.accuracy >= 0.74, "test accuracy {}", eval.accuracy);
}
