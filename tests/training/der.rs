//! Dark Experience Replay (`rehearsal = { .., logit_weight, label_weight }`): on a
//! class-incremental problem DER and DER++ forget less than plain fine-tuning (the accuracy
//! matrix's forgetting); the buffer's stored logits are the chunk-end model's; a run
//! resumed from a checkpoint inside the second chunk ends byte-identical; bad settings and
//! combinations are refused.

use super::lwf::{
    blobs, by_classes, matrix, mid_epoch_checkpoint_of_chunk_two, resumed_through_bytes, Keep,
};
use accrete::data::Dataset;
use accrete::metrics::AccuracyMatrix;
use accrete::nn::reference::{self, HostParams};
use accrete::optim::OptimizerSpec;
use accrete::train::{
    ChunkOptions, ChunkOutcome, LossKind, LwfSpec, RehearsalSpec, TrainSpec, Trainer,
};
use accrete_tests::*;

fn der(size: usize, per_batch: usize, alpha: Option<f32>, beta: Option<f32>) -> RehearsalSpec {
    RehearsalSpec {
        logit_weight: alpha,
        label_weight: beta,
        ..RehearsalSpec::new(size, per_batch)
    }
}

fn trainer(rehearsal: Option<RehearsalSpec>, epochs: usize) -> Trainer {
    let spec = accrete::nn::presets::mlp(2, &[32], 4);
    let ts = TrainSpec {
        batch_size: 32,
        epochs,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), ts, 9).unwrap();
    if let Some(r) = rehearsal {
        t.enable_rehearsal(r).unwrap();
    }
    t
}

#[test]
fn der_and_der_plus_plus_forget_less_than_fine_tuning() {
    let data = blobs(200, 42);
    let (train, test) = (data.take(600), data.select(&(600..800).collect::<Vec<_>>()));
    let tasks: [&[u32]; 2] = [&[0, 1], &[2, 3]];
    let chunks = [by_classes(&train, tasks[0]), by_classes(&train, tasks[1])];
    let run = |r: Option<RehearsalSpec>| matrix(&mut trainer(r, 10), &chunks, &tasks, &test);
    let plain = run(None);
    let der_m = run(Some(der(20, 8, Some(1.0), None)));
    let derpp = run(Some(der(20, 8, Some(0.5), Some(0.5))));
    let f = |m: &AccuracyMatrix| m.forgetting().unwrap();
    let a = |m: &AccuracyMatrix| m.average_accuracy().unwrap();
    eprintln!(
        "class-incremental blobs (2 chunks of 2 classes, buffer 20, 8 replayed per batch): forgetting {:.3} fine-tuning, {:.3} DER (α 1), {:.3} DER++ (α 0.5, β 0.5); average accuracy {:.3} / {:.3} / {:.3}; BWT {:.3} / {:.3} / {:.3}",
        f(&plain), f(&der_m), f(&derpp), a(&plain), a(&der_m), a(&derpp),
        plain.backward_transfer().unwrap(), der_m.backward_transfer().unwrap(), derpp.backward_transfer().unwrap(),
    );
    assert!(
        f(&plain) > 0.3,
        "fine-tuning should forget here: {:?}",
        plain.rows()
    );
    for (name, m) in [("DER", &der_m), ("DER++", &derpp)] {
        assert!(
            f(m) < f(&plain) - 0.2,
            "{name} did not reduce forgetting: {:?} vs {:?}",
            m.rows(),
            plain.rows()
        );
        assert!(a(m) > a(&plain) + 0.1, "{name}: {:?}", m.rows());
    }
}

/// The f64 reference forward pass (accrete::nn::reference) of the trainer's weights.
fn reference_logits(t: &Trainer, d: &Dataset) -> Vec<f64> {
    let host: HostParams = t
        .model
        .params
        .iter()
        .map(|p| {
            let v = pollster::block_on(p.value.read_f32()).unwrap();
            (p.name.clone(), v.iter().map(|&x| x as f64).collect())
        })
        .collect();
    let x: Vec<f64> = d.features.iter().map(|&v| v as f64).collect();
    reference::forward(&t.model.spec, &host, &x, d.len()).unwrap()
}

#[test]
fn the_buffer_stores_the_chunk_end_models_logits() {
    let data = blobs(60, 5);
    let mut t = trainer(Some(der(30, 8, Some(0.5), Some(0.5))), 2);
    pollster::block_on(t.fit_chunk(&by_classes(&data, &[0, 1]))).unwrap();
    let r = t.rehearsal.clone().unwrap();
    assert_eq!(r.len(), 30);
    assert_eq!(r.logits.len(), 30 * 4);
    // The model's logits of the buffered samples now, by an independent path: the f64
    // reference forward pass of the read-back weights.
    let buf = r.data.clone().unwrap();
    let want = reference_logits(&t, &buf);
    assert_close("stored logits", &r.logits, &want, |i| {
        1e-5 * (1.0 + want[i].abs())
    });
    // Samples that did not enter keep no logits: a second chunk's entrants get the model's
    // logits after that chunk, the others keep theirs.
    let before = r.logits.clone();
    pollster::block_on(t.fit_chunk(&by_classes(&data, &[2, 3]))).unwrap();
    let r2 = t.rehearsal.clone().unwrap();
    let buf2 = r2.data.clone().unwrap();
    let now = reference_logits(&t, &buf2);
    let mut kept = 0;
    for s in 0..30 {
        let row = &r2.logits[s * 4..(s + 1) * 4];
        if buf2.labels[s] >= 2 {
            assert_close("new entrant", row, &now[s * 4..(s + 1) * 4], |i| {
                1e-5 * (1.0 + now[s * 4 + i].abs())
            });
        } else {
            assert_eq!(row, &before[s * 4..(s + 1) * 4], "slot {s} kept its sample");
            kept += 1;
        }
    }
    assert!(kept > 0 && kept < 30, "{kept} of 30 slots kept");
}

