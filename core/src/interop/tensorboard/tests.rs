use super::*;
use crate::train::history::{f32_decimal, ChunkEnd, EpochRecord, Loss, Rollback};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn crc32c_matches_the_known_vectors() {
    // RFC 3720 (iSCSI), appendix B.4, and the common check value of "123456789".
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    let up: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&up), 0x46DD_794E);
    let down: Vec<u8> = (0..32).rev().collect();
    assert_eq!(crc32c(&down), 0x113F_DB5C);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    // Masked as TFRecord masks them; values from tensorboard's own Python
    // (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c).
    assert_eq!(masked_crc(b"hello"), 0x191c_1fbb);
    assert_eq!(masked_crc(&5u64.to_le_bytes()), 0x3e04_b2ea);
}

#[test]
fn events_encode_as_tensorboards_protobuf_does() {
    // Expected bytes: event_pb2.Event(...).SerializeToString() of tensorboard 2.21.
    let r = scalar_records(
        &[Scalar {
            tag: "train/loss".into(),
            step: 7,
            value: 0.25,
        }],
        1.5,
    );
    let data = hex("09000000000000f83f10072a130a110a0a747261696e2f6c6f7373150000803e");
    assert_eq!(r, record(&data));
    assert_eq!(&r[..8], &(data.len() as u64).to_le_bytes());
    assert_eq!(
        file_start(1.5),
        record(&hex("09000000000000f83f1a0d627261696e2e4576656e743a32"))
    );
    assert_eq!(
        restart_record(3, 1.5),
        record(&hex("09000000000000f83f10033a020801"))
    );
}

fn epoch(chunk: u64, epoch: u64, step: u64, loss: f64) -> Event {
    Event::Epoch(EpochRecord {
        chunk,
        epoch,
        epoch_in_chunk: 1,
        step,
        train_loss: loss,
        train_accuracy: 0.5,
        val_loss: Some(loss + 0.1),
        val_accuracy: None,
        lr: f32_decimal(0.001),
        samples_per_sec: 100.0,
        loss_scale: Some(1024.0),
        skipped_steps: Some(2),
    })
}

fn rollback(step: u64) -> Event {
    Event::Rollback(Rollback {
        chunk: 0,
        epoch: 1,
        step,
        bad_loss: Loss(f64::INFINITY),
        last_good_loss: Some(0.5),
        new_lr: 5e-4,
        strategy: Default::default(),
        detail: None,
        extra_steps: 10,
    })
}

fn value(s: &[Scalar], tag: &str, step: u64) -> Option<f32> {
    s.iter()
        .find(|x| x.tag == tag && x.step == step)
        .map(|x| x.value)
}

#[test]
fn history_becomes_scalars_at_global_steps() {
    let events = vec![
        epoch(0, 1, 10, 0.9),
        rollback(10),
        rollback(10),
        epoch(0, 2, 20, 0.7),
        Event::ChunkEnd(ChunkEnd {
            chunk: 0,
            epoch: 2,
            step: 20,
            data: "test".into(),
            samples: 9,
            accuracy: 0.75,
            task_accuracy: vec![0.5, f64::NAN],
            average_accuracy: Some(0.5),
            bwt: Some(-0.25),
            forgetting: None,
        }),
    ];
    let s = history_scalars(&events, 0);
    assert_eq!(value(&s, "train/loss", 10), Some(0.9));
    assert_eq!(value(&s, "val/loss", 20), Some(0.8));
    assert_eq!(value(&s, "val/accuracy", 20), None);
    assert_eq!(value(&s, "train/learning_rate", 20), Some(0.001));
    assert_eq!(value(&s, "train/epoch", 20), Some(2.0));
    assert_eq!(value(&s, "train/loss_scale", 10), Some(1024.0));
    assert_eq!(value(&s, "train/skipped_steps", 10), Some(2.0));
    // Two rollbacks at one step: one point, the count after both.
    let rb: Vec<&Scalar> = s.iter().filter(|x| x.tag == "recovery/rollbacks").collect();
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0].value, 2.0);
    assert_eq!(value(&s, "recovery/bad_loss", 10), Some(f32::INFINITY));
    assert_eq!(value(&s, "recovery/new_lr", 10), Some(5e-4));
    assert_eq!(value(&s, "chunk_end/accuracy", 20), Some(0.75));
    assert_eq!(value(&s, "chunk_end/task_0", 20), Some(0.5));
    assert_eq!(value(&s, "chunk_end/task_1", 20), None, "NaN is left out");
    assert_eq!(value(&s, "chunk_end/bwt", 20), Some(-0.25));
    // No (tag, step) twice.
    let mut keys: Vec<(String, u64)> = s.iter().map(|x| (x.tag.clone(), x.step)).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n);
    // A later slice counts the rollbacks before it.
    let more = [events.clone(), vec![rollback(20)]].concat();
    let tail = history_scalars(&more, events.len());
    assert_eq!(value(&tail, "recovery/rollbacks", 20), Some(3.0));
    assert!(tail.iter().all(|x| x.tag.starts_with("recovery/")));
}

#[test]
fn files_read_back_and_a_cut_tail_is_tolerated() {
    let events = vec![epoch(0, 1, 10, 0.9), rollback(10), epoch(0, 2, 20, 0.7)];
    let mut bytes = history_file(&events, 1.7e9);
    bytes.extend(restart_record(21, 1.7e9));
    bytes.extend(scalar_records(
        &progress_scalars(&Progress {
            chunk: 0,
            epoch_in_chunk: 2,
            step_in_epoch: 1,
            steps_in_epoch: 10,
            global_step: 21,
            loss: 0.6,
            accuracy: f64::NAN,
            samples_per_sec: 1.0,
        }),
        1.7e9,
    ));
    let c = read(&bytes);
    assert_eq!(c.damaged_tail, 0);
    assert_eq!(c.restarts, [21]);
    let mut want = history_scalars(&events, 0);
    want.push(Scalar {
        tag: "progress/loss".into(),
        step: 21,
        value: 0.6,
    });
    assert_eq!(c.scalars, want);
    // Cut inside the last record: everything before it still reads.
    let cut = &bytes[..bytes.len() - 3];
    let c = read(cut);
    assert_eq!(c.scalars.len(), want.len() - 1);
    assert!(c.damaged_tail > 0);
    // A flipped data byte fails its CRC.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    assert_eq!(read(&bad).scalars.len(), want.len() - 1);
}
