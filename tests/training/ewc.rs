//! Elastic Weight Consolidation (`Trainer::enable_ewc`): the Fisher a chunk leaves is the
//! per-sample empirical Fisher (checked against per-sample gradients from finite
//! differences of the f64 reference model) and the anchor its final weights; on a
//! class-incremental problem EWC forgets less than plain fine-tuning; a run resumed inside
//! the second chunk ends byte-identical; bad settings are refused.

use super::lwf::{
    blobs, by_classes, matrix, mid_epoch_checkpoint_of_chunk_two, resumed_through_bytes, Keep,
};
use accrete::metrics::AccuracyMatrix;
use accrete::nn::reference::{self, HostParams};
use accrete::optim::OptimizerSpec;
use accrete::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, EwcSpec, LossKind, TrainSpec, Trainer,
};
use accrete_tests::*;

fn trainer(ewc: Option<EwcSpec>, epochs: usize, hidden: usize) -> Trainer {
    let spec = accrete::nn::presets::mlp(2, &[hidden], 4);
    let ts = TrainSpec {
        batch_size: 32,
        epochs,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), ts, 9).unwrap();
    if let Some(e) = ewc {
        t.enable_ewc(e).unwrap();
    }
    t
}

fn host_params(c: &Checkpoint, names: &[String]) -> HostParams {
    names
        .iter()
        .map(|n| {
            (
                n.clone(),
                c.tensor(n)
                    .unwrap()
                    .data
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn the_fisher_is_the_mean_of_squared_per_sample_gradients() {
    let data = blobs(6, 3);
    let chunk = by_classes(&data, &[0, 1]);
    let samples = 5;
    let mut t = trainer(
        Some(EwcSpec {
            weight: 1.0,
            decay: 1.0,
            samples,
        }),
        2,
        6,
    );
    pollster::block_on(t.fit_chunk(&chunk)).unwrap();
    let c = pollster::block_on(t.checkpoint()).unwrap();
    let names: Vec<String> = t.model.params.iter().map(|p| p.name.clone()).collect();
    let host = host_params(&c, &names);
    // The samples: evenly spaced through the chunk.
    let picks: Vec<usize> = (0..samples).map(|i| i * chunk.len() / samples).collect();
    const H: f64 = 1e-6;
    for name in &names {
        let fisher = &c
            .tensor(&format!("ewc.fisher.{name}"))
            .expect("fisher")
            .data;
        let anchor = &c
            .tensor(&format!("ewc.anchor.{name}"))
            .expect("anchor")
            .data;
        assert_eq!(
            anchor,
            &c.tensor(name).unwrap().data,
            "{name}: anchor = weights"
        );
        let mut want = vec![0.0f64; fisher.len()];
        for &s in &picks {
            let x: Vec<f64> = chunk.features[s * 2..s * 2 + 2]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let y = [chunk.labels[s]];
            let nll = |h: &HostParams| {
                let z = reference::forward(&t.model.spec, h, &x, 1).unwrap();
                reference::cross_entropy(&z, &y, 4, 0.0)
            };
            for (i, w) in want.iter_mut().enumerate() {
                let (mut up, mut down) = (host.clone(), host.clone());
                up.get_mut(name).unwrap()[i] += H;
                down.get_mut(name).unwrap()[i] -= H;
                let g = (nll(&up) - nll(&down)) / (2.0 * H);
                *w += g * g / samples as f64;
            }
        }
        let max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max > 0.0, "{name}: a zero Fisher checks nothing");
        // f32 per-sample gradients (relative error ~1e-6) squared, against f64 differences.
        assert_close(&format!("Fisher of {name}"), fisher, &want, |i| {
            1e-5 * max + 1e-5 * want[i]
        });
    }
}

#[test]
fn ewc_forgets_less_than_fine_tuning() {
    let data = blobs(200, 42);
    let (train, test) = (data.take(600), data.select(&(600..800).collect::<Vec<_>>()));
    let tasks: [&[u32]; 2] = [&[0, 1], &[2, 3]];
    let chunks = [by_classes(&train, tasks[0]), by_classes(&train, tasks[1])];
    let run = |e: Option<EwcSpec>| matrix(&mut trainer(e, 10, 32), &chunks, &tasks, &test);
    let plain = run(None);
    let f = |m: &AccuracyMatrix| m.forgetting().unwrap();
    assert!(
        f(&plain) > 0.3,
        "fine-tuning should forget here: {:?}",
        plain.rows()
    );
    // λ 1e3 / 1e4 / 1e5 / 1e6 measured: forgetting 1.0 / 0.64 / 0.04 / 0.0 (the first chunk
    // is nearly saturated, so its Fisher is small and λ must be large).
    let ewc = run(Some(EwcSpec {
        weight: 1e5,
        decay: 1.0,
        samples: 200,
    }));
    eprintln!(
        "class-incremental blobs (2 chunks of 2 classes): forgetting {:.3} fine-tuning, {:.3} EWC (λ 1e5, 200 samples); average accuracy {:.3} / {:.3}; matrices {:?} / {:?}",
        f(&plain), f(&ewc), plain.average_accuracy().unwrap(), ewc.average_accuracy().unwrap(),
        plain.rows(), ewc.rows()
    );
    assert!(
        f(&ewc) < f(&plain) - 0.1,
        "EWC did not reduce forgetting: {:?} vs {:?}",
        ewc.rows(),
        plain.rows()
    );
}

#[test]
fn ewc_resumes_mid_chunk_byte_identically() {
    let data = blobs(60, 7);
    let chunks = [by_classes(&data, &[0, 1]), by_classes(&data, &[2, 3])];
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let spec = EwcSpec {
        weight: 50.0,
        decay: 0.8,
        samples: 30,
    };
    let mut straight = trainer(Some(spec.clone()), 2, 32);
    let mut keep = Keep(Vec::new());
    for c in &chunks {
        let out = pollster::block_on(straight.fit_chunk_with(c, &opts, &mut keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))));
    }
    let mid = mid_epoch_checkpoint_of_chunk_two(&keep.0);
    assert!(mid.tensor("ewc.fisher.layers.0.weight").is_some());
    assert!(mid.tensor("ewc.anchor.layers.1.bias").is_some());
    assert_eq!(mid.meta.ewc, Some(spec));
    let a = pollster::block_on(straight.checkpoint()).unwrap();
    let b = resumed_through_bytes(&mid, &chunks[1], &opts);
    // Every tensor bit for bit, and the counters (the history's timings differ).
    assert_same_tensors(&a, &b);
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor, &a.meta.ewc),
        (b.meta.step, b.meta.epoch, &b.meta.cursor, &b.meta.ewc)
    );
    // The state matters: without the Fisher the resumed chunk ends elsewhere.
    let mut none = mid.clone();
    none.tensors.retain(|t| !t.name.starts_with("ewc."));
    let mut other = Trainer::from_checkpoint(gpu(), &none).unwrap();
    pollster::block_on(other.fit_chunk_with(&chunks[1], &opts, &mut Keep(Vec::new()))).unwrap();
    let c = pollster::block_on(other.checkpoint()).unwrap();
    assert_ne!(
        c.tensor("layers.0.weight").unwrap().data,
        a.tensor("layers.0.weight").unwrap().data
    );
    // Half the state is refused, naming the tensor.
    let mut half = mid.clone();
    half.tensors
        .retain(|t| t.name != "ewc.anchor.layers.0.bias");
    let e = Trainer::from_checkpoint(gpu(), &half)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("EWC's tensor ewc.anchor.layers.0.bias is missing"),
        "{e}"
    );
}

