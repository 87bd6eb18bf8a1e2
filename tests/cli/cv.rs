//! `accrete cv`: a 3-fold cross-validation of the blobs run writes one run directory per
//! fold and a JSON summary whose fold 1 accuracy and loss are recomputed independently by
//! `accrete eval` on that fold's held-out rows (written to a CSV from the indices the fold
//! records); a grid picks the best setting; folds < 2 and unknown grid keys are refused.

use super::*;

#[test]
fn cv_trains_k_folds_and_its_numbers_are_reproduced_by_eval() {
    let dir = blobs_dir("cv", BLOBS_CONFIG);
    let (out, err) = ok_both(
        &dir,
        &[
            "cv",
            "--config",
            "run.toml",
            "--folds",
            "3",
            "--stratified",
            "--out",
            "cv",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(r#"{"folds":[{"fold":1,"accuracy":"#),
        "{out}"
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let folds = s["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let acc: Vec<f64> = folds
        .iter()
        .map(|f| f["accuracy"].as_f64().unwrap())
        .collect();
    for (i, f) in folds.iter().enumerate() {
        assert_eq!(f["fold"], i + 1);
        assert!(f["loss"].as_f64().unwrap() > 0.0 && f["macro_f1"].as_f64().unwrap() > 0.5);
        assert!(dir
            .join(format!("cv/fold-{}/checkpoints/last.safetensors", i + 1))
            .exists());
        assert!(
            err.contains(&format!("fold {}/3: accuracy", i + 1)),
            "{err}"
        );
    }
    let mean = acc.iter().sum::<f64>() / 3.0;
    let sd = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((s["mean"]["accuracy"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((s["std"]["accuracy"].as_f64().unwrap() - sd).abs() < 1e-12);
    assert!(mean > 0.8, "blobs are separable: {acc:?}");

    // Fold 1's held-out rows (0-based rows of train.csv) as a CSV, evaluated by `eval`.
    let held: Vec<usize> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cv/fold-1/heldout.json")).unwrap())
            .unwrap();
    assert_eq!(held.len(), 100);
    let rows: Vec<String> = blobs_csv(300, 0).lines().map(String::from).collect();
    let mut csv = rows[0].clone() + "\n";
    for i in &held {
        csv += &rows[i + 1];
        csv.push('\n');
    }
    std::fs::write(dir.join("held1.csv"), csv).unwrap();
    let e: serde_json::Value = serde_json::from_str(&ok(
        &dir,
        &[
            "eval",
            "cv/fold-1/checkpoints/last.safetensors",
            "--csv",
            "held1.csv",
        ],
    ))
    .unwrap();
    assert_eq!(e["samples"], 100);
    assert_eq!(e["accuracy"].as_f64().unwrap(), acc[0]);
    let (l1, l2) = (
        e["loss"].as_f64().unwrap(),
        folds[0]["loss"].as_f64().unwrap(),
    );
    assert!((l1 - l2).abs() <= 1e-12 * l1.abs(), "{l1} vs {l2}");
    let md = std::fs::read_to_string(dir.join("cv/report.md")).unwrap();
    assert!(
        md.contains("| fold | accuracy | loss | macro F1 |") && md.contains("| mean |"),
        "{md}"
    );

    // A grid: every setting cross-validated, the best by mean accuracy reported.
    let out = ok(
        &dir,
        &[
            "cv",
            "--config",
            "run.toml",
            "--folds",
            "2",
            "--out",
            "grid",
            "--quiet",
            "--grid",
            "optimizer.lr=0.02,0.0001",
        ],
    );
    let g: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(g["grid"].as_array().unwrap().len(), 2);
    assert_eq!(g["setting"]["optimizer.lr"], "0.02", "{g}");
    assert!(dir
        .join("grid/setting-2/fold-2/checkpoints/last.safetensors")
        .exists());

    // Refused before any training.
    for (args, want) in [
        (
            &["--folds", "1"][..],
            "--folds: 1 folds: cross-validation needs at least 2",
        ),
        (
            &["--folds", "2", "--grid", "train.batchsize=4,8"],
            "batchsize",
        ),
        (
            &["--folds", "2", "--grid", "train.batch_size"],
            "is not key=v1,v2",
        ),
    ] {
        let argv: Vec<&str> = ["cv", "--config", "run.toml", "--out", "bad"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        let out = run(&dir, &argv);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!dir.join("bad").exists());
    }
}

/// `[parallel]` in `accrete cv`: local replicas train every fold (the fold line says so and
/// the folds still score), an uneven split is refused before any fold trains, and MPI is
/// refused with what to use instead.
#[test]
fn cv_trains_folds_on_local_replicas_and_refuses_mpi() {
    let two = format!("{BLOBS_CONFIG}\n[parallel]\ndevices = 2\n");
    let dir = blobs_dir("cv_parallel", &two);
    let (out, err) = ok_both(
        &dir,
        &["cv", "--config", "run.toml", "--folds", "2", "--out", "cv"],
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["folds"].as_array().unwrap().len(), 2, "{out}");
    assert!(s["mean"]["accuracy"].as_f64().unwrap() > 0.8, "{out}");
    for f in 1..=2 {
        assert!(
            err.contains(&format!("fold {f}/2: training on")) && err.contains("· 2 replicas"),
            "{err}"
        );
    }
    for (config, want) in [
        (
            two.replace("batch_size = 16", "batch_size = 15"),
            "parallel.devices",
        ),
        (
            format!("{BLOBS_CONFIG}\n[parallel]\nbackend = \"mpi\"\n"),
            "accrete cv trains its folds one after another in one process",
        ),
    ] {
        std::fs::write(dir.join("bad.toml"), &config).unwrap();
        let out = run(
            &dir,
            &["cv", "--config", "bad.toml", "--folds", "2", "--out", "bad"],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!dir.join("bad").exists(), "refused before any fold: {err}");
    }
}
