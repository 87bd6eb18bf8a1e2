//! Regression: `loss = "mse"` on real-valued targets. A small MLP learns a smooth 2-D
//! function; predictions are the raw outputs (checked against an f64 forward pass of the
//! trained weights); padding rows of the last batch do not count; resume and rehearsal keep
//! the targets; a mismatch between the loss and the data is a clear error.

use accrete::data::Dataset;
use accrete::kernels::Activation;
use accrete::nn::presets::mlp;
use accrete::nn::reference::{forward, HostParams};
use accrete::optim::OptimizerSpec;
use accrete::train::Checkpoint;
use accrete::train::{GpuDataset, LossKind, RehearsalSpec, TrainSpec, Trainer};
use accrete_tests::*;

/// y = (sin(2x₀) + x₁², x₀·x₁) on [-1, 1]²: two targets per sample.
fn surface(n: usize, seed: u64) -> Dataset {
    let x = uniform(&mut rng(seed), n * 2, -1.0, 1.0);
    let t: Vec<f32> = x
        .chunks(2)
        .flat_map(|p| [(2.0 * p[0]).sin() + p[1] * p[1], p[0] * p[1]])
        .collect();
    Dataset::regression(x, t, vec![2], 2).unwrap()
}

fn spec() -> accrete::nn::ModelSpec {
    let mut s = mlp(2, &[32, 32], 2);
    for l in &mut s.layers {
        if let accrete::nn::LayerSpec::Dense { activation, .. } = l {
            if *activation == Activation::Relu {
                *activation = Activation::Tanh;
            }
        }
    }
    s
}

fn trainer(seed: u64, epochs: usize) -> Trainer {
    let train = TrainSpec {
        batch_size: 50, // 300 samples: the last batch of every epoch is half padding
        epochs,
        loss: LossKind::Mse,
        ..Default::default()
    };
    Trainer::new(gpu(), spec(), OptimizerSpec::adam(0.01), train, seed).unwrap()
}

/// Mean over samples of the mean over outputs of (y − t)², in f64.
fn mse(pred: &[f64], t: &[f32]) -> f64 {
    pred.iter()
        .zip(t)
        .map(|(p, &t)| (p - t as f64).powi(2))
        .sum::<f64>()
        / t.len() as f64
}

#[test]
fn an_mlp_learns_a_smooth_function_with_mse() {
    let train = surface(300, 1);
    let test = surface(200, 2);
    let mut t = trainer(3, 40);
    let test_gpu = GpuDataset::upload(gpu(), &test).unwrap();
    let before = pollster::block_on(t.evaluate(&test_gpu, 64)).unwrap();
    let stats = pollster::block_on(t.fit_chunk(&train)).unwrap();
    let after = pollster::block_on(t.evaluate(&test_gpu, 64)).unwrap();
    // The targets' variance is about 0.3; a mean-predicting model scores that.
    assert!(
        after.loss < 0.01 && after.loss < before.loss / 10.0,
        "test mse {} → {}",
        before.loss,
        after.loss
    );
    assert!(stats.last().unwrap().loss < stats[0].loss);
    assert!(after.accuracy.is_nan(), "regression has no accuracy");
    assert_eq!(after.samples, 200, "padding rows must not count");

    // predict returns the raw outputs: compare with an f64 forward pass of the weights.
    let pred = pollster::block_on(t.predict(&test_gpu, 64)).unwrap();
    assert_eq!(pred.len(), 200 * 2);
    let ckpt = pollster::block_on(t.checkpoint()).unwrap();
    let params: HostParams = ckpt
        .tensors
        .iter()
        .filter(|n| n.name.starts_with("layers."))
        .map(|n| (n.name.clone(), n.data.iter().map(|&v| v as f64).collect()))
        .collect();
    let x: Vec<f64> = test.features.iter().map(|&v| v as f64).collect();
    let want = forward(&t.model.spec, &params, &x, 200).unwrap();
    assert_close("regression predictions", &pred, &want, |i| {
        1e-5 * (1.0 + want[i].abs())
    });
    // The evaluation loss is the mean squared error of those predictions.
    let direct = mse(&want, &test.targets);
    assert!(
        (after.loss - direct).abs() <= 1e-5 * (1.0 + direct),
        "evaluate {} vs predictions {direct}",
        after.loss
    );
}

#[test]
fn regression_resumes_exactly_and_rehearses_targets() {
    let data = surface(300, 4);
    let chunks = [data.take(150), data.select(&(150..300).collect::<Vec<_>>())];
    let run = |stop_after_first: bool| {
        let mut t = trainer(5, 2);
        t.enable_rehearsal(RehearsalSpec::new(64, 16)).unwrap();
        pollster::block_on(t.fit_chunk(&chunks[0])).unwrap();
        if stop_after_first {
            let bytes = pollster::block_on(t.checkpoint())
                .unwrap()
                .to_bytes()
                .unwrap();
            let c = Checkpoint::from_bytes(&bytes, "mid").unwrap();
            assert_eq!(c.meta.rehearsal.as_ref().unwrap().target_dim, 2);
            assert_eq!(c.tensor("rehearsal.targets").unwrap().shape, vec![64, 2]);
            t = Trainer::from_checkpoint(gpu(), &c).unwrap();
        }
        pollster::block_on(t.fit_chunk(&chunks[1])).unwrap();
        pollster::block_on(weight_bytes(&t))
    };
    assert_eq!(run(false), run(true), "resumed regression run differs");
}

#[test]
fn loss_and_data_must_agree() {
    let mut t = trainer(0, 1);
    let err = pollster::block_on(t.fit_chunk(&spirals(20, 0))).unwrap_err();
    assert!(err.to_string().contains("regression targets"), "{err}");

    let mut c = Trainer::new(
        gpu(),
        mlp(2, &[8], 2),
        OptimizerSpec::adam(0.01),
        TrainSpec::default(),
        0,
    )
    .unwrap();
    let err = pollster::block_on(c.fit_chunk(&surface(20, 0))).unwrap_err();
    assert!(err.to_string().contains("mse"), "{err}");

    let mut wide = trainer(0, 1);
    let three = Dataset::regression(vec![0.0; 20], vec![0.0; 30], vec![2], 3).unwrap();
    let err = pollster::block_on(wide.fit_chunk(&three)).unwrap_err();
    assert!(err.to_string().contains("2 outputs"), "{err}");

    let err = Dataset::regression(vec![0.0; 4], vec![0.0, f32::NAN], vec![2], 1).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}
