//! The `accrete` binary end to end, on tiny data: `train` writes a run directory (config,
//! metrics, checkpoints, report with PNG and SVG charts), `resume` continues exactly after
//! SIGKILL and after Ctrl-C, `eval` prints one JSON object, `predict` writes
//! probabilities, `report` redraws; and a table of malformed inputs, each of which must
//! fail with one `error: …` line naming the problem, exit status 2 and no panic.
//!
//! The binary is built (or found up to date) by `cargo build -p accrete-cli` in the same
//! target directory and profile as this test.

use accrete::config::RunConfig;
use accrete::train::Checkpoint;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `accrete` binary, built once per test process.
fn accrete_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/cli-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "accrete-cli", "--bin", "accrete"])
            .arg("--target-dir")
            .arg(target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p accrete-cli failed");
        let bin = profile_dir.join(format!("accrete{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A fresh scratch folder for one test (emptied at the start, kept afterwards for a look).
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(accrete_bin());
    cmd.current_dir(dir)
        .args(args)
        // Mesa's Vulkan loader complains on stderr without it.
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run accrete")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and asserts success, returning stdout.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "accrete {args:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs and asserts success, returning (stdout, stderr): results go to the first, progress
/// and status lines to the second.
pub(crate) fn ok_both(dir: &Path, args: &[&str]) -> (String, String) {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "accrete {args:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Deterministic noise in [-1, 1).
pub(crate) fn noise(i: usize) -> f32 {
    let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Three 2-D Gaussian-ish blobs (scaled by 10 so that standardisation matters), `n` rows.
pub(crate) fn blobs_csv(n: usize, offset: usize) -> String {
    let centres = [(-1.0f32, -1.0f32), (1.0, -0.5), (0.0, 1.0)];
    let mut s = String::from("x,y,label\n");
    for i in 0..n {
        let k = i + offset;
        let c = k % 3;
        let x = 10.0 * (centres[c].0 + 0.45 * noise(2 * k));
        let y = 10.0 * (centres[c].1 + 0.45 * noise(2 * k + 1));
        let _ = writeln!(s, "{x},{y},{c}");
    }
    s
}

pub(crate) const BLOBS_CONFIG: &str = r#"seed = 5

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
standardize = true
validation_fraction = 0.2
class_names = ["left", "right", "top"]

[model]
input = [2]
layers = [
  { type = "dense", units = 16, activation = "tanh" },
  { type = "dense", units = 3 },
]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 16
epochs = 2

[incremental]
chunks = 2
split_by = "count"

[checkpoint]
every_steps = 4
keep_last = 2
"#;

/// A folder with the blobs data and config.
pub(crate) fn blobs_dir(name: &str, config: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("train.csv"), blobs_csv(300, 0)).unwrap();
    std::fs::write(dir.join("test.csv"), blobs_csv(90, 10_000)).unwrap();
    std::fs::write(dir.join("run.toml"), config).unwrap();
    dir
}

/// One finished blobs run shared by the tests that only read it.
pub(crate) fn blobs_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = blobs_dir("blobs", BLOBS_CONFIG);
        let (stdout, stderr) = ok_both(&dir, &["train", "--config", "run.toml", "--out", "run"]);
        // stderr is not a terminal: plain log lines, one per epoch at least; the summary is
        // the one result, on stdout.
        assert!(
            stderr.contains("chunk 2/2 epoch 2/2: train loss"),
            "{stderr}"
        );
        assert!(!stderr.contains("done: "), "{stderr}");
        assert!(stdout.starts_with("done: test accuracy"), "{stdout}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        dir
    })
}

pub(crate) fn tensors_equal(a: &Path, b: &Path) {
    let (a, b) = (
        Checkpoint::read_file(a).unwrap(),
        Checkpoint::read_file(b).unwrap(),
    );
    let names = |c: &accrete::train::Checkpoint| -> Vec<String> {
        c.tensors.iter().map(|t| t.name.clone()).collect()
    };
    assert_eq!(names(&a), names(&b));
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(
            x.shape == y.shape && bits(&x.data) == bits(&y.data),
            "tensor {} differs between the runs",
            x.name
        );
    }
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor),
        (b.meta.step, b.meta.epoch, &b.meta.cursor)
    );
}

/// Every event of metrics.jsonl, without the timing column.
pub(crate) fn events_without_timing(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("samples_per_sec");
            v
        })
        .collect()
}

/// The epoch rows of metrics.jsonl, without the timing column.
fn metrics_without_timing(run: &Path) -> Vec<serde_json::Value> {
    events_without_timing(run)
        .into_iter()
        .filter(|v| v["event"] == "epoch")
        .collect()
}

