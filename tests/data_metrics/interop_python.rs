//! Interop: Python with numpy + safetensors (no accrete code) reads a checkpoint, recomputes
//! the forward pass from the PyTorch-layout weights and reproduces accrete's predictions.
//! Needs `pip install numpy safetensors` (scripts/test.sh installs them).

use accrete::checkpoint::write_atomic;
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete_tests::*;
use std::process::Command;

#[test]
fn numpy_reproduces_predictions_from_a_checkpoint() {
    let data = quadrant_images(120, 31);
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let train = TrainSpec {
        batch_size: 32,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), small_cnn(), OptimizerSpec::adam(0.01), train, 3).unwrap();
    for _ in 0..2 {
        pollster::block_on(t.fit_epoch(&d)).unwrap();
    }
    let probs = pollster::block_on(t.predict(&d, 50)).unwrap();
    let dir = std::env::temp_dir().join(format!("accrete-interop-{}", std::process::id()));
    let ckpt = dir.join("model.safetensors");
    let inputs = dir.join("inputs.safetensors");
    write_atomic(
        &ckpt,
        &pollster::block_on(t.checkpoint())
            .unwrap()
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    let x_shape = [data.len(), 1, 8, 8];
    let p_shape = [data.len(), 4];
    write_atomic(
        &inputs,
        &plain_safetensors(&[("x", &x_shape, &data.features), ("probs", &p_shape, &probs)]),
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_checkpoint.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&ckpt)
        .arg(&inputs)
        .output()
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the interop test needs numpy and safetensors: pip install numpy safetensors\n{stderr}"
    );
    eprintln!("python: {stdout}");
    assert!(
        out.status.success(),
        "numpy disagrees with accrete: {stdout}{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
