//! Gradient accumulation (`train.accumulate_steps = k`): k micro-batches of B rows per
//! update equal one step of batch k·B, the schedule and the logged rate count updates, and a
//! run resumed from a mid-epoch checkpoint ends byte-identical to an uninterrupted one.
//!
//! Tolerance of the equivalence (plain SGD, so nothing divides by a small gradient): the
//! two runs differ only in how each gradient's 64-row sum is associated (one GEMM over 64
//! rows against four 16-row GEMMs summed in micro-batch order; the 1/64 against 1/16 then
//! 1/4 scalings are exact powers of two). A reassociated n-term sum differs by at most
//! n·EPS·Σ|terms|; with n = 64 and each row's term |∂ℓ/∂w| ≤ 1 (inputs and tanh in [−1, 1],
//! softmax gradients in [−1, 1]) divided by 64, that is ≤ 64·EPS ≈ 7.6e-6 per gradient
//! element, × lr 0.5 × 3 updates ≈ 1.1e-5 on a weight; TOL = 1.2e-5.

use accrete::nn::presets;
use accrete::optim::{CosineCycle, OptimKind, OptimizerSpec, Schedule};
use accrete::train::{Checkpoint, ChunkOptions, ChunkOutcome, Observer, TrainSpec, Trainer};
use accrete_tests::*;

const TOL: f64 = 1.2e-5;

fn sgd() -> OptimizerSpec {
    let mut o = OptimizerSpec::new(OptimKind::Sgd, 0.5);
    o.schedule = Schedule::Cosine {
        warmup_steps: 1,
        total_steps: 0,
        min_lr: 0.0,
        cycle: CosineCycle::Chunk,
    };
    o
}

fn trainer(batch: usize, k: usize, optimizer: OptimizerSpec, epochs: usize) -> Trainer {
    let train = TrainSpec {
        batch_size: batch,
        accumulate_steps: k,
        epochs,
        ..Default::default()
    };
    Trainer::new(gpu(), presets::mlp(2, &[16], 3), optimizer, train, 11).unwrap()
}

fn weights(t: &Trainer) -> Vec<f32> {
    let c = pollster::block_on(t.checkpoint()).unwrap();
    c.tensors
        .iter()
        .filter(|x| x.name.starts_with("layers."))
        .flat_map(|x| x.data.clone())
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

#[test]
fn k_micro_batches_equal_one_batch_of_k_times_b() {
    // 192 samples: 3 updates of 64 either way.
    let data = spirals(64, 3);
    let mut big = trainer(64, 1, sgd(), 1);
    let mut acc = trainer(16, 4, sgd(), 1);
    let mut small = trainer(16, 1, sgd(), 1);
    let w0 = weights(&big);
    for t in [&mut big, &mut acc, &mut small] {
        pollster::block_on(t.fit_chunk(&data)).unwrap();
    }
    let (wb, wa, ws) = (weights(&big), weights(&acc), weights(&small));
    let d = max_diff(&wb, &wa);
    eprintln!(
        "accumulate 4 × 16 vs batch 64: max |Δw| = {d:.3e} (tolerance {TOL:.1e}); moved {:.3e}; 16 without accumulation differs by {:.3e}",
        max_diff(&w0, &wb),
        max_diff(&wb, &ws)
    );
    assert!(d <= TOL, "max |Δw| {d} > {TOL}");
    assert!(max_diff(&w0, &wb) > 1000.0 * TOL, "training did not move");
    assert!(
        max_diff(&wb, &ws) > 100.0 * TOL,
        "accumulation had no effect"
    );
    // Steps, the schedule and the logged rate count optimizer updates.
    assert_eq!((big.step, acc.step, small.step), (3, 3, 12));
    assert_eq!(acc.epoch_rates(), big.epoch_rates());
    assert_eq!(acc.epoch_rates().len(), 3);
    let lr = |t: &Trainer| match t.history.last() {
        Some(accrete::train::Event::Epoch(r)) => r.lr,
        other => panic!("no epoch record: {other:?}"),
    };
    assert_eq!(lr(&acc), lr(&big));
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
fn accumulation_resumes_exactly_and_pads_the_last_update() {
    // 100 samples in micro-batches of 8: 13 micro-batches, 5 updates of 3 (the last holds one
    // real micro-batch and two empty ones); Adam, 2 epochs, a checkpoint every 2 updates.
    let data = spirals(34, 5).take(100);
    let opts = ChunkOptions {
        checkpoint_every_steps: Some(2),
        ..ChunkOptions::default()
    };
    let mut straight = trainer(8, 3, OptimizerSpec::adam(0.01), 2);
    let mut keep = Keep(Vec::new());
    let out = pollster::block_on(straight.fit_chunk_with(&data, &opts, &mut keep)).unwrap();
    assert!(matches!(out, ChunkOutcome::Done(ref s) if s.len() == 2 && s[0].samples == 100));
    assert_eq!(straight.step, 10);
    let end = pollster::block_on(straight.checkpoint()).unwrap();
    let mid = keep
        .0
        .iter()
        .find(|c| c.meta.cursor.epoch_in_chunk == 1 && c.meta.cursor.step_in_epoch > 0)
        .expect("a mid-epoch checkpoint in the second epoch")
        .clone();
    assert_eq!(mid.meta.train.accumulate_steps, 3);
    let bytes = mid.to_bytes().unwrap();
    let mut resumed =
        Trainer::from_checkpoint(gpu(), &Checkpoint::from_bytes(&bytes, "mid").unwrap()).unwrap();
    pollster::block_on(resumed.fit_chunk_with(&data, &opts, &mut Keep(Vec::new()))).unwrap();
    let again = pollster::block_on(resumed.checkpoint()).unwrap();
    assert_same_state(&again, &end);
}

#[test]
fn zero_accumulation_steps_are_refused() {
    let train = TrainSpec {
        accumulate_steps: 0,
        ..Default::default()
    };
    let e = Trainer::new(gpu(), presets::mlp(2, &[4], 2), sgd(), train, 0)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("train.accumulate_steps"), "{e}");
}