#[test]
fn train_writes_config_metrics_checkpoints_and_report() {
    let dir = blobs_run();
    let run = dir.join("run");
    // The resolved configuration reads back as the one given.
    let given = RunConfig::from_toml(BLOBS_CONFIG, "given").unwrap();
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert_eq!(RunConfig::from_toml(&saved, "saved").unwrap(), given);
    // One metrics row per epoch (2 chunks × 2 epochs), with validation, and after each
    // chunk's last epoch the chunk-end evaluation on the test data (split by count: no
    // tasks, so no per-task accuracies).
    let events = events_without_timing(&run);
    assert_eq!(events.len(), 6, "{events:?}");
    for i in [2, 5] {
        let e = &events[i];
        assert_eq!(e["event"], "chunk_end", "{e}");
        assert_eq!(
            (e["chunk"].as_u64(), e["samples"].as_u64()),
            (Some(i as u64 / 3), Some(90))
        );
        assert!(
            e["accuracy"].is_number() && e.get("task_accuracy").is_none(),
            "{e}"
        );
    }
    let rows: Vec<_> = events
        .into_iter()
        .filter(|e| e["event"] == "epoch")
        .collect();
    assert_eq!(rows.len(), 4);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["event"], "epoch", "{r}");
        assert_eq!(r["epoch_in_chunk"], i as u64 % 2 + 1, "{r}");
        assert_eq!(r["epoch"], i as u64 + 1);
        assert_eq!(r["chunk"], i as u64 / 2);
        for key in [
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "step",
        ] {
            assert!(r[key].is_number(), "row {i} lacks {key}: {r}");
        }
    }
    assert_eq!(rows[0]["lr"], 0.02);
    // Checkpoints: last, best, and the two newest step-N files.
    let ck = run.join("checkpoints");
    let mut files: Vec<String> = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let last = Checkpoint::read_file(&ck.join("last.safetensors")).unwrap();
    let steps = last.meta.step;
    assert_eq!(steps, rows[3]["step"].as_u64().unwrap());
    assert_eq!(&files[..2], ["best.safetensors", "last.safetensors"]);
    let step_files = files.iter().filter(|f| f.starts_with("step-")).count();
    assert_eq!(step_files, 2, "{files:?}");
    assert!(
        files.contains(&format!("step-{steps}.safetensors")),
        "{files:?}"
    );
    // The standardizer travels in the checkpoint.
    assert!(last.meta.preprocessing.is_some());
    // The report: markdown with the tables, JSON, and every chart as PNG and SVG.
    let rep = run.join("report");
    for name in [
        "loss",
        "accuracy",
        "confusion_counts",
        "confusion_normalized",
        "decision_boundary",
    ] {
        let png = std::fs::read(rep.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
            "{name}.png"
        );
        let svg = std::fs::read_to_string(rep.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}.svg");
        let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
        assert!(
            md.contains(&format!("]({name}.png)")),
            "report.md does not link {name}.png"
        );
    }
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    for needle in [
        "## Per class",
        "| 2 | top |",
        "**macro**",
        "## Top confusions",
        "ROC AUC",
        "evaluated on the test data (90 samples)",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(eval["samples"], 90);
    assert!(eval["accuracy"].as_f64().unwrap() > 0.8, "{eval}");
}

/// `[train] early_stopping` and a reduce-on-plateau schedule act in `accrete train`: the
/// trainer validates after every epoch, a chunk stops once the validation loss has not
/// improved for `patience` epochs, and the plateau cuts the rate.
#[test]
fn train_stops_chunks_early_and_reduces_the_rate_on_plateaus() {
    let config = BLOBS_CONFIG
        .replace("epochs = 2", "epochs = 40\nearly_stopping = { patience = 2, min_delta = 5.0 }")
        .replace(
            "lr = 0.02",
            "lr = 0.02\nschedule = { type = \"reduce_on_plateau\", factor = 0.5, patience = 0, threshold = 0.5 }",
        );
    let dir = blobs_dir("early", &config);
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    let rows = metrics_without_timing(&dir.join("run"));
    // min_delta = 5 is out of reach: every chunk stops after 1 + patience epochs.
    assert_eq!(rows.len(), 2 * 3, "{rows:?}");
    assert!(rows.iter().all(|r| r["val_loss"].is_number()));
    let lrs: Vec<f64> = rows.iter().map(|r| r["lr"].as_f64().unwrap()).collect();
    assert!(
        lrs.last().unwrap() < &0.02,
        "the plateau never cut the rate: {lrs:?}"
    );
    // The early stops are in the history too, tagged.
    let stops = events_without_timing(&dir.join("run"))
        .into_iter()
        .filter(|v| v["event"] == "early_stop_chunk")
        .count();
    assert_eq!(stops, 2);
}

