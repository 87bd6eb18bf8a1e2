//! Local data parallelism (`[parallel] backend = "local"`): two replicas, each its own
//! device on the test adapter, stay byte-identical after a chunk (all-reduce and local
//! SGD), match one device training on the same global batch, and resume exactly.
//!
//! Tolerance against one device (plain SGD, batch 32 = 2 shards of 16): the runs differ in
//! how each gradient's 32-row sum is associated (one GEMM over 32 rows against two 16-row
//! GEMMs summed on the host, then × 1/2, exact). A reassociated n-term sum differs by at
//! most n·EPS·Σ|terms|; each row's term is ≤ 1 in magnitude divided by 32, so ≤ 32·EPS ≈
//! 3.8e-6 per gradient element, × lr 0.5 × 6 updates ≈ 1.1e-5 on a weight; TOL = 1.2e-5.

use accrete::nn::presets;
use accrete::optim::{OptimKind, OptimizerSpec};
use accrete::train::{Checkpoint, ChunkOptions, Observer, TrainSpec, Trainer};
use accrete::Gpu;
use accrete_tests::*;
use std::sync::OnceLock;

const TOL: f64 = 1.2e-5;

/// A second device on the test adapter (replica 1).
fn second_gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| pollster::block_on(Gpu::new()).expect("a second device"))
}

fn trainer(batch: usize, optimizer: OptimizerSpec, epochs: usize) -> Trainer {
    let train = TrainSpec {
        batch_size: batch,
        epochs,
        ..Default::default()
    };
    Trainer::new(gpu(), presets::mlp(2, &[16], 3), optimizer, train, 17).unwrap()
}

fn sgd() -> OptimizerSpec {
    OptimizerSpec::new(OptimKind::Sgd, 0.5)
}

fn flat(tensors: &[accrete::checkpoint::NamedTensor]) -> Vec<f32> {
    tensors
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

fn assert_replicas_identical(t: &Trainer, what: &str) {
    let reps = pollster::block_on(t.replica_parameters()).unwrap();
    assert_eq!(reps.len(), 2);
    for (a, b) in reps[0].iter().zip(&reps[1]) {
        assert_eq!(a.name, b.name);
        let (x, y): (Vec<u32>, Vec<u32>) = (
            a.data.iter().map(|v| v.to_bits()).collect(),
            b.data.iter().map(|v| v.to_bits()).collect(),
        );
        assert!(
            x == y,
            "{what}: replica 1's {} differs from replica 0's",
            a.name
        );
    }
}

#[test]
fn two_replicas_stay_identical_and_match_one_device() {
    // 192 samples, batch 32: 6 updates.
    let data = spirals(64, 8);
    let mut one = trainer(32, sgd(), 1);
    let mut two = trainer(32, sgd(), 1);
    two.enable_replicas(std::slice::from_ref(second_gpu()), 1)
        .unwrap();
    assert_eq!(two.replicas(), 2);
    let w0 = flat(&pollster::block_on(one.checkpoint()).unwrap().tensors);
    let s1 = pollster::block_on(one.fit_chunk(&data)).unwrap();
    let s2 = pollster::block_on(two.fit_chunk(&data)).unwrap();
    assert_replicas_identical(&two, "all-reduce");
    assert_eq!(
        s2[0].samples, 192,
        "every sample trained once over the replicas"
    );
    let (w1, w2) = (
        flat(&pollster::block_on(one.checkpoint()).unwrap().tensors),
        flat(&pollster::block_on(two.checkpoint()).unwrap().tensors),
    );
    let d = max_diff(&w1, &w2);
    eprintln!(
        "2 replicas × 16 vs 1 device × 32: max |Δw| = {d:.3e} (tolerance {TOL:.1e}); moved {:.3e}; loss {} vs {}",
        max_diff(&w0, &w1),
        s1[0].loss,
        s2[0].loss
    );
    assert!(d <= TOL, "max |Δw| {d} > {TOL}");
    assert!(max_diff(&w0, &w1) > 1000.0 * TOL, "training did not move");
    assert!((s1[0].loss - s2[0].loss).abs() < 1e-4);
    let c = two.comm_stats();
    assert_eq!(c.reductions, 6, "one all-reduce per update");
    assert!(c.bytes > 0 && c.seconds > 0.0);
}

#[test]
fn local_sgd_averages_parameters_and_moments() {
    let data = spirals(64, 9);
    let mut t = trainer(32, OptimizerSpec::adam(0.01), 1);
    t.enable_replicas(std::slice::from_ref(second_gpu()), 4)
        .unwrap();
    pollster::block_on(t.fit_chunk(&data)).unwrap();
    // 6 updates: averaged after step 4 and at the epoch's end.
    assert_eq!(t.comm_stats().reductions, 2);
    assert_replicas_identical(&t, "local SGD (K = 4)");
    let reps = pollster::block_on(t.replica_parameters()).unwrap();
    assert!(reps[0].iter().any(|x| x.name.starts_with("optimizer.")));
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
fn replicas_resume_exactly() {
    let data = spirals(40, 4); // 120 samples, batch 16: 8 updates (the last of 8 rows).
    for sync_every in [1, 3] {
        let opts = ChunkOptions {
            checkpoint_every_steps: Some(5),
            ..ChunkOptions::default()
        };
        let mut straight = trainer(16, OptimizerSpec::adam(0.01), 2);
        straight
            .enable_replicas(std::slice::from_ref(second_gpu()), sync_every)
            .unwrap();
        let mut keep = Keep(Vec::new());
        pollster::block_on(straight.fit_chunk_with(&data, &opts, &mut keep)).unwrap();
        assert_replicas_identical(&straight, "after two epochs");
        let end = pollster::block_on(straight.checkpoint()).unwrap();
        let mid = keep
            .0
            .iter()
            .find(|c| c.meta.cursor.epoch_in_chunk == 1 && c.meta.cursor.step_in_epoch > 0)
            .expect("a mid-epoch checkpoint")
            .clone();
        let bytes = mid.to_bytes().unwrap();
        let mut resumed =
            Trainer::from_checkpoint(gpu(), &Checkpoint::from_bytes(&bytes, "mid").unwrap())
                .unwrap();
        resumed
            .enable_replicas(std::slice::from_ref(second_gpu()), sync_every)
            .unwrap();
        pollster::block_on(resumed.fit_chunk_with(&data, &opts, &mut Keep(Vec::new()))).unwrap();
        let again = pollster::block_on(resumed.checkpoint()).unwrap();
        assert_same_state(&again, &end);
    }
}

#[test]
fn a_batch_the_replicas_do_not_divide_is_refused() {
    let mut t = trainer(15, sgd(), 1);
    t.enable_replicas(std::slice::from_ref(second_gpu()), 1)
        .unwrap();
    let e = pollster::block_on(t.fit_chunk(&spirals(20, 1)))
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("train.batch_size") && e.contains("multiple of 2"),
        "{e}"
    );
    let e = t
        .enable_replicas(std::slice::from_ref(second_gpu()), 0)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("parallel.sync_every"), "{e}");
}
