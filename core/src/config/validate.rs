//! What the types alone cannot check: ranges, keys that only apply to one data format, a
//! model and optimizer that can be built, layers to freeze that exist.

use super::{DataFormat, RunConfig};
use crate::error::{Error, Result};
use crate::train::Meta;
use serde_json::Value;

/// The first place where `a` and `b` differ, as (path, a's value, b's value); `None` when
/// equal. Paths read like config keys: `layers[1].units`.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<(String, String, String)> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    let short = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(v) => {
            let t = v.to_string();
            if t.chars().count() > 60 {
                format!("{}…", t.chars().take(60).collect::<String>())
            } else {
                t
            }
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &join(k)),
                (p, q) => Some((join(k), short(p), short(q))),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        (Value::Array(x), Value::Array(y)) => Some((
            format!("{path} (length)"),
            x.len().to_string(),
            y.len().to_string(),
        )),
        _ if a == b => None,
        _ => Some((path.to_string(), short(Some(a)), short(Some(b)))),
    }
}

impl RunConfig {
    /// Refuses a checkpoint written for another run: its model (with `[finetune] freeze`),
    /// optimizer, `[train]` settings, seed and LwF settings (`[incremental] lwf`) must be
    /// this configuration's. The message
    /// names the first field that differs and both values, after `source` (the file).
    ///
    /// The optimizer and `[train]` settings compared are the configuration's with the
    /// hyper-parameter changes of the checkpoint's history applied
    /// ([`crate::train::hyper::replay`]: `resume --set`, `[[incremental.schedule]]`).
    pub fn check_resumable(&self, meta: &Meta, source: &str) -> Result<()> {
        let spec = self.model_spec()?;
        fn to<T: serde::Serialize>(v: &T) -> Value {
            serde_json::to_value(v).unwrap_or(Value::Null)
        }
        let (optimizer, train) =
            crate::train::hyper::replay(&self.optimizer, &self.train, &meta.history)
                .map_err(|e| Error::data(source, format!("its history's hyper-parameter changes do not apply to config.toml ({e}); restore the run's config.toml")))?;
        // LwF's settings shape every chunk's loss from the checkpoint on, like `[train]`'s.
        let lwf = |l: &Option<crate::train::LwfSpec>| l.as_ref().map_or(Value::from("off"), to);
        let pairs: [(&str, Value, Value); 5] = [
            ("model", to(&meta.model), to(&spec)),
            ("optimizer", to(&meta.optimizer), to(&optimizer)),
            ("train", to(&meta.train), to(&train)),
            ("seed", Value::from(meta.seed), Value::from(self.seed)),
            (
                "incremental.lwf",
                lwf(&meta.lwf),
                lwf(&self.incremental.lwf),
            ),
        ];
        for (table, theirs, ours) in pairs {
            if let Some((path, a, b)) = first_difference(&theirs, &ours, table) {
                return Err(Error::data(
                    source,
                    format!("this checkpoint belongs to another run: its {path} is {a} but config.toml has {b}; restore the run's config.toml or start a new run"),
                ));
            }
        }
        Ok(())
    }