/// `train.mixed_precision = true` (lavapipe has SHADER_F16): the run trains, and every
/// metrics row carries the loss scale and the skipped-step count.
#[test]
fn mixed_precision_runs_report_the_loss_scale() {
    let config = BLOBS_CONFIG.replace(
        "epochs = 2",
        "epochs = 2\nmixed_precision = { init_scale = 1024, growth_interval = 5 }",
    );
    let dir = blobs_dir("mixed", &config);
    let (out, err) = ok_both(&dir, &["train", "--config", "run.toml", "--out", "run"]);
    assert!(err.contains("loss scale"), "{err}");
    let rows = metrics_without_timing(&dir.join("run"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        let s = r["loss_scale"].as_f64().expect("loss_scale in every row");
        assert!(s >= 1024.0 && s.log2().fract() == 0.0, "{r}");
        assert_eq!(r["skipped_steps"], 0, "{r}");
    }
    // growth_interval 5: 15 steps per epoch grow the scale.
    assert!(rows.last().unwrap()["loss_scale"].as_f64().unwrap() > 1024.0);
    let acc: f64 = out
        .lines()
        .find_map(|l| l.split("done: test accuracy").nth(1))
        .and_then(|t| {
            t.trim()
                .trim_end_matches('%')
                .split_whitespace()
                .next()?
                .trim_end_matches('%')
                .parse()
                .ok()
        })
        .expect("test accuracy line");
    assert!(acc > 80.0, "{out}");
}

#[test]
fn quiet_prints_nothing_and_an_existing_run_is_never_overwritten() {
    let dir = blobs_dir("quiet", &BLOBS_CONFIG.replace("epochs = 2", "epochs = 1"));
    let out = run(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let before = std::fs::read(dir.join("run/checkpoints/last.safetensors")).unwrap();
    let again = run(&dir, &["train", "--config", "run.toml", "--out", "run"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already holds files"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("run/checkpoints/last.safetensors")).unwrap(),
        before
    );
    // Resuming a finished run trains nothing and redraws the report.
    std::fs::remove_dir_all(dir.join("run/report")).unwrap();
    ok(&dir, &["resume", "run", "--quiet"]);
    assert!(dir.join("run/report/report.md").exists());
    assert_eq!(
        std::fs::read(dir.join("run/checkpoints/last.safetensors")).unwrap(),
        before
    );
}

#[test]
fn eval_prints_one_json_object_with_per_class_scores() {
    let dir = blobs_run();
    let ckpt = "run/checkpoints/last.safetensors";
    let stdout = ok(dir, &["eval", ckpt, "--csv", "test.csv"]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["samples"], 90);
    assert_eq!(e["per_class"].as_array().unwrap().len(), 3);
    for key in ["precision", "recall", "f1", "support", "auc"] {
        assert!(
            !e["per_class"][0][key].is_null(),
            "per_class lacks {key}: {e}"
        );
    }
    for key in [
        "loss",
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "micro_f1",
    ] {
        assert!(e[key].is_number(), "lacks {key}: {e}");
    }
    // The same numbers as the report's evaluation (the standardizer in the checkpoint is
    // applied to the raw CSV).
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run/report/evaluation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(e["accuracy"], saved["accuracy"]);
    assert_eq!(e["confusion"], saved["confusion"]);
    let limited: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["eval", ckpt, "--csv", "test.csv", "--limit", "10"],
    ))
    .unwrap();
    assert_eq!(limited["samples"], 10);
}

#[test]
fn predict_writes_probabilities_for_csv_and_idx_inputs() {
    let dir = blobs_run();
    // A table without a label column.
    let table: String = blobs_csv(7, 500)
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("unlabelled.csv"), table).unwrap();
    let out = ok(
        dir,
        &[
            "predict",
            "run/checkpoints/best.safetensors",
            "--input",
            "unlabelled.csv",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "p0,p1,p2");
    assert_eq!(lines.len(), 8);
    for l in &lines[1..] {
        let p: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{l}");
    }
    // With the label column (ignored) and --output.
    ok(
        dir,
        &[
            "predict",
            "run/checkpoints/last.safetensors",
            "--input",
            "test.csv",
            "--output",
            "probs.csv",
        ],
    );
    let probs = std::fs::read_to_string(dir.join("probs.csv")).unwrap();
    assert_eq!(probs.lines().count(), 91);

    // IDX images for a model with 784 inputs: a tiny Fashion-MNIST run.
    let fm = fashion_run();
    let mut idx = vec![0u8, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28];
    idx.extend((0..5 * 784).map(|i| (i * 37 % 256) as u8));
    std::fs::write(fm.join("five.idx"), idx).unwrap();
    let out = ok(
        fm,
        &[
            "predict",
            "run/checkpoints/last.safetensors",
            "--input",
            "five.idx",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9");
}

/// A finished tiny Fashion-MNIST run (IDX data, 784 inputs).
pub(crate) fn fashion_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("fashion");
        std::fs::write(
            dir.join("run.toml"),
            "[data]\ntrain_limit = 300\ntest_limit = 100\n\n[model]\ninput = [784]\nlayers = [{ type = \"dense\", units = 16, activation = \"relu\" }, { type = \"dense\", units = 10 }]\n\n[train]\nbatch_size = 50\n\n[incremental]\nchunks = 1\n",
        )
        .unwrap();
        ok(&dir, &["train", "--config", "run.toml", "--out", "run", "--quiet"]);
        dir
    })
}

#[test]
fn eval_on_idx_data_and_report_regenerates() {
    let dir = fashion_run();
    let e: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["eval", "run/checkpoints/last.safetensors", "--limit", "40"],
    ))
    .unwrap();
    assert_eq!(e["samples"], 40);
    assert_eq!(e["per_class"].as_array().unwrap().len(), 10);
    let e: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "eval",
            "run/checkpoints/best.safetensors",
            "--split",
            "train",
            "--limit",
            "30",
            "--data-dir",
            accrete::config::DEFAULT_DATA_DIR,
        ],
    ))
    .unwrap();
    assert_eq!(e["samples"], 30);
    let rep = dir.join("run/report");
    std::fs::remove_dir_all(&rep).unwrap();
    let out = ok(dir, &["report", "run", "--checkpoint", "best"]);
    assert!(out.contains("test accuracy"), "{out}");
    assert!(rep.join("confusion_counts.png").exists());
    assert!(
        !rep.join("decision_boundary.png").exists(),
        "784 inputs have no 2-D boundary"
    );
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("checkpoints/best.safetensors"), "{md}");
}

/// The blobs run made long enough to be killed in the middle.
fn long_config() -> String {
    BLOBS_CONFIG
        .replace("epochs = 2", "epochs = 3")
        .replace("batch_size = 16", "batch_size = 4")
        .replace("every_steps = 4", "every_steps = 5")
        .replace("keep_last = 2", "keep_last = 0")
}

