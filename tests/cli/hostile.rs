//! Hostile inputs and damaged run directories (issue #19): each must fail fast with exit
//! status 2 and one `error:` line naming the problem — never block, read without limit,
//! overwrite an input, or lose a checkpoint.

use crate::commands::{blobs_csv, blobs_dir, blobs_run, ok, run, scratch, text, BLOBS_CONFIG};
use std::path::Path;
use std::process::Output;

/// Asserts exit status 2 and an error line holding every part of `parts`.
fn refused(out: &Output, parts: &[&str]) -> String {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {}: {err}",
        out.status
    );
    assert!(err.contains("error: "), "{err}");
    for p in parts {
        assert!(err.contains(p), "the error lacks {p:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

/// A FIFO nobody writes to blocks `open()` forever: every input that could be one is
/// refused before it is opened (the test would hang, not fail, without the fix).
#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_without_blocking_or_reading() {
    let dir = scratch("hostile-fifo");
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let out = run(&dir, &["train", "--config", "pipe", "--out", "r"]);
    refused(&out, &["pipe", "a FIFO (named pipe), not a regular file"]);
    assert!(!dir.join("r").exists(), "nothing may be written");
    refused(&run(&dir, &["eval", "pipe"]), &["a FIFO"]);
    let blobs = blobs_run();
    let ckpt = blobs.join("run/checkpoints/last.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    refused(
        &run(&dir, &["predict", ckpt, "--input", "pipe"]),
        &["a FIFO"],
    );
    // An IDX file of the data folder that is a FIFO.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    mkfifo(&data.join("train-images-idx3-ubyte"));
    mkfifo(&data.join("train-labels-idx1-ubyte"));
    std::fs::write(
        dir.join("idx.toml"),
        "[data]\nformat = \"idx\"\ndir = \"data\"\n",
    )
    .unwrap();
    refused(
        &run(&dir, &["train", "--config", "idx.toml", "--out", "r2"]),
        &["train-images-idx3-ubyte", "a FIFO"],
    );
    // /dev/zero never ends: refused at once, not read to 4 GB.
    refused(
        &run(&dir, &["train", "--config", "/dev/zero", "--out", "r3"]),
        &["/dev/zero", "a character device"],
    );
    refused(
        &run(&dir, &["predict", ckpt, "--input", "/dev/zero"]),
        &["a character device"],
    );
    // A directory given as a file.
    refused(
        &run(&dir, &["train", "--config", "data", "--out", "r4"]),
        &["a directory, not a regular file"],
    );
}

/// A configuration over the size cap is refused from its size, before it is read.
#[test]
fn oversized_configs_are_refused_from_their_size() {
    let dir = scratch("hostile-big-config");
    let f = std::fs::File::create(dir.join("big.toml")).unwrap();
    f.set_len(5 << 20).unwrap(); // sparse: 5 MiB of zeros
    refused(
        &run(&dir, &["train", "--config", "big.toml", "--out", "r"]),
        &["big.toml", "5.0 MiB", "over the 4.0 MiB"],
    );
}

/// `predict --output` naming its own checkpoint or input (directly, through `./`, or
/// through a hard link) is refused and the file is left as it was.
#[test]
fn predict_never_overwrites_its_inputs() {
    let dir = scratch("hostile-predict-output");
    let blobs = blobs_run();
    std::fs::copy(
        blobs.join("run/checkpoints/last.safetensors"),
        dir.join("m.safetensors"),
    )
    .unwrap();
    std::fs::write(dir.join("in.csv"), blobs_csv(5, 77)).unwrap();
    std::fs::hard_link(dir.join("m.safetensors"), dir.join("link.safetensors")).unwrap();
    let before = std::fs::read(dir.join("m.safetensors")).unwrap();
    for output in [
        "m.safetensors",
        "./m.safetensors",
        "link.safetensors",
        "in.csv",
    ] {
        let out = run(
            &dir,
            &[
                "predict",
                "m.safetensors",
                "--input",
                "in.csv",
                "--output",
                output,
            ],
        );
        refused(&out, &["is one of the command's inputs"]);
    }
    assert_eq!(std::fs::read(dir.join("m.safetensors")).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(dir.join("in.csv")).unwrap(),
        blobs_csv(5, 77)
    );
}

/// A finished blobs run of one chunk in its own folder, to damage.
fn fresh_run(name: &str) -> std::path::PathBuf {
    let dir = blobs_dir(name, &BLOBS_CONFIG.replace("chunks = 2", "chunks = 1"));
    ok(
        &dir,
        &["train", "--config", "run.toml", "--out", "run", "--quiet"],
    );
    dir
}

/// Without a usable `last.safetensors` (deleted or a dangling link), `resume` refuses to
/// start over — which would overwrite `best` — and says how to start afresh.
#[test]
fn resume_without_last_refuses_and_keeps_best() {
    let dir = fresh_run("hostile-no-last");
    let ckpts = dir.join("run/checkpoints");
    let best = std::fs::read(ckpts.join("best.safetensors")).unwrap();
    std::fs::remove_file(ckpts.join("last.safetensors")).unwrap();
    let out = run(&dir, &["resume", "run", "--quiet"]);
    refused(&out, &["last.safetensors", "accrete train --config"]);
    assert_eq!(std::fs::read(ckpts.join("best.safetensors")).unwrap(), best);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("gone.safetensors", ckpts.join("last.safetensors")).unwrap();
        let out = run(&dir, &["resume", "run", "--quiet"]);
        refused(&out, &["last.safetensors"]);
        assert_eq!(std::fs::read(ckpts.join("best.safetensors")).unwrap(), best);
    }
}