#[test]
fn bad_ewc_settings_are_refused() {
    let spec = |weight, decay, samples| EwcSpec {
        weight,
        decay,
        samples,
    };
    for (s, want) in [
        (
            spec(-1.0, 1.0, 10),
            "incremental.ewc.weight: -1 must be a finite number ≥ 0",
        ),
        (
            spec(f32::NAN, 1.0, 10),
            "incremental.ewc.weight: NaN must be",
        ),
        (
            spec(1.0, 0.0, 10),
            "incremental.ewc.decay: 0 must be in (0, 1]",
        ),
        (
            spec(1.0, 1.5, 10),
            "incremental.ewc.decay: 1.5 must be in (0, 1]",
        ),
        (
            spec(1.0, f32::NAN, 10),
            "incremental.ewc.decay: NaN must be in (0, 1]",
        ),
        (
            spec(1.0, 1.0, 0),
            "incremental.ewc.samples: must be at least 1",
        ),
    ] {
        let e = trainer(None, 1, 4).enable_ewc(s).unwrap_err().to_string();
        assert!(e.contains(want), "{e}\nshould contain: {want}");
    }
    let ts = TrainSpec {
        loss: LossKind::Mse,
        ..Default::default()
    };
    let mut t = Trainer::new(
        gpu(),
        accrete::nn::presets::mlp(2, &[4], 1),
        OptimizerSpec::adam(0.01),
        ts,
        1,
    )
    .unwrap();
    let e = t.enable_ewc(EwcSpec::default()).unwrap_err().to_string();
    assert!(
        e.contains("needs train.loss = \"softmax_cross_entropy\""),
        "{e}"
    );
}
