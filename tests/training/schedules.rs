//! Learning-rate schedules across incremental chunks: every schedule keeps learning in
//! chunks 2 and 3, the rates the update kernels used are the ones a host computation of the
//! schedule gives, the logged `lr` is the rate of each epoch's last step, and a run resumed
//! mid-chunk keeps its plan.
//!
//! How the rates the kernels used are observed: a single dense layer fed all-zero inputs,
//! every label 0, plain SGD. Its weight gradients are 0, and its bias follows
//! b ← b − lr_t · (softmax(b) − e₀) — a recurrence the test runs in f64 with its own rates.
//! A wrong rate at any step moves the final bias by about lr·0.5·Δ, far above the f32
//! rounding of 18 steps (tolerance below).

use accrete::data::Dataset;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::optim::{CosineCycle, OptimKind, OptimizerSpec, Schedule};
use accrete::train::{Checkpoint, ChunkOptions, ChunkOutcome, Event, Observer, TrainSpec, Trainer};
use accrete_tests::*;

const BASE_LR: f32 = 0.4;
const BATCH: usize = 32;
/// Samples per chunk: 3 steps per epoch.
const CHUNK: usize = 96;
const EPOCHS: usize = 2;
const CHUNKS: usize = 3;
const STEPS_PER_CHUNK: u64 = (CHUNK / BATCH * EPOCHS) as u64;
/// |b| stays below 2 and each of the 18 updates rounds to f32 a few times: 2⁻²³ · 2 · 18 · 8
/// ≈ 3.4e-5 is far above the error and far below the 1e-3 a one-step rate slip causes.
const BIAS_TOL: f64 = 4e-5;

fn zeros(n: usize) -> Dataset {
    Dataset::new(vec![0.0; 2 * n], vec![0; n], vec![2], 2).unwrap()
}

fn trainer(schedule: Schedule, planned: Option<u64>) -> Trainer {
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
    let mut opt = OptimizerSpec::new(OptimKind::Sgd, BASE_LR);
    opt.schedule = schedule;
    let train = TrainSpec {
        batch_size: BATCH,
        epochs: EPOCHS,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), model, opt, train, 5).unwrap();
    t.set_planned_steps(planned);
    t.set_validation(Some(
        &Dataset::new(vec![0.0; 8], vec![0, 1, 1, 0], vec![2], 2).unwrap(),
    ))
    .unwrap();
    t
}

