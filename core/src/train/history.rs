//! The history of a run: one typed [`Event`] per epoch, rollback and early stop, in the
//! order they happened. It travels in checkpoints (`Meta::history`) and is what the CLI
//! writes to `metrics.jsonl`, one event per line, so a resumed run can always rebuild that
//! file from its checkpoint.
//!
//! Each event is serialised as a JSON object with an `event` tag (`"epoch"`, `"rollback"`,
//! `"early_stop"`, `"early_stop_chunk"`, `"hyper_change"`). Files written before the tag existed have epoch
//! rows without one; [`event_from_value`] reads them as epochs.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// JSON has no NaN: serde_json writes a non-finite f64 as `null`; read it back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One epoch of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Chunk index (0-based).
    pub chunk: u64,
    /// Epochs completed in the whole run, this one included (1-based).
    pub epoch: u64,
    /// Epoch within the chunk (1-based; 0 in histories written before it was recorded).
    #[serde(default)]
    pub epoch_in_chunk: u64,
    /// Optimizer steps taken in the whole run at the end of this epoch.
    pub step: u64,
    /// Mean training loss and accuracy over the epoch (accuracy NaN for regression).
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_accuracy: f64,
    /// Loss and accuracy on the validation split after the epoch (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// The learning rate of the epoch's last step, as the update kernels used it (the
    /// schedule, the plateau and recovery multipliers included; before a per-layer
    /// `layer_lr` factor): an f32, held as its shortest decimal ([`f32_decimal`]).
    #[serde(deserialize_with = "nan_if_null", serialize_with = "short_f32")]
    pub lr: f64,
    /// Training throughput over the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub samples_per_sec: f64,
    /// Mixed precision only: the loss scale after the epoch, and the steps skipped so far
    /// because their gradients overflowed f16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u32>,
}

/// An f32 as the f64 of its shortest decimal form: 0.001, not 0.0010000000474974513. Rates
/// are recorded this way, so a history reads back from JSON equal to itself.
pub fn f32_decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// Writes an f32-valued rate in its shortest decimal form.
fn short_f32<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(f32_decimal(*v as f32))
}

/// A loss that may be non-finite: a number, or its text ("NaN", "inf") where JSON has none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loss(pub f64);

impl Serialize for Loss {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Loss {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => Ok(Loss(n.as_f64().unwrap_or(f64::NAN))),
            serde_json::Value::String(s) => Ok(Loss(s.parse().unwrap_or(f64::NAN))),
            _ => Ok(Loss(f64::NAN)),
        }
    }
}

/// An epoch whose loss diverged was rolled back and the learning rate lowered
/// (`[recovery]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    pub chunk: u64,
    /// Epochs completed (the rolled-back epoch is not counted).
    pub epoch: u64,
    pub step: u64,
    /// The loss that triggered the rollback.
    pub bad_loss: Loss,
    pub last_good_loss: Option<f64>,
    /// The learning rate the epoch is retried with.
    pub new_lr: f32,
    /// What the retry started from (`[recovery] strategy`; absent: last_good).
    #[serde(default, skip_serializing_if = "is_last_good")]
    pub strategy: crate::train::Strategy,
    /// What the strategy did ("the best-validation state (val loss 0.41)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Optimizer steps spent without being kept: the diverged epoch's and any trial steps
    /// (0 in histories written before it was recorded).
    #[serde(default)]
    pub extra_steps: u64,
}

fn is_last_good(s: &crate::train::Strategy) -> bool {
    *s == crate::train::Strategy::LastGood
}

/// Early stopping put back the weights of the best epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestRestored {
    #[serde(default)]
    pub chunk: u64,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub step: u64,
    /// Epochs between the best one and the last one run (0 where not recorded).
    #[serde(default)]
    pub restored_epochs_back: u64,
    /// The best value of the monitored metric.
    pub best_value: Option<f64>,
    /// `fit_with_validation` only: the 1-based epoch (of that call) that was best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<u64>,
}

/// Early stopping ended a chunk before its configured epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkStopped {
    pub chunk: u64,
    /// Epochs the chunk ran.
    pub epochs_run: u64,
    pub epoch: u64,
    pub step: u64,
}

