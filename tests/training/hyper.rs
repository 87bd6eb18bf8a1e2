//! Hyper-parameters that change between chunks (`train::hyper`): a per-chunk schedule entry
//! and a per-call learning rate change the rates the update kernels use (observed through
//! the bias of a zero-input SGD layer, as in `schedules.rs`: b ← b − lr·(softmax(b) − e₀),
//! followed in f64), each change is a typed event in the history, a run with changes
//! resumes bit-exactly from checkpoints before and after them, optimizer moments carry over
//! a change of rate, and a change of optimizer type keeps the weights and zeroes the state.

use accrete::data::Dataset;
use accrete::nn::{presets, LayerSpec, ModelSpec};
use accrete::optim::{OptimKind, OptimizerSpec};
use accrete::train::history::{ChangeSource, Event};
use accrete::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, ChunkSetting, Observer, Setting, TrainSpec, Trainer,
};
use accrete_tests::*;

const BATCH: usize = 32;
/// Samples per chunk: 3 steps per epoch.
const CHUNK: usize = 96;
const STEPS_PER_EPOCH: usize = CHUNK / BATCH;
/// See schedules.rs: far above the f32 rounding of 12 steps, far below a one-step rate slip.
const BIAS_TOL: f64 = 4e-5;

fn zeros(n: usize) -> Dataset {
    Dataset::new(vec![0.0; 2 * n], vec![0; n], vec![2], 2).unwrap()
}

/// One dense layer, SGD at 0.4, 2 epochs per chunk; chunk 2 switches to lr 0.1 and one
/// epoch from the schedule.
fn trainer() -> Trainer {
    let model = ModelSpec {
        input: vec![2],
        layers: vec![LayerSpec::Dense {
            units: 2,
            activation: Default::default(),
            trainable: true,
            init: None,
            bias_init: None,
            share: None,
        }],
        init: None,
        bias_init: None,
    };
    let train = TrainSpec {
        batch_size: BATCH,
        epochs: 2,
        ..Default::default()
    };
    let mut t = Trainer::new(
        gpu(),
        model,
        OptimizerSpec::new(OptimKind::Sgd, 0.4),
        train,
        5,
    )
    .unwrap();
    t.chunk_schedule = vec![ChunkSetting {
        chunk: 2,
        lr: Some(0.1),
        epochs: Some(1),
    }];
    t
}

fn bias(t: &Trainer) -> Vec<f32> {
    let p = t
        .model
        .params
        .iter()
        .find(|p| p.name == "layers.0.bias")
        .unwrap();
    read(&p.value)
}

fn sgd_bias_step(b: &mut [f64; 2], lr: f64) {
    let m = b[0].max(b[1]);
    let (e0, e1) = ((b[0] - m).exp(), (b[1] - m).exp());
    let p0 = e0 / (e0 + e1);
    b[0] -= lr * (p0 - 1.0);
    b[1] -= lr * (1.0 - p0);
}

/// Keeps every checkpoint.
struct Keep(Vec<Checkpoint>);

impl Observer for Keep {
    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        self.0.push(c.clone());
        Ok(())
    }
}

/// The options of chunk `i` (0-based): chunk 3 asks for lr 0.05 per call.
fn opts(i: u64) -> ChunkOptions {
    ChunkOptions {
        checkpoint_every_steps: Some(2),
        lr: (i == 2).then_some(0.05),
        ..ChunkOptions::default()
    }
}

/// Trains `t` from its cursor's chunk to the end of chunk 3.
fn finish(t: &mut Trainer, keep: &mut Keep) {
    while t.cursor.chunk < 3 {
        let i = t.cursor.chunk;
        let out = pollster::block_on(t.fit_chunk_with(&zeros(CHUNK), &opts(i), keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))), "{out:?}");
    }
}

fn without_timing(t: &Trainer) -> Vec<Event> {
    t.history
        .iter()
        .cloned()
        .map(|mut e| {
            if let Event::Epoch(r) = &mut e {
                r.samples_per_sec = 0.0;
            }
            e
        })
        .collect()
}

