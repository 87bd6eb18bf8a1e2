//! The array readers against numpy's own writers: values generated here go to Python as
//! raw little-endian bytes, numpy writes them with `np.save`, `np.savez` (stored, zip64
//! entries) and `np.savez_compressed` (deflated), and `safetensors.numpy.save_file`; accrete
//! must read back identical values (bit for bit, u8 features ÷ 255) and refuse what it does
//! not read (Fortran order, big-endian, float16) with a message saying what to do. Skipped,
//! with a note, where python3 or numpy is missing.

use accrete::data::arrays::{self, ArrayNames, Dtype};
use accrete::data::{npy, tensors};
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = r#"
import sys, numpy as np
d = sys.argv[1]
f = np.frombuffer(open(d + "/f64.bin", "rb").read(), dtype="<f8")
x = f.reshape(-1, 3, 2)
u8 = (np.arange(x.size) * 37 % 256).astype(np.uint8).reshape(x.shape)
y = np.frombuffer(open(d + "/labels.bin", "rb").read(), dtype="<i8")
np.save(d + "/x_f32.npy", x.astype(np.float32))
np.save(d + "/x_f64.npy", x)
np.save(d + "/x_u8.npy", u8)
np.save(d + "/x_i32.npy", (x * 1000).astype(np.int32))
np.save(d + "/y_i64.npy", y)
np.save(d + "/y_i32.npy", y.astype(np.int32))
np.save(d + "/y_u8.npy", y.astype(np.uint8))
np.save(d + "/y_f32.npy", y.astype(np.float32))
np.savez(d + "/stored.npz", features=x.astype(np.float32), labels=y)
np.savez_compressed(d + "/deflated.npz", features=u8, labels=y.astype(np.int32))
np.savez_compressed(d + "/named.npz", images=x, classes=y)
np.save(d + "/fortran.npy", np.asfortranarray(x.astype(np.float32)))
np.save(d + "/big_endian.npy", x.astype(">f4"))
np.save(d + "/f16.npy", x.astype(np.float16))
try:
    from safetensors.numpy import save_file
    save_file({"features": x.astype(np.float32), "labels": y}, d + "/data.safetensors")
except ImportError:
    print("no safetensors")
"#;