/// A chunk ended: the model evaluated on the run's evaluation data (the test data, else the
/// validation split; [`crate::session::Session::set_run_evaluation`], [`super::Trainer::set_chunk_evaluation`]). For a
/// class-incremental run (`split_by = "class"`) also on each task seen so far — the classes
/// each chunk brought ([`crate::metrics::task_groups`]) — with the continual-learning
/// summaries of the accuracy matrix up to this chunk ([`crate::metrics::AccuracyMatrix`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkEnd {
    pub chunk: u64,
    pub epoch: u64,
    pub step: u64,
    /// Which data was evaluated ("test" or "validation") and its samples.
    pub data: String,
    pub samples: usize,
    /// Accuracy on all of it.
    #[serde(deserialize_with = "nan_if_null")]
    pub accuracy: f64,
    /// Class-incremental runs: accuracy on each task `0..=chunk` (row `chunk` of the
    /// accuracy matrix; NaN, written `null`, for a task without evaluation samples).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nan_vec"
    )]
    pub task_accuracy: Vec<f64>,
    /// Mean of `task_accuracy`, backward transfer and forgetting over the matrix so far
    /// (the last two from the second chunk on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bwt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgetting: Option<f64>,
}

/// A list of numbers where `null` stands for NaN.
fn nan_vec<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// The chunk-end rows among `events`, in order.
pub fn chunk_ends(events: &[Event]) -> Vec<ChunkEnd> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChunkEnd(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Who changed hyper-parameters during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// `accrete resume DIR --set key=value`.
    Resume,
    /// An `[[incremental.schedule]]` entry, at the start of its chunk.
    Schedule,
    /// A per-call option of the library or the browser (`fitChunk(x, y, { lr })`).
    Call,
}

/// One key's change of value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The setting, as in the config: `optimizer.lr`, `train.epochs`.
    pub key: String,
    /// Its value before and after (JSON; `null` = unset).
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// Hyper-parameters changed between (or within) chunks ([`crate::train::hyper`]). From
/// this step on the run trains with the new values; a resumed run replays these events over
/// its configuration to know which values its checkpoint must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HyperChange {
    pub chunk: u64,
    pub epoch: u64,
    pub step: u64,
    pub source: ChangeSource,
    pub changes: Vec<Change>,
    /// The optimizer type changed: the weights were kept, the optimizer state (moments)
    /// re-initialised to zero.
    #[serde(default)]
    pub optimizer_reset: bool,
}

impl HyperChange {
    /// One line for reports and logs: "step 40 (chunk 2, resume --set): optimizer.lr 0.001
    /// → 0.0001".
    pub fn describe(&self) -> String {
        let source = match self.source {
            ChangeSource::Resume => "resume --set",
            ChangeSource::Schedule => "incremental.schedule",
            ChangeSource::Call => "per-call option",
        };
        let changes: Vec<String> = self
            .changes
            .iter()
            .map(|c| format!("{} {} → {}", c.key, c.from, c.to))
            .collect();
        format!(
            "step {} (chunk {}, {source}): {}{}",
            self.step,
            self.chunk + 1,
            if changes.is_empty() {
                "no change".to_string()
            } else {
                changes.join(", ")
            },
            if self.optimizer_reset {
                "; optimizer state re-initialised (weights kept)"
            } else {
                ""
            }
        )
    }
}

/// Something that happened in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Epoch(EpochRecord),
    Rollback(Rollback),
    #[serde(rename = "early_stop")]
    BestRestored(BestRestored),
    #[serde(rename = "early_stop_chunk")]
    ChunkStopped(ChunkStopped),
    ChunkEnd(ChunkEnd),
    HyperChange(HyperChange),
}

impl Event {
    /// The epoch record, if this is one.
    pub fn as_epoch(&self) -> Option<&EpochRecord> {
        match self {
            Event::Epoch(e) => Some(e),
            _ => None,
        }
    }
}

/// The epoch records among `events`, in order.
pub fn epochs(events: &[Event]) -> Vec<EpochRecord> {
    events.iter().filter_map(Event::as_epoch).cloned().collect()
}

/// Reads one event from JSON; an object without an `event` tag is an epoch row as written
/// before the tag existed.
pub fn event_from_value(mut v: serde_json::Value) -> std::result::Result<Event, serde_json::Error> {
    if let Some(obj) = v.as_object_mut() {
        obj.entry("event").or_insert_with(|| "epoch".into());
    }
    serde_json::from_value(v)
}

/// Deserialises a history list, accepting untagged epoch rows (see [`event_from_value`]).
pub(crate) fn deserialize_events<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Event>, D::Error> {
    Vec::<serde_json::Value>::deserialize(d)?
        .into_iter()
        .map(|v| event_from_value(v).map_err(serde::de::Error::custom))
        .collect()
}

/// Reads `metrics.jsonl` text: one event per line (blank lines skipped), untagged epoch rows
/// accepted. `source` names the file in errors, which give the line.
pub fn parse_events(text: &str, source: &str) -> Result<Vec<Event>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .and_then(event_from_value)
                .map_err(|e| {
                    Error::data(
                        source,
                        format!("line {}: not a metrics record ({e})", i + 1),
                    )
                })
        })
        .collect()
}

