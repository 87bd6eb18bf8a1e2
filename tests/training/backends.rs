//! The CPU backend against the WebGPU one (lavapipe here): the same small model trained from
//! the same seed on `Gpu::cpu()` and on a GPU adapter gives per-epoch losses that agree
//! within 1e-3 relative (the backends sum in different orders — tiled GEMMs versus the CPU's
//! blocked loops — so bits differ, but the trajectories must not); and a checkpoint taken on
//! one backend resumes on the other and continues as the run that stayed put does.

use accrete::optim::OptimizerSpec;
use accrete::train::{Checkpoint, TrainSpec, Trainer};
use accrete::{BackendChoice, Gpu, GpuOptions};
use accrete_tests::*;
use std::sync::OnceLock;

/// Relative agreement of the two backends' epoch losses.
const TOL: f64 = 1e-3;

fn cpu() -> &'static Gpu {
    static CPU: OnceLock<Gpu> = OnceLock::new();
    CPU.get_or_init(Gpu::cpu)
}

fn webgpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let opts = GpuOptions {
            backend: BackendChoice::Gpu,
            ..GpuOptions::from_env()
        };
        pollster::block_on(Gpu::with_options(opts))
            .unwrap_or_else(|e| panic!("the backend comparison needs a WebGPU adapter: {e}"))
    })
}

fn trainer(gpu: &Gpu) -> Trainer {
    let spec = accrete::nn::presets::mlp(2, &[32, 32], 3);
    let train = TrainSpec {
        batch_size: 25,
        epochs: 3,
        ..Default::default()
    };
    Trainer::new(gpu, spec, OptimizerSpec::adam(0.01), train, 7).unwrap()
}

fn losses(t: &mut Trainer, seed: u64) -> Vec<f64> {
    let stats = pollster::block_on(t.fit_chunk(&spirals(100, seed))).unwrap();
    stats.iter().map(|s| s.loss).collect()
}

fn agree(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: epochs");
    for (e, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.is_finite() && y.is_finite(),
            "{what} epoch {e}: {x} vs {y}"
        );
        assert!(
            (x - y).abs() <= TOL * x.abs().max(y.abs()),
            "{what} epoch {e}: cpu {x} vs gpu {y} (relative tolerance {TOL})"
        );
    }
}

#[test]
fn cpu_and_gpu_train_the_same_model_alike() {
    let (mut c, mut g) = (trainer(cpu()), trainer(webgpu()));
    let (lc, lg) = (losses(&mut c, 81), losses(&mut g, 81));
    agree("chunk 1", &lc, &lg);
    assert!(lc.last() < lc.first(), "the model learns: {lc:?}");
    agree("chunk 2", &losses(&mut c, 82), &losses(&mut g, 82));
}

/// A checkpoint taken on `from` after one chunk resumes on `to`; chunk 2 there tracks
/// chunk 2 of the run that stayed on `from`.
fn round_trip(from: &'static Gpu, to: &'static Gpu, what: &str) {
    let mut stay = trainer(from);
    losses(&mut stay, 91);
    let ckpt = pollster::block_on(stay.checkpoint()).unwrap();
    // Through the file format, as a resume from disk would.
    let bytes = ckpt.to_bytes().unwrap();
    let read = Checkpoint::from_bytes(&bytes, "backends.ckpt").unwrap();
    let mut moved = Trainer::from_checkpoint(to, &read).unwrap();
    let back = pollster::block_on(moved.checkpoint()).unwrap();
    assert_eq!(
        back.tensors, ckpt.tensors,
        "{what}: the resumed trainer holds the checkpoint's tensors bit for bit"
    );
    agree(what, &losses(&mut stay, 92), &losses(&mut moved, 92));
}

#[test]
fn a_cpu_checkpoint_resumes_on_the_gpu() {
    round_trip(cpu(), webgpu(), "cpu → gpu");
}

#[test]
fn a_gpu_checkpoint_resumes_on_the_cpu() {
    round_trip(webgpu(), cpu(), "gpu → cpu");
}
