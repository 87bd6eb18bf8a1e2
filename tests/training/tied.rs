//! Shared (tied) layers: an autoencoder whose decoder is its encoder's weight transposed
//! (`share = { layer = 0, transpose = true }`) learns to reconstruct Fashion-MNIST images
//! (MSE on the pixels); its checkpoint holds the weight once, round-trips and resumes
//! exactly; its predictions are the f64 reference forward of the checkpointed tensors.

use accrete::data::{idx, Dataset};
use accrete::kernels::Activation;
use accrete::nn::reference::{forward, HostParams};
use accrete::nn::{LayerSpec, ModelSpec, Share};
use accrete::optim::OptimizerSpec;
use accrete::train::{Checkpoint, GpuDataset, LossKind, TrainSpec, Trainer};
use accrete_tests::*;

const CODE: usize = 32;

/// 784 → 32 (ReLU) → 784 (sigmoid), the decoder using the encoder's weight transposed.
fn tied_autoencoder() -> ModelSpec {
    ModelSpec::new(
        vec![784],
        vec![
            LayerSpec::dense(CODE, Activation::Relu),
            LayerSpec::Dense {
                units: 784,
                activation: Activation::Sigmoid,
                trainable: true,
                init: None,
                bias_init: None,
                share: Some(Share {
                    layer: 0,
                    transpose: true,
                }),
            },
        ],
    )
}

/// `n` Fashion-MNIST images (from `skip`) of `split` as their own regression targets.
fn images(split: idx::Split, skip: usize, n: usize) -> Dataset {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let all =
        idx::load_dir(dir, split).expect("Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    let part = all.select(&(skip..skip + n).collect::<Vec<_>>());
    let x = part.features.clone();
    Dataset::regression(x.clone(), x, vec![784], 784).unwrap()
}

fn trainer(seed: u64, epochs: usize) -> Trainer {
    let ts = TrainSpec {
        batch_size: 50,
        epochs,
        loss: LossKind::Mse,
        ..Default::default()
    };
    Trainer::new(
        gpu(),
        tied_autoencoder(),
        OptimizerSpec::adam(3e-3),
        ts,
        seed,
    )
    .unwrap()
}

#[test]
fn a_tied_autoencoder_learns_to_reconstruct_fashion_mnist() {
    let train = images(idx::Split::Train, 0, 1000);
    let test = images(idx::Split::Test, 0, 300);
    let mut t = trainer(1, 4);
    let dte = GpuDataset::upload(gpu(), &test).unwrap();
    let before = pollster::block_on(t.evaluate(&dte, 100)).unwrap();
    let stats = pollster::block_on(t.fit_chunk(&train)).unwrap();
    let after = pollster::block_on(t.evaluate(&dte, 100)).unwrap();
    eprintln!(
        "tied autoencoder 784-{CODE}-784 (decoder = encoder weightᵀ), Fashion-MNIST 1000/300, \
         4 epochs Adam 3e-3: test reconstruction MSE {:.4} → {:.4}; train loss by epoch {:?}",
        before.loss,
        after.loss,
        stats
            .iter()
            .map(|s| (s.loss * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    );
    assert!(
        after.loss < 0.5 * before.loss,
        "reconstruction MSE {} → {}",
        before.loss,
        after.loss
    );
    assert!(stats.last().unwrap().loss < stats[0].loss);

    // One weight tensor, with its optimizer state once; the decoder has its own bias.
    let ckpt = pollster::block_on(t.checkpoint()).unwrap();
    let names: Vec<&str> = ckpt.tensors.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"layers.0.weight") && names.contains(&"layers.1.bias"));
    assert!(
        !names.iter().any(|n| n.contains("layers.1.weight")),
        "the shared weight must be stored once: {names:?}"
    );
    let weights = names.iter().filter(|n| n.contains("weight")).count();
    assert_eq!(
        weights,
        1 + OptimizerSpec::adam(3e-3)
            .rule()
            .unwrap()
            .state_names()
            .len(),
        "{names:?}"
    );
    // Predictions are the f64 forward of the checkpointed tensors: the decoder reads the
    // encoder's (trained) weight transposed.
    let params: HostParams = ckpt
        .tensors
        .iter()
        .filter(|n| n.name.starts_with("layers."))
        .map(|n| (n.name.clone(), n.data.iter().map(|&v| v as f64).collect()))
        .collect();
    let pred = pollster::block_on(t.predict(&dte, 100)).unwrap();
    let x: Vec<f64> = test.features.iter().map(|&v| v as f64).collect();
    let want = forward(&t.model.spec, &params, &x, test.len()).unwrap();
    assert_close("tied autoencoder predictions", &pred, &want, |i| {
        1e-5 * (1.0 + want[i].abs())
    });
}

#[test]
fn a_tied_model_round_trips_and_resumes_exactly() {
    let data = images(idx::Split::Train, 2000, 300);
    let chunks = [data.take(150), data.select(&(150..300).collect::<Vec<_>>())];
    let run = |stop_after_first: bool| {
        let mut t = trainer(5, 2);
        pollster::block_on(t.fit_chunk(&chunks[0])).unwrap();
        if stop_after_first {
            let before = pollster::block_on(weight_bytes(&t));
            let bytes = pollster::block_on(t.checkpoint())
                .unwrap()
                .to_bytes()
                .unwrap();
            let c = Checkpoint::from_bytes(&bytes, "mid").unwrap();
            assert_eq!(c.meta.model.layers[1].share().map(|s| s.layer), Some(0));
            t = Trainer::from_checkpoint(gpu(), &c).unwrap();
            assert_eq!(pollster::block_on(weight_bytes(&t)), before, "round trip");
            // Written again, the checkpoint is the same bytes.
            let again = pollster::block_on(t.checkpoint())
                .unwrap()
                .to_bytes()
                .unwrap();
            assert!(
                again == bytes,
                "a reloaded tied checkpoint writes different bytes"
            );
        }
        pollster::block_on(t.fit_chunk(&chunks[1])).unwrap();
        pollster::block_on(weight_bytes(&t))
    };
    assert_eq!(run(false), run(true), "resumed tied run differs");
}