#[test]
fn der_resumes_mid_chunk_byte_identically() {
    let data = blobs(60, 7);
    let chunks = [by_classes(&data, &[0, 1]), by_classes(&data, &[2, 3])];
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let spec = der(24, 8, Some(0.5), Some(0.5));
    let mut straight = trainer(Some(spec.clone()), 2);
    let mut keep = Keep(Vec::new());
    for c in &chunks {
        let out = pollster::block_on(straight.fit_chunk_with(c, &opts, &mut keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))));
    }
    let mid = mid_epoch_checkpoint_of_chunk_two(&keep.0);
    let logits = mid.tensor("rehearsal.logits").expect("the stored logits");
    assert_eq!(logits.shape, vec![24, 4]);
    assert_eq!(mid.meta.rehearsal.as_ref().unwrap().spec, spec);
    let a = pollster::block_on(straight.checkpoint()).unwrap();
    let b = resumed_through_bytes(&mid, &chunks[1], &opts);
    // Every tensor bit for bit, and the counters (the history's timings differ).
    assert_same_tensors(&a, &b);
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor, &a.meta.rehearsal),
        (b.meta.step, b.meta.epoch, &b.meta.cursor, &b.meta.rehearsal)
    );
    // The stored logits matter: zeroed, the resumed chunk ends elsewhere.
    let mut zeroed = mid.clone();
    for t in zeroed
        .tensors
        .iter_mut()
        .filter(|t| t.name == "rehearsal.logits")
    {
        t.data.iter_mut().for_each(|v| *v = 0.0);
    }
    let mut other = Trainer::from_checkpoint(gpu(), &zeroed).unwrap();
    pollster::block_on(other.fit_chunk_with(&chunks[1], &opts, &mut Keep(Vec::new()))).unwrap();
    let c = pollster::block_on(other.checkpoint()).unwrap();
    assert_ne!(
        c.tensor("layers.1.weight").unwrap().data,
        a.tensor("layers.1.weight").unwrap().data
    );
    // Without them the checkpoint is refused, naming the tensor.
    let mut missing = mid.clone();
    missing.tensors.retain(|t| t.name != "rehearsal.logits");
    let e = Trainer::from_checkpoint(gpu(), &missing)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rehearsal.logits tensor is missing"), "{e}");
}

#[test]
fn bad_der_settings_are_refused() {
    for (spec, want) in [
        (
            der(10, 4, Some(-0.5), None),
            "incremental.rehearsal.logit_weight: -0.5 must be a finite number ≥ 0",
        ),
        (
            der(10, 4, Some(0.5), Some(f32::NAN)),
            "incremental.rehearsal.label_weight: NaN must be a finite number ≥ 0",
        ),
        (
            der(10, 4, Some(0.5), Some(f32::INFINITY)),
            "incremental.rehearsal.label_weight: inf must be",
        ),
        (
            der(10, 0, Some(0.5), None),
            "size = 10 and per_batch = 0 replay none",
        ),
        (
            der(0, 4, None, Some(0.5)),
            "size = 0 and per_batch = 4 replay none",
        ),
        (
            der(10, 4, Some(0.0), Some(0.0)),
            "logit_weight and label_weight are both 0",
        ),
        (
            der(10, 4, Some(0.0), None),
            "logit_weight and label_weight are both 0",
        ),
    ] {
        let e = trainer(None, 1)
            .enable_rehearsal(spec)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}\nshould contain: {want}");
    }
    // DER and a teacher both replace the loss: refused in either order.
    let mut t = trainer(Some(der(10, 4, Some(0.5), None)), 1);
    let e = t.enable_lwf(LwfSpec::default()).unwrap_err().to_string();
    assert!(e.contains("cannot be combined with a teacher"), "{e}");
    let mut t = trainer(None, 1);
    t.enable_lwf(LwfSpec::default()).unwrap();
    let e = t
        .enable_rehearsal(der(10, 4, None, Some(0.5)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be combined with LwF"), "{e}");
    // Regression has no logits to replay.
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
    let e = t
        .enable_rehearsal(der(10, 4, Some(0.5), None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("need train.loss = \"softmax_cross_entropy\""),
        "{e}"
    );
    // Turned on after samples entered without logits: a clear error at the next chunk.
    let data = blobs(20, 3);
    let mut t = trainer(Some(RehearsalSpec::new(10, 4)), 1);
    pollster::block_on(t.fit_chunk(&by_classes(&data, &[0, 1]))).unwrap();
    t.enable_rehearsal(der(10, 4, Some(0.5), None)).unwrap();
    let e = pollster::block_on(t.fit_chunk(&by_classes(&data, &[2, 3])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("DER needs logit_weight from the first chunk on"),
        "{e}"
    );
}
