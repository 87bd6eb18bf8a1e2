//! The run configuration as TOML text: parsing with errors that give the file, line and
//! column, the key and what is allowed there, and writing it back.

use super::RunConfig;
use crate::error::{Error, Result};

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl RunConfig {
    /// Parses and validates a TOML configuration. `source` (the file name) starts every
    /// error message, which gives the line and column, the key and what is allowed there:
    /// `run.toml: line 4, column 1: data.formt: unknown field `formt`, expected one of …`.
    pub fn from_toml(text: &str, source: &str) -> Result<RunConfig> {
        let de =
            toml::de::Deserializer::parse(text).map_err(|e| toml_error(text, source, None, &e))?;
        let config: RunConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            toml_error(text, source, Some(path), &inner)
        })?;
        config.validate().map_err(|e| Error::InvalidArgument {
            what: source.to_string(),
            detail: e.to_string(),
        })?;
        Ok(config)
    }

    /// The configuration as TOML that [`RunConfig::from_toml`] reads back unchanged.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("run configuration", e))
    }
}

/// A one-line message from a toml error: file, line and column, the key, toml's message.
fn toml_error(text: &str, source: &str, path: Option<String>, e: &toml::de::Error) -> Error {
    let at = e
        .span()
        .map(|s| {
            let (l, c) = line_col(text, s.start);
            format!("line {l}, column {c}: ")
        })
        .unwrap_or_default();
    let key = match path.as_deref() {
        Some(".") | Some("") | None => String::new(),
        Some(p) => format!("{p}: "),
    };
    let message = e.message().trim().replace('\n', "; ");
    Error::InvalidArgument {
        what: source.to_string(),
        detail: format!("{at}{key}{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::presets;
    use crate::train::RecoverySpec;

    const EXAMPLE: &str = r#"seed = 7

[data]
format = "idx"
dir = "/usr/share/datasets/fashion-mnist"
train_limit = 6000
test_limit = 2000
validation_fraction = 0.1
stratified = true

[model]
input = [784]
layers = [
  { type = "dense", units = 256, activation = "relu" },
  { type = "dense", units = 10 },
]

[optimizer]
type = "adam"
lr = 0.001

[train]
batch_size = 128
epochs = 2
loss = "softmax_cross_entropy"

[incremental]
chunks = 3
split_by = "count"

[checkpoint]
every_steps = 50
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = RunConfig::from_toml(EXAMPLE, "run.toml").unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.data.train_limit, Some(6000));
        assert_eq!(c.model, presets::mlp(784, &[256], 10));
        assert_eq!(c.train.epochs, 2);
        assert_eq!(c.incremental.chunks, 3);
        assert_eq!(c.checkpoint.every_steps, 50);
        assert_eq!(c.checkpoint.keep_last, 0);
        let back = RunConfig::from_toml(&c.to_toml().unwrap(), "resolved").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn empty_file_is_the_default_run_and_round_trips() {
        let c = RunConfig::from_toml("", "empty.toml").unwrap();
        let d = RunConfig::default();
        assert_eq!(c.model, d.model);
        assert_eq!(c.incremental.chunks, 5);
        assert_eq!(c.checkpoint.every_steps, 200);
        assert_eq!(c.data.validation_fraction, 0.1);
        d.validate().unwrap();
        let text = d.to_toml().unwrap();
        assert_eq!(RunConfig::from_toml(&text, "default").unwrap(), d);
    }

    #[test]
    fn optional_keys_parse_and_round_trip() {
        let text = r#"
[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
label_column = "y"
standardize = true
[model]
input = [2]
layers = [{ type = "dense", units = 8, activation = "tanh" }, { type = "dense", units = 3 }]
[optimizer]
type = "sgd"
lr = 0.1
schedule = { type = "cosine", warmup_steps = 10 }
[incremental]
chunks = 3
split_by = "class"
shuffle = true
rehearsal = { size = 100, per_batch = 16 }
[recovery]
[checkpoint]
every_steps = 0
keep_last = 3
[finetune]
from = "base.safetensors"
freeze = [0]
"#;
        let c = RunConfig::from_toml(text, "x.toml").unwrap();
        assert_eq!(c.data.label_column(), "y");
        assert_eq!(c.recovery, Some(RecoverySpec::default()));
        assert_eq!(c.incremental.rehearsal.as_ref().unwrap().per_batch, 16);
        assert_eq!(c.finetune.as_ref().unwrap().freeze, [0]);
        assert!(!c.model_spec().unwrap().layers[0].trainable());
        let back = RunConfig::from_toml(&c.to_toml().unwrap(), "resolved").unwrap();
        assert_eq!(back, c);
    }

    fn err(text: &str) -> String {
        RunConfig::from_toml(text, "bad.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_key_and_the_allowed_values() {
        let e = err("[data]\nformt = \"idx\"\n");
        assert!(e.starts_with("bad.toml: line 2, column 1: "), "{e}");
        assert!(e.contains("formt") && e.contains("format"), "{e}");
        let e = err("[data]\nformat = \"hdf5\"\n");
        assert!(
            e.contains("data.format") && e.contains("idx") && e.contains("csv"),
            "{e}"
        );
        let e = err("[optimizer]\ntype = \"adamx\"\n");
        assert!(e.contains("optimizer.type") && e.contains("adamw"), "{e}");
        let e = err("[model]\ninput = [784]\nlayers = [{ type = \"dense\", units = 10, activation = \"relux\" }]\n");
        assert!(e.contains("relux") && e.contains("leaky_relu"), "{e}");
        let e = err("[train]\nbatch_size = -3\n");
        assert!(e.contains("train.batch_size"), "{e}");
        let e = err("[train]\nbatch_size = 0\n");
        assert!(e.contains("train.batch_size: must be at least 1"), "{e}");
        let e = err("[data]\nvalidation_fraction = 1.5\n");
        assert!(
            e.contains("data.validation_fraction: 1.5 is outside [0, 1)"),
            "{e}"
        );
        let e = err("colour = 3\n");
        assert!(e.contains("colour") && e.contains("seed"), "{e}");
        let e = err("[data]\nformat = \"csv\"\n");
        assert!(e.contains("data.train_file: is required"), "{e}");
        let e = err("seed = \n");
        assert!(e.starts_with("bad.toml: line 1"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
