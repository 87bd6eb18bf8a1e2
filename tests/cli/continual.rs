//! A class-incremental `accrete train` run: every chunk ends with a `chunk_end` row in
//! metrics.jsonl (accuracy per task seen, average accuracy, BWT, forgetting), and the
//! report draws the accuracy matrix. The rows are checked against an independent
//! recomputation: each row's task accuracies from `accrete eval` of the checkpoint written
//! at that chunk's end (its per-class recall and support), the summaries from the matrix
//! with the textbook formulas written out here.

use super::commands::{
    command, events_without_timing, noise, ok, ok_both, run, scratch, tensors_equal, text, wait_for,
};
use accrete::train::Checkpoint;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

/// Six 2-D blobs on a circle, `n` rows (labels cycle 0..6).
fn six_blobs_csv(n: usize, offset: usize) -> String {
    let mut s = String::from("x,y,label\n");
    for i in 0..n {
        let k = i + offset;
        let c = k % 6;
        let a = c as f32 * std::f32::consts::TAU / 6.0;
        let x = 3.0 * a.cos() + 0.6 * noise(2 * k);
        let y = 3.0 * a.sin() + 0.6 * noise(2 * k + 1);
        let _ = writeln!(s, "{x},{y},{c}");
    }
    s
}

const CLASS_INCREMENTAL: &str = r#"seed = 3

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"

[model]
input = [2]
layers = [
  { type = "dense", units = 16, activation = "tanh" },
  { type = "dense", units = 6 },
]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 16
epochs = 6

[incremental]
chunks = 3
split_by = "class"

[checkpoint]
every_steps = 1000
keep_last = 100
"#;

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() < 1e-9,
        "{what}: {a} in metrics.jsonl, {b} recomputed"
    );
}

/// Accuracy on the samples of `classes`, from `accrete eval`'s per-class recall × support.
fn group_accuracy(eval: &serde_json::Value, classes: std::ops::Range<usize>) -> f64 {
    let (mut right, mut total) = (0.0, 0.0);
    for c in classes {
        let pc = &eval["per_class"][c];
        let support = pc["support"].as_f64().unwrap();
        right += (pc["recall"].as_f64().unwrap() * support).round();
        total += support;
    }
    right / total
}