/// `report/` being a file is found before any training, not after it.
#[test]
fn resume_checks_the_run_directory_before_training() {
    let dir = fresh_run("hostile-report-file");
    let ckpts = dir.join("run/checkpoints");
    let last = std::fs::read(ckpts.join("last.safetensors")).unwrap();
    std::fs::remove_dir_all(dir.join("run/report")).unwrap();
    std::fs::write(dir.join("run/report"), "not a folder").unwrap();
    let out = run(&dir, &["resume", "run", "--quiet"]);
    refused(&out, &["report", "is not a folder"]);
    assert_eq!(std::fs::read(ckpts.join("last.safetensors")).unwrap(), last);
}

/// Damaged `metrics.jsonl` rows (a NaN, deleted bytes, truncation, the file deleted) are
/// rebuilt from the checkpoint's own history, never dropped.
#[test]
fn resume_rebuilds_damaged_history_from_the_checkpoint() {
    let dir = fresh_run("hostile-history");
    let metrics = dir.join("run/metrics.jsonl");
    let good = std::fs::read_to_string(&metrics).unwrap();
    assert!(good.lines().count() >= 2, "{good}");
    let damages: Vec<(&str, Option<String>)> = vec![
        (
            "a NaN",
            Some(good.replacen("\"train_loss\":", "\"train_loss\":NaN,\"x\":", 1)),
        ),
        (
            "bytes deleted",
            Some(good[..good.len() / 2].to_string() + &good[good.len() / 2 + 7..]),
        ),
        ("truncated", Some(good[..good.len() / 3].to_string())),
        ("deleted", None),
    ];
    for (what, damaged) in damages {
        match &damaged {
            Some(t) => std::fs::write(&metrics, t).unwrap(),
            None => std::fs::remove_file(&metrics).unwrap(),
        }
        ok(&dir, &["resume", "run", "--quiet"]);
        assert_eq!(
            std::fs::read_to_string(&metrics).unwrap(),
            good,
            "metrics.jsonl after resuming with its rows {what}"
        );
    }
}

/// A configuration edited between train and resume: the error names the first field that
/// differs, with both values, not two identical summaries.
#[test]
fn a_changed_model_names_the_field_that_differs() {
    let dir = fresh_run("hostile-mismatch");
    let config = dir.join("run/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("units = 16"), "{text}");
    std::fs::write(&config, text.replacen("units = 16", "units = 65536", 1)).unwrap();
    let out = run(&dir, &["resume", "run", "--quiet"]);
    refused(&out, &["units", "16", "65536"]);
}
