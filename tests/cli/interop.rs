//! ONNX export and TensorBoard logs, checked by the ecosystem's own readers:
//! `tests/python/check_onnx_export.py` runs the exported graphs in onnxruntime (CPU) and
//! compares them with `accrete predict` (within 1e-5), for an MLP and a small CNN with
//! pooling, both standardised; `tests/python/check_tensorboard.py` loads the event files
//! with TensorBoard's EventAccumulator and compares them with metrics.jsonl, for a finished
//! run and for one resumed from an older checkpoint than its files had reached. Python
//! packages: numpy, onnx, onnxruntime, tensorboard (scripts/test.sh installs them).

use super::commands::{
    blobs_csv, blobs_run, noise, ok, ok_both, run, scratch, settings::copy_dir, text,
};
use accrete::train::Checkpoint;
use std::path::Path;
use std::process::Command;

/// Runs a script of tests/python with `args` in `dir`, asserting success; returns stdout.
fn python(dir: &Path, script: &str, args: &[&str], packages: &str) -> String {
    let script = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .current_dir(dir)
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 must be installed");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "needs {packages}: python3 -m pip install {packages}\n{stderr}"
    );
    eprintln!("python: {stdout}");
    assert!(out.status.success(), "{script}:\n{stdout}{stderr}");
    stdout
}

/// Exports `ckpt` (with and without softmax), predicts `inputs` with `accrete predict` and
/// has onnxruntime reproduce it.
fn onnx_matches_predict(dir: &Path, ckpt: &str, inputs: &str) -> String {
    let (_, err) = ok_both(
        dir,
        &[
            "export",
            ckpt,
            "--format",
            "onnx",
            "--out",
            "p.onnx",
            "--softmax",
        ],
    );
    assert!(
        err.contains("output \"probabilities\"") && err.contains("first Sub/Div"),
        "{err}"
    );
    ok(
        dir,
        &["export", ckpt, "--format", "onnx", "--out", "z.onnx"],
    );
    ok(
        dir,
        &[
            "predict",
            ckpt,
            "--input",
            inputs,
            "--output",
            "predict.csv",
        ],
    );
    python(
        dir,
        "check_onnx_export.py",
        &["p.onnx", "z.onnx", inputs, "predict.csv"],
        "numpy onnx onnxruntime",
    )
}

/// 8×8 single-channel images of three classes (a bright row, column or diagonal) plus
/// noise, scaled by 50 so that standardisation matters; `label` column when `labelled`.
fn bars_csv(n: usize, offset: usize, labelled: bool) -> String {
    let mut s: String = (0..64).map(|i| format!("p{i},")).collect();
    s.pop();
    s += if labelled { ",label\n" } else { "\n" };
    for i in 0..n {
        let k = i + offset;
        let c = k % 3;
        let mut cells = Vec::with_capacity(65);
        for p in 0..64 {
            let (r, col) = (p / 8, p % 8);
            let on = match c {
                0 => r == 3,
                1 => col == 4,
                _ => r == col,
            };
            let v = 50.0 * (f32::from(u8::from(on)) + 0.3 * noise(64 * k + p));
            cells.push(v.to_string());
        }
        if labelled {
            cells.push(c.to_string());
        }
        s += &cells.join(",");
        s.push('\n');
    }
    s
}

const CNN_CONFIG: &str = r#"seed = 3

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
standardize = true

[model]
input = [1, 8, 8]
layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = 1, activation = "relu" },
  { type = "maxpool2d", size = 2 },
  { type = "conv2d", filters = 4, kernel = 3, activation = "gelu" },
  { type = "avgpool2d", size = 2 },
  { type = "flatten" },
  { type = "dropout", rate = 0.25 },
  { type = "dense", units = 8, activation = "elu" },
  { type = "activation", activation = "sigmoid" },
  { type = "dense", units = 3 },
]

[optimizer]
type = "adam"
lr = 0.01

[train]
batch_size = 20
epochs = 2

[incremental]
chunks = 1
"#;