#[test]
fn class_incremental_runs_record_the_accuracy_matrix_and_forgetting() {
    let dir = scratch("class_incremental");
    std::fs::write(dir.join("train.csv"), six_blobs_csv(360, 0)).unwrap();
    std::fs::write(dir.join("test.csv"), six_blobs_csv(120, 50_000)).unwrap();
    std::fs::write(dir.join("run.toml"), CLASS_INCREMENTAL).unwrap();
    let (_, err) = ok_both(&dir, &["train", "--config", "run.toml", "--out", "run"]);
    assert!(err.contains("after chunk 3/3: test accuracy"), "{err}");
    assert!(err.contains("BWT"), "{err}");
    let run = dir.join("run");
    let ends: Vec<serde_json::Value> = events_without_timing(&run)
        .into_iter()
        .filter(|e| e["event"] == "chunk_end")
        .collect();
    assert_eq!(ends.len(), 3, "{ends:?}");

    // Row i of the accuracy matrix, recomputed from the checkpoint of chunk i's end.
    let mut matrix: Vec<Vec<f64>> = Vec::new();
    for (i, e) in ends.iter().enumerate() {
        assert_eq!(e["chunk"], i as u64);
        assert_eq!(e["data"], "test");
        assert_eq!(e["samples"], 120);
        let row: Vec<f64> = e["task_accuracy"]
            .as_array()
            .unwrap_or_else(|| panic!("no task_accuracy: {e}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(row.len(), i + 1, "tasks seen after chunk {i}: {e}");
        let ckpt = format!("run/checkpoints/step-{}.safetensors", e["step"]);
        assert!(dir.join(&ckpt).exists(), "{ckpt}");
        let eval: serde_json::Value =
            serde_json::from_str(&ok(&dir, &["eval", &ckpt, "--csv", "test.csv"])).unwrap();
        close(
            e["accuracy"].as_f64().unwrap(),
            eval["accuracy"].as_f64().unwrap(),
            &format!("chunk {i} accuracy"),
        );
        for (j, &a) in row.iter().enumerate() {
            // Task j: the classes chunk j brought (6 classes in 3 chunks: 2 each).
            close(
                a,
                group_accuracy(&eval, 2 * j..2 * j + 2),
                &format!("R[{i}][{j}]"),
            );
        }
        matrix.push(row);

        // The summaries, from the matrix so far by the published definitions.
        let t = matrix.len();
        let last = &matrix[t - 1];
        let avg = last.iter().sum::<f64>() / t as f64;
        close(e["average_accuracy"].as_f64().unwrap(), avg, "average");
        if t == 1 {
            assert!(
                e.get("bwt").is_none() && e.get("forgetting").is_none(),
                "{e}"
            );
            continue;
        }
        let bwt = (0..t - 1).map(|j| last[j] - matrix[j][j]).sum::<f64>() / (t - 1) as f64;
        let forgetting = (0..t - 1)
            .map(|j| {
                let best = (j..t - 1).map(|l| matrix[l][j]).fold(f64::MIN, f64::max);
                best - last[j]
            })
            .sum::<f64>()
            / (t - 1) as f64;
        close(e["bwt"].as_f64().unwrap(), bwt, "BWT");
        close(e["forgetting"].as_f64().unwrap(), forgetting, "forgetting");
    }
    // Plain fine-tuning, one class pair per chunk: the first task is forgotten.
    assert!(matrix[0][0] > 0.9, "{matrix:?}");
    assert!(matrix[2][0] < matrix[0][0] - 0.3, "{matrix:?}");
    assert!(
        ends[2]["forgetting"].as_f64().unwrap() > 0.3,
        "{:?}",
        ends[2]
    );

    // The report: the matrix heat map, the per-task chart, and the section's tables.
    let rep = run.join("report");
    for name in ["task_matrix", "task_accuracy"] {
        let png = std::fs::read(rep.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
            "{name}.png"
        );
        let svg = std::fs::read_to_string(rep.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}.svg");
    }
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    for needle in [
        "](task_matrix.png)",
        "](task_accuracy.png)",
        "## After each chunk",
        "| after chunk | task 1 | task 2 | task 3 |",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    resume_keeps_the_matrix(&dir);
}

/// A finished run resumed from the checkpoint of the middle chunk's end rebuilds the same
/// chunk-end rows: the matrix's earlier rows travel in the checkpoint's history.
fn resume_keeps_the_matrix(dir: &Path) {
    let ends = |run: &str| -> Vec<serde_json::Value> {
        events_without_timing(&dir.join(run))
            .into_iter()
            .filter(|e| e["event"] == "chunk_end")
            .collect()
    };
    let want = ends("run");
    let copy = dir.join("again");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("checkpoints")).unwrap();
    std::fs::copy(dir.join("run/config.toml"), copy.join("config.toml")).unwrap();
    let mid = format!("step-{}.safetensors", want[1]["step"]);
    std::fs::copy(
        dir.join("run/checkpoints").join(&mid),
        copy.join("checkpoints/last.safetensors"),
    )
    .unwrap();
    ok(dir, &["resume", "again", "--quiet"]);
    assert_eq!(ends("again"), want);
}

/// A class-incremental run with the strategy `setting` (an `[incremental]` line) SIGKILLed
/// inside a later chunk and resumed ends with the tensors (the strategy's state included,
/// `state_tensor` being one it must hold there) and the chunk-end rows of an uninterrupted
/// run.
fn strategy_resumes_after_sigkill_exactly(name: &str, setting: &str, state_tensor: &str) {
    let dir = scratch(name);
    std::fs::write(dir.join("train.csv"), six_blobs_csv(360, 0)).unwrap();
    std::fs::write(dir.join("test.csv"), six_blobs_csv(120, 50_000)).unwrap();
    let config = CLASS_INCREMENTAL
        .replace(
            "split_by = \"class\"",
            &format!("split_by = \"class\"\n{setting}"),
        )
        .replace("batch_size = 16", "batch_size = 4")
        .replace("every_steps = 1000", "every_steps = 7")
        .replace("keep_last = 100", "keep_last = 0");
    std::fs::write(dir.join("run.toml"), config).unwrap();
    ok(
        &dir,
        &[
            "train", "--config", "run.toml", "--out", "straight", "--quiet",
        ],
    );
    // A checkpoint of the run under other LwF settings is another run's: refused before
    // anything trains, naming the setting (check_resumable).
    if setting.starts_with("lwf") {
        let cfg = dir.join("straight/config.toml");
        let saved = std::fs::read_to_string(&cfg).unwrap();
        assert!(saved.contains("weight = 2.0"), "{saved}");
        std::fs::write(&cfg, saved.replace("weight = 2.0", "weight = 3.0")).unwrap();
        let out = run(&dir, &["resume", "straight"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("its incremental.lwf.weight is 2.0 but config.toml has 3.0"),
            "{err}"
        );
        std::fs::write(&cfg, &saved).unwrap();
    }
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
    let last = dir.join("killed/checkpoints/last.safetensors");
    // Wait for a checkpoint inside the second chunk, where the strategy's state is in the
    // file.
    let start = std::time::Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        assert!(start.elapsed().as_secs() < 120, "no checkpoint in chunk 2");
        if last.exists() {
            if let Ok(c) = Checkpoint::read_file(&last) {
                if c.meta.cursor.chunk >= 1 && c.meta.cursor.step_in_epoch > 0 {
                    assert!(c.tensor(state_tensor).is_some(), "no {state_tensor}");
                    break;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    wait_for(&mut child, &last);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !dir.join("killed/report").exists(),
        "the run finished before the kill"
    );
    ok(&dir, &["resume", "killed", "--quiet"]);
    tensors_equal(
        &dir.join("straight/checkpoints/last.safetensors"),
        &dir.join("killed/checkpoints/last.safetensors"),
    );
    assert_eq!(
        events_without_timing(&dir.join("straight")),
        events_without_timing(&dir.join("killed"))
    );
}

#[test]
fn lwf_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "lwf_sigkill",
        "lwf = { weight = 2.0 }",
        "lwf.teacher.layers.0.weight",
    );
}

/// DER++: the buffer's stored logits travel in the checkpoint.
#[test]
fn der_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "der_sigkill",
        "rehearsal = { size = 40, per_batch = 4, logit_weight = 0.5, label_weight = 0.5 }",
        "rehearsal.logits",
    );
}

/// EWC: the Fisher and the anchor travel in the checkpoint.
#[test]
fn ewc_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "ewc_sigkill",
        "ewc = { weight = 50.0, decay = 0.9, samples = 20 }",
        "ewc.fisher.layers.0.weight",
    );
}

/// A-GEM: the memory travels in the checkpoint; the reference batches are redrawn from it.
#[test]
fn agem_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "agem_sigkill",
        "agem = { size = 40, per_batch = 8 }",
        "agem.features",
    );
}

/// Plain rehearsal (replay): the buffer and its Algorithm R counter travel in the checkpoint.
#[test]
fn replay_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "replay_sigkill",
        "rehearsal = { size = 40, per_batch = 4 }",
        "rehearsal.features",
    );
}

/// DER (α only, no label term): the stored logits travel in the checkpoint.
#[test]
fn der_alpha_only_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "der_alpha_sigkill",
        "rehearsal = { size = 40, per_batch = 4, logit_weight = 0.5 }",
        "rehearsal.logits",
    );
}

/// A-GEM beside rehearsal: both memories travel in the checkpoint.
#[test]
fn agem_with_replay_runs_resume_after_sigkill_exactly() {
    strategy_resumes_after_sigkill_exactly(
        "agem_replay_sigkill",
        "rehearsal = { size = 30, per_batch = 4 }\nagem = { size = 40, per_batch = 8 }",
        "agem.labels",
    );
}