#[test]
fn schedule_entries_and_per_call_rates_drive_the_kernels_and_resume_exactly() {
    let mut straight = trainer();
    let b0 = bias(&straight);
    let mut host = [b0[0] as f64, b0[1] as f64];
    let mut keep = Keep(Vec::new());
    finish(&mut straight, &mut keep);
    // Chunk 1: 2 epochs at 0.4; chunk 2 (schedule): 1 epoch at 0.1; chunk 3 (per call):
    // 1 epoch (the schedule's epochs hold) at 0.05.
    let plan: [(f32, usize); 3] = [(0.4, 2), (0.1, 1), (0.05, 1)];
    for (lr, epochs) in plan {
        for _ in 0..epochs * STEPS_PER_EPOCH {
            sgd_bias_step(&mut host, lr as f64);
        }
    }
    assert_close("bias after 3 chunks", &bias(&straight), &host, |_| BIAS_TOL);
    // Without the changes the bias would be far away: the test can fail.
    let mut unchanged = [b0[0] as f64, b0[1] as f64];
    for _ in 0..6 * STEPS_PER_EPOCH {
        sgd_bias_step(&mut unchanged, 0.4);
    }
    assert!((unchanged[0] - host[0]).abs() > 100.0 * BIAS_TOL);

    let rates: Vec<f64> = accrete::train::history::epochs(&straight.history)
        .iter()
        .map(|r| r.lr)
        .collect();
    assert_eq!(rates, [0.4, 0.4, 0.1, 0.05]);
    let changes: Vec<_> = straight
        .history
        .iter()
        .filter_map(|e| match e {
            Event::HyperChange(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        (changes[0].source, changes[0].chunk, changes[0].step),
        (ChangeSource::Schedule, 1, 6)
    );
    let keys: Vec<&str> = changes[0].changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["optimizer.lr", "train.epochs"]);
    assert_eq!(changes[0].changes[0].to, serde_json::json!(0.1));
    assert_eq!(
        (changes[1].source, changes[1].chunk, changes[1].step),
        (ChangeSource::Call, 2, 9)
    );
    assert!(changes.iter().all(|h| !h.optimizer_reset));
    assert!(changes[1].describe().contains("optimizer.lr 0.1 → 0.05"));

    // Resume from a checkpoint before chunk 2's schedule was applied (end of chunk 1), in
    // the middle of chunk 2 (after it) and in the middle of chunk 3 (after the per-call
    // change): each ends bit-identical to the straight run, with the same history.
    let at = |pred: &dyn Fn(&Checkpoint) -> bool| {
        keep.0
            .iter()
            .find(|c| pred(c))
            .expect("a checkpoint there")
            .clone()
    };
    let points = [
        at(&|c| c.meta.cursor.chunk == 1 && c.meta.step == 6),
        at(&|c| c.meta.cursor.chunk == 1 && c.meta.cursor.step_in_epoch > 0),
        at(&|c| c.meta.cursor.chunk == 2 && c.meta.cursor.step_in_epoch > 0),
    ];
    for c in points {
        let bytes = c.to_bytes().unwrap();
        let ckpt = Checkpoint::from_bytes(&bytes, "mid").unwrap();
        let mut resumed = Trainer::from_checkpoint(gpu(), &ckpt).unwrap();
        resumed.chunk_schedule = trainer().chunk_schedule;
        finish(&mut resumed, &mut Keep(Vec::new()));
        let bits = |t: &Trainer| bias(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&resumed), bits(&straight), "from step {}", c.meta.step);
        assert_eq!(without_timing(&resumed), without_timing(&straight));
        assert_eq!(resumed.optimizer, straight.optimizer);
        assert_eq!(resumed.train, straight.train);
    }
}

fn tensor(c: &Checkpoint, name: &str) -> Vec<u32> {
    c.tensor(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .data
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn moments_carry_over_and_a_new_optimizer_type_resets_them() {
    let model = presets::mlp(2, &[8], 3);
    let train = TrainSpec {
        batch_size: 16,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), model, OptimizerSpec::adam(0.01), train, 3).unwrap();
    let data = spirals(32, 1);
    pollster::block_on(t.fit_chunk(&data)).unwrap();
    let before = pollster::block_on(t.checkpoint()).unwrap();
    let m = "optimizer.layers.0.weight.exp_avg";
    assert!(tensor(&before, m).iter().any(|&b| b != 0), "Adam moments");

    // A new rate (and β2): weights and moments untouched.
    let h = t
        .change_hyper(
            &[
                Setting::parse("optimizer.lr=1e-3").unwrap(),
                Setting::parse("optimizer.beta2=0.99").unwrap(),
            ],
            ChangeSource::Resume,
        )
        .unwrap();
    assert!(!h.optimizer_reset);
    let after = pollster::block_on(t.checkpoint()).unwrap();
    assert_eq!(after.tensors, before.tensors);
    assert_eq!((t.optimizer.lr, t.optimizer.beta2), (1e-3, Some(0.99)));

    // Refused changes leave the trainer as it was.
    for bad in [
        "optimizer.momentum=0.5",
        "train.epochs=0",
        "optimizer.lr=-1",
    ] {
        let e = t
            .change_hyper(&[Setting::parse(bad).unwrap()], ChangeSource::Resume)
            .unwrap_err();
        assert!(e.is_bad_input(), "{bad}: {e}");
    }
    assert_eq!(t.optimizer.kind, OptimKind::Adam);

    // A new type: the weights stay, the state is the new rule's, zeroed; Adam's β2 goes.
    let h = t
        .change_hyper(
            &[Setting::parse("optimizer.type=momentum").unwrap()],
            ChangeSource::Resume,
        )
        .unwrap();
    assert!(h.optimizer_reset);
    assert!(h.changes.iter().any(|c| c.key == "optimizer.beta2"));
    assert_eq!(t.optimizer.beta2, None);
    let reset = pollster::block_on(t.checkpoint()).unwrap();
    for w in ["layers.0.weight", "layers.0.bias", "layers.1.weight"] {
        assert_eq!(tensor(&reset, w), tensor(&before, w), "{w} kept");
    }
    assert!(reset.tensor(m).is_none());
    let buf = "optimizer.layers.0.weight.momentum_buffer";
    assert!(tensor(&reset, buf).iter().all(|&b| b == 0));
    // It trains on with the new rule, and the change is in the history.
    let stats = pollster::block_on(t.fit_chunk(&data)).unwrap();
    assert!(stats[0].loss.is_finite());
    let trained = pollster::block_on(t.checkpoint()).unwrap();
    assert!(tensor(&trained, buf).iter().any(|&b| b != 0));
    let n = t
        .history
        .iter()
        .filter(|e| matches!(e, Event::HyperChange(_)))
        .count();
    assert_eq!(n, 2);
}
