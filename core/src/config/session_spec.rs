//! The browser's session spec: the run configuration's keys that apply to data handed over
//! in memory, chunk by chunk, as JSON.

use super::schema::default_optimizer;
use super::{DataConfig, IncrementalConfig, RunConfig};
use crate::error::{Error, Result};
use crate::nn::ModelSpec;
use crate::optim::OptimizerSpec;
use crate::train::{RecoverySpec, RehearsalSpec, TrainSpec};
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// `data` of a [`SessionSpec`]: only what applies to data handed over in memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct SessionData {
    /// Standardise every feature to mean 0 and standard deviation 1, fitted on the first
    /// chunk trained and stored in checkpoints (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// `incremental` of a [`SessionSpec`]: the caller hands over the chunks, so only the
/// strategies apply (rehearsal with DER, LwF, EWC, A-GEM).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct SessionIncremental {
    /// As `[incremental] rehearsal` of the run configuration (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalSpec>,
    /// As `[incremental] lwf` of the run configuration (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwf: Option<crate::train::LwfSpec>,
    /// As `[incremental] ewc` of the run configuration (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewc: Option<crate::train::EwcSpec>,
    /// As `[incremental] agem` of the run configuration (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agem: Option<crate::train::AgemSpec>,
}

/// A training session whose data arrives in memory, chunk by chunk (the browser's
/// `Trainer.create(spec)`): the run configuration's `seed`, `model` (required),
/// `optimizer`, `train`, `recovery`, `incremental.rehearsal` and `data.standardize`, with
/// the same keys, defaults and checks ([`RunConfig::validate`]). Unknown keys are refused.
///
/// ```json
/// {"seed": 0,
///  "model": {"input": [2], "layers": [{"type": "dense", "units": 16, "activation": "tanh"},
///                                     {"type": "dense", "units": 2}]},
///  "optimizer": {"type": "adam", "lr": 0.01},
///  "train": {"batch_size": 32, "epochs": 1}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Seed of weight initialisation, shuffles, dropout and rehearsal (default 0).
    #[serde(default)]
    pub seed: u64,
    /// `standardize` (default false).
    #[serde(default)]
    pub data: SessionData,
    /// `input` shape and `layers` ([`ModelSpec`]; required).
    pub model: ModelSpec,
    /// As `[optimizer]` (default Adam at lr 0.001).
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerSpec,
    /// As `[train]`: `batch_size` (default 128), `epochs` per chunk (default 1), `loss`,
    /// `label_smoothing`.
    #[serde(default)]
    pub train: TrainSpec,
    /// `rehearsal` (default: off).
    #[serde(default)]
    pub incremental: SessionIncremental,
    /// As `[recovery]` (default: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySpec>,
    /// Refused when present: a browser tab trains on one device (parallel training is the
    /// CLI's `[parallel]`; `train.accumulate_steps` gives a tab a larger effective batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", tsify(type = "never"))]
    pub parallel: Option<serde_json::Value>,
}

