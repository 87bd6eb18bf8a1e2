//! A-GEM (`[incremental] agem = { size, per_batch }`): the reference gradient is the memory
//! batch's cross-entropy gradient (against f64 central differences of the reference forward
//! pass), the applied gradient never conflicts with it (g_proj·g_ref ≥ 0: the update does
//! not increase the memory loss to first order), A-GEM forgets less than fine-tuning, a run
//! resumed inside the second chunk ends byte-identical, and bad settings are refused.

use super::lwf::{
    blobs, by_classes, matrix, mid_epoch_checkpoint_of_chunk_two, resumed_through_bytes, Keep,
};
use accrete::metrics::AccuracyMatrix;
use accrete::nn::reference::{self, HostParams};
use accrete::optim::OptimizerSpec;
use accrete::train::{
    AgemSpec, Checkpoint, ChunkOptions, ChunkOutcome, LossKind, MixedPrecision, TrainSpec, Trainer,
};
use accrete_tests::*;

fn agem(size: usize, per_batch: usize) -> AgemSpec {
    AgemSpec { size, per_batch }
}

fn trainer(spec: Option<AgemSpec>, hidden: usize, epochs: usize, seed: u64) -> Trainer {
    let ts = TrainSpec {
        batch_size: 32,
        epochs,
        ..Default::default()
    };
    let model = accrete::nn::presets::mlp(2, &[hidden], 4);
    let mut t = Trainer::new(gpu(), model, OptimizerSpec::adam(0.01), ts, seed).unwrap();
    if let Some(a) = spec {
        t.enable_agem(a).unwrap();
    }
    t
}

/// The arenas' contents as one f64 vector per arena.
fn arenas(ts: &[accrete::gpu::Tensor]) -> Vec<Vec<f64>> {
    ts.iter()
        .map(|t| read(t).iter().map(|&v| v as f64).collect())
        .collect()
}

fn dot(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| x * y)
        .sum()
}

/// The weights of a checkpoint as the f64 reference's parameters.
fn host_params(c: &Checkpoint, t: &Trainer) -> HostParams {
    t.model
        .params
        .iter()
        .map(|p| {
            let v = &c.tensor(&p.name).unwrap().data;
            (p.name.clone(), v.iter().map(|&x| x as f64).collect())
        })
        .collect()
}

#[test]
fn the_reference_gradient_is_the_memory_losss_and_the_update_never_conflicts_with_it() {
    // A memory of one sample: every memory batch is that sample, so the reference gradient
    // of the last step can be recomputed from the checkpoint taken just before it.
    let data = blobs(40, 11);
    let chunks = [by_classes(&data, &[0, 1]), by_classes(&data, &[2, 3])];
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(1),
        ..ChunkOptions::default()
    };
    let mut projected = 0;
    for seed in 0..4 {
        let mut t = trainer(Some(agem(1, 1)), 8, 2, seed);
        let mut keep = Keep(Vec::new());
        for c in &chunks {
            let out = pollster::block_on(t.fit_chunk_with(c, &opts, &mut keep));
            assert!(matches!(out, Ok(ChunkOutcome::Done(_))), "{out:?}");
        }
        let before = keep
            .0
            .iter()
            .find(|c| c.meta.step + 1 == t.step)
            .expect("a checkpoint before the last step")
            .clone();
        let g = arenas(
            &t.model
                .arenas
                .iter()
                .map(|a| a.grads.clone())
                .collect::<Vec<_>>(),
        );
        let r = arenas(t.agem_reference().expect("A-GEM acts in chunk 2"));
        let result = read(t.agem_result().unwrap());
        // The reference gradient by central differences of the f64 forward pass and
        // cross-entropy on the memory's one sample, at the parameters before the step.
        let mem_x: Vec<f64> = before
            .tensor("agem.features")
            .unwrap()
            .data
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mem_y = [before.tensor("agem.labels").unwrap().data[0] as u32];
        let host = host_params(&before, &t);
        let loss = |h: &HostParams| {
            let z = reference::forward(&t.model.spec, h, &mem_x, 1).unwrap();
            reference::cross_entropy(&z, &mem_y, 4, 0.0)
        };
        const H: f64 = 1e-4;
        for p in &t.model.params {
            let got = &r[p.arena][p.offset..p.offset + p.value.len()];
            let want: Vec<f64> = (0..p.value.len())
                .map(|i| {
                    let (mut up, mut down) = (host.clone(), host.clone());
                    up.get_mut(&p.name).unwrap()[i] += H;
                    down.get_mut(&p.name).unwrap()[i] -= H;
                    (loss(&up) - loss(&down)) / (2.0 * H)
                })
                .collect();
            let got32: Vec<f32> = got.iter().map(|&v| v as f32).collect();
            assert_close(
                &format!("seed {seed}: g_ref of {}", p.name),
                &got32,
                &want,
                |i| 1e-4 * (1.0 + want[i].abs()),
            );
        }
        // The applied gradient does not conflict with the reference.
        let gr = dot(&g, &r);
        let scale = (dot(&g, &g) * dot(&r, &r)).sqrt();
        assert!(
            gr >= -1e-5 * scale,
            "seed {seed}: g_proj·g_ref = {gr} (|g||r| = {scale})"
        );
        // The GPU's dot product was of the unprojected gradient: g_proj = g − coef·r, so
        // g = g_proj + coef·r, and its dot with r is the recorded one.
        let coef = result[2] as f64;
        let g_before: Vec<Vec<f64>> = g
            .iter()
            .zip(&r)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + coef * y).collect())
            .collect();
        let d = dot(&g_before, &r);
        assert!(
            (d - result[0] as f64).abs() <= 1e-4 * scale.max(1e-12),
            "seed {seed}: recorded g·g_ref {} vs {d}",
            result[0]
        );
        if coef < 0.0 {
            projected += 1;
            assert!(result[0] < 0.0);
            assert!(
                gr.abs() <= 1e-4 * scale,
                "seed {seed}: projected g·g_ref = {gr}"
            );
        } else {
            assert!(
                result[0] >= 0.0,
                "seed {seed}: conflict without projection {result:?}"
            );
        }
    }
    eprintln!("A-GEM: {projected} of 4 last steps projected");
    assert!(
        projected > 0,
        "no run's last step conflicted; the test would not test the projection"
    );
}