    /// The `[data]` keys of the chosen format: each key applies to some formats only, and
    /// each format has the keys it requires.
    fn validate_data_keys(&self) -> Result<()> {
        use DataFormat::*;
        let d = &self.data;
        let f = d.format;
        let files = [Csv, Npy, Npz, Safetensors];
        let keys: [(&str, bool, &[DataFormat]); 13] = [
            ("dir", d.dir.is_some(), &[Idx]),
            ("train_file", d.train_file.is_some(), &files),
            ("test_file", d.test_file.is_some(), &files),
            ("label_column", d.label_column.is_some(), &[Csv]),
            ("delimiter", d.delimiter.is_some(), &[Csv]),
            ("train_labels_file", d.train_labels_file.is_some(), &[Npy]),
            ("test_labels_file", d.test_labels_file.is_some(), &[Npy]),
            (
                "features_key",
                d.features_key.is_some(),
                &[Npz, Safetensors],
            ),
            ("labels_key", d.labels_key.is_some(), &[Npz, Safetensors]),
            ("train_dir", d.train_dir.is_some(), &[ImageFolder]),
            ("test_dir", d.test_dir.is_some(), &[ImageFolder]),
            ("image_size", d.image_size.is_some(), &[ImageFolder]),
            ("image_color", d.image_color.is_some(), &[ImageFolder]),
        ];
        let wants = match f {
            Idx => "set data.dir to the folder holding the IDX files",
            Csv | Npz | Safetensors => "set data.train_file (and data.test_file)",
            Npy => "set data.train_file and data.train_labels_file (and data.test_file, data.test_labels_file)",
            ImageFolder => "set data.train_dir (and data.test_dir) to folders with one subfolder of images per class",
        };
        for (key, set, formats) in keys {
            if set && !formats.contains(&f) {
                let names: Vec<String> = formats
                    .iter()
                    .map(|g| format!("\"{}\"", g.name()))
                    .collect();
                return Err(Error::invalid(
                    format!("data.{key}"),
                    format!(
                        "only applies to format = {}; with format = \"{}\" {wants}",
                        names.join(" or "),
                        f.name()
                    ),
                ));
            }
        }
        let required: &[(&str, bool)] = match f {
            Idx => &[],
            Csv | Npz | Safetensors => &[("train_file", d.train_file.is_some())],
            Npy => &[
                ("train_file", d.train_file.is_some()),
                ("train_labels_file", d.train_labels_file.is_some()),
                (
                    "test_labels_file",
                    d.test_labels_file.is_some() || d.test_file.is_none(),
                ),
                (
                    "test_file",
                    d.test_file.is_some() || d.test_labels_file.is_none(),
                ),
            ],
            ImageFolder => &[("train_dir", d.train_dir.is_some())],
        };
        if let Some((key, _)) = required.iter().find(|(_, ok)| !ok) {
            return Err(Error::invalid(
                format!("data.{key}"),
                format!("is required with format = \"{}\": {wants}", f.name()),
            ));
        }
        d.delimiter_byte()
            .map_err(|e| Error::invalid("data.delimiter", e))?;
        if let Some([h, w]) = d.image_size {
            if h == 0 || w == 0 || h > 4096 || w > 4096 {
                return Err(Error::invalid(
                    "data.image_size",
                    format!("[{h}, {w}] is not [height, width] of 1 to 4096 pixels each"),
                ));
            }
        }
        if f == ImageFolder {
            self.image_shape()?;
        }
        Ok(())
    }

