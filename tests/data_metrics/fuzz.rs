//! A seeded mutation fuzz suite of every reader of untrusted bytes (issue #19): checkpoints,
//! IDX (raw and gzip), CSV and TSV, `.npy`, `.npz` (stored and deflated), safetensors
//! datasets, PNG and JPEG images, the content sniffing of `accrete predict`'s inputs, TOML
//! run configurations and the browser's JSON spec. Each
//! mutant must be answered by a clear `Err` (or a value, where the mutation left the input
//! valid) — never a panic, never a hang, never an allocation beyond the input's declared
//! and capped size (the readers stream or check declared sizes before allocating).
//!
//! `ACCRETE_FUZZ_MUTANTS` sets mutants per reader (default 2,000: a few seconds in CI);
//! `ACCRETE_FUZZ_SEED` the seed (default 1). A long local run needs nothing else, e.g.
//! `ACCRETE_FUZZ_MUTANTS=25000 cargo test -p accrete-tests --test data_metrics fuzz`.

use accrete::config::{RunConfig, SessionSpec};
use accrete::data::arrays::{Array, ArrayNames, Dtype};
use accrete::data::{csv, idx, images, inputs, npy, tensors, zip};
use accrete::train::Checkpoint;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn mutants() -> usize {
    std::env::var("ACCRETE_FUZZ_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn seed() -> u64 {
    std::env::var("ACCRETE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// One random mutation of `seed`: bit flips, byte overwrites with boundary values,
/// insertions, deletions, truncation, duplicated or swapped spans, and sweeps of a header
/// field to extreme values.
fn mutate(rng: &mut SmallRng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.random_range(0..4);
    for _ in 0..rounds {
        let len = b.len().max(1);
        let at = rng.random_range(0..len).min(b.len());
        match rng.random_range(0..9) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] =
                    [0u8, 0xff, 0x7f, 0x80, b'"', b',', b'\n', b'{', b'9'][rng.random_range(0..9)];
            }
            2 => {
                let n = rng.random_range(1..16);
                let fill: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(at..at, fill);
            }
            3 if !b.is_empty() => {
                let end = (at + rng.random_range(1..32)).min(b.len());
                b.drain(at..end);
            }
            4 => b.truncate(at),
            5 if b.len() > 2 => {
                let end = (at + rng.random_range(1..64)).min(b.len());
                let span = b[at..end].to_vec();
                let to = rng.random_range(0..b.len());
                b.splice(to..to, span);
            }
            6 if b.len() >= 16 => {
                // A 4-byte field (a header size, a count) set to an extreme.
                let i = rng.random_range(0..16.min(b.len() - 3));
                let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x0100_0000][rng.random_range(0..5)];
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            7 if b.len() >= 8 => {
                // safetensors' little-endian u64 header length.
                let v: u64 = [0, 1, 7, u64::MAX, 1 << 40][rng.random_range(0..5)];
                b[..8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let extra: Vec<u8> = (0..rng.random_range(1..8)).map(|_| rng.random()).collect();
                b.extend(extra);
            }
        }
    }
    b
}

/// Runs `read` over `mutants()` mutants of each seed, failing on any panic or on an error
/// with an empty message. Returns (accepted, refused) counts.
fn fuzz<T, E: std::fmt::Display>(
    what: &str,
    seeds: &[Vec<u8>],
    read: impl Fn(&[u8]) -> Result<T, E>,
) -> (usize, usize) {
    let mut rng = SmallRng::seed_from_u64(seed() ^ what.len() as u64);
    let (mut ok, mut refused) = (0, 0);
    let per_seed = mutants().div_ceil(seeds.len());
    for s in seeds {
        for i in 0..per_seed {
            let m = mutate(&mut rng, s);
            match catch_unwind(AssertUnwindSafe(|| read(&m))) {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    assert!(
                        !msg.trim().is_empty(),
                        "{what}: mutant {i} gave an empty error"
                    );
                    assert!(
                        msg.len() < 4096,
                        "{what}: an error of {} bytes: {}",
                        msg.len(),
                        &msg[..200]
                    );
                    refused += 1;
                }
                Err(_) => {
                    let path = std::env::temp_dir().join(format!("accrete-fuzz-{what}.bin"));
                    let _ = std::fs::write(&path, &m);
                    panic!("{what}: mutant {i} panicked; saved to {}", path.display());
                }
            }
        }
    }
    eprintln!("fuzz {what}: {ok} accepted, {refused} refused");
    (ok, refused)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32) -> Vec<u8> {
    let mut b = vec![0u8, 0, 8, 3];
    for d in [n, 4, 4] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * 16).map(|i| (i * 7) as u8));
    b
}

