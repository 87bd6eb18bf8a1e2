//! Hyper-parameters that change during a run: between chunks (an `[[incremental.schedule]]`
//! entry, a per-call learning rate) or when a stopped run is resumed (`accrete resume DIR
//! --set optimizer.lr=1e-4`).
//!
//! Only the keys in [`SETTABLE_KEYS`] can change: the optimizer's hyper-parameters and type,
//! the epochs per chunk and label smoothing. Optimizer moments carry over a change of
//! hyper-parameters; a change of `optimizer.type` keeps the weights and re-initialises the
//! optimizer state (recorded as `optimizer_reset`), and unsets the rule-specific options
//! (`momentum`, `beta1`, …) the same call did not set. `optimizer.lr` is the base rate:
//! the schedule and the dynamic multipliers (reduce-on-plateau, recovery) still apply on
//! top, and the learning-rate plan of the chunk ([`crate::optim::LrPlan`]) is rebuilt from
//! it.
//!
//! Every change is a [`HyperChange`] event in the history, so a checkpoint's settings can
//! always be derived from the run's configuration: [`replay`] applies the history's changes
//! in order, which is what `check_resumable` compares a checkpoint with.

use super::history::{Change, ChangeSource, Event, HyperChange};
use super::{TrainSpec, Trainer};
use crate::error::{Error, Result};
use crate::optim::OptimizerSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The keys `--set` (and the per-chunk schedule) may change.
pub const SETTABLE_KEYS: &[&str] = &[
    "optimizer.type",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.beta1",
    "optimizer.beta2",
    "optimizer.alpha",
    "optimizer.eps",
    "optimizer.weight_decay",
    "optimizer.l1",
    "optimizer.l2",
    "optimizer.clip_norm",
    "train.epochs",
    "train.label_smoothing",
];

/// The rule-specific optimizer options, unset when the type changes (unless set too).
const RULE_OPTIONS: &[&str] = &["momentum", "beta1", "beta2", "alpha", "eps", "weight_decay"];

/// One `key=value` setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: String,
    /// The value as JSON; `null` unsets an optional key.
    pub value: Value,
}

impl Setting {
    /// Parses `key=value`: the value is read as a TOML value (`1e-4`, `2`, `"adam"`), a
    /// bare word as a string (`adamw`), `none` as unset. Refuses keys outside
    /// [`SETTABLE_KEYS`], naming the key and listing the settable ones.
    pub fn parse(text: &str) -> Result<Setting> {
        let Some((key, raw)) = text.split_once('=') else {
            return Err(Error::invalid(
                "--set",
                format!("`{text}` is not key=value; e.g. --set optimizer.lr=1e-4"),
            ));
        };
        let (key, raw) = (key.trim(), raw.trim());
        check_key(key)?;
        if raw.is_empty() {
            return Err(Error::invalid(
                key,
                "has no value; e.g. optimizer.lr=1e-4 (or none to unset an optional key)",
            ));
        }
        let value = if raw == "none" {
            Value::Null
        } else {
            match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
                Ok(t) => serde_json::to_value(&t["v"]).unwrap_or(Value::Null),
                Err(_) => Value::String(raw.to_string()),
            }
        };
        Ok(Setting {
            key: key.to_string(),
            value,
        })
    }

    /// A setting of a key known to be settable.
    pub fn new(key: &str, value: impl Into<Value>) -> Setting {
        Setting {
            key: key.to_string(),
            value: value.into(),
        }
    }
}

fn check_key(key: &str) -> Result<()> {
    if SETTABLE_KEYS.contains(&key) {
        return Ok(());
    }
    Err(Error::invalid(
        key,
        format!(
            "cannot be changed during a run; the settable keys are {} (start a new run to change anything else)",
            SETTABLE_KEYS.join(", ")
        ),
    ))
}

/// `[[incremental.schedule]]`: settings from a chunk on, e.g. `chunk = 3, lr = 5e-4,
/// epochs = 2`. Applied at the start of that chunk (1-based, as progress shows it); they
/// hold for the following chunks until another entry changes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkSetting {
    /// The chunk (1-based) whose start applies the entry.
    pub chunk: u64,
    /// The base learning rate from this chunk on (`optimizer.lr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// Epochs per chunk from this chunk on (`train.epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
}