fn python_ok() -> bool {
    Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn numpy_written_arrays_read_back_identically() {
    if !python_ok() {
        eprintln!("SKIPPED: python3 with numpy is not installed (python3 -m pip install numpy)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("accrete-numpy-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = 50;
    // Values with every kind of f64 detail: signs, fractions, large and small magnitudes.
    let values: Vec<f64> = (0..n * 6)
        .map(|i| {
            let i = i as f64;
            (i * 0.731).sin() * 10f64.powi((i as i32 % 7) - 3) - 0.5
        })
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| (i * 7) % 4).collect();
    std::fs::write(
        dir.join("f64.bin"),
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(
        dir.join("labels.bin"),
        labels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = Command::new("python3")
        .args(["-c", SCRIPT, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let have_safetensors = !String::from_utf8_lossy(&out.stdout).contains("no safetensors");

    let want_f32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    let want_u8: Vec<f32> = (0..n * 6)
        .map(|i| ((i * 37) % 256) as f32 / 255.0)
        .collect();
    let want_i32: Vec<f32> = values.iter().map(|&v| (v * 1000.0) as i32 as f32).collect();
    let want_labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();

    for (file, want) in [
        ("x_f32.npy", &want_f32),
        ("x_f64.npy", &want_f32),
        ("x_u8.npy", &want_u8),
        ("x_i32.npy", &want_i32),
    ] {
        for yfile in ["y_i64.npy", "y_i32.npy", "y_u8.npy", "y_f32.npy"] {
            let d = npy::npy_dataset(&read(&dir, file), &read(&dir, yfile), file, yfile, None)
                .unwrap_or_else(|e| panic!("{file} + {yfile}: {e}"));
            assert_eq!(d.sample_shape, vec![3, 2], "{file}");
            assert_eq!(bits(&d.features), bits(want), "{file}");
            assert_eq!(d.labels, want_labels, "{yfile}");
            assert_eq!(d.classes, 4);
        }
    }
    let names = ArrayNames::default();
    let d = npy::npz_dataset(&read(&dir, "stored.npz"), "stored.npz", &names, Some(4)).unwrap();
    assert_eq!(
        (bits(&d.features), &d.labels),
        (bits(&want_f32), &want_labels)
    );
    let d = npy::npz_dataset(&read(&dir, "deflated.npz"), "deflated.npz", &names, None).unwrap();
    assert_eq!(
        (bits(&d.features), &d.labels),
        (bits(&want_u8), &want_labels)
    );
    let named = ArrayNames {
        features: "images".into(),
        labels: "classes".into(),
    };
    let d = npy::npz_dataset(&read(&dir, "named.npz"), "named.npz", &named, None).unwrap();
    assert_eq!(bits(&d.features), bits(&want_f32));
    let e = npy::npz_dataset(&read(&dir, "named.npz"), "named.npz", &names, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no array named \"features\"") && e.contains("\"images\", \"classes\""),
        "{e}"
    );
    if have_safetensors {
        let d = tensors::dataset(&read(&dir, "data.safetensors"), "d", &names, None).unwrap();
        assert_eq!(
            (bits(&d.features), &d.labels),
            (bits(&want_f32), &want_labels)
        );
    } else {
        eprintln!("safetensors (PyPI) is missing: the safetensors check is skipped");
    }
    for (file, want) in [
        ("fortran.npy", "Fortran (column-major) order"),
        ("big_endian.npy", "big-endian; save arr.astype('<f4')"),
        ("f16.npy", "dtype \"<f2\" is not supported"),
    ] {
        let e = npy::parse(&read(&dir, file), file).unwrap_err().to_string();
        assert!(e.starts_with(file) && e.contains(want), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Labels and features that cannot be a dataset, named by the array they are in.
#[test]
fn bad_arrays_are_refused_with_the_reason() {
    let arr = |shape: &[usize], dtype: Dtype, v: &[f64]| arrays::Array {
        shape: shape.to_vec(),
        dtype,
        bytes: v
            .iter()
            .flat_map(|&x| match dtype {
                Dtype::F64 => x.to_le_bytes().to_vec(),
                Dtype::I64 => (x as i64).to_le_bytes().to_vec(),
                _ => unreachable!(),
            })
            .collect(),
    };
    let x = arr(&[2, 1], Dtype::F64, &[1.0, 2.0]);
    for (y, want) in [
        (
            arr(&[2], Dtype::I64, &[0.0, -1.0]),
            "label -1 of sample 1 is negative",
        ),
        (
            arr(&[2], Dtype::F64, &[0.5, 1.0]),
            "label 0.5 of sample 0 is not a whole number",
        ),
        (
            arr(&[2], Dtype::F64, &[f64::NAN, 1.0]),
            "is not a finite number",
        ),
        (
            arr(&[3], Dtype::I64, &[0.0, 1.0, 1.0]),
            "3 labels for the 2 samples",
        ),
    ] {
        let e = arrays::dataset(&x, Some(&y), "x", "y", None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("y: ") && e.contains(want), "{e}");
    }
    let nan = arr(&[2, 1], Dtype::F64, &[1.0, f64::INFINITY]);
    let e = arrays::dataset(&nan, None, "x", "y", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("feature 0 of sample 1: is inf"), "{e}");
    let huge = arr(&[1, 1], Dtype::F64, &[1e300]);
    let e = arrays::dataset(&huge, None, "x", "y", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too large for a 32-bit float"), "{e}");
    let flat = arr(&[2], Dtype::F64, &[1.0, 2.0]);
    let e = arrays::dataset(&flat, None, "x", "y", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reshape to [n, 1]"), "{e}");
}
