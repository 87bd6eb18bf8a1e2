//! Hyper-parameters that change during a run, end to end: an `[[incremental.schedule]]`
//! entry applies at its chunk, `accrete resume DIR --set key=value` changes a run from its
//! checkpoint (recorded in metrics.jsonl and report.md), runs with both resume bit-exactly
//! from later checkpoints, and unknown keys or bad values are refused with exit status 2.
//!
//! A run is "stopped" at step N by copying a finished run's directory and putting its
//! `step-N.safetensors` back as `last.safetensors`: exactly what a kill after that
//! checkpoint leaves.

use super::*;

/// The long blobs run (240 training samples in 2 chunks, batch 4: 30 steps per epoch,
/// 3 epochs per chunk) keeping every checkpoint; chunk 2 switches to lr 0.01 and 1 epoch.
fn config() -> String {
    long_config().replace("keep_last = 0", "keep_last = 1000")
        + "\n[[incremental.schedule]]\nchunk = 2\nlr = 0.01\nepochs = 1\n"
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of `run` (under `dir`) as if it had been killed after its step-`step` checkpoint.
fn stopped_copy(dir: &Path, run: &str, name: &str, step: u64) {
    let (from, to) = (dir.join(run), dir.join(name));
    copy_dir(&from, &to);
    std::fs::copy(
        from.join(format!("checkpoints/step-{step}.safetensors")),
        to.join("checkpoints/last.safetensors"),
    )
    .unwrap();
    std::fs::remove_dir_all(to.join("report")).unwrap();
}

fn changes(run: &Path) -> Vec<serde_json::Value> {
    events_without_timing(run)
        .into_iter()
        .filter(|v| v["event"] == "hyper_change")
        .collect()
}

fn epoch_lrs(run: &Path) -> Vec<f64> {
    metrics_without_timing(run)
        .iter()
        .map(|v| v["lr"].as_f64().unwrap())
        .collect()
}

#[test]
fn resume_set_and_chunk_schedules_change_a_run_and_resume_exactly() {
    let dir = blobs_dir("settings", &config());
    ok(
        &dir,
        &[
            "train", "--config", "run.toml", "--out", "straight", "--quiet",
        ],
    );
    let straight = dir.join("straight");
    // Chunk 1: 3 epochs at 0.02; chunk 2: 1 epoch at 0.01 (the schedule).
    assert_eq!(epoch_lrs(&straight), [0.02, 0.02, 0.02, 0.01]);
    let c = changes(&straight);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (&c[0]["source"], &c[0]["chunk"], &c[0]["step"]),
        (&"schedule".into(), &1.into(), &90.into())
    );

    // Killed in chunk 2 (after the schedule applied): resume ends bit-identical.
    stopped_copy(&dir, "straight", "sched", 100);
    ok(&dir, &["resume", "sched", "--quiet"]);
    tensors_equal(
        &straight.join("checkpoints/last.safetensors"),
        &dir.join("sched/checkpoints/last.safetensors"),
    );
    assert_eq!(
        events_without_timing(&straight),
        events_without_timing(&dir.join("sched"))
    );

    // Stopped in chunk 1's second epoch, resumed with a lower rate and 2 epochs per chunk:
    // chunk 1 ends after its second epoch, and chunk 2's schedule still applies.
    stopped_copy(&dir, "straight", "changed", 40);
    let (_, err) = ok_both(
        &dir,
        &[
            "resume",
            "changed",
            "--set",
            "optimizer.lr=0.005",
            "--set",
            "train.epochs=2",
        ],
    );
    let line =
        "changed step 40 (chunk 1, resume --set): optimizer.lr 0.02 → 0.005, train.epochs 3 → 2";
    assert!(err.contains(line), "{err}");
    let changed = dir.join("changed");
    assert_eq!(epoch_lrs(&changed), [0.02, 0.005, 0.01]);
    let c = changes(&changed);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(
        (&c[0]["source"], &c[0]["step"]),
        (&"resume".into(), &40.into())
    );
    assert_eq!(
        (&c[1]["source"], &c[1]["step"]),
        (&"schedule".into(), &60.into())
    );
    let md = std::fs::read_to_string(changed.join("report/report.md")).unwrap();
    assert!(md.contains("## Hyper-parameter changes"), "{md}");
    assert!(md.contains(&line["changed ".len()..]), "{md}");
    let last = Checkpoint::read_file(&changed.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!((last.meta.step, last.meta.train.epochs), (90, 1));
    // Planned: chunk 1 at 2 epochs, chunk 2 at the schedule's 1 (was 3 + 1 epochs: 120).
    assert_eq!(last.meta.planned_steps, Some(90));

    // Killed after the change (in chunk 2): a plain resume accepts the changed checkpoint
    // (config.toml plus the history's changes) and ends bit-identical.
    stopped_copy(&dir, "changed", "again", 70);
    ok(&dir, &["resume", "again", "--quiet"]);
    tensors_equal(
        &changed.join("checkpoints/last.safetensors"),
        &dir.join("again/checkpoints/last.safetensors"),
    );
    assert_eq!(
        events_without_timing(&changed),
        events_without_timing(&dir.join("again"))
    );

    // Refused: keys that cannot change (the message lists those that can), bad values, and
    // a schedule naming a chunk the run does not have. Nothing is written.
    let before = std::fs::read(changed.join("checkpoints/last.safetensors")).unwrap();
    for (set, want) in [
        ("train.batch_size=64", "train.batch_size: cannot be changed during a run; the settable keys are optimizer.type, optimizer.lr"),
        ("model.layers=1", "model.layers: cannot be changed"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("train.epochs=0", "train.epochs: must be at least 1"),
        ("optimizer.momentum=0.5", "momentum"),
        ("lr", "is not key=value"),
    ] {
        let out = run(&dir, &["resume", "changed", "--set", set]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        assert!(err.starts_with("error: ") && err.contains(want), "{set}: {err}");
    }
    assert_eq!(
        std::fs::read(changed.join("checkpoints/last.safetensors")).unwrap(),
        before
    );
    std::fs::write(
        dir.join("bad.toml"),
        config().replace("chunk = 2", "chunk = 3"),
    )
    .unwrap();
    let out = run(&dir, &["train", "--config", "bad.toml", "--out", "bad"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("incremental.schedule: entry 1 names chunk 3, but chunks are numbered 1..=2"),
        "{err}"
    );
}

/// `resume --set train.epochs=N` moves the end of a run-long cosine with the run's length:
/// the planned steps become the chunks' steps × the epochs they now train for, and the
/// resumed run's rates after the change are those of a run configured with those epochs
/// from the start (an `[[incremental.schedule]]` entry: planned at the start).
#[test]
fn resume_set_epochs_replans_the_run_long_schedule() {
    // 240 training samples in 2 chunks, batch 4: 30 steps per epoch, 1 epoch per chunk.
    let cosine = long_config()
        .replace("keep_last = 0", "keep_last = 1000")
        .replace("lr = 0.02", "lr = 0.02\nschedule = { type = \"cosine\" }")
        .replace("epochs = 3", "epochs = 1");
    let dir = blobs_dir("settings_cosine", &cosine);
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "short", "--quiet"],
    );
    let short = Checkpoint::read_file(&dir.join("short/checkpoints/last.safetensors")).unwrap();
    assert_eq!(short.meta.planned_steps, Some(60));
    // Stopped in chunk 2 at step 40; chunk 2 now trains 2 epochs: 30 + 60 = 90 steps.
    stopped_copy(&dir, "short", "longer", 40);
    ok_both(
        &dir,
        &["resume", "longer", "--set", "train.epochs=2", "--quiet"],
    );
    let longer = Checkpoint::read_file(&dir.join("longer/checkpoints/last.safetensors")).unwrap();
    assert_eq!(
        (longer.meta.step, longer.meta.planned_steps),
        (90, Some(90)),
        "the planned steps must follow the new epochs"
    );
    std::fs::write(
        dir.join("planned.toml"),
        cosine + "\n[[incremental.schedule]]\nchunk = 2\nepochs = 2\n",
    )
    .unwrap();
    ok(
        &dir,
        &[
            "train",
            "--config",
            "planned.toml",
            "--out",
            "planned",
            "--quiet",
        ],
    );
    let (got, want) = (
        epoch_lrs(&dir.join("longer")),
        epoch_lrs(&dir.join("planned")),
    );
    eprintln!("epoch-end rates: resumed with --set {got:?}, planned from the start {want:?}");
    assert_eq!(got.len(), 3, "{got:?}");
    // Chunk 1 ran under the old plan (its cosine aimed at step 60: a lower rate at 29).
    assert!(got[0] < want[0], "{got:?} vs {want:?}");
    assert_eq!(got[1..], want[1..], "rates after the change");
    // Halfway through the longer run the cosine is far from its end (the old plan's end,
    // step 60, would have it at ~0 by step 59).
    assert!(got[1] > 0.2 * 0.02, "{got:?}");
}
