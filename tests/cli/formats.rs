//! Data formats beside IDX and CSV (issue #16): `.npy`, `.npz` (stored and deflated),
//! safetensors datasets, image folders (PNG and JPEG) and TSV train, evaluate and predict
//! through the CLI; malformed files are refused with exit status 2 and a message naming the
//! file and what to do. The data is written here: the arrays by accrete's own writers
//! (`data::npy::encode`, `data::zip::encode`, `data::tensors::encode`; numpy's files are
//! checked in tests/data_metrics/formats.rs), the images by the `image` crate.

use super::commands::{noise, ok, ok_both, run, scratch, text};
use accrete::data::arrays::{Array, Dtype};
use accrete::data::{npy, tensors, zip};
use std::path::Path;

/// Three blobs in 2-D (scaled by 10): features [n, 2] and labels [n].
fn blobs(n: usize, offset: usize) -> (Vec<f64>, Vec<i64>) {
    let centres = [(-1.0f64, -1.0f64), (1.0, -0.5), (0.0, 1.0)];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let k = i + offset;
        let c = k % 3;
        x.push(10.0 * (centres[c].0 + 0.45 * noise(2 * k) as f64));
        x.push(10.0 * (centres[c].1 + 0.45 * noise(2 * k + 1) as f64));
        y.push(c as i64);
    }
    (x, y)
}

fn array(shape: &[usize], dtype: Dtype, values: &[f64]) -> Array {
    let bytes = values
        .iter()
        .flat_map(|&v| match dtype {
            Dtype::U8 => vec![v as u8],
            Dtype::I32 => (v as i32).to_le_bytes().to_vec(),
            Dtype::I64 => (v as i64).to_le_bytes().to_vec(),
            Dtype::F32 => (v as f32).to_le_bytes().to_vec(),
            Dtype::F64 => v.to_le_bytes().to_vec(),
        })
        .collect();
    Array {
        shape: shape.to_vec(),
        dtype,
        bytes,
    }
}

/// The blobs as (features, labels) arrays of the given dtypes.
fn blob_arrays(n: usize, offset: usize, fx: Dtype, fy: Dtype) -> (Array, Array) {
    let (x, y) = blobs(n, offset);
    let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    (array(&[n, 2], fx, &x), array(&[n], fy, &y))
}

const MODEL: &str = r#"
[model]
input = [2]
layers = [{ type = "dense", units = 16, activation = "tanh" }, { type = "dense", units = 3 }]

[optimizer]
type = "adam"
lr = 0.02

[train]
batch_size = 16
epochs = 4

[incremental]
chunks = 1
"#;

/// Trains with `data` (a `[data]` table) in `dir`; returns the test accuracy printed (a
/// fraction, to 1e-4).
fn train(dir: &Path, data: &str, model: &str) -> f64 {
    std::fs::write(
        dir.join("run.toml"),
        format!("seed = 2\n[data]\n{data}\n{model}"),
    )
    .unwrap();
    let (stdout, _) = ok_both(dir, &["train", "--config", "run.toml", "--out", "run"]);
    let pct: f64 = stdout
        .trim()
        .strip_prefix("done: test accuracy ")
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no test accuracy in {stdout:?}"));
    pct / 100.0
}