impl ChunkSetting {
    /// The entry as settings.
    pub fn settings(&self) -> Vec<Setting> {
        let mut v = Vec::new();
        if let Some(lr) = self.lr {
            v.push(Setting::new(
                "optimizer.lr",
                super::history::f32_decimal(lr),
            ));
        }
        if let Some(e) = self.epochs {
            v.push(Setting::new("train.epochs", e as u64));
        }
        v
    }

    /// Checks a run's schedule against its chunk count; messages start with the key.
    pub fn check_schedule(schedule: &[ChunkSetting], chunks: usize) -> Result<()> {
        let key = "incremental.schedule";
        for (i, s) in schedule.iter().enumerate() {
            if s.chunk == 0 || s.chunk > chunks as u64 {
                return Err(Error::invalid(
                    key,
                    format!(
                        "entry {} names chunk {}, but chunks are numbered 1..={chunks} (incremental.chunks)",
                        i + 1,
                        s.chunk
                    ),
                ));
            }
            if schedule[..i].iter().any(|p| p.chunk == s.chunk) {
                return Err(Error::invalid(
                    key,
                    format!("chunk {} has two entries; merge them into one", s.chunk),
                ));
            }
            if s.lr.is_none() && s.epochs.is_none() {
                return Err(Error::invalid(
                    key,
                    format!(
                        "the entry for chunk {} sets nothing; give lr and/or epochs",
                        s.chunk
                    ),
                ));
            }
            if let Some(lr) = s.lr {
                if !(lr.is_finite() && lr > 0.0) {
                    return Err(Error::invalid(
                        key,
                        format!("chunk {}: lr {lr} must be a positive number", s.chunk),
                    ));
                }
            }
            if s.epochs == Some(0) {
                return Err(Error::invalid(
                    key,
                    format!("chunk {}: epochs must be at least 1", s.chunk),
                ));
            }
        }
        Ok(())
    }
}

/// Sets `field` of a JSON object; `null` removes it (the key's default).
fn put(obj: &mut Value, field: &str, value: &Value) {
    if let Some(map) = obj.as_object_mut() {
        if value.is_null() {
            map.remove(field);
        } else {
            map.insert(field.to_string(), value.clone());
        }
    }
}

/// `optimizer` and `train` with `settings` applied, and the changes made (keys whose value
/// did not change are left out). A change of type unsets the rule-specific options not
/// among `settings`. Checks that the result is a usable optimizer and training setup.
pub fn apply_settings(
    optimizer: &OptimizerSpec,
    train: &TrainSpec,
    settings: &[Setting],
) -> Result<(OptimizerSpec, TrainSpec, Vec<Change>)> {
    // Through text, so that f32 values read as their shortest decimals (0.1, not
    // 0.10000000149011612) in the recorded changes.
    fn json<T: Serialize>(v: &T, what: &str) -> Result<Value> {
        serde_json::to_string(v)
            .and_then(|t| serde_json::from_str(&t))
            .map_err(|e| Error::invalid(what, e))
    }
    let mut opt = json(optimizer, "optimizer")?;
    let mut tr = json(train, "train")?;
    let old = (opt.clone(), tr.clone());
    for s in settings {
        check_key(&s.key)?;
        let (table, field) = s.key.split_once('.').expect("settable keys have a table");
        let target = if table == "optimizer" {
            &mut opt
        } else {
            &mut tr
        };
        put(target, field, &s.value);
    }
    if opt.get("type") != old.0.get("type") {
        for f in RULE_OPTIONS {
            let key = format!("optimizer.{f}");
            if !settings.iter().any(|s| s.key == key) {
                put(&mut opt, f, &Value::Null);
            }
        }
    }
    let what = |key: &str| {
        let k = key.to_string();
        move |e: serde_json::Error| Error::invalid(&k, e.to_string())
    };
    let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
    let new_opt: OptimizerSpec =
        serde_json::from_value(opt.clone()).map_err(what(&keys_of(&keys, "optimizer.")))?;
    let new_train: TrainSpec =
        serde_json::from_value(tr.clone()).map_err(what(&keys_of(&keys, "train.")))?;
    new_opt
        .rule()
        .map_err(|e| Error::invalid("optimizer", e.to_string()))?;
    if !(new_opt.lr.is_finite() && new_opt.lr > 0.0) {
        return Err(Error::invalid(
            "optimizer.lr",
            format!("{} must be a positive number", new_opt.lr),
        ));
    }
    if new_train.epochs == 0 {
        return Err(Error::invalid(
            "train.epochs",
            "must be at least 1 (epochs per chunk)",
        ));
    }
    if !(0.0..1.0).contains(&new_train.label_smoothing) {
        return Err(Error::invalid(
            "train.label_smoothing",
            format!("{} is outside [0, 1)", new_train.label_smoothing),
        ));
    }
    let mut changes = Vec::new();
    for key in SETTABLE_KEYS {
        let (table, field) = key.split_once('.').expect("a table");
        let (a, b) = if table == "optimizer" {
            (&old.0, &opt)
        } else {
            (&old.1, &tr)
        };
        let from = a.get(field).cloned().unwrap_or(Value::Null);
        let to = b.get(field).cloned().unwrap_or(Value::Null);
        if from != to {
            changes.push(Change {
                key: key.to_string(),
                from,
                to,
            });
        }
    }
    Ok((new_opt, new_train, changes))
}

