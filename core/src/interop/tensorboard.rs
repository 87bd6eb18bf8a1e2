//! TensorBoard event files from a run's history, as pure functions from events to bytes
//! (the CLI writes them under `runs/NNN/tensorboard/`; the browser could offer them for
//! download). An event file is a sequence of TFRecords — a u64 little-endian length, the
//! masked CRC32C of those 8 bytes, the data, the masked CRC32C of the data — each holding
//! one `Event` protobuf (tensorflow/core/util/event.proto): `wall_time` = 1 (double),
//! `step` = 2 (int64), `file_version` = 3 (string, "brain.Event:2" in the first record),
//! `summary` = 5 (`Summary { repeated Value value = 1 }`, `Value { tag = 1, simple_value =
//! 2 }`), `session_log` = 7 (`SessionLog { status = 1 }`, START = 1).
//!
//! Every scalar is plotted against the run's global optimizer step. From the history
//! ([`history_scalars`]): per epoch `train/loss`, `train/accuracy`, `val/loss`,
//! `val/accuracy`, `train/learning_rate`, `train/samples_per_sec`, `train/epoch` and under
//! mixed precision `train/loss_scale`, `train/skipped_steps`; per rollback
//! `recovery/rollbacks` (the count so far), `recovery/bad_loss`, `recovery/new_lr`,
//! `recovery/extra_steps`; per chunk end `chunk_end/accuracy`, `chunk_end/task_{j}`,
//! `chunk_end/average_accuracy`, `chunk_end/bwt`, `chunk_end/forgetting`; early stopping's
//! `early_stop/best_value`, `early_stop/epochs_run`. From each progress report
//! ([`progress_scalars`]): the epoch's running `progress/loss` and `progress/accuracy`.
//! Non-finite values are left out (regression has no accuracy), except a rollback's
//! `bad_loss`, which is what diverged.
//!
//! A `SessionLog` START at step s ([`restart_record`]) makes TensorBoard drop whatever an
//! earlier file or attempt logged at steps ≥ s: written when a diverged epoch is retried
//! after reports of it were already written, and when a run resumes from a checkpoint
//! older than what its files hold.

use super::protobuf::{self, Message, Value};
use crate::train::history::Event;
use crate::train::Progress;

/// The `file_version` of the first record.
pub const FILE_VERSION: &str = "brain.Event:2";

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotated right by 15 bits plus a constant (so that a CRC of data
/// holding CRCs does not degenerate).
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// One scalar to log: `value` of `tag` at global step `step`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: u64,
    pub value: f32,
}

fn scalar(out: &mut Vec<Scalar>, tag: impl Into<String>, step: u64, value: f64) {
    if value.is_finite() {
        out.push(Scalar {
            tag: tag.into(),
            step,
            value: value as f32,
        });
    }
}

/// The scalars of `events[start..]`, counted in the context of the whole history (the
/// rollback count includes `events[..start]`). Within the slice a tag logged twice at one
/// step (a retried epoch rolled back again) keeps its last value only.
pub fn history_scalars(events: &[Event], start: usize) -> Vec<Scalar> {
    let mut rollbacks = events[..start.min(events.len())]
        .iter()
        .filter(|e| matches!(e, Event::Rollback(_)))
        .count();
    let mut out = Vec::new();
    for e in events.iter().skip(start) {
        match e {
            Event::Epoch(r) => {
                let s = r.step;
                scalar(&mut out, "train/loss", s, r.train_loss);
                scalar(&mut out, "train/accuracy", s, r.train_accuracy);
                if let Some(v) = r.val_loss {
                    scalar(&mut out, "val/loss", s, v);
                }
                if let Some(v) = r.val_accuracy {
                    scalar(&mut out, "val/accuracy", s, v);
                }
                scalar(&mut out, "train/learning_rate", s, r.lr);
                scalar(&mut out, "train/samples_per_sec", s, r.samples_per_sec);
                scalar(&mut out, "train/epoch", s, r.epoch as f64);
                if let Some(v) = r.loss_scale {
                    scalar(&mut out, "train/loss_scale", s, v as f64);
                }
                if let Some(v) = r.skipped_steps {
                    scalar(&mut out, "train/skipped_steps", s, v as f64);
                }
            }
            Event::Rollback(r) => {
                rollbacks += 1;
                let s = r.step;
                scalar(&mut out, "recovery/rollbacks", s, rollbacks as f64);
                out.push(Scalar {
                    tag: "recovery/bad_loss".into(),
                    step: s,
                    value: r.bad_loss.0 as f32,
                });
                scalar(&mut out, "recovery/new_lr", s, r.new_lr as f64);
                scalar(&mut out, "recovery/extra_steps", s, r.extra_steps as f64);
            }
            Event::ChunkEnd(c) => {
                let s = c.step;
                scalar(&mut out, "chunk_end/accuracy", s, c.accuracy);
                for (j, a) in c.task_accuracy.iter().enumerate() {
                    scalar(&mut out, format!("chunk_end/task_{j}"), s, *a);
                }
                if let Some(v) = c.average_accuracy {
                    scalar(&mut out, "chunk_end/average_accuracy", s, v);
                }
                if let Some(v) = c.bwt {
                    scalar(&mut out, "chunk_end/bwt", s, v);
                }
                if let Some(v) = c.forgetting {
                    scalar(&mut out, "chunk_end/forgetting", s, v);
                }
            }
            Event::BestRestored(b) => {
                if let Some(v) = b.best_value {
                    scalar(&mut out, "early_stop/best_value", b.step, v);
                }
            }
            Event::ChunkStopped(c) => scalar(
                &mut out,
                "early_stop/epochs_run",
                c.step,
                c.epochs_run as f64,
            ),
            Event::HyperChange(_) => {}
        }
    }
    // Keep the last of each (tag, step), in order.
    let mut seen = std::collections::HashSet::new();
    let mut keep: Vec<bool> = out
        .iter()
        .rev()
        .map(|s| seen.insert((s.tag.clone(), s.step)))
        .collect();
    keep.reverse();
    let mut k = keep.into_iter();
    out.retain(|_| k.next().unwrap_or(true));
    out
}