    /// Checks what the types alone cannot: ranges, keys that only apply to one data
    /// format, a model and optimizer that can be built, layers to freeze that exist.
    /// Messages start with the key (`data.validation_fraction: …`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, detail: String| Err(Error::invalid(key, detail));
        if self.train.loss == crate::train::LossKind::Mse {
            return bad(
                "train.loss",
                "\"mse\" trains on real-valued targets, but runs read class labels (IDX or a CSV label column); use \"softmax_cross_entropy\" here, or the library's Dataset::regression for regression".into(),
            );
        }
        let d = &self.data;
        self.validate_data_keys()?;
        if d.train_limit == Some(0) {
            return bad("data.train_limit", "0 samples leaves nothing to train on; use at least 1, or remove the key to use all".into());
        }
        if d.test_limit == Some(0) {
            return bad(
                "data.test_limit",
                "0 samples leaves nothing to test on; use at least 1, or remove the key to use all"
                    .into(),
            );
        }
        if let Some(mp) = &self.train.mixed_precision {
            mp.check_settings()?;
        }
        if self.train.early_stopping.is_some() && d.validation_fraction == 0.0 {
            return bad(
                "train.early_stopping",
                "watches the validation split, but data.validation_fraction is 0; set it to e.g. 0.1, or remove train.early_stopping".into(),
            );
        }
        if !(0.0..1.0).contains(&d.validation_fraction) {
            return bad(
                "data.validation_fraction",
                format!(
                    "{} is outside [0, 1); use e.g. 0.1 for 10% of the training data, or 0 for no validation",
                    d.validation_fraction
                ),
            );
        }
        self.model
            .shapes()
            .map_err(|e| Error::invalid("model", e.to_string()))?;
        let outputs = self.model.outputs()?;
        if outputs < 2 {
            return bad(
                "model.layers",
                format!("the last layer gives {outputs} output; a classifier needs one output per class (at least 2)"),
            );
        }
        if let Some(names) = &d.class_names {
            if names.len() != outputs {
                return bad(
                    "data.class_names",
                    format!(
                        "{} names for the {outputs} classes the model's last layer predicts; give one name per class",
                        names.len()
                    ),
                );
            }
        }
        self.optimizer
            .rule()
            .map_err(|e| Error::invalid("optimizer", e.to_string()))?;
        self.optimizer.schedule.validate()?;
        let layers = self.model.layers.len();
        for i in 0..layers {
            self.optimizer.lr_scale(i, layers)?;
        }
        if self.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        if self.train.accumulate_steps == 0 {
            return bad(
                "train.accumulate_steps",
                "must be at least 1 (1 = an update every batch; k = one update per k batches)"
                    .into(),
            );
        }
        if self.train.epochs == 0 {
            return bad(
                "train.epochs",
                "must be at least 1 (epochs per chunk)".into(),
            );
        }
        if !(0.0..1.0).contains(&self.train.label_smoothing) {
            return bad(
                "train.label_smoothing",
                format!("{} is outside [0, 1)", self.train.label_smoothing),
            );
        }
        if self.incremental.chunks == 0 {
            return bad(
                "incremental.chunks",
                "must be at least 1 (1 = ordinary training on all the data)".into(),
            );
        }
        if let Some(l) = &self.incremental.lwf {
            l.validate("incremental.lwf")?;
            if self.train.loss != crate::train::LossKind::SoftmaxCrossEntropy {
                return bad(
                    "incremental.lwf",
                    "Learning without Forgetting distils class probabilities: it needs train.loss = \"softmax_cross_entropy\"".into(),
                );
            }
        }
        if let Some(e) = &self.incremental.ewc {
            e.validate("incremental.ewc")?;
            if self.train.loss != crate::train::LossKind::SoftmaxCrossEntropy {
                return bad(
                    "incremental.ewc",
                    "EWC's Fisher is that of the labels' log-likelihood: it needs train.loss = \"softmax_cross_entropy\"".into(),
                );
            }
        }
        if let Some(a) = &self.incremental.agem {
            a.validate("incremental.agem")?;
            let conflict = if self.train.loss != crate::train::LossKind::SoftmaxCrossEntropy {
                Some("projects the labels' cross-entropy gradient: it needs train.loss = \"softmax_cross_entropy\"")
            } else if self.train.accumulate_steps > 1 {
                Some("takes one reference gradient per update and cannot be combined with train.accumulate_steps > 1")
            } else if self.train.mixed_precision.is_some() {
                Some("cannot be combined with train.mixed_precision (the reference gradient is not loss-scaled)")
            } else {
                None
            };
            if let Some(c) = conflict {
                return bad(
                    "incremental.agem",
                    format!("A-GEM {c}; turn one of them off"),
                );
            }
        }
        if let Some(r) = &self.incremental.rehearsal {
            r.validate("incremental.rehearsal")?;
            if r.replay_loss().is_some() {
                if self.train.loss != crate::train::LossKind::SoftmaxCrossEntropy {
                    return bad(
                        "incremental.rehearsal",
                        "logit_weight / label_weight (DER, DER++) weigh class logits and labels: they need train.loss = \"softmax_cross_entropy\"".into(),
                    );
                }
                if self.incremental.lwf.is_some() {
                    return bad(
                        "incremental.rehearsal",
                        "logit_weight / label_weight (DER, DER++) cannot be combined with incremental.lwf (both replace the loss); use one strategy".into(),
                    );
                }
            }
        }
        crate::train::ChunkSetting::check_schedule(
            &self.incremental.schedule,
            self.incremental.chunks,
        )?;
        if let Some(r) = &self.recovery {
            r.check(d.validation_fraction > 0.0)?;
        }
        if let Some(p) = &self.parallel {
            p.validate(self)?;
        }
        if let Some(f) = &self.finetune {
            if f.from.trim().is_empty() {
                return bad(
                    "finetune.from",
                    "is empty; give the path of a .safetensors file".into(),
                );
            }
            let mut spec = self.model.clone();
            spec.freeze(&f.freeze)
                .map_err(|e| Error::invalid("finetune.freeze", e.to_string()))?;
        }
        Ok(())
    }
}