/// The keys among `keys` of one table, for error messages.
fn keys_of(keys: &[&str], prefix: &str) -> String {
    let k: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.starts_with(prefix))
        .collect();
    if k.is_empty() {
        prefix.trim_end_matches('.').to_string()
    } else {
        k.join(", ")
    }
}

/// The settings a run holds after the [`HyperChange`]s of `history`, starting from its
/// configuration's `optimizer` and `train`.
pub fn replay(
    optimizer: &OptimizerSpec,
    train: &TrainSpec,
    history: &[Event],
) -> Result<(OptimizerSpec, TrainSpec)> {
    let mut cur = (optimizer.clone(), train.clone());
    for e in history {
        if let Event::HyperChange(h) = e {
            let settings: Vec<Setting> = h
                .changes
                .iter()
                .map(|c| Setting::new(&c.key, c.to.clone()))
                .collect();
            let (o, t, _) = apply_settings(&cur.0, &cur.1, &settings)?;
            cur = (o, t);
        }
    }
    Ok(cur)
}

/// The epochs each of `chunks` chunks trains for: `epochs`, changed by the schedule's
/// entries at their chunks and by the `train.epochs` changes of `history` in the chunk
/// where they happened (a plan: early stopping may end chunks sooner).
pub fn chunk_epochs(
    epochs: usize,
    schedule: &[ChunkSetting],
    history: &[Event],
    chunks: usize,
) -> Vec<usize> {
    let mut cur = epochs;
    (0..chunks as u64)
        .map(|c| {
            if let Some(e) = schedule
                .iter()
                .find(|s| s.chunk == c + 1)
                .and_then(|s| s.epochs)
            {
                cur = e;
            }
            for e in history {
                if let Event::HyperChange(h) = e {
                    if h.chunk == c && h.source != ChangeSource::Schedule {
                        for ch in h.changes.iter().filter(|ch| ch.key == "train.epochs") {
                            cur = ch.to.as_u64().map_or(cur, |v| v as usize);
                        }
                    }
                }
            }
            cur
        })
        .collect()
}