/// The schedule's rate at 0-based global step `t` in 0-based epoch `e`, computed here from
/// the documented formulas (not by accrete's plan): chunks of STEPS_PER_CHUNK steps.
fn host_rate(s: &Schedule, t: u64, e: u64, planned: Option<u64>) -> f64 {
    let base = BASE_LR as f64;
    match *s {
        Schedule::Constant {} => base,
        Schedule::Step { step_epochs, gamma } => {
            base * (gamma as f64).powi((e / step_epochs as u64) as i32)
        }
        Schedule::Exponential { gamma } => base * (gamma as f64).powi(e as i32),
        Schedule::Cosine {
            warmup_steps: w,
            total_steps,
            min_lr,
            cycle,
        } => {
            if t < w {
                return base * (t + 1) as f64 / w as f64;
            }
            let end = if total_steps > 0 {
                Some(total_steps)
            } else {
                planned
            };
            let (start, end) = match (cycle, end) {
                (CosineCycle::Run, Some(end)) => (w, end),
                _ => {
                    let c0 = t / STEPS_PER_CHUNK * STEPS_PER_CHUNK;
                    (c0.max(w), c0 + STEPS_PER_CHUNK)
                }
            };
            let p = ((t - start) as f64 / (end - start) as f64).min(1.0);
            let m = min_lr as f64;
            m + (base - m) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        Schedule::ReduceOnPlateau { .. } => unreachable!("not tested here"),
    }
}

/// b ← b − lr · (softmax(b) − e₀), in f64.
fn sgd_bias_step(b: &mut [f64; 2], lr: f64) {
    let m = b[0].max(b[1]);
    let (e0, e1) = ((b[0] - m).exp(), (b[1] - m).exp());
    let p0 = e0 / (e0 + e1);
    b[0] -= lr * (p0 - 1.0);
    b[1] -= lr * (1.0 - p0);
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

fn epoch_rows(t: &Trainer) -> Vec<accrete::train::EpochRecord> {
    accrete::train::history::epochs(&t.history)
}

/// Trains 3 chunks and checks the rates (through the bias), the logged lr, and that the
/// validation loss moves in every chunk.
fn check(schedule: Schedule, planned: Option<u64>) {
    let mut t = trainer(schedule.clone(), planned);
    let mut host: [f64; 2] = {
        let b = bias(&t);
        [b[0] as f64, b[1] as f64]
    };
    let mut step = 0u64;
    let mut val = Vec::new();
    for chunk in 0..CHUNKS {
        pollster::block_on(t.fit_chunk(&zeros(CHUNK))).unwrap();
        let rows = epoch_rows(&t);
        for epoch in 0..EPOCHS {
            let e = (chunk * EPOCHS + epoch) as u64;
            let mut last = f64::NAN;
            for _ in 0..CHUNK / BATCH {
                last = host_rate(&schedule, step, e, planned);
                sgd_bias_step(&mut host, last);
                step += 1;
            }
            let logged = rows[e as usize].lr;
            assert_eq!(
                logged as f32, last as f32,
                "{schedule:?}: logged lr of epoch {e} is {logged}, the last step's rate is {last}"
            );
        }
        let got = bias(&t);
        let want = [host[0], host[1]];
        assert_close(
            &format!("{schedule:?} bias after chunk {chunk}"),
            &got,
            &want,
            |_| BIAS_TOL,
        );
        val.push(rows.last().unwrap().val_loss.unwrap());
        let rates = t.epoch_rates();
        let last_epoch: Vec<f32> = (step - 3..step)
            .map(|s| host_rate(&schedule, s, (chunk * EPOCHS + 1) as u64, planned) as f32)
            .collect();
        assert_eq!(
            rates,
            &last_epoch[..],
            "{schedule:?}: the last epoch's table"
        );
    }
    for w in val.windows(2) {
        assert_ne!(
            w[0], w[1],
            "{schedule:?}: a chunk left the validation loss unchanged: {val:?}"
        );
    }
}

fn cosine(warmup_steps: u64, cycle: CosineCycle) -> Schedule {
    Schedule::Cosine {
        warmup_steps,
        total_steps: 0,
        min_lr: 0.0,
        cycle,
    }
}

#[test]
fn cosine_over_the_planned_run_keeps_learning_in_every_chunk() {
    let run = Some(STEPS_PER_CHUNK * CHUNKS as u64);
    check(cosine(0, CosineCycle::Run), run);
    check(cosine(4, CosineCycle::Run), run);
}

#[test]
fn cosine_without_a_known_run_and_sgdr_restart_each_chunk() {
    check(cosine(0, CosineCycle::Run), None);
    check(
        cosine(4, CosineCycle::Chunk),
        Some(STEPS_PER_CHUNK * CHUNKS as u64),
    );
}

#[test]
fn step_and_exponential_decay_over_global_epochs() {
    check(
        Schedule::Step {
            step_epochs: 2,
            gamma: 0.6,
        },
        None,
    );
    check(Schedule::Exponential { gamma: 0.8 }, None);
}

/// Keeps every checkpoint.
struct Keep(Vec<Checkpoint>);

impl Observer for Keep {
    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        self.0.push(c.clone());
        Ok(())
    }
}

#[test]
fn a_run_resumed_mid_chunk_keeps_its_plan() {
    let schedule = cosine(2, CosineCycle::Run);
    let planned = Some(STEPS_PER_CHUNK * CHUNKS as u64);
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let mut straight = trainer(schedule.clone(), planned);
    let mut keep = Keep(Vec::new());
    for _ in 0..CHUNKS {
        let out = pollster::block_on(straight.fit_chunk_with(&zeros(CHUNK), &opts, &mut keep));
        assert!(matches!(out, Ok(ChunkOutcome::Done(_))));
    }
    // A checkpoint in the middle of chunk 2's first epoch.
    let mid = keep
        .0
        .iter()
        .find(|c| c.meta.cursor.chunk == 1 && c.meta.cursor.step_in_epoch > 0)
        .expect("a mid-epoch checkpoint in chunk 2")
        .clone();
    let bytes = mid.to_bytes().unwrap();
    let mut resumed =
        Trainer::from_checkpoint(gpu(), &Checkpoint::from_bytes(&bytes, "mid").unwrap()).unwrap();
    assert_eq!(resumed.planned_steps(), planned);
    resumed
        .set_validation(Some(
            &Dataset::new(vec![0.0; 8], vec![0, 1, 1, 0], vec![2], 2).unwrap(),
        ))
        .unwrap();
    for _ in 1..CHUNKS {
        pollster::block_on(resumed.fit_chunk_with(&zeros(CHUNK), &opts, &mut Keep(Vec::new())))
            .unwrap();
    }
    assert_eq!(bias(&resumed), bias(&straight));
    let lrs = |t: &Trainer| -> Vec<f64> { epoch_rows(t).iter().map(|r| r.lr).collect() };
    assert_eq!(lrs(&resumed), lrs(&straight));
    assert!(resumed.history.iter().all(|e| matches!(e, Event::Epoch(_))));
}