#[test]
fn fuzz_idx_raw_and_gzip() {
    let raw = idx_images(3);
    let labels = [0u8, 0, 8, 1, 0, 0, 0, 3, 1, 2, 0].to_vec();
    let seeds = vec![raw.clone(), gzip(&raw), labels.clone(), gzip(&labels)];
    let (_, refused) = fuzz("idx", &seeds, |b| idx::parse(b, "fuzz.idx"));
    assert!(refused > 0);
}

#[test]
fn fuzz_csv() {
    let seeds = vec![
        b"x,y,label\n1,2,0\n3.5,-4e3,1\n\"5\",6,2\r\n".to_vec(),
        b"\xef\xbb\xbfa,\"b,c\",label\n1,\"2\",0\n\n7,8,1\n".to_vec(),
    ];
    let read = |b: &[u8]| -> accrete::Result<accrete::data::Dataset> {
        let text = std::str::from_utf8(b).map_err(|e| accrete::Error::Data {
            source_name: "fuzz.csv".into(),
            detail: e.to_string(),
        })?;
        csv::parse(text, "fuzz.csv", &csv::CsvOptions::default())
    };
    fuzz("csv", &seeds, read);
}

#[test]
fn fuzz_tsv() {
    let seeds = vec![b"label\tx\ty\n0\t1.5\t\"2\"\n1\t-3\t4e2\r\n".to_vec()];
    let opts = csv::CsvOptions {
        delimiter: b'\t',
        ..csv::CsvOptions::default()
    };
    fuzz("tsv", &seeds, |b| {
        csv::parse(&String::from_utf8_lossy(b), "fuzz.tsv", &opts)
    });
}

/// Small arrays of every dtype the readers take: features [4, 3] and labels [4].
fn seed_arrays() -> Vec<(Array, Array)> {
    let bytes = |dtype: Dtype, n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| match dtype {
                Dtype::U8 => vec![(i % 3) as u8],
                Dtype::I32 => ((i % 3) as i32).to_le_bytes().to_vec(),
                Dtype::I64 => ((i % 3) as i64).to_le_bytes().to_vec(),
                Dtype::F32 => (i as f32 * 0.5).to_le_bytes().to_vec(),
                Dtype::F64 => (i as f64 - 2.0).to_le_bytes().to_vec(),
            })
            .collect()
    };
    let a = |shape: &[usize], dtype| Array {
        shape: shape.to_vec(),
        dtype,
        bytes: bytes(dtype, shape.iter().product()),
    };
    [
        (Dtype::F32, Dtype::I64),
        (Dtype::F64, Dtype::U8),
        (Dtype::U8, Dtype::I32),
    ]
    .into_iter()
    .map(|(x, y)| (a(&[4, 3], x), a(&[4], y)))
    .collect()
}

#[test]
fn fuzz_npy() {
    let seeds: Vec<Vec<u8>> = seed_arrays()
        .iter()
        .flat_map(|(x, y)| [npy::encode(x), npy::encode(y)])
        .collect();
    fuzz("npy", &seeds, |b| {
        npy::parse(b, "fuzz.npy")
            .and_then(|a| accrete::data::arrays::dataset(&a, None, "fuzz.npy", "", None))
    });
}