#[test]
fn npy_npz_safetensors_and_tsv_train_evaluate_and_predict() {
    let dir = scratch("formats-arrays");
    let w = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
    // .npy: float32 features, int64 labels.
    let (x, y) = blob_arrays(300, 0, Dtype::F32, Dtype::I64);
    let (tx, ty) = blob_arrays(90, 10_000, Dtype::F32, Dtype::I64);
    w("x.npy", &npy::encode(&x));
    w("y.npy", &npy::encode(&y));
    w("tx.npy", &npy::encode(&tx));
    w("ty.npy", &npy::encode(&ty));
    // .npz stored (float64, uint8) and deflated (float32, int32).
    let (x64, y8) = blob_arrays(300, 0, Dtype::F64, Dtype::U8);
    let (tx64, ty8) = blob_arrays(90, 10_000, Dtype::F64, Dtype::U8);
    let npz = |x: &Array, y: &Array, deflate: bool| {
        zip::encode(
            &[
                ("features.npy", &npy::encode(x)),
                ("labels.npy", &npy::encode(y)),
            ],
            deflate,
        )
    };
    w("train.npz", &npz(&x64, &y8, false));
    w("test.npz", &npz(&tx64, &ty8, false));
    let (x32, y32) = blob_arrays(300, 0, Dtype::F32, Dtype::I32);
    let (tx32, ty32) = blob_arrays(90, 10_000, Dtype::F32, Dtype::I32);
    let xy = |x: &Array, y: &Array| {
        zip::encode(
            &[("x.npy", &npy::encode(x)), ("y.npy", &npy::encode(y))],
            true,
        )
    };
    w("train_z.npz", &xy(&x32, &y32));
    w("test_z.npz", &xy(&tx32, &ty32));
    // safetensors: F32 features, I64 labels.
    w(
        "train.safetensors",
        &tensors::encode(&[("features", &x), ("labels", &y)]),
    );
    w(
        "test.safetensors",
        &tensors::encode(&[("features", &tx), ("labels", &ty)]),
    );
    // TSV with the label column first.
    let tsv = |n: usize, offset: usize| {
        let (x, y) = blobs(n, offset);
        let mut s = String::from("label\tx\ty\n");
        for (r, l) in x.chunks(2).zip(&y) {
            s += &format!("{l}\t{}\t{}\n", r[0], r[1]);
        }
        s
    };
    w("train.tsv", tsv(300, 0).as_bytes());
    w("test.tsv", tsv(90, 10_000).as_bytes());

    let configs = [
        ("npy", "format = \"npy\"\ntrain_file = \"x.npy\"\ntrain_labels_file = \"y.npy\"\ntest_file = \"tx.npy\"\ntest_labels_file = \"ty.npy\""),
        ("npz stored", "format = \"npz\"\ntrain_file = \"train.npz\"\ntest_file = \"test.npz\""),
        ("npz deflated", "format = \"npz\"\ntrain_file = \"train_z.npz\"\ntest_file = \"test_z.npz\"\nfeatures_key = \"x\"\nlabels_key = \"y\""),
        ("safetensors", "format = \"safetensors\"\ntrain_file = \"train.safetensors\"\ntest_file = \"test.safetensors\""),
        ("tsv", "format = \"csv\"\ndelimiter = \"\\t\"\ntrain_file = \"train.tsv\"\ntest_file = \"test.tsv\""),
    ];
    let mut accuracies = Vec::new();
    for (what, data) in configs {
        let _ = std::fs::remove_dir_all(dir.join("run"));
        let acc = train(&dir, data, MODEL);
        eprintln!("{what}: test accuracy {acc}");
        assert!(acc >= 0.9, "{what}: test accuracy {acc}");
        accuracies.push(acc);
    }
    // The same values in every format (u8 labels, f64 → f32 features): the same run.
    assert!(
        accuracies.windows(2).all(|w| w[0] == w[1]),
        "{accuracies:?}"
    );

    // eval and predict read the same files; the safetensors run's checkpoint is the last
    // trained but TSV's: all runs are the same model.
    let ckpt = "run/checkpoints/last.safetensors";
    let eval = |args: &[&str]| -> f64 {
        let mut a = vec!["eval", ckpt];
        a.extend(args);
        let v: serde_json::Value = serde_json::from_str(&ok(&dir, &a)).unwrap();
        assert_eq!(v["samples"], 90, "{v}");
        v["accuracy"].as_f64().unwrap()
    };
    let want = eval(&["--csv", "test.tsv"]);
    for args in [
        &["--data", "test.npz"][..],
        &[
            "--data",
            "test_z.npz",
            "--features-key",
            "x",
            "--labels-key",
            "y",
        ],
        &["--data", "test.safetensors"],
        &["--data", "tx.npy", "--labels", "ty.npy"],
        &["--data", "test.tsv"],
    ] {
        assert_eq!(eval(args), want, "{args:?}");
    }
    let predict = |input: &str| ok(&dir, &["predict", ckpt, "--input", input]);
    let probs = predict("tx.npy");
    assert_eq!(probs.lines().count(), 91, "{probs}");
    assert!(probs.starts_with("p0,p1,p2\n"), "{probs}");
    // A TSV without a label column, and the labelled files: the same probabilities.
    let (x, _) = blobs(90, 10_000);
    let mut unlabelled = String::from("x\ty\n");
    for r in x.chunks(2) {
        unlabelled += &format!("{}\t{}\n", r[0], r[1]);
    }
    w("inputs.tsv", unlabelled.as_bytes());
    for input in ["inputs.tsv", "test.safetensors", "test.npz", "test.tsv"] {
        assert_eq!(predict(input), probs, "{input}");
    }
}

