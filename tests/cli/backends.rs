//! One run on two backends: `accrete --backend cpu train`, stopped mid-chunk, continues with
//! `accrete --backend gpu resume` (lavapipe here), and the other way round. The resumed run
//! keeps the history up to the checkpoint exactly and then follows the single-backend run
//! within the rounding of the other backend's kernels; on one backend the resume is
//! byte-identical (tested in commands.rs).

use super::commands::{blobs_dir, events_without_timing, ok, BLOBS_CONFIG};
use accrete::train::Checkpoint;
use std::path::Path;

/// Copies a finished run and rewinds it to `step`'s checkpoint, as a run killed after that
/// checkpoint leaves it (resume rebuilds metrics.jsonl from the checkpoint's history).
fn rewound(dir: &Path, from: &str, to: &str, step: u64) {
    let (src, dst) = (dir.join(from), dir.join(to));
    std::fs::create_dir_all(dst.join("checkpoints")).unwrap();
    for f in ["config.toml", "metrics.jsonl"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    std::fs::copy(
        src.join(format!("checkpoints/step-{step}.safetensors")),
        dst.join("checkpoints/last.safetensors"),
    )
    .unwrap();
}

fn rows(run: &Path, event: &str) -> Vec<serde_json::Value> {
    events_without_timing(run)
        .into_iter()
        .filter(|v| v["event"] == event)
        .collect()
}

#[test]
fn a_run_moves_between_the_cpu_and_the_gpu_backend() {
    // 2 chunks × 2 epochs × 8 steps; a checkpoint every 4 steps, all kept.
    let config = BLOBS_CONFIG.replace("keep_last = 2", "keep_last = 100");
    for (first, then) in [("cpu", "gpu"), ("gpu", "cpu")] {
        let dir = blobs_dir(&format!("backends_{first}_{then}"), &config);
        let quiet = ["--config", "run.toml", "--quiet"];
        ok(
            &dir,
            &[
                &["--backend", first, "train", "--out", "straight"][..],
                &quiet,
            ]
            .concat(),
        );
        let straight =
            Checkpoint::read_file(&dir.join("straight/checkpoints/last.safetensors")).unwrap();
        assert_eq!(straight.meta.step, 32, "{first}: steps of the run");
        // Step 20: chunk 2, epoch 1, after its 4th step.
        rewound(&dir, "straight", "moved", 20);
        ok(&dir, &["--backend", then, "resume", "moved", "--quiet"]);
        let moved = Checkpoint::read_file(&dir.join("moved/checkpoints/last.safetensors")).unwrap();
        let what = format!("trained on {first}, resumed on {then}");
        assert_eq!(
            (moved.meta.step, moved.meta.epoch, &moved.meta.cursor),
            (
                straight.meta.step,
                straight.meta.epoch,
                &straight.meta.cursor
            ),
            "{what}: where the runs end"
        );

        // The history before the checkpoint is the first backend's, exactly.
        let (a, b) = (
            rows(&dir.join("straight"), "epoch"),
            rows(&dir.join("moved"), "epoch"),
        );
        assert_eq!(a.len(), 4, "{what}: epoch rows");
        assert_eq!(a.len(), b.len(), "{what}: epoch rows");
        assert_eq!(a[..2], b[..2], "{what}: chunk 1's epochs");
        // After it, the other backend's kernels: the same path within rounding. A resume that
        // lost the Adam moments, the schedule or the data cursor moves the loss by far more
        // (lr 0.02: a step of 0.02 per weight).
        for (x, y) in a[2..].iter().zip(&b[2..]) {
            for key in ["train_loss", "val_loss"] {
                let (x, y) = (x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{what}: {key} {x} on {first} alone, {y} after moving"
                );
            }
        }
        let mut worst = 0f32;
        for (x, y) in straight.tensors.iter().zip(&moved.tensors) {
            assert_eq!((&x.name, &x.shape), (&y.name, &y.shape), "{what}");
            for (&p, &q) in x.data.iter().zip(&y.data) {
                worst = worst.max((p - q).abs() / p.abs().max(1.0));
            }
        }
        eprintln!("{what}: largest weight/state difference {worst:e} (relative to max(1, |w|))");
        assert!(worst <= 1e-5, "{what}: tensors differ by {worst:e}");
    }
}
