//! Learning without Forgetting (`Trainer::enable_lwf`): on a class-incremental problem it
//! keeps more of the first chunk's classes than plain fine-tuning; a run resumed from a
//! checkpoint taken inside the second chunk (its teacher snapshot in `lwf.teacher.*`) ends
//! with byte-identical checkpoints; bad settings are refused.

use accrete::data::Dataset;
use accrete::optim::OptimizerSpec;
use accrete::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, LwfSpec, Observer, TrainSpec, Trainer,
};
use accrete_tests::*;

/// Four blobs at the corners of a square, one class each, `per_class` samples each.
pub(crate) fn blobs(per_class: usize, seed: u64) -> Dataset {
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

pub(crate) fn by_classes(d: &Dataset, classes: &[u32]) -> Dataset {
    let idx: Vec<usize> = (0..d.len())
        .filter(|&i| classes.contains(&d.labels[i]))
        .collect();
    d.select(&idx)
}

fn trainer(lwf: Option<LwfSpec>, epochs: usize) -> Trainer {
    let spec = accrete::nn::presets::mlp(2, &[32], 4);
    let ts = TrainSpec {
        batch_size: 32,
        epochs,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), ts, 9).unwrap();
    if let Some(l) = lwf {
        t.enable_lwf(l).unwrap();
    }
    t
}

pub(crate) fn accuracy_on(t: &mut Trainer, test: &Dataset, classes: &[u32]) -> f64 {
    let sub = by_classes(test, classes);
    let d = accrete::train::GpuDataset::upload(gpu(), &sub).unwrap();
    pollster::block_on(t.evaluate(&d, 100)).unwrap().accuracy
}

/// Trains the chunks in order; the accuracy matrix over the tasks (`tasks[j]`'s classes).
pub(crate) fn matrix(
    t: &mut Trainer,
    chunks: &[Dataset],
    tasks: &[&[u32]],
    test: &Dataset,
) -> accrete::metrics::AccuracyMatrix {
    let mut rows = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        pollster::block_on(t.fit_chunk(c)).unwrap();
        rows.push(
            tasks[..=i]
                .iter()
                .map(|k| accuracy_on(t, test, k))
                .collect(),
        );
    }
    accrete::metrics::AccuracyMatrix::new(rows).unwrap()
}

/// Keeps every checkpoint.
pub(crate) struct Keep(pub Vec<Checkpoint>);

impl Observer for Keep {
    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        self.0.push(c.clone());
        Ok(())
    }
}

/// The first kept checkpoint taken inside an epoch of the second chunk.
pub(crate) fn mid_epoch_checkpoint_of_chunk_two(kept: &[Checkpoint]) -> Checkpoint {
    kept.iter()
        .find(|c| c.meta.cursor.chunk == 1 && c.meta.cursor.step_in_epoch > 0)
        .expect("a mid-epoch checkpoint in chunk 2")
        .clone()
}

/// `mid` saved to bytes, loaded, and trained on the rest of `chunk`: its final checkpoint.
pub(crate) fn resumed_through_bytes(
    mid: &Checkpoint,
    chunk: &Dataset,
    opts: &ChunkOptions,
) -> Checkpoint {
    let bytes = mid.to_bytes().unwrap();
    let mut resumed =
        Trainer::from_checkpoint(gpu(), &Checkpoint::from_bytes(&bytes, "mid").unwrap()).unwrap();
    pollster::block_on(resumed.fit_chunk_with(chunk, opts, &mut Keep(Vec::new()))).unwrap();
    pollster::block_on(resumed.checkpoint()).unwrap()
}

#[test]
fn lwf_keeps_the_first_chunks_classes_better_than_fine_tuning() {
    let data = blobs(200, 42);
    let (train, test) = (data.take(600), data.select(&(600..800).collect::<Vec<_>>()));
    let chunks = [by_classes(&train, &[0, 1]), by_classes(&train, &[2, 3])];
    let run = |lwf: Option<LwfSpec>| {
        let mut t = trainer(lwf, 10);
        for c in &chunks {
            pollster::block_on(t.fit_chunk(c)).unwrap();
        }
        (
            accuracy_on(&mut t, &test, &[0, 1]),
            accuracy_on(&mut t, &test, &[0, 1, 2, 3]),
        )
    };
    let (old_plain, all_plain) = run(None);
    let (old_lwf, all_lwf) = run(Some(LwfSpec {
        weight: 3.0,
        temperature: 2.0,
    }));
    eprintln!(
        "class-incremental blobs (2 chunks of 2 classes): first-chunk classes {old_plain:.3} → {old_lwf:.3} with LwF; all classes {all_plain:.3} → {all_lwf:.3}"
    );
    assert!(
        old_lwf > old_plain + 0.1,
        "LwF did not reduce forgetting: {old_plain} vs {old_lwf}"
    );
}