/// Waits until `path` exists (or the child exits / 120 s pass).
pub(crate) fn wait_for(child: &mut Child, path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "accrete exited ({status}) before {} appeared",
                path.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn resume_after_sigkill_matches_an_uninterrupted_run() {
    let dir = blobs_dir("sigkill", &long_config());
    ok(
        &dir,
        &[
            "train", "--config", "run.toml", "--out", "straight", "--quiet",
        ],
    );

    let mut child = command(
        &dir,
        &[
            "train", "--config", "run.toml", "--out", "killed", "--quiet",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for(&mut child, &dir.join("killed/checkpoints/last.safetensors"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at = Checkpoint::read_file(&dir.join("killed/checkpoints/last.safetensors")).unwrap();
    assert!(
        !dir.join("killed/report").exists(),
        "the run finished before the kill"
    );
    let total = Checkpoint::read_file(&dir.join("straight/checkpoints/last.safetensors"))
        .unwrap()
        .meta
        .step;
    assert!(
        at.meta.step < total,
        "killed at step {} of {total}",
        at.meta.step
    );

    let (_, err) = ok_both(&dir, &["resume", "killed"]);
    assert!(err.contains("resuming"), "{err}");
    tensors_equal(
        &dir.join("straight/checkpoints/last.safetensors"),
        &dir.join("killed/checkpoints/last.safetensors"),
    );
    tensors_equal(
        &dir.join("straight/checkpoints/best.safetensors"),
        &dir.join("killed/checkpoints/best.safetensors"),
    );
    assert_eq!(
        events_without_timing(&dir.join("straight")),
        events_without_timing(&dir.join("killed"))
    );
}

/// Ctrl-C (SIGINT), SIGTERM (`kill`, `docker stop`, a scheduler's preemption) and SIGHUP
/// take the same path: a checkpoint, exit 130 with the resume command, and `accrete resume`
/// ends byte-identical to an uninterrupted run — here with a cosine schedule over the run,
/// whose plan must survive the stop.
#[cfg(unix)]
#[test]
fn stop_signals_checkpoint_stop_and_resume_exactly() {
    let config = long_config().replace(
        "lr = 0.02",
        "lr = 0.02\nschedule = { type = \"cosine\", warmup_steps = 3 }",
    );
    let dir = blobs_dir("signals", &config);
    ok(
        &dir,
        &[
            "train", "--config", "run.toml", "--out", "straight", "--quiet",
        ],
    );
    for signal in ["INT", "TERM", "HUP"] {
        let name = format!("stopped-{signal}");
        let mut child = command(&dir, &["train", "--config", "run.toml", "--out", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(
            &mut child,
            &dir.join(&name).join("checkpoints/last.safetensors"),
        );
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "SIG{signal}: {err}");
        assert!(
            err.contains(&format!("accrete resume {name}")),
            "SIG{signal}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            text(&out.stdout).is_empty(),
            "progress belongs on stderr: {}",
            text(&out.stdout)
        );
        assert!(
            !dir.join(&name).join("report").exists(),
            "SIG{signal} came too late"
        );
        // The checkpoint left behind loads.
        Checkpoint::read_file(&dir.join(&name).join("checkpoints/last.safetensors")).unwrap();
        ok(&dir, &["resume", &name, "--quiet"]);
        tensors_equal(
            &dir.join("straight/checkpoints/last.safetensors"),
            &dir.join(&name).join("checkpoints/last.safetensors"),
        );
        assert_eq!(
            events_without_timing(&dir.join("straight")),
            events_without_timing(&dir.join(&name)),
            "SIG{signal}"
        );
    }
}

/// A file in the scratch folder of the malformed-input table.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    message: &'static str,
}

const CSV_CONFIG: &str = "[data]\nformat = \"csv\"\ntrain_file = \"t.csv\"\n[model]\ninput = [2]\nlayers = [{ type = \"dense\", units = 3 }]\n";

const CASES: &[Case] = &[
    Case {
        name: "missing config file",
        files: &[],
        args: &["train", "--config", "nope.toml"],
        message: "nope.toml: No such file or directory",
    },
    Case {
        name: "unknown config key",
        files: &[("c.toml", "[data]\nformt = \"idx\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "c.toml: line 2, column 1: data.formt: unknown field `formt`, expected one of `format`, `dir`",
    },
    Case {
        name: "unknown top-level table",
        files: &[("c.toml", "[trainer]\nepochs = 3\n")],
        args: &["train", "--config", "c.toml"],
        message: "trainer: unknown field `trainer`, expected one of `seed`, `data`, `model`",
    },
    Case {
        name: "bad optimizer type",
        files: &[("c.toml", "[optimizer]\ntype = \"adamx\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "optimizer.type: unknown variant `adamx`, expected one of `sgd`, `momentum`, `nesterov`, `adagrad`, `rmsprop`, `adam`, `adamw`",
    },
    Case {
        name: "bad data format",
        files: &[("c.toml", "[data]\nformat = \"hdf5\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "data.format: unknown variant `hdf5`, expected one of `idx`, `csv`, `npy`, `npz`, `safetensors`, `image_folder`",
    },
    Case {
        name: "bad activation",
        files: &[("c.toml", "[model]\ninput = [784]\nlayers = [{ type = \"dense\", units = 10, activation = \"relux\" }]\n")],
        args: &["train", "--config", "c.toml"],
        message: "unknown variant `relux`, expected one of `identity`, `relu`, `leaky_relu`",
    },
    Case {
        name: "negative batch size",
        files: &[("c.toml", "[train]\nbatch_size = -3\n")],
        args: &["train", "--config", "c.toml"],
        message: "train.batch_size: invalid value: integer `-3`",
    },
    Case {
        name: "zero batch size",
        files: &[("c.toml", "[train]\nbatch_size = 0\n")],
        args: &["train", "--config", "c.toml"],
        message: "train.batch_size: must be at least 1",
    },
    Case {
        name: "validation fraction out of range",
        files: &[("c.toml", "[data]\nvalidation_fraction = 1.5\n")],
        args: &["train", "--config", "c.toml"],
        message: "data.validation_fraction: 1.5 is outside [0, 1)",
    },
    Case {
        name: "TOML syntax error",
        files: &[("c.toml", "seed = \n")],
        args: &["train", "--config", "c.toml"],
        message: "c.toml: line 1, column 8:",
    },
    Case {
        name: "csv keys with idx format",
        files: &[("c.toml", "[data]\ntrain_file = \"x.csv\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "data.train_file: only applies to format = \"csv\"",
    },
    Case {
        name: "missing data directory",
        files: &[("c.toml", "[data]\ndir = \"no-such-dir\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "no-such-dir/train-images-idx3-ubyte.gz: not found",
    },
    Case {
        name: "IDX file with a bad magic number",
        files: &[
            ("c.toml", "[data]\ndir = \"idx\"\n"),
            ("idx/train-images-idx3-ubyte", "this is not an IDX file"),
            ("idx/train-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\x01\x03"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "idx/train-images-idx3-ubyte: not an IDX file",
    },
    Case {
        name: "truncated IDX file",
        files: &[
            ("c.toml", "[data]\ndir = \"idx\"\n"),
            ("idx/train-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x02\0\0\0\x1c\0\0\0\x1cabc"),
            ("idx/train-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\x02\x03\x01"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "truncated: dimensions [2, 28, 28] need 1568 bytes of data, the file has 3",
    },
    Case {
        name: "IDX label outside the classes",
        files: &[
            ("c.toml", "[data]\ndir = \"idx\"\n"),
            ("idx/train-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x01\0\0\0\x01\0\0\0\x01\x07"),
            ("idx/train-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\x01\x0c"),
            ("idx/t10k-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x01\0\0\0\x01\0\0\0\x01\x07"),
            ("idx/t10k-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\x01\x01"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "label 12 of sample 0 is outside the 10 classes 0..9",
    },
    Case {
        name: "NaN feature in CSV",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,label\n1,2,0\nnan,3,1\n")],
        args: &["train", "--config", "c.toml"],
        message: "t.csv: line 3, column \"a\": \"nan\" is not a finite number",
    },
    Case {
        name: "CSV label outside the model's classes",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,label\n1,2,0\n3,3,7\n")],
        args: &["train", "--config", "c.toml"],
        message: "t.csv: line 3, column \"label\": label 7 is outside the 3 classes 0..2",
    },
    Case {
        name: "validation split of too few samples",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,label\n1,2,0\n3,3,1\n")],
        args: &["train", "--config", "c.toml"],
        message: "data.validation_fraction: 0.1 of 2 samples (rounded per class) leaves the validation set empty",
    },
    Case {
        name: "more chunks than samples",
        files: &[
            ("c.toml", "[data]\nformat = \"csv\"\ntrain_file = \"t.csv\"\nvalidation_fraction = 0\n[model]\ninput = [2]\nlayers = [{ type = \"dense\", units = 3 }]\n"),
            ("t.csv", "a,b,label\n1,2,0\n3,3,1\n"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "incremental.chunks: 5 chunks of 2 samples would leave chunks empty; use at most 2 chunks",
    },
    Case {
        name: "early stopping without a validation split",
        files: &[
            ("c.toml", "[data]\nformat = \"csv\"\ntrain_file = \"t.csv\"\nvalidation_fraction = 0\n[train]\nearly_stopping = { patience = 2 }\n"),
            ("t.csv", "a,b,label\n1,2,0\n3,3,1\n"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "train.early_stopping: watches the validation split, but data.validation_fraction is 0",
    },
    Case {
        name: "LwF with a negative weight",
        files: &[("c.toml", "[incremental]\nlwf = { weight = -1.0 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.lwf.weight: -1 must be a finite number ≥ 0",
    },
    Case {
        name: "LwF with a zero temperature",
        files: &[("c.toml", "[incremental]\nlwf = { temperature = 0.0 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.lwf.temperature: 0 must be a finite number > 0",
    },
    Case {
        name: "LwF with an unknown setting",
        files: &[("c.toml", "[incremental]\nlwf = { alpha = 0.5 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "unknown field `alpha`, expected `weight` or `temperature`",
    },
    Case {
        name: "EWC with a decay above 1",
        files: &[("c.toml", "[incremental]\newc = { weight = 10.0, decay = 1.5 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.ewc.decay: 1.5 must be in (0, 1]",
    },
    Case {
        name: "EWC with a negative weight",
        files: &[("c.toml", "[incremental]\newc = { weight = -3.0 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.ewc.weight: -3 must be a finite number ≥ 0",
    },
    Case {
        name: "EWC with an unknown setting",
        files: &[("c.toml", "[incremental]\newc = { lambda = 3.0 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "unknown field `lambda`, expected one of `weight`, `decay`, `samples`",
    },
    Case {
        name: "A-GEM with an empty memory",
        files: &[("c.toml", "[incremental]\nagem = { size = 0 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.agem.size: must be at least 1",
    },
    Case {
        name: "A-GEM with a batch larger than its memory",
        files: &[("c.toml", "[incremental]\nagem = { size = 10, per_batch = 20 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.agem.per_batch: 20 must be between 1 and size = 10",
    },
    Case {
        name: "A-GEM with gradient accumulation",
        files: &[("c.toml", "[train]\naccumulate_steps = 2\n[incremental]\nagem = { size = 300 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.agem: A-GEM takes one reference gradient per update and cannot be combined with train.accumulate_steps > 1",
    },
    Case {
        name: "A-GEM with an unknown setting",
        files: &[("c.toml", "[incremental]\nagem = { size = 10, sample_size = 4 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "unknown field `sample_size`, expected `size` or `per_batch`",
    },
    Case {
        name: "DER with a negative logit weight",
        files: &[("c.toml", "[incremental]\nrehearsal = { size = 10, logit_weight = -0.5 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.rehearsal.logit_weight: -0.5 must be a finite number ≥ 0",
    },
    Case {
        name: "DER++ replaying nothing",
        files: &[("c.toml", "[incremental]\nrehearsal = { size = 10, per_batch = 0, label_weight = 0.5 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.rehearsal: logit_weight / label_weight weigh replayed samples, but size = 10 and per_batch = 0 replay none",
    },
    Case {
        name: "DER with LwF",
        files: &[("c.toml", "[incremental]\nrehearsal = { size = 10, logit_weight = 0.5 }\nlwf = {}\n")],
        args: &["train", "--config", "c.toml"],
        message: "incremental.rehearsal: logit_weight / label_weight (DER, DER++) cannot be combined with incremental.lwf",
    },
    Case {
        name: "mixed precision loss scale not a power of two",
        files: &[("c.toml", "[train]\nmixed_precision = { init_scale = 1000 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "train.mixed_precision.init_scale: 1000 must be a power of two between 2^-24 and 2^24",
    },
    Case {
        name: "mixed precision unknown key",
        files: &[("c.toml", "[train]\nmixed_precision = { init_scal = 1024 }\n")],
        args: &["train", "--config", "c.toml"],
        message: "unknown field `init_scal`, expected `init_scale` or `growth_interval`",
    },
    Case {
        name: "mse loss on class labels",
        files: &[("c.toml", "[train]\nloss = \"mse\"\n")],
        args: &["train", "--config", "c.toml"],
        message: "train.loss: \"mse\" trains on real-valued targets",
    },
    Case {
        name: "CSV text where a number belongs",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,label\n1,2,0\n3,x,1\n")],
        args: &["train", "--config", "c.toml"],
        message: "t.csv: line 3, column \"b\": \"x\" is not a number",
    },
    Case {
        name: "CSV without the label column",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,y\n1,2,0\n")],
        args: &["train", "--config", "c.toml"],
        message: "t.csv: no column named \"label\"; the columns are \"a\", \"b\", \"y\"",
    },
    Case {
        name: "CSV row with too few fields",
        files: &[("c.toml", CSV_CONFIG), ("t.csv", "a,b,label\n1,2,0\n3,1\n")],
        args: &["train", "--config", "c.toml"],
        message: "t.csv: line 3 has 2 fields, the header has 3",
    },
    Case {
        name: "model input that does not fit the data",
        files: &[("c.toml", "[data]\nformat = \"csv\"\ntrain_file = \"t.csv\"\n[model]\ninput = [5]\nlayers = [{ type = \"dense\", units = 3 }]\n"), ("t.csv", "a,b,label\n1,2,0\n3,1,1\n")],
        args: &["train", "--config", "c.toml"],
        message: "training data: samples have 2 values (shape [2]) but the model's input (model.input) is [5]",
    },
    Case {
        name: "buffer over the device limits",
        files: &[("c.toml", "[model]\ninput = [784]\nlayers = [{ type = \"dense\", units = 100000000 }]\n[data]\ntrain_limit = 20\ntest_limit = 10\n")],
        args: &["train", "--config", "c.toml"],
        message: "layer 0 (dense): its weight matrix [100000000, 784] needs 313600000000 but this device allows at most",
    },
    Case {
        name: "missing checkpoint",
        files: &[],
        args: &["eval", "none.safetensors"],
        message: "none.safetensors: No such file or directory",
    },
    Case {
        name: "truncated checkpoint",
        files: &[("bad.safetensors", "\x10\0\0\0\0\0\0\0{\"a\":1")],
        args: &["eval", "bad.safetensors"],
        message: "bad.safetensors: not a valid safetensors file, truncated or corrupted",
    },
    Case {
        name: "resume of a folder that is not a run",
        files: &[("notarun/x", "")],
        args: &["resume", "notarun"],
        message: "notarun/config.toml: not found; is this a run directory made by `accrete train`?",
    },
    Case {
        name: "train into an existing run directory",
        files: &[("old/config.toml", "seed = 1\n")],
        args: &["train", "--out", "old"],
        message: "old: already holds files (an earlier run?)",
    },
    Case {
        name: "fine-tuning from weights of another architecture",
        files: &[
            ("c.toml", "[data]\nformat = \"csv\"\ntrain_file = \"t.csv\"\nvalidation_fraction = 0\n[model]\ninput = [2]\nlayers = [{ type = \"dense\", units = 3 }]\n[incremental]\nchunks = 1\n[finetune]\nfrom = \"w.safetensors\"\n"),
            ("t.csv", "a,b,label\n1,2,0\n3,1,1\n"),
            // A plain safetensors file holding one tensor, "other.weight" = [0.5].
            ("w.safetensors", "\x48\0\0\0\0\0\0\0{\"other.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}       \0\0\0\x3f"),
        ],
        args: &["train", "--config", "c.toml"],
        message: "w.safetensors: no tensor matches the model (it holds other.weight [1]); it was saved from another architecture",
    },
    // The default build has no MPI: a run asking for it, or the resume of one, is refused
    // with how to build it (tests/mpi covers the MPI build).
    Case {
        name: "backend = \"mpi\" without the mpi feature",
        files: &[("c.toml", "[parallel]\nbackend = \"mpi\"\n")],
        args: &["train", "--config", "c.toml", "--out", "r"],
        message: "parallel.backend: \"mpi\": this accrete was built without MPI; install MPI and libclang (Debian/Ubuntu: apt-get install -y libopenmpi-dev openmpi-bin libclang-dev), build with `cargo build --release -p accrete-cli --features mpi`",
    },
    Case {
        name: "resume of an MPI run without the mpi feature",
        files: &[("run/config.toml", "seed = 3\n[parallel]\nbackend = \"mpi\"\nmode = \"parameter_server\"\n")],
        args: &["resume", "run"],
        message: "parallel.backend: \"mpi\": this accrete was built without MPI",
    },
];

#[test]
fn malformed_inputs_fail_with_one_clear_error_line() {
    assert!(CASES.len() >= 15);
    let root = scratch("malformed");
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let dir = root.join(format!("{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in case.files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content.as_bytes()).unwrap();
        }
        let out = run(&dir, case.args);
        let err = text(&out.stderr);
        let problems: Vec<&str> = [
            (out.status.code() != Some(2), "exit status is not 2"),
            (
                !err.starts_with("error: "),
                "stderr does not start with \"error: \"",
            ),
            (!err.contains(case.message), "the message is missing"),
            (err.contains("panicked"), "it panicked"),
            (err.trim_end().lines().count() != 1, "more than one line"),
        ]
        .into_iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, why)| why)
        .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({:?}): {}\n  want: {}\n  got ({}): {}",
                case.name,
                case.args,
                problems.join(", "),
                case.message,
                out.status,
                err.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resume_refuses_a_checkpoint_of_another_architecture() {
    let dir = blobs_dir(
        "mismatch",
        &BLOBS_CONFIG.replace("epochs = 2", "epochs = 1"),
    );
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    let cfg = dir.join("run/config.toml");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap();
    assert!(text_cfg.contains("units = 16"), "{text_cfg}");
    std::fs::write(&cfg, text_cfg.replace("units = 16", "units = 32")).unwrap();
    let out = run(&dir, &["resume", "run"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("this checkpoint belongs to another run"),
        "{err}"
    );
    // LwF switched on after the checkpoint: refused too, naming the setting (a changed
    // weight is checked in continual.rs).
    assert!(text_cfg.contains("[incremental]\n"), "{text_cfg}");
    std::fs::write(
        &cfg,
        text_cfg.replace("[incremental]\n", "[incremental]\nlwf = { weight = 2.0 }\n"),
    )
    .unwrap();
    let out = run(&dir, &["resume", "run"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("its incremental.lwf is \"off\" but config.toml has {"),
        "{err}"
    );
    std::fs::write(&cfg, &text_cfg).unwrap();
    // Evaluating a 2-input checkpoint on 784-value images names both shapes.
    let out = run(
        &dir,
        &["eval", "run/checkpoints/last.safetensors", "--limit", "5"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("samples have 784 values (shape [1, 28, 28]) but the model's input (model.input) is [2]"),
        "{err}"
    );
}

/// `bench train --profile`: one parseable line per dispatch kind and a step summary whose
/// counts match the dispatches of a real epoch's step, with finite, non-negative times;
/// timestamps (where the adapter has them) for the CNN, the host-clock fallback for the MLP.
#[test]
fn bench_train_profile_times_every_dispatch_of_a_step() {
    let dir = scratch("profile");
    for (model, batch, timing) in [("mlp", "4", "wall"), ("cnn", "2", "auto")] {
        let common = [
            "bench",
            "train",
            "--model",
            model,
            "--batch",
            batch,
            "--train-limit",
            "4",
            "--test-limit",
            "2",
            "--eval-batch",
            "2",
        ];
        let epoch: serde_json::Value =
            serde_json::from_str(ok(&dir, &common).lines().next().expect("an epoch line")).unwrap();
        let per_step = epoch["dispatches_per_step"].as_u64().unwrap();
        let args: Vec<&str> = common
            .iter()
            .copied()
            .chain(["--profile", "--profile-steps", "2", "--timing", timing])
            .collect();
        let out = ok(&dir, &args);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let (step, kinds) = lines.split_last().expect("lines");
        assert_eq!(step["bench"], "train_step", "{step}");
        assert_eq!(
            step["dispatches_per_step"].as_u64(),
            Some(per_step),
            "{step}"
        );
        assert_eq!(step["kinds"].as_u64(), Some(kinds.len() as u64));
        let want_source = if timing == "wall" {
            "wall".to_string()
        } else {
            step["step_source"].as_str().unwrap().to_string()
        };
        assert_eq!(step["source"], want_source.as_str(), "{step}");
        let finite = |v: &serde_json::Value| v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0);
        assert!(
            finite(&step["sum_us"]) && finite(&step["step_us"]),
            "{step}"
        );
        let mut count = 0;
        let mut positions = Vec::new();
        let mut sum = 0.0;
        for k in kinds {
            assert_eq!(k["bench"], "train_kernels", "{k}");
            assert_eq!(k["model"], model);
            assert_eq!(k["source"], want_source.as_str(), "{k}");
            let n = k["count"].as_u64().unwrap();
            assert!(n >= 1, "{k}");
            count += n;
            for f in ["mean_us", "us_per_dispatch", "share"] {
                assert!(finite(&k[f]), "{f} in {k}");
            }
            let each = k["dispatch_us"].as_array().unwrap();
            assert_eq!(each.len() as u64, n, "{k}");
            assert!(each.iter().all(finite), "{k}");
            positions.extend(
                k["positions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap()),
            );
            sum += k["mean_us"].as_f64().unwrap();
            assert_eq!(
                k["name"].as_str().unwrap(),
                format!(
                    "{} {}",
                    k["phase"].as_str().unwrap(),
                    k["kernel"].as_str().unwrap()
                )
            );
        }
        assert_eq!(count, per_step);
        positions.sort_unstable();
        assert_eq!(positions, (0..per_step).collect::<Vec<_>>());
        let total = step["sum_us"].as_f64().unwrap();
        assert!(
            (sum - total).abs() <= 1e-3 * kinds.len() as f64 + 1e-6 * total,
            "{sum} vs {total}"
        );
        // Every phase of a plain step is there, in order. With 10 classes the epoch metrics
        // are accumulated by the loss dispatch itself (no metrics phase).
        let phases: Vec<&str> = kinds.iter().map(|k| k["phase"].as_str().unwrap()).collect();
        for p in ["gather", "forward", "loss", "backward", "update", "advance"] {
            assert!(phases.contains(&p), "{p} missing from {phases:?}");
        }
        assert!(!phases.contains(&"metrics"), "{phases:?}");
        assert!(
            kinds
                .iter()
                .any(|k| k["phase"] == "loss"
                    && k["kernel"].as_str() == Some("loss_xent::with_metrics")),
            "{kinds:?}"
        );
        assert_eq!(phases.first(), Some(&"gather"));
        assert_eq!(phases.last(), Some(&"advance"));
    }
}

// `accrete resume --set` and `[[incremental.schedule]]` (hyper-parameters between chunks).
#[path = "settings.rs"]
pub(crate) mod settings;

// `accrete cv` (k-fold cross-validation).
#[path = "cv.rs"]
mod cv;
#[test]
fn export_pytorch_writes_sequential_names_and_the_module() {
    let dir = blobs_run();
    let ckpt = "run/checkpoints/last.safetensors";
    let py = ok(
        dir,
        &[
            "export",
            ckpt,
            "--format",
            "pytorch",
            "--out",
            "sd.safetensors",
        ],
    );
    // dense(16, tanh), dense(3) ⇔ nn.Sequential(Linear(2, 16), Tanh(), Linear(16, 3)).
    assert!(
        py.contains("    nn.Linear(2, 16),\n    nn.Tanh(),\n    nn.Linear(16, 3),\n"),
        "{py}"
    );
    let bytes = std::fs::read(dir.join("sd.safetensors")).unwrap();
    assert!(!accrete::checkpoint::has_accrete_metadata(&bytes));
    let sd = accrete::checkpoint::foreign::read(&bytes, "sd").unwrap();
    let names: Vec<&str> = sd.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    let c = Checkpoint::read_file(&dir.join(ckpt)).unwrap();
    for (torch, ours) in [
        ("0.weight", "layers.0.weight"),
        ("0.bias", "layers.0.bias"),
        ("2.weight", "layers.1.weight"),
        ("2.bias", "layers.1.bias"),
    ] {
        let t = sd.iter().find(|t| t.name == torch).unwrap();
        assert_eq!(
            Some(t),
            c.tensor(ours)
                .map(|o| accrete::checkpoint::NamedTensor {
                    name: torch.into(),
                    ..o.clone()
                })
                .as_ref(),
            "{torch}"
        );
    }
    // --module-out writes the Python instead of printing it; a bad checkpoint is bad input.
    let quiet = ok(
        dir,
        &[
            "export",
            ckpt,
            "--format",
            "pytorch",
            "--out",
            "sd2.safetensors",
            "--module-out",
            "model.py",
        ],
    );
    assert!(quiet.is_empty(), "{quiet}");
    assert_eq!(std::fs::read_to_string(dir.join("model.py")).unwrap(), py);
    let bad = run(
        dir,
        &[
            "export",
            "test.csv",
            "--format",
            "pytorch",
            "--out",
            "x.safetensors",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(!dir.join("x.safetensors").exists());
}

/// Python (numpy + safetensors; torch where installed) checks the exported names and shapes
/// against the nn.Sequential convention and reproduces `accrete predict`.
#[test]
fn python_checks_the_pytorch_export() {
    let out = python_check_export(blobs_run(), "run/checkpoints/last.safetensors");
    assert!(!out.contains("tied weight"), "{out}");
}

/// The same for a model with tied layers (`share`, transposed and not): the file lists the
/// shared weight under both modules' names, MODEL.py ties them, and the forward agrees.
#[test]
fn python_checks_the_pytorch_export_of_tied_layers() {
    let layers = r#"layers = [
  { type = "dense", units = 16, activation = "tanh" },
  { type = "dense", units = 3 },
]"#;
    let tied = r#"layers = [
  { type = "dense", units = 8, activation = "tanh" },
  { type = "dense", units = 2, activation = "tanh", share = { layer = 0, transpose = true } },
  { type = "dense", units = 8, activation = "tanh", share = { layer = 0 } },
  { type = "dense", units = 3 },
]"#;
    assert!(BLOBS_CONFIG.contains(layers));
    let config = BLOBS_CONFIG
        .replace(layers, tied)
        .replace("epochs = 2", "epochs = 1");
    let dir = blobs_dir("export_tied", &config);
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    let out = python_check_export(&dir, "run/checkpoints/last.safetensors");
    assert!(
        out.contains("2 tied weight(s): 4.weight = 0.weight, 2.weight = 0.weightᵀ"),
        "{out}"
    );
    let py = std::fs::read_to_string(dir.join("py_model.py")).unwrap();
    assert!(
        py.contains("model[2] = TransposedLinear(model[0], 2)")
            && py.contains("model[4].weight = model[0].weight"),
        "{py}"
    );
}

/// Exports `ckpt` (under `dir`) for PyTorch, runs tests/python/check_torch_export.py on it
/// with `accrete predict`-equivalent probabilities, and returns the script's output.
fn python_check_export(dir: &Path, ckpt: &str) -> String {
    ok(
        dir,
        &[
            "export",
            ckpt,
            "--format",
            "pytorch",
            "--out",
            "py_sd.safetensors",
            "--module-out",
            "py_model.py",
        ],
    );
    let c = Checkpoint::read_file(&dir.join(ckpt)).unwrap();
    let csv = blobs_csv(40, 20_000);
    let mut x = Vec::new();
    for line in csv.lines().skip(1) {
        let cells: Vec<f32> = line.split(',').map(|v| v.parse().unwrap()).collect();
        x.extend_from_slice(&cells[..2]);
    }
    let n = x.len() / 2;
    let mut t = accrete::train::Trainer::for_inference(accrete_tests::gpu(), &c).unwrap();
    let data = accrete::data::Dataset::new(x.clone(), vec![0; n], vec![2], 3).unwrap();
    let d = accrete::train::GpuDataset::upload(accrete_tests::gpu(), &data).unwrap();
    let probs = pollster::block_on(t.predict(&d, 64)).unwrap();
    std::fs::write(
        dir.join("py_inputs.safetensors"),
        accrete_tests::plain_safetensors(&[("x", &[n, 2], &x), ("probs", &[n, 3], &probs)]),
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_torch_export.py");
    let out = Command::new("python3")
        .current_dir(dir)
        .args([
            script,
            "py_sd.safetensors",
            "py_model.py",
            "py_inputs.safetensors",
        ])
        .output()
        .expect("python3 must be installed");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "needs numpy and safetensors: pip install numpy safetensors\n{stderr}"
    );
    eprintln!("python: {stdout}");
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("names and shapes follow nn.Sequential"),
        "{stdout}"
    );
    stdout
}