/// `events` as `metrics.jsonl` text: one JSON object per line.
pub fn to_jsonl(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out += &serde_json::to_string(e).expect("an event serialises");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(chunk: u64, epoch: u64) -> EpochRecord {
        EpochRecord {
            chunk,
            epoch,
            epoch_in_chunk: 1,
            step: 10 * epoch,
            train_loss: 0.5,
            train_accuracy: f64::NAN,
            val_loss: Some(0.6),
            val_accuracy: None,
            lr: f32_decimal(0.001),
            samples_per_sec: 100.0,
            loss_scale: None,
            skipped_steps: None,
        }
    }

    #[test]
    fn events_round_trip_with_their_tags() {
        let events = vec![
            Event::Epoch(epoch(0, 1)),
            Event::Rollback(Rollback {
                chunk: 0,
                epoch: 1,
                step: 10,
                bad_loss: Loss(f64::NAN),
                last_good_loss: Some(0.5),
                new_lr: 5e-4,
                strategy: crate::train::Strategy::Anneal,
                detail: Some("annealed candidate 1 accepted".into()),
                extra_steps: 10,
            }),
            Event::BestRestored(BestRestored {
                chunk: 1,
                epoch: 3,
                step: 30,
                restored_epochs_back: 1,
                best_value: Some(0.4),
                best_epoch: None,
            }),
            Event::ChunkStopped(ChunkStopped {
                chunk: 1,
                epochs_run: 2,
                epoch: 3,
                step: 30,
            }),
        ];
        let text = to_jsonl(&events);
        assert!(text.starts_with(r#"{"event":"epoch","chunk":0,"#), "{text}");
        assert!(text.contains(r#""lr":0.001,"#), "{text}");
        assert!(text.contains(r#""bad_loss":"NaN""#), "{text}");
        assert!(text.contains(r#"{"event":"early_stop","#), "{text}");
        let back = parse_events(&text, "m").unwrap();
        assert_eq!(back.len(), 4);
        // NaN != NaN: compare the non-NaN parts.
        let Event::Epoch(e) = &back[0] else { panic!() };
        assert!(e.train_accuracy.is_nan() && e.train_loss == 0.5);
        let Event::Rollback(r) = &back[1] else {
            panic!()
        };
        assert!(r.bad_loss.0.is_nan() && r.new_lr == 5e-4);
        assert_eq!(back[2..], events[2..]);
    }

    #[test]
    fn chunk_end_rows_round_trip_with_nan_tasks() {
        let end = ChunkEnd {
            chunk: 1,
            epoch: 4,
            step: 40,
            data: "test".into(),
            samples: 90,
            accuracy: 0.5,
            task_accuracy: vec![0.25, f64::NAN],
            average_accuracy: Some(0.25),
            bwt: Some(-0.5),
            forgetting: Some(0.5),
        };
        let text = to_jsonl(&[Event::ChunkEnd(end.clone())]);
        assert!(
            text.starts_with(r#"{"event":"chunk_end","chunk":1,"#)
                && text.contains(r#""task_accuracy":[0.25,null],"#),
            "{text}"
        );
        let back = chunk_ends(&parse_events(&text, "m").unwrap());
        assert!(back[0].task_accuracy[1].is_nan());
        assert_eq!(back[0].bwt, end.bwt);
        // A split-by-count row has no tasks.
        let v = serde_json::json!({"event":"chunk_end","chunk":0,"epoch":1,"step":3,
            "data":"test","samples":9,"accuracy":0.75});
        let Event::ChunkEnd(c) = event_from_value(v).unwrap() else {
            panic!()
        };
        assert!(c.task_accuracy.is_empty() && c.bwt.is_none());
    }

    #[test]
    fn untagged_rows_of_older_files_are_epochs() {
        let old = r#"{"chunk":2,"epoch":5,"epoch_in_chunk":1,"step":50,"train_loss":0.3,"train_accuracy":0.9,"lr":0.01,"samples_per_sec":12.5}"#;
        let rows = parse_events(old, "old.jsonl").unwrap();
        assert_eq!(rows[0].as_epoch().unwrap().chunk, 2);
        // A history row from a checkpoint of the previous format (no epoch_in_chunk).
        let v = serde_json::json!({"chunk":0,"epoch":1,"step":3,"train_loss":1.0,
            "train_accuracy":0.5,"samples_per_sec":1.0,"lr":0.001});
        let e = event_from_value(v).unwrap();
        assert_eq!(e.as_epoch().unwrap().epoch_in_chunk, 0);
        let v = serde_json::json!({"event":"early_stop","best_epoch":2,"best_value":0.25});
        assert!(
            matches!(event_from_value(v).unwrap(), Event::BestRestored(b) if b.best_epoch == Some(2))
        );
        let e = parse_events("\n{\"chunk\": 1}\n", "bad.jsonl").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.jsonl: line 2: not a metrics record"),
            "{e}"
        );
    }
}