#[test]
fn lwf_resumes_mid_chunk_byte_identically() {
    let data = blobs(60, 7);
    let chunks = [by_classes(&data, &[0, 1]), by_classes(&data, &[2, 3])];
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let lwf = LwfSpec::default();
    let mut straight = trainer(Some(lwf.clone()), 2);
    let mut keep = Keep(Vec::new());
    for c in &chunks {
        let out = pollster::block_on(straight.fit_chunk_with(c, &opts, &mut keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))));
    }
    let mid = mid_epoch_checkpoint_of_chunk_two(&keep.0);
    // Inside chunk 2 the checkpoint carries the teacher: the weights at chunk 2's start,
    // which the first checkpoint after chunk 1 holds as the model's own.
    let after_first = keep
        .0
        .iter()
        .find(|c| {
            c.meta.cursor.chunk == 1
                && c.meta.cursor.epoch_in_chunk == 0
                && c.meta.cursor.step_in_epoch == 0
        })
        .expect("the checkpoint at chunk 1's end");
    assert!(after_first
        .tensors
        .iter()
        .all(|t| !t.name.starts_with("lwf.")));
    for p in [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ] {
        let teacher = mid
            .tensor(&format!("lwf.teacher.{p}"))
            .expect("teacher tensor");
        assert_eq!(teacher.data, after_first.tensor(p).unwrap().data, "{p}");
        assert_ne!(
            teacher.data,
            mid.tensor(p).unwrap().data,
            "{p} did not train"
        );
    }
    assert_eq!(mid.meta.lwf, Some(lwf));
    let a = pollster::block_on(straight.checkpoint()).unwrap();
    let b = resumed_through_bytes(&mid, &chunks[1], &opts);
    // Every tensor bit for bit, and the counters (the history's timings differ).
    assert_same_tensors(&a, &b);
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor, &a.meta.lwf),
        (b.meta.step, b.meta.epoch, &b.meta.cursor, &b.meta.lwf)
    );
    // Without the teacher tensors the resumed chunk would distil from nothing: a plain
    // fine-tuning resume ends elsewhere (the snapshot matters).
    let mut no_teacher = mid.clone();
    no_teacher.tensors.retain(|t| !t.name.starts_with("lwf."));
    no_teacher.meta.lwf = None;
    let mut plain = Trainer::from_checkpoint(gpu(), &no_teacher).unwrap();
    pollster::block_on(plain.fit_chunk_with(&chunks[1], &opts, &mut Keep(Vec::new()))).unwrap();
    let c = pollster::block_on(plain.checkpoint()).unwrap();
    assert_ne!(
        c.tensor("layers.1.weight").unwrap().data,
        pollster::block_on(straight.checkpoint())
            .unwrap()
            .tensor("layers.1.weight")
            .unwrap()
            .data
    );
}

#[test]
fn bad_lwf_settings_are_refused() {
    for (spec, key) in [
        (
            LwfSpec {
                weight: -1.0,
                temperature: 2.0,
            },
            "incremental.lwf.weight",
        ),
        (
            LwfSpec {
                weight: f32::NAN,
                temperature: 2.0,
            },
            "incremental.lwf.weight",
        ),
        (
            LwfSpec {
                weight: 1.0,
                temperature: 0.0,
            },
            "incremental.lwf.temperature",
        ),
        (
            LwfSpec {
                weight: 1.0,
                temperature: f32::INFINITY,
            },
            "incremental.lwf.temperature",
        ),
    ] {
        let e = trainer(None, 1).enable_lwf(spec).unwrap_err();
        assert!(e.to_string().starts_with(key), "{e}");
        assert!(e.is_bad_input(), "{e}");
    }
}