/// A progress report's running loss and accuracy of its epoch, at its global step.
pub fn progress_scalars(p: &Progress) -> Vec<Scalar> {
    let mut out = Vec::new();
    scalar(&mut out, "progress/loss", p.global_step, p.loss);
    scalar(&mut out, "progress/accuracy", p.global_step, p.accuracy);
    out
}

fn event(wall_time: f64, step: u64) -> Message {
    let mut e = Message::new();
    e.double(1, wall_time).int64(2, step as i64);
    e
}

/// The first record of an event file.
pub fn file_start(wall_time: f64) -> Vec<u8> {
    let mut e = Message::new();
    e.double(1, wall_time).string(3, FILE_VERSION);
    record(e.as_bytes())
}

/// Records of `scalars`, one `Event` each, all stamped `wall_time` (seconds since 1970).
pub fn scalar_records(scalars: &[Scalar], wall_time: f64) -> Vec<u8> {
    let mut out = Vec::new();
    for s in scalars {
        let mut v = Message::new();
        v.string(1, &s.tag).float(2, s.value);
        let mut summary = Message::new();
        summary.message(1, &v);
        let mut e = event(wall_time, s.step);
        e.message(5, &summary);
        out.extend(record(e.as_bytes()));
    }
    out
}

/// A `SessionLog` START at `step`: TensorBoard drops what was logged at steps ≥ `step`.
pub fn restart_record(step: u64, wall_time: f64) -> Vec<u8> {
    let mut log = Message::new();
    log.int64(1, 1);
    let mut e = event(wall_time, step);
    e.message(7, &log);
    record(e.as_bytes())
}

/// A whole event file for `events`: the version record and every history scalar.
pub fn history_file(events: &[Event], wall_time: f64) -> Vec<u8> {
    let mut out = file_start(wall_time);
    out.extend(scalar_records(&history_scalars(events, 0), wall_time));
    out
}

/// What an event file holds, as [`read`] sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    /// The scalars TensorBoard shows, in file order: a restart drops those before it at
    /// its step or later.
    pub scalars: Vec<Scalar>,
    /// The steps of `SessionLog` START records.
    pub restarts: Vec<u64>,
    /// Bytes after the last whole, intact record (a write cut short by a crash).
    pub damaged_tail: usize,
}

/// Reads the scalars and restarts of an event file (this module's subset of `Event`;
/// other records are skipped). Stops at the first record that is cut short or fails its
/// CRC, counting the bytes left in `damaged_tail`.
pub fn read(bytes: &[u8]) -> Contents {
    let mut c = Contents::default();
    let mut at = 0;
    while at < bytes.len() {
        let Some(data) = next_record(bytes, at) else {
            break;
        };
        at += data.len() + 16;
        let Ok(fields) = protobuf::fields(data, "event") else {
            continue;
        };
        let step = fields
            .iter()
            .find_map(|(f, v)| match (f, v) {
                (2, Value::Varint(s)) => Some(*s),
                _ => None,
            })
            .unwrap_or(0);
        for (f, v) in &fields {
            match (f, v) {
                (5, Value::Len(summary)) => read_summary(summary, step, &mut c.scalars),
                (7, Value::Len(log))
                    if protobuf::fields(log, "session_log")
                        .is_ok_and(|l| l.contains(&(1, Value::Varint(1)))) =>
                {
                    // TensorBoard drops what came before at this step or later.
                    c.scalars.retain(|s| s.step < step);
                    c.restarts.push(step);
                }
                _ => {}
            }
        }
    }
    c.damaged_tail = bytes.len() - at;
    c
}

/// The data of the intact record at `at`, if there is one.
fn next_record(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let len_bytes = bytes.get(at..at + 8)?;
    let crc = u32::from_le_bytes(bytes.get(at + 8..at + 12)?.try_into().ok()?);
    if crc != masked_crc(len_bytes) {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
    let start = at + 12;
    let end = start.checked_add(len)?;
    let data = bytes.get(start..end)?;
    let crc = u32::from_le_bytes(bytes.get(end..end.checked_add(4)?)?.try_into().ok()?);
    (crc == masked_crc(data)).then_some(data)
}

fn read_summary(summary: &[u8], step: u64, out: &mut Vec<Scalar>) {
    let Ok(values) = protobuf::fields(summary, "summary") else {
        return;
    };
    for (_, v) in values.iter().filter(|(f, _)| *f == 1) {
        let Value::Len(v) = v else { continue };
        let Ok(parts) = protobuf::fields(v, "summary value") else {
            continue;
        };
        let tag = parts.iter().find_map(|(f, v)| match (f, v) {
            (1, Value::Len(t)) => std::str::from_utf8(t).ok(),
            _ => None,
        });
        let value = parts.iter().find_map(|(f, v)| match (f, v) {
            (2, Value::Fixed32(b)) => Some(f32::from_bits(*b)),
            _ => None,
        });
        if let (Some(tag), Some(value)) = (tag, value) {
            out.push(Scalar {
                tag: tag.to_string(),
                step,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests;