/// 8×8 images of three classes: a bright row, column or diagonal, plus noise.
fn bar_image(class: usize, k: usize) -> [[u8; 8]; 8] {
    let mut img = [[0u8; 8]; 8];
    for (r, row) in img.iter_mut().enumerate() {
        for (c, p) in row.iter_mut().enumerate() {
            let on = match class {
                0 => r == 3,
                1 => c == 4,
                _ => r == c,
            };
            let v = 40.0 + 170.0 * f32::from(u8::from(on)) + 30.0 * noise(64 * k + 8 * r + c);
            *p = v.clamp(0.0, 255.0) as u8;
        }
    }
    img
}

/// Writes `n` images per class into `root/<class>/`: PNG greyscale at 8×8 for even k, JPEG
/// RGB at 16×16 (resized back to 8×8 on reading) for odd k.
fn image_folder(root: &Path, n: usize, offset: usize) {
    for (class, name) in ["col", "diag", "row"].iter().enumerate() {
        // Sorted folder names give the labels: col = 0, diag = 1, row = 2.
        let class = [1, 2, 0][class];
        let sub = root.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        for k in offset..offset + n {
            let img = bar_image(class, k);
            if k % 2 == 0 {
                let g = image::GrayImage::from_fn(8, 8, |x, y| {
                    image::Luma([img[y as usize][x as usize]])
                });
                g.save(sub.join(format!("{k:04}.png"))).unwrap();
            } else {
                let rgb = image::RgbImage::from_fn(16, 16, |x, y| {
                    let v = img[y as usize / 2][x as usize / 2];
                    image::Rgb([v, v, v])
                });
                rgb.save(sub.join(format!("{k:04}.JPG"))).unwrap();
            }
        }
    }
    std::fs::write(root.join("row").join("notes.txt"), "not an image").unwrap();
}

const CNN: &str = r#"
[model]
input = [1, 8, 8]
layers = [
  { type = "conv2d", filters = 4, kernel = 3, activation = "relu" },
  { type = "flatten" },
  { type = "dense", units = 3 },
]

[optimizer]
type = "adam"
lr = 0.01

[train]
batch_size = 16
epochs = 6

[incremental]
chunks = 1
"#;

#[test]
fn image_folders_train_evaluate_and_predict() {
    let dir = scratch("formats-images");
    image_folder(&dir.join("train"), 60, 0);
    image_folder(&dir.join("test"), 15, 1000);
    let acc = train(
        &dir,
        "format = \"image_folder\"\ntrain_dir = \"train\"\ntest_dir = \"test\"",
        CNN,
    );
    assert!(acc >= 0.9, "test accuracy {acc}");
    let ckpt = "run/checkpoints/last.safetensors";
    let v: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["eval", ckpt, "--data", "test"])).unwrap();
    assert_eq!(v["samples"], 45, "{v}");
    assert!(
        (v["accuracy"].as_f64().unwrap() - acc).abs() < 1e-4,
        "{v} vs {acc}"
    );
    let probs = ok(&dir, &["predict", ckpt, "--input", "test"]);
    assert_eq!(probs.lines().count(), 46);
    // RGB into a dense model of flattened 3×6×6 images (image_size and image_color given).
    let _ = std::fs::remove_dir_all(dir.join("run"));
    let acc = train(
        &dir,
        "format = \"image_folder\"\ntrain_dir = \"train\"\ntest_dir = \"test\"\nimage_size = [6, 6]\nimage_color = \"rgb\"",
        &MODEL.replace("input = [2]", "input = [108]"),
    );
    assert!(acc >= 0.8, "rgb dense: test accuracy {acc}");
}

