//! Incremental training: chunks continue from the previous chunk's parameters and optimizer
//! moments; rehearsal limits forgetting; checkpoints taken between chunks resume exactly,
//! rehearsal buffer included.

use accrete::data::Dataset;
use accrete::optim::{OptimKind, OptimizerSpec};
use accrete::train::Checkpoint;
use accrete::train::{RehearsalSpec, Reservoir, TrainSpec, Trainer};
use accrete_tests::*;

fn by_classes(d: &Dataset, classes: &[u32]) -> Dataset {
    let idx: Vec<usize> = (0..d.len())
        .filter(|&i| classes.contains(&d.labels[i]))
        .collect();
    d.select(&idx)
}

fn trainer(seed: u64, epochs: usize, kind: OptimKind) -> Trainer {
    let train = TrainSpec {
        batch_size: 32,
        epochs,
        ..Default::default()
    };
    Trainer::new(
        gpu(),
        small_cnn(),
        OptimizerSpec::new(kind, 0.01),
        train,
        seed,
    )
    .unwrap()
}

#[test]
fn second_chunk_continues_from_the_first() {
    let data = quadrant_images(240, 41);
    let (c1, c2) = (
        data.select(&(0..120).collect::<Vec<_>>()),
        data.select(&(120..240).collect::<Vec<_>>()),
    );
    let mut a = trainer(8, 2, OptimKind::Momentum);
    pollster::block_on(a.fit_chunk(&c1)).unwrap();
    let between = pollster::block_on(a.checkpoint()).unwrap();
    // Momentum buffers are non-zero after the first chunk, so carrying them over matters.
    assert!(between
        .tensor("optimizer.layers.0.weight.momentum_buffer")
        .unwrap()
        .data
        .iter()
        .any(|&v| v != 0.0));
    assert_eq!((between.meta.cursor.chunk, between.meta.step), (1, 8));
    pollster::block_on(a.fit_chunk(&c2)).unwrap();

    let mut b = Trainer::from_checkpoint(
        gpu(),
        &Checkpoint::from_bytes(&between.to_bytes().unwrap(), "x").unwrap(),
    )
    .unwrap();
    pollster::block_on(b.fit_chunk(&c2)).unwrap();
    let (wa, wb) = pollster::block_on(async { (weight_bytes(&a).await, weight_bytes(&b).await) });
    assert!(
        wa == wb,
        "the second chunk did not continue from the first chunk's state"
    );
    assert_eq!(a.history.len(), 4);
    assert_eq!(a.history_json()[3]["chunk"], 1);
}

#[test]
fn reservoir_keeps_a_bounded_uniform_sample() {
    let data = quadrant_images(1000, 5);
    let mut r = Reservoir::new(RehearsalSpec::new(100, 16));
    for c in 0..4 {
        r.offer(
            &data.select(&(c * 250..(c + 1) * 250).collect::<Vec<_>>()),
            1,
        );
    }
    assert_eq!((r.len(), r.seen), (100, 1000));
    // Every quarter of the stream is represented roughly equally (expected 25 each).
    let kept = r.data.as_ref().unwrap();
    let mut from_quarter = [0usize; 4];
    for i in 0..kept.len() {
        let row = &kept.features[i * 64..(i + 1) * 64];
        let src = (0..1000)
            .find(|&j| &data.features[j * 64..(j + 1) * 64] == row)
            .unwrap();
        from_quarter[src / 250] += 1;
    }
    assert!(
        from_quarter.iter().all(|&c| (10..=40).contains(&c)),
        "{from_quarter:?}"
    );
}

/// Accuracy on `classes` of `test`.
fn accuracy_on(t: &mut Trainer, test: &Dataset, classes: &[u32]) -> f64 {
    let sub = by_classes(test, classes);
    let d = accrete::train::GpuDataset::upload(gpu(), &sub).unwrap();
    pollster::block_on(t.evaluate(&d, 100)).unwrap().accuracy
}

/// Four Gaussian blobs at the corners of a square, one class each.
fn blobs(per_class: usize, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let noise = uniform(&mut r, per_class * 8, -0.6, 0.6);
    let centres = [(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..per_class {
        for (c, (cx, cy)) in centres.iter().enumerate() {
            let k = (i * 4 + c) * 2;
            x.extend([cx + noise[k], cy + noise[k + 1]]);
            y.push(c as u32);
        }
    }
    Dataset::new(x, y, vec![2], 4).unwrap()
}

#[test]
fn rehearsal_reduces_forgetting_and_resumes_exactly() {
    let data = blobs(200, 42);
    let (train, test) = (data.take(600), data.select(&(600..800).collect::<Vec<_>>()));
    let chunks = [by_classes(&train, &[0, 1]), by_classes(&train, &[2, 3])];
    let run = |rehearse: bool| {
        let spec = accrete::nn::presets::mlp(2, &[32], 4);
        let ts = TrainSpec {
            batch_size: 32,
            epochs: 15,
            ..Default::default()
        };
        let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), ts, 9).unwrap();
        if rehearse {
            t.enable_rehearsal(RehearsalSpec::new(100, 32)).unwrap();
        }
        for c in &chunks {
            pollster::block_on(t.fit_chunk(c)).unwrap();
        }
        (
            accuracy_on(&mut t, &test, &[0, 1]),
            accuracy_on(&mut t, &test, &[0, 1, 2, 3]),
            t,
        )
    };
    let (old_plain, all_plain, _) = run(false);
    let (old_replay, all_replay, t) = run(true);
    eprintln!(
        "class-incremental blobs (2 chunks of 2 classes): first-chunk classes {old_plain:.3} → {old_replay:.3} with rehearsal; all classes {all_plain:.3} → {all_replay:.3}"
    );
    assert!(
        old_replay > old_plain + 0.3,
        "rehearsal did not reduce forgetting: {old_plain} vs {old_replay}"
    );
    assert!(all_replay > all_plain + 0.15, "{all_plain} vs {all_replay}");
    // The buffer travels in the checkpoint.
    let c = pollster::block_on(t.checkpoint()).unwrap();
    let back = Trainer::from_checkpoint(
        gpu(),
        &Checkpoint::from_bytes(&c.to_bytes().unwrap(), "x").unwrap(),
    )
    .unwrap();
    assert_eq!(back.rehearsal, t.rehearsal);
}