#[test]
fn onnx_export_runs_in_onnxruntime_like_predict() {
    // The MLP: dense(16, tanh), dense(3), standardised blobs.
    let dir = blobs_run();
    let unlabelled: String = blobs_csv(50, 700)
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("onnx_in.csv"), unlabelled).unwrap();
    let out = onnx_matches_predict(dir, "run/checkpoints/last.safetensors", "onnx_in.csv");
    assert!(out.contains("Sub Div Gemm Tanh Gemm Softmax"), "{out}");

    // The CNN: conv, max and average pooling, GELU, ELU, a standalone sigmoid, dropout.
    let dir = scratch("onnx_cnn");
    std::fs::write(dir.join("train.csv"), bars_csv(60, 0, true)).unwrap();
    std::fs::write(dir.join("test.csv"), bars_csv(15, 500, true)).unwrap();
    std::fs::write(dir.join("in.csv"), bars_csv(30, 900, false)).unwrap();
    std::fs::write(dir.join("run.toml"), CNN_CONFIG).unwrap();
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    let out = onnx_matches_predict(&dir, "run/checkpoints/last.safetensors", "in.csv");
    assert!(
        out.contains("Sub Div Conv Relu MaxPool Conv Mul")
            && out.contains("AveragePool Flatten Gemm Elu Sigmoid Gemm Softmax"),
        "{out}"
    );
}

#[test]
fn onnx_export_refuses_bad_formats_options_and_checkpoints() {
    let dir = blobs_run();
    let ckpt = "run/checkpoints/last.safetensors";
    let refused = |args: &[&str], parts: &[&str], out: &str| {
        let o = run(dir, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for p in parts {
            assert!(err.contains(p), "{args:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!dir.join(out).exists(), "{out} written");
    };
    refused(
        &["export", ckpt, "--format", "tflite", "--out", "a.onnx"],
        &["tflite", "pytorch", "onnx"],
        "a.onnx",
    );
    refused(
        &["export", "test.csv", "--format", "onnx", "--out", "b.onnx"],
        &["test.csv"],
        "b.onnx",
    );
    refused(
        &[
            "export",
            ckpt,
            "--format",
            "pytorch",
            "--out",
            "c.st",
            "--softmax",
        ],
        &["--softmax", "onnx only"],
        "c.st",
    );
    // A checkpoint without one of its model's tensors cannot be exported.
    let mut c = Checkpoint::read_file(&dir.join(ckpt)).unwrap();
    c.tensors.retain(|t| t.name != "layers.1.bias");
    std::fs::write(dir.join("partial.safetensors"), c.to_bytes().unwrap()).unwrap();
    refused(
        &[
            "export",
            "partial.safetensors",
            "--format",
            "onnx",
            "--out",
            "d.onnx",
        ],
        &["has no tensor layers.1.bias", "cannot be exported"],
        "d.onnx",
    );
}

/// A finished run's event files match its metrics.jsonl; so do those of a copy resumed from
/// its step-28 checkpoint, whose files had reached step 32 (TensorBoard drops the steps
/// after 28 of the first file and the resumed process rewrites them once).
#[test]
fn tensorboard_logs_match_metrics_jsonl_also_after_a_resume() {
    let dir = blobs_run();
    let files = |run: &str| -> Vec<String> {
        let mut f: Vec<String> = std::fs::read_dir(dir.join(run).join("tensorboard"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    let first = files("run");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("events.out.tfevents."), "{first:?}");
    let out = python(dir, "check_tensorboard.py", &["run"], "numpy tensorboard");
    assert!(out.starts_with("1 event files"), "{out}");

    let resumed = dir.join("tb_resumed");
    let _ = std::fs::remove_dir_all(&resumed);
    copy_dir(&dir.join("run"), &resumed);
    std::fs::copy(
        dir.join("run/checkpoints/step-28.safetensors"),
        resumed.join("checkpoints/last.safetensors"),
    )
    .unwrap();
    ok(dir, &["resume", "tb_resumed", "--quiet"]);
    assert_eq!(files("tb_resumed").len(), 2);
    let out = python(
        dir,
        "check_tensorboard.py",
        &["tb_resumed"],
        "numpy tensorboard",
    );
    assert!(out.starts_with("2 event files"), "{out}");
    // The resumed process wrote the steps after 28 once more, nothing before.
    let newest = &files("tb_resumed")[1];
    let bytes = std::fs::read(resumed.join("tensorboard").join(newest)).unwrap();
    let c = accrete::interop::tensorboard::read(&bytes);
    assert_eq!(c.restarts, [29]);
    assert!(!c.scalars.is_empty() && c.scalars.iter().all(|s| s.step > 28));
}