#[test]
fn fuzz_npz() {
    let mut seeds = Vec::new();
    for (x, y) in seed_arrays() {
        for deflate in [false, true] {
            seeds.push(zip::encode(
                &[
                    ("features.npy", &npy::encode(&x)),
                    ("labels.npy", &npy::encode(&y)),
                ],
                deflate,
            ));
        }
    }
    let names = ArrayNames::default();
    let (_, refused) = fuzz("npz", &seeds, |b| {
        npy::npz_dataset(b, "fuzz.npz", &names, Some(3))
    });
    assert!(refused > 0);
}

#[test]
fn fuzz_safetensors_datasets() {
    let seeds: Vec<Vec<u8>> = seed_arrays()
        .iter()
        .map(|(x, y)| tensors::encode(&[("features", x), ("labels", y)]))
        .collect();
    let names = ArrayNames::default();
    fuzz("safetensors-dataset", &seeds, |b| {
        tensors::dataset(b, "fuzz.safetensors", &names, None)
    });
}

/// Every format through the content sniffing of `predict --input`.
#[test]
fn fuzz_input_sniffing() {
    let (x, y) = seed_arrays().remove(0);
    let seeds = vec![
        npy::encode(&x),
        zip::encode(&[("features.npy", &npy::encode(&x))], true),
        tensors::encode(&[("features", &x), ("labels", &y)]),
        idx_images(2),
        b"a;b;label\n1;2;0\n".to_vec(),
    ];
    let opts = inputs::InputOptions::default();
    fuzz("inputs", &seeds, |b| {
        inputs::parse_inputs(b, "fuzz.in", &opts)
    });
}

#[test]
fn fuzz_png_and_jpeg_images() {
    let mut seeds = Vec::new();
    let grey = image::GrayImage::from_fn(6, 5, |x, y| image::Luma([(x * 40 + y * 7) as u8]));
    let rgb = image::RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 30) as u8, 99])
    });
    for (img, fmt) in [
        (
            image::DynamicImage::ImageLuma8(grey.clone()),
            image::ImageFormat::Png,
        ),
        (
            image::DynamicImage::ImageRgb8(rgb.clone()),
            image::ImageFormat::Png,
        ),
        (
            image::DynamicImage::ImageLuma8(grey),
            image::ImageFormat::Jpeg,
        ),
        (
            image::DynamicImage::ImageRgb8(rgb),
            image::ImageFormat::Jpeg,
        ),
    ] {
        let mut b = std::io::Cursor::new(Vec::new());
        img.write_to(&mut b, fmt).unwrap();
        seeds.push(b.into_inner());
    }
    let shape = images::ImageShape {
        channels: 3,
        height: 4,
        width: 4,
    };
    fuzz("images", &seeds, |b| images::decode(b, "fuzz.png", shape));
}

#[test]
fn fuzz_toml_configs() {
    let seeds = vec![
        br#"seed = 3
[data]
format = "csv"
train_file = "t.csv"
[model]
input = [4]
layers = [{ type = "dense", units = 8, activation = "relu" }, { type = "dense", units = 3 }]
[optimizer]
type = "adam"
lr = 0.01
schedule = { type = "cosine", warmup_steps = 5 }
[train]
batch_size = 8
early_stopping = { patience = 2 }
[incremental]
chunks = 2
rehearsal = { size = 10 }
[checkpoint]
every_steps = 4
"#
        .to_vec(),
        b"[model]\ninput = [1, 28, 28]\nlayers = [{ type = \"conv2d\", filters = 4, kernel = 3 }, { type = \"flatten\" }, { type = \"dense\", units = 10 }]\n".to_vec(),
    ];
    fuzz("toml", &seeds, |b| {
        let text = String::from_utf8_lossy(b);
        RunConfig::from_toml(&text, "fuzz.toml").and_then(|c| c.validate().map(|_| c))
    });
}

#[test]
fn fuzz_json_specs() {
    let seeds = vec![
        br#"{"seed":1,"model":{"input":[2],"layers":[{"type":"dense","units":8,"activation":"tanh"},{"type":"dense","units":2}]},"optimizer":{"type":"adam","lr":0.01},"train":{"batch_size":32,"epochs":2},"incremental":{"rehearsal":{"size":100,"per_batch":8}}}"#.to_vec(),
    ];
    fuzz("json", &seeds, |b| {
        SessionSpec::from_json(&String::from_utf8_lossy(b), "fuzz spec")
    });
}

