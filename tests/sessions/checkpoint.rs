//! Checkpoints: PyTorch-layout safetensors with verified metadata, exact resume, refusal of
//! truncated / corrupted / mismatched files, atomic writes.

use accrete::checkpoint::write_atomic;
use accrete::optim::OptimizerSpec;
use accrete::train::Checkpoint;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete::Error;
use accrete_tests::*;

fn trainer(seed: u64) -> (Trainer, GpuDataset) {
    let data = quadrant_images(200, 9);
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let train = TrainSpec {
        batch_size: 48,
        epochs: 1,
        ..Default::default()
    };
    (
        Trainer::new(gpu(), small_cnn(), OptimizerSpec::adam(0.01), train, seed).unwrap(),
        d,
    )
}

#[test]
fn resume_is_byte_identical_to_an_uninterrupted_run() {
    let (mut straight, d) = trainer(21);
    for _ in 0..3 {
        pollster::block_on(straight.fit_epoch(&d)).unwrap();
    }
    let (mut first, _) = trainer(21);
    pollster::block_on(first.fit_epoch(&d)).unwrap();
    let bytes = pollster::block_on(first.checkpoint())
        .unwrap()
        .to_bytes()
        .unwrap();
    drop(first);
    let ckpt = Checkpoint::from_bytes(&bytes, "resume test").unwrap();
    let mut resumed = Trainer::from_checkpoint(gpu(), &ckpt).unwrap();
    assert_eq!((resumed.step, resumed.epoch), (5, 1));
    for _ in 0..2 {
        pollster::block_on(resumed.fit_epoch(&d)).unwrap();
    }
    let (a, b) =
        pollster::block_on(async { (weight_bytes(&straight).await, weight_bytes(&resumed).await) });
    assert!(a == b, "resumed run differs from the uninterrupted one");
    // The second chunk starts from exactly the parameters and moments the first left.
    let again = pollster::block_on(resumed.checkpoint()).unwrap();
    let orig = pollster::block_on(straight.checkpoint()).unwrap();
    assert_eq!(again.to_bytes().unwrap(), orig.to_bytes().unwrap());
}

#[test]
fn layout_matches_pytorch_and_encoding_is_deterministic() {
    let (t, _) = trainer(1);
    let c = pollster::block_on(t.checkpoint()).unwrap();
    let names: Vec<(&str, &[usize])> = c
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert!(
        names.contains(&("layers.0.weight", &[4, 1, 3, 3][..])),
        "{names:?}"
    );
    assert!(names.contains(&("layers.0.bias", &[4][..])));
    assert!(names.contains(&("layers.3.weight", &[16, 64][..])));
    assert!(names.contains(&("optimizer.layers.3.weight.exp_avg_sq", &[16, 64][..])));
    assert_eq!(c.to_bytes().unwrap(), c.to_bytes().unwrap());
    let back = Checkpoint::from_bytes(&c.to_bytes().unwrap(), "x").unwrap();
    assert_eq!(back, c);
}

fn expect_data_error(bytes: &[u8], needle: &str) {
    match Checkpoint::from_bytes(bytes, "ckpt.safetensors") {
        Err(e @ Error::Data { .. }) => assert!(
            e.to_string().contains(needle),
            "message {e:?} lacks {needle:?}"
        ),
        other => panic!("expected a data error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn truncated_corrupted_and_foreign_files_are_refused() {
    let (t, _) = trainer(2);
    let bytes = pollster::block_on(t.checkpoint())
        .unwrap()
        .to_bytes()
        .unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        expect_data_error(&bytes[..cut], "ckpt.safetensors");
    }
    // A flipped bit in the tensor data (the last bytes) fails the checksum.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    expect_data_error(&flipped, "checksum mismatch");
    // A flipped bit in the metadata JSON fails the checksum or the parse.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let text = String::from_utf8_lossy(&bytes[8..8 + header_len]).into_owned();
    let at = 8 + text.find("\"seed").unwrap() + 12;
    let mut meta = bytes.clone();
    meta[at] ^= 0x01;
    assert!(Checkpoint::from_bytes(&meta, "m").is_err());
    // A safetensors file from elsewhere.
    expect_data_error(&safetensors_view(&[1.0, 2.0]), "not one written by accrete");
}

fn safetensors_view(data: &[f32]) -> Vec<u8> {
    // The minimal safetensors layout, written by hand: header length, JSON header, data.
    let header = format!(
        "{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[0,{}]}}}}",
        data.len(),
        data.len() * 4
    );
    let mut header = header.into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    for v in data {
        out.extend(v.to_le_bytes());
    }
    out
}

#[test]
fn loading_into_another_architecture_names_the_mismatch() {
    let (t, _) = trainer(3);
    let c = pollster::block_on(t.checkpoint()).unwrap();
    let mut spec = small_cnn();
    if let accrete::nn::LayerSpec::Dense { units, .. } = &mut spec.layers[3] {
        *units = 20;
    }
    let other = accrete::nn::Model::new(gpu(), spec, 0).unwrap();
    let w = c.tensor("layers.3.weight").unwrap();
    let err = other.load(&w.name, &w.shape, &w.data).unwrap_err();
    assert!(
        err.to_string()
            .contains("[20, 64] in the model but [16, 64]"),
        "{err}"
    );
}

#[test]
fn atomic_write_replaces_and_leaves_no_temporary() {
    let dir = std::env::temp_dir().join(format!("accrete-ckpt-test-{}", std::process::id()));
    let path = dir.join("last.safetensors");
    let (t, _) = trainer(4);
    let c = pollster::block_on(t.checkpoint()).unwrap();
    write_atomic(&path, b"old contents").unwrap();
    write_atomic(&path, &c.to_bytes().unwrap()).unwrap();
    assert_eq!(Checkpoint::read_file(&path).unwrap(), c);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    let err = Checkpoint::read_file(&dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crash_mid_write_leaves_the_previous_checkpoint_loadable() {
    let dir = std::env::temp_dir().join(format!("accrete-crash-test-{}", std::process::id()));
    let path = dir.join("last.safetensors");
    let (t, _) = trainer(5);
    let good = pollster::block_on(t.checkpoint()).unwrap();
    write_atomic(&path, &good.to_bytes().unwrap()).unwrap();
    // What a process killed inside write_atomic leaves behind: a partial temporary file
    // beside the target (the rename, which is atomic, never happened).
    let partial = &good.to_bytes().unwrap()[..1000];
    std::fs::write(dir.join(".last.safetensors.tmp-99999"), partial).unwrap();
    assert_eq!(Checkpoint::read_file(&path).unwrap(), good);
    // The next save still succeeds and replaces the file whole.
    write_atomic(&path, &good.to_bytes().unwrap()).unwrap();
    assert_eq!(Checkpoint::read_file(&path).unwrap(), good);
    std::fs::remove_dir_all(&dir).unwrap();
}