impl Trainer {
    /// Applies `settings` from the current step on ([`apply_settings`]), records the
    /// change in the history as coming from `source` and returns it. Optimizer moments
    /// carry over; a change of `optimizer.type` re-initialises them (and drops early
    /// stopping's snapshot of the chunk's best epoch, whose state no longer fits).
    pub fn change_hyper(
        &mut self,
        settings: &[Setting],
        source: ChangeSource,
    ) -> Result<HyperChange> {
        let (opt, train, changes) = apply_settings(&self.optimizer, &self.train, settings)?;
        let layers = self.model.spec.layers.len();
        for i in 0..layers {
            opt.lr_scale(i, layers)?;
        }
        opt.schedule.validate()?;
        let reset = opt.kind != self.optimizer.kind;
        let rule = opt.rule()?;
        if reset {
            self.model.reset_state(rule.state_count())?;
            self.best_snapshot = None;
        }
        self.rule = rule;
        self.optimizer = opt;
        self.train = train;
        self.plan = None;
        self.program = None;
        self.eval_program = None;
        let event = HyperChange {
            chunk: self.cursor.chunk,
            epoch: self.epoch,
            step: self.step,
            source,
            changes,
            optimizer_reset: reset,
        };
        self.history.push(Event::HyperChange(event.clone()));
        Ok(event)
    }

    /// At the start of every [`Trainer::fit_chunk_with`]: applies the schedule entry of the
    /// current chunk, once (the history says whether it was applied already, so a chunk
    /// resumed in its middle does not apply it again).
    pub(crate) fn apply_chunk_schedule(&mut self) -> Result<()> {
        let chunk = self.cursor.chunk;
        let Some(entry) = self
            .chunk_schedule
            .iter()
            .find(|s| s.chunk == chunk + 1)
            .cloned()
        else {
            return Ok(());
        };
        let applied = self.history.iter().any(|e| {
            matches!(e, Event::HyperChange(h) if h.chunk == chunk && h.source == ChangeSource::Schedule)
        });
        if !applied {
            self.change_hyper(&entry.settings(), ChangeSource::Schedule)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimKind;

    #[test]
    fn settings_parse_apply_and_replay() {
        let s = Setting::parse("optimizer.lr=1e-4").unwrap();
        assert_eq!(s.value, Value::from(1e-4));
        assert_eq!(
            Setting::parse("optimizer.type=adamw").unwrap().value,
            "adamw"
        );
        assert_eq!(
            Setting::parse("optimizer.clip_norm = none").unwrap().value,
            Value::Null
        );
        let e = Setting::parse("train.batch_size=64")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("train.batch_size: cannot be changed")
                && e.contains("optimizer.lr, ")
                && e.contains("train.epochs"),
            "{e}"
        );
        assert!(Setting::parse("optimizer.lr").is_err());

        let mut adam = OptimizerSpec::adam(1e-3);
        adam.beta1 = Some(0.8);
        let train = TrainSpec::default();
        let sets = [
            Setting::parse("optimizer.type=sgd").unwrap(),
            Setting::parse("train.epochs=3").unwrap(),
        ];
        let (o, t, changes) = apply_settings(&adam, &train, &sets).unwrap();
        assert_eq!((o.kind, o.beta1, t.epochs), (OptimKind::Sgd, None, 3));
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["optimizer.type", "optimizer.beta1", "train.epochs"]);
        // A bad value names its key; a rule option that does not apply is refused.
        let e = apply_settings(&adam, &train, &[Setting::new("train.epochs", "two")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("train.epochs: "), "{e}");
        let e = apply_settings(&adam, &train, &[Setting::new("optimizer.momentum", 0.5)])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("optimizer: ") && e.contains("momentum"),
            "{e}"
        );
        assert!(apply_settings(&adam, &train, &[Setting::new("optimizer.lr", -1.0)]).is_err());

        let h = Event::HyperChange(HyperChange {
            chunk: 1,
            epoch: 2,
            step: 20,
            source: ChangeSource::Resume,
            changes,
            optimizer_reset: true,
        });
        let (o2, t2) = replay(&adam, &train, std::slice::from_ref(&h)).unwrap();
        assert_eq!((o2, t2), (o, t));
        let schedule = [ChunkSetting {
            chunk: 3,
            lr: None,
            epochs: Some(5),
        }];
        assert_eq!(chunk_epochs(1, &schedule, &[h], 4), [1, 3, 5, 5]);
        assert!(ChunkSetting::check_schedule(&schedule, 2).is_err());
        assert!(ChunkSetting::check_schedule(&schedule, 3).is_ok());
    }
}