/// Asserts exit status 2 and an error naming every part.
fn refused(dir: &Path, args: &[&str], parts: &[&str]) {
    let out = run(dir, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for p in parts {
        assert!(err.contains(p), "{args:?}: the error lacks {p:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_array_files_and_image_folders_are_refused_clearly() {
    let dir = scratch("formats-malformed");
    let w = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    };
    let (x, y) = blob_arrays(30, 0, Dtype::F32, Dtype::I64);
    let good_x = npy::encode(&x);
    w("x.npy", &good_x);
    w("y.npy", &npy::encode(&y));
    w("trunc.npy", &good_x[..good_x.len() - 5]);
    let mut f16 = good_x.clone();
    let at = f16.windows(3).position(|s| s == b"<f4").unwrap();
    f16[at..at + 3].copy_from_slice(b"<f2");
    w("f16.npy", &f16);
    let (_, y_short) = blob_arrays(29, 0, Dtype::F32, Dtype::I64);
    w("y_short.npy", &npy::encode(&y_short));
    let y_big = array(&[30], Dtype::I64, &[7.0; 30]);
    w("y_big.npy", &npy::encode(&y_big));
    let z = zip::encode(
        &[("features.npy", &good_x), ("labels.npy", &npy::encode(&y))],
        true,
    );
    w("cut.npz", &z[..z.len() / 2]);
    let mut crc = z.clone();
    crc[60] ^= 0xff;
    w("crc.npz", &crc);
    w(
        "nolabels.safetensors",
        &tensors::encode(&[("features", &x), ("y", &y)]),
    );
    let cfg = |name: &str, data: &str| {
        w(name, format!("[data]\n{data}\n{MODEL}").as_bytes());
    };
    let npy_cfg = |x: &str, y: &str| {
        format!("format = \"npy\"\ntrain_file = \"{x}\"\ntrain_labels_file = \"{y}\"")
    };
    cfg("trunc.toml", &npy_cfg("trunc.npy", "y.npy"));
    cfg("f16.toml", &npy_cfg("f16.npy", "y.npy"));
    cfg("short.toml", &npy_cfg("x.npy", "y_short.npy"));
    cfg("big.toml", &npy_cfg("x.npy", "y_big.npy"));
    cfg("nolab.toml", &npy_cfg("x.npy", "x.npy"));
    cfg("cut.toml", "format = \"npz\"\ntrain_file = \"cut.npz\"");
    cfg("crc.toml", "format = \"npz\"\ntrain_file = \"crc.npz\"");
    cfg(
        "st.toml",
        "format = \"safetensors\"\ntrain_file = \"nolabels.safetensors\"",
    );
    cfg(
        "nolabelsfile.toml",
        "format = \"npy\"\ntrain_file = \"x.npy\"",
    );
    cfg("wrongkey.toml", "format = \"npy\"\ntrain_file = \"x.npy\"\ntrain_labels_file = \"y.npy\"\nfeatures_key = \"x\"");
    cfg(
        "delim.toml",
        "format = \"csv\"\ntrain_file = \"t.csv\"\ndelimiter = \"ab\"",
    );
    let train = |toml: &str, parts: &[&str]| {
        refused(&dir, &["train", "--config", toml, "--out", "run"], parts)
    };
    train(
        "trunc.toml",
        &[
            "trunc.npy",
            "truncated",
            "needs 240 bytes of data, the file has 235",
        ],
    );
    train(
        "f16.toml",
        &["f16.npy", "dtype \"<f2\" is not supported", "astype"],
    );
    train(
        "short.toml",
        &[
            "y_short.npy",
            "29 labels for the 30 samples",
            "one row per sample",
        ],
    );
    train(
        "big.toml",
        &["y_big.npy", "label 7 of sample 0 is outside the 3 classes"],
    );
    train(
        "nolab.toml",
        &["x.npy", "labels must be an array [samples]", "[30, 2]"],
    );
    train("cut.toml", &["cut.npz", "not a valid .npz", "np.savez"]);
    train("crc.toml", &["crc.npz", "features.npy"]);
    train(
        "st.toml",
        &[
            "nolabels.safetensors",
            "no array named \"labels\"",
            "\"features\", \"y\"",
            "data.labels_key",
        ],
    );
    train(
        "nolabelsfile.toml",
        &["data.train_labels_file: is required with format = \"npy\""],
    );
    train(
        "wrongkey.toml",
        &["data.features_key: only applies to format = \"npz\" or \"safetensors\""],
    );
    train(
        "delim.toml",
        &["data.delimiter", "\"ab\" is not one ASCII character"],
    );

    // Image folders: an empty class folder, an unreadable image, no class folders, a BMP.
    image_folder(&dir.join("imgs"), 3, 0);
    // "row" keeps only notes.txt: no images.
    image_folder(&dir.join("empty"), 2, 0);
    for f in ["0000.png", "0001.JPG"] {
        std::fs::remove_file(dir.join("empty/row").join(f)).unwrap();
    }
    image_folder(&dir.join("broken"), 2, 0);
    let png = std::fs::read(dir.join("broken/row/0000.png")).unwrap();
    w("broken/row/0000.png", &png[..png.len() / 2]);
    w("flat/0.png", &png);
    let icfg = |name: &str, train_dir: &str| {
        w(
            name,
            format!("[data]\nformat = \"image_folder\"\ntrain_dir = \"{train_dir}\"\n{CNN}")
                .as_bytes(),
        );
    };
    icfg("empty.toml", "empty");
    icfg("broken.toml", "broken");
    icfg("flat.toml", "flat");
    icfg("missing.toml", "no-such-folder");
    train(
        "empty.toml",
        &[
            "empty/row",
            "holds no PNG or JPEG images",
            "remove the folder",
        ],
    );
    train(
        "broken.toml",
        &[
            "broken/row/0000.png",
            "unreadable image",
            "remove or replace it",
        ],
    );
    train("flat.toml", &["flat", "has no class subfolders"]);
    train("missing.toml", &["no-such-folder", "is not a folder"]);
    // Four class folders for a model of three outputs.
    image_folder(&dir.join("four"), 2, 0);
    std::fs::create_dir_all(dir.join("four/zzz")).unwrap();
    std::fs::copy(dir.join("four/row/0000.png"), dir.join("four/zzz/0.png")).unwrap();
    icfg("four.toml", "four");
    train(
        "four.toml",
        &["four", "4 class subfolders but the model has 3 outputs"],
    );
    // A dense model without image_size.
    w(
        "nosize.toml",
        format!("[data]\nformat = \"image_folder\"\ntrain_dir = \"imgs\"\n{MODEL}").as_bytes(),
    );
    train(
        "nosize.toml",
        &["data.image_size: is required when model.input ([2])"],
    );
    // predict on a truncated .npy and on an .npz without the features array.
    std::fs::write(
        dir.join("ok.toml"),
        format!("[data]\n{}\n{MODEL}", npy_cfg("x.npy", "y.npy")),
    )
    .unwrap();
    ok(&dir, &["train", "--config", "ok.toml", "--out", "okrun"]);
    let ckpt = "okrun/checkpoints/last.safetensors";
    refused(
        &dir,
        &["predict", ckpt, "--input", "trunc.npy"],
        &["trunc.npy", "truncated"],
    );
    let only_y = zip::encode(&[("labels.npy", &npy::encode(&y))], false);
    w("only_y.npz", &only_y);
    refused(
        &dir,
        &["predict", ckpt, "--input", "only_y.npz"],
        &["only_y.npz", "no array named \"features\"", "\"labels\""],
    );
    refused(
        &dir,
        &["eval", ckpt, "--data", "x.npy"],
        &["x.npy", "evaluation needs labels"],
    );
    refused(
        &dir,
        &["eval", ckpt, "--data", "x.npy", "--labels", "y_short.npy"],
        &["29 labels for the 30 samples"],
    );
}