#[test]
fn fuzz_checkpoints() {
    let gpu = accrete_tests::gpu();
    let t = accrete::train::Trainer::new(
        gpu,
        accrete::nn::presets::mlp(3, &[4], 2),
        accrete::optim::OptimizerSpec::adam(1e-2),
        accrete::train::TrainSpec::default(),
        1,
    )
    .unwrap();
    let bytes = pollster::block_on(t.checkpoint())
        .unwrap()
        .to_bytes()
        .unwrap();
    Checkpoint::from_bytes(&bytes, "seed").unwrap();
    let (accepted, refused) = fuzz("checkpoint", &[bytes], |b| {
        Checkpoint::from_bytes(b, "fuzz.safetensors")
    });
    // The CRC must catch every change that reaches the tensors or the metadata; what can
    // still load is a mutation outside the covered bytes that leaves the file valid.
    assert!(
        refused > accepted * 10,
        "{accepted} accepted, {refused} refused"
    );
}

/// Declared sizes far beyond the bytes present fail at once, without allocating them.
#[test]
fn huge_declared_sizes_fail_fast() {
    // IDX declaring 2^32 × 2^32 × 255 elements; gzip of a 64 MiB run of zeros after a
    // header declaring 16 elements (a bomb: must stop after the declared 16).
    let mut huge = vec![0u8, 0, 8, 3];
    for d in [u32::MAX, u32::MAX, 255] {
        huge.extend(d.to_be_bytes());
    }
    let e = idx::parse(&huge, "huge.idx").unwrap_err().to_string();
    assert!(e.contains("declare more elements"), "{e}");
    let mut bomb = vec![0u8, 0, 8, 1, 0, 0, 0, 16];
    bomb.resize(64 << 20, 0);
    let gz = gzip(&bomb);
    assert!(gz.len() < 1 << 20);
    let e = idx::parse(&gz, "bomb.idx.gz").unwrap_err().to_string();
    assert!(
        e.contains("unexpected bytes") && e.contains("inside the gzip data"),
        "{e}"
    );
    // Junk after a gzip stream follows the raw file's rule: refused.
    let mut junk = gzip(&idx_images(1));
    junk.extend(b"junk");
    let e = idx::parse(&junk, "junk.idx.gz").unwrap_err().to_string();
    assert!(e.contains("followed by bytes that are not gzip"), "{e}");
    let mut raw = idx_images(1);
    raw.extend(b"junk");
    let e = idx::parse(&raw, "junk.idx").unwrap_err().to_string();
    assert!(e.contains("4 unexpected bytes"), "{e}");
    // safetensors header length of 2^40.
    let mut st = (1u64 << 40).to_le_bytes().to_vec();
    st.extend(b"{}");
    assert!(Checkpoint::from_bytes(&st, "huge.safetensors").is_err());
}

/// The CSV header check is linear: 200,000 columns with a duplicate at the end are checked
/// in well under a second (the quadratic check took minutes), and the errors stay short.
#[test]
fn wide_csv_headers_are_checked_in_linear_time_with_short_errors() {
    let n = 200_000;
    let mut header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    header.push("c0".into());
    let e = csv::parse(
        &(header.join(",") + "\n"),
        "wide.csv",
        &csv::CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("\"c0\" appears twice") && e.contains("columns 1 and 200001"),
        "{e}"
    );
    header.pop();
    let e = csv::parse(
        &(header.join(",") + "\n1\n"),
        "wide.csv",
        &csv::CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("the columns are \"c0\", \"c1\"") && e.contains("… and 199992 more"),
        "{e}"
    );
    assert!(e.len() < 400, "{} bytes: {e}", e.len());
    let cell = "9".repeat(500_000) + "x";
    let e = csv::parse(
        &format!("a,label\n{cell},0\n"),
        "cell.csv",
        &csv::CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("more characters") && e.len() < 400,
        "{} bytes",
        e.len()
    );
}