impl SessionSpec {
    /// Parses and validates a JSON session spec. Errors start with `source` and give the key
    /// path, serde's message (which lists the allowed keys or values) and the position:
    /// `spec: model.layers[0]: unknown variant `dense2`, expected one of … at line 1 column 52`.
    pub fn from_json(text: &str, source: &str) -> Result<SessionSpec> {
        let fail = |path: Option<String>, e: &serde_json::Error| {
            let key = match path.as_deref() {
                Some(".") | Some("") | None => String::new(),
                Some(p) => format!("{p}: "),
            };
            Error::InvalidArgument {
                what: source.to_string(),
                detail: format!("{key}{e}"),
            }
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let spec: SessionSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // A syntax error has no key to name (the path would end in `?`).
            let data = inner.classify() == serde_json::error::Category::Data;
            fail(data.then_some(path), &inner)
        })?;
        de.end().map_err(|e| fail(None, &e))?;
        spec.validate().map_err(|e| Error::InvalidArgument {
            what: source.to_string(),
            detail: e.to_string(),
        })?;
        Ok(spec)
    }

    /// The spec as JSON that [`SessionSpec::from_json`] reads back unchanged.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session spec serialises")
    }

    /// The run configuration with these settings and every other key at its default.
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            seed: self.seed,
            data: DataConfig {
                standardize: self.data.standardize,
                ..DataConfig::default()
            },
            model: self.model.clone(),
            optimizer: self.optimizer.clone(),
            train: self.train.clone(),
            incremental: IncrementalConfig {
                rehearsal: self.incremental.rehearsal.clone(),
                lwf: self.incremental.lwf.clone(),
                ewc: self.incremental.ewc.clone(),
                agem: self.incremental.agem.clone(),
                ..IncrementalConfig::default()
            },
            recovery: self.recovery.clone(),
            ..RunConfig::default()
        }
    }

    /// The run configuration's checks on these keys (messages start with the key). A
    /// session has no validation split (its data arrives chunk by chunk), so the `best`
    /// recovery strategy, which needs one, is refused here rather than at the first chunk.
    pub fn validate(&self) -> Result<()> {
        if self
            .recovery
            .as_ref()
            .is_some_and(|r| r.strategy == crate::train::Strategy::Best)
        {
            return Err(Error::invalid(
                "recovery.strategy",
                "\"best\" restarts from the best-validation state, but a session has no validation set (its data arrives chunk by chunk); use \"last_good\", \"anneal\" or \"population\" (these judge candidates on the chunk's training loss)",
            ));
        }
        if self.parallel.is_some() {
            return Err(Error::invalid(
                "parallel",
                "parallel training is not available in a spec: a browser tab trains on one device; remove \"parallel\" (for a larger effective batch use train.accumulate_steps; several devices: the CLI's [parallel] table)",
            ));
        }
        self.run_config().validate()
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use crate::config::dataset_for_model;

    const SPIRAL: &str = r#"{"seed":3,"model":{"input":[2],"layers":[{"type":"dense","units":16,"activation":"tanh"},{"type":"dense","units":2}]},"optimizer":{"type":"adam","lr":0.01},"train":{"batch_size":32,"epochs":2}}"#;

    fn err(text: &str) -> String {
        SessionSpec::from_json(text, "spec")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_session_spec_parses_with_defaults_and_round_trips() {
        let s = SessionSpec::from_json(SPIRAL, "spec").unwrap();
        assert_eq!(s.seed, 3);
        assert_eq!(s.model.outputs().unwrap(), 2);
        assert_eq!(s.train.batch_size, 32);
        assert_eq!(s.train.epochs, 2);
        assert!(!s.data.standardize && s.recovery.is_none());
        assert_eq!(SessionSpec::from_json(&s.to_json(), "again").unwrap(), s);
        // Only the model is required; the rest takes the run configuration's defaults.
        let m = SessionSpec::from_json(
            r#"{"model":{"input":[4],"layers":[{"type":"dense","units":3}]}}"#,
            "spec",
        )
        .unwrap();
        let d = RunConfig::default();
        assert_eq!(
            (m.seed, &m.optimizer, &m.train),
            (0, &d.optimizer, &d.train)
        );
        let full = SessionSpec::from_json(
            r#"{"model":{"input":[4],"layers":[{"type":"dense","units":3}]},"data":{"standardize":true},
                "incremental":{"rehearsal":{"size":50,"per_batch":8}},"recovery":{}}"#,
            "spec",
        )
        .unwrap();
        assert!(full.data.standardize);
        assert_eq!(full.incremental.rehearsal.as_ref().unwrap().per_batch, 8);
        assert_eq!(full.recovery, Some(RecoverySpec::default()));
        assert_eq!(full.run_config().model, full.model);
    }

    #[test]
    fn session_specs_take_lwf_and_refuse_bad_values() {
        let s = SessionSpec::from_json(
            &SPIRAL.replace(
                "\"seed\":3",
                "\"seed\":3,\"incremental\":{\"lwf\":{\"weight\":2}}",
            ),
            "spec",
        )
        .unwrap();
        let l = s.incremental.lwf.clone().unwrap();
        assert_eq!(
            (l.weight, l.temperature),
            (2.0, crate::defaults::LWF_TEMPERATURE)
        );
        assert_eq!(s.run_config().incremental.lwf, Some(l));
        let e = err(&SPIRAL.replace(
            "\"seed\":3",
            "\"seed\":3,\"incremental\":{\"lwf\":{\"temperature\":-1}}",
        ));
        assert!(e.contains("incremental.lwf.temperature: -1 must be"), "{e}");
    }

    #[test]
    fn session_specs_take_recovery_strategies_but_not_best() {
        let with = |r: &str| SPIRAL.replace("\"seed\":3", &format!("\"seed\":3,\"recovery\":{r}"));
        for strategy in ["last_good", "anneal", "population"] {
            let s =
                SessionSpec::from_json(&with(&format!("{{\"strategy\":\"{strategy}\"}}")), "spec")
                    .unwrap();
            let r = s.recovery.clone().unwrap();
            assert_eq!(serde_json::to_value(r.strategy).unwrap(), strategy);
            assert_eq!(s.run_config().recovery, Some(r));
        }
        let e = err(&with(r#"{"strategy":"best"}"#));
        assert!(
            e.contains("recovery.strategy")
                && e.contains("no validation set")
                && e.contains("anneal"),
            "{e}"
        );
        let e = err(&with(r#"{"strategy":"retry"}"#));
        assert!(
            e.contains("recovery.strategy: unknown variant `retry`") && e.contains("population"),
            "{e}"
        );
        let e = err(&with(r#"{"strategy":"anneal","cooling":2}"#));
        assert!(e.contains("recovery.cooling"), "{e}");
    }

    #[test]
    fn session_specs_take_der_and_refuse_bad_values() {
        let s = SessionSpec::from_json(
            &SPIRAL.replace(
                "\"seed\":3",
                "\"seed\":3,\"incremental\":{\"rehearsal\":{\"size\":50,\"logit_weight\":0.1,\"label_weight\":0.5}}",
            ),
            "spec",
        )
        .unwrap();
        let r = s.incremental.rehearsal.clone().unwrap();
        assert_eq!(r.replay_loss(), Some((0.1, 0.5)));
        assert_eq!(s.run_config().incremental.rehearsal, Some(r));
        let e = err(&SPIRAL.replace(
            "\"seed\":3",
            "\"seed\":3,\"incremental\":{\"rehearsal\":{\"size\":50,\"label_weight\":-1}}",
        ));
        assert!(
            e.contains("incremental.rehearsal.label_weight: -1 must be a finite number ≥ 0"),
            "{e}"
        );
        let e = err(&SPIRAL.replace(
            "\"seed\":3",
            "\"seed\":3,\"incremental\":{\"rehearsal\":{\"size\":50,\"logit_weight\":0.5},\"lwf\":{}}",
        ));
        assert!(e.contains("cannot be combined with incremental.lwf"), "{e}");
    }

    #[test]
    fn session_spec_errors_name_the_key_and_what_is_allowed() {
        let e = err(&SPIRAL.replace("\"dense\",\"units\":2", "\"dense2\",\"units\":2"));
        assert!(
            e.starts_with("spec: model.layers[1]")
                && e.contains("unknown variant `dense2`")
                && e.contains("conv2d"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"seed\":3", "\"seed\":3,\"colour\":1"));
        assert!(
            e.contains("unknown field `colour`") && e.contains("model"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"epochs\":2", "\"epoch\":2"));
        assert!(
            e.contains("train.epoch: unknown field `epoch`") && e.contains("epochs"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"seed\":3", "\"incremental\":{\"chunks\":3}"));
        assert!(
            e.contains("incremental.chunks: unknown field `chunks`, expected one of `rehearsal`, `lwf`, `ewc`, `agem`"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"units\":16", "\"units\":\"16\""));
        assert!(
            e.contains("model.layers[0]") && e.contains("line 1 column"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"batch_size\":32", "\"batch_size\":0"));
        assert!(
            e.contains("spec: train.batch_size: must be at least 1"),
            "{e}"
        );
        let e = err(&SPIRAL.replace("\"units\":2}", "\"units\":1}"));
        assert!(
            e.contains("model.layers: the last layer gives 1 output"),
            "{e}"
        );
        let e = err(r#"{"seed":1}"#);
        assert!(e.contains("missing field `model`"), "{e}");
        let e = err(&format!("{SPIRAL} x"));
        assert!(e.contains("trailing characters"), "{e}");
        let e = err("{\"model\": ");
        assert!(e.starts_with("spec: EOF while parsing"), "{e}");
    }

    #[test]
    fn arrays_become_a_dataset_or_a_message_that_says_what_to_pass() {
        let s = SessionSpec::from_json(SPIRAL, "spec").unwrap();
        let d = dataset_for_model(
            &s.model,
            vec![0.0, 1.0, 2.0, 3.0],
            Some(vec![1, 0]),
            "fitChunk",
        )
        .unwrap();
        assert_eq!(
            (d.len(), d.classes, d.sample_shape.clone()),
            (2, 2, vec![2])
        );
        let p = dataset_for_model(&s.model, vec![0.5; 6], None, "predict").unwrap();
        assert_eq!(p.labels, [0, 0, 0]);
        let e = |x: Vec<f32>, y: Option<Vec<u32>>| {
            dataset_for_model(&s.model, x, y, "fitChunk")
                .unwrap_err()
                .to_string()
        };
        let m = e(vec![], Some(vec![]));
        assert!(m.starts_with("fitChunk: no samples"), "{m}");
        let m = e(vec![0.0; 5], Some(vec![0, 0]));
        assert!(
            m.contains("5 feature values are not a whole number of samples") && m.contains("n × 2"),
            "{m}"
        );
        let m = e(vec![0.0; 6], Some(vec![0, 0]));
        assert!(m.contains("2 labels for 3 samples"), "{m}");
        let m = e(vec![0.0; 4], Some(vec![0, 2]));
        assert!(
            m.contains("label 2 of sample 1 is outside the model's 2 classes"),
            "{m}"
        );
        let m = e(vec![0.0, 0.0, f32::NAN, 0.0], Some(vec![0, 1]));
        assert!(m.contains("feature 0 of sample 1 is NaN"), "{m}");
    }
}