#[test]
fn agem_forgets_less_than_fine_tuning() {
    let data = blobs(200, 42);
    let (train, test) = (data.take(600), data.select(&(600..800).collect::<Vec<_>>()));
    let tasks: [&[u32]; 2] = [&[0, 1], &[2, 3]];
    let chunks = [by_classes(&train, tasks[0]), by_classes(&train, tasks[1])];
    let plain = matrix(&mut trainer(None, 32, 10, 9), &chunks, &tasks, &test);
    let a = matrix(
        &mut trainer(Some(agem(40, 16)), 32, 10, 9),
        &chunks,
        &tasks,
        &test,
    );
    let f = |m: &AccuracyMatrix| m.forgetting().unwrap();
    eprintln!(
        "class-incremental blobs (2 chunks of 2 classes, memory 40, 16 per reference): forgetting {:.3} fine-tuning, {:.3} A-GEM; average accuracy {:.3} / {:.3}",
        f(&plain), f(&a), plain.average_accuracy().unwrap(), a.average_accuracy().unwrap()
    );
    assert!(
        f(&plain) > 0.3,
        "fine-tuning should forget here: {:?}",
        plain.rows()
    );
    assert!(
        f(&a) < f(&plain) - 0.1,
        "A-GEM did not reduce forgetting: {:?} vs {:?}",
        a.rows(),
        plain.rows()
    );
}

#[test]
fn agem_resumes_mid_chunk_byte_identically() {
    let data = blobs(60, 7);
    let chunks = [by_classes(&data, &[0, 1]), by_classes(&data, &[2, 3])];
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let spec = agem(24, 8);
    let mut straight = trainer(Some(spec.clone()), 32, 2, 9);
    let mut keep = Keep(Vec::new());
    for c in &chunks {
        let out = pollster::block_on(straight.fit_chunk_with(c, &opts, &mut keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))));
    }
    let mid = mid_epoch_checkpoint_of_chunk_two(&keep.0);
    assert_eq!(
        mid.tensor("agem.features").expect("the memory").shape,
        vec![24, 2]
    );
    assert_eq!(mid.meta.agem.as_ref().unwrap().spec, spec);
    let a = pollster::block_on(straight.checkpoint()).unwrap();
    let b = resumed_through_bytes(&mid, &chunks[1], &opts);
    assert_same_tensors(&a, &b);
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor, &a.meta.agem),
        (b.meta.step, b.meta.epoch, &b.meta.cursor, &b.meta.agem)
    );
    // The memory matters: with its labels changed, the resumed chunk ends elsewhere.
    let mut other = mid.clone();
    for t in other.tensors.iter_mut().filter(|t| t.name == "agem.labels") {
        t.data.iter_mut().for_each(|v| *v = 3.0 - *v);
    }
    let c = resumed_through_bytes(&other, &chunks[1], &opts);
    assert_ne!(
        c.tensor("layers.1.weight").unwrap().data,
        a.tensor("layers.1.weight").unwrap().data
    );
}

#[test]
fn bad_agem_settings_are_refused() {
    for (spec, want) in [
        (agem(0, 0), "incremental.agem.size: must be at least 1"),
        (
            agem(10, 0),
            "incremental.agem.per_batch: 0 must be between 1 and size = 10",
        ),
        (
            agem(10, 11),
            "incremental.agem.per_batch: 11 must be between 1 and size = 10",
        ),
    ] {
        let e = trainer(None, 4, 1, 1)
            .enable_agem(spec)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}\nshould contain: {want}");
    }
    let with = |ts: TrainSpec| {
        let mut t = Trainer::new(
            gpu(),
            accrete::nn::presets::mlp(2, &[4], if ts.loss == LossKind::Mse { 1 } else { 4 }),
            OptimizerSpec::adam(0.01),
            ts,
            1,
        )
        .unwrap();
        t.enable_agem(agem(10, 4)).unwrap_err().to_string()
    };
    let e = with(TrainSpec {
        loss: LossKind::Mse,
        ..Default::default()
    });
    assert!(
        e.contains("it needs train.loss = \"softmax_cross_entropy\""),
        "{e}"
    );
    let e = with(TrainSpec {
        accumulate_steps: 2,
        ..Default::default()
    });
    assert!(
        e.contains("cannot be combined with train.accumulate_steps > 1"),
        "{e}"
    );
    if gpu()
        .features()
        .contains(accrete::kernels::matmul::Precision::F16.required_features())
    {
        let e = with(TrainSpec {
            mixed_precision: Some(MixedPrecision::default()),
            ..Default::default()
        });
        assert!(
            e.contains("cannot be combined with train.mixed_precision"),
            "{e}"
        );
    }
}
