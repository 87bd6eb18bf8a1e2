//! Every table and every tagged-enum variant of the run configuration (TOML) and of the
//! browser's session spec (JSON) refuses an unknown key, naming it. The test walks sample
//! files that use every table and every variant and injects a key into each table in turn,
//! so a table added later is covered as soon as a sample uses it.

use super::{RunConfig, SessionSpec};

const KEY: &str = "zz_unknown_key";

/// Run configurations that between them use every table and every variant.
const TOML_SAMPLES: &[&str] = &[
    r#"seed = 1
[data]
format = "csv"
train_file = "t.csv"
test_file = "v.csv"
label_column = "y"
standardize = true
class_names = ["a", "b", "c"]
[model]
input = [1, 8, 8]
layers = [
  { type = "conv2d", filters = 2, kernel = 3, padding = 1, activation = "relu" },
  { type = "maxpool2d", size = 2 },
  { type = "avgpool2d", size = 2, stride = 2 },
  { type = "flatten" },
  { type = "dropout", rate = 0.1 },
  { type = "dense", units = 4 },
  { type = "activation", activation = "tanh" },
  { type = "dense", units = 3 },
]
[optimizer]
type = "adam"
lr = 0.01
schedule = { type = "constant" }
[train]
batch_size = 4
epochs = 1
early_stopping = { patience = 2 }
mixed_precision = { init_scale = 1024.0 }
[incremental]
chunks = 2
rehearsal = { size = 10, per_batch = 2, logit_weight = 0.5, label_weight = 0.5 }
ewc = { weight = 1.0, decay = 0.9, samples = 4 }
[recovery]
spike_factor = 3.0
[checkpoint]
every_steps = 10
[finetune]
from = "w.safetensors"
freeze = [0]
"#,
    "[optimizer]\ntype = \"sgd\"\nschedule = { type = \"step\", step_epochs = 1, gamma = 0.5 }\n",
    "[optimizer]\ntype = \"sgd\"\nschedule = { type = \"exponential\", gamma = 0.5 }\n",
    "[optimizer]\ntype = \"sgd\"\nschedule = { type = \"cosine\", warmup_steps = 2 }\n",
    "[optimizer]\ntype = \"sgd\"\nschedule = { type = \"reduce_on_plateau\" }\n",
    // A tied decoder: the `share` inline table.
    "[model]\ninput = [6]\nlayers = [\n  { type = \"dense\", units = 4, activation = \"relu\" },\n  { type = \"dense\", units = 6, share = { layer = 0, transpose = true } },\n]\n",
    // A-GEM (refused beside mixed precision, so not in the first sample).
    "[incremental]\nagem = { size = 10, per_batch = 2 }\n",
    "[train]\naccumulate_steps = 2\n[parallel]\nbackend = \"local\"\ndevices = 2\nmode = \"all_reduce\"\nsync_every = 4\n",
];

/// Calls `f` with a copy of `v` in which one table (found by walking tables, inline tables
/// and arrays of tables) holds the unknown key, once per table, and the table's path: the
/// JSON walk below over the same document as JSON (run configurations hold no dates, so
/// the conversion is exact both ways).
fn each_table_toml(v: &toml::Value, f: &mut dyn FnMut(toml::Value, String)) {
    let json = serde_json::to_value(v).expect("a TOML document as JSON");
    each_object_json(&json, &mut |copy, path| {
        f(
            serde_json::from_value(copy).expect("JSON back to TOML"),
            path,
        )
    });
}

/// Calls `f` with a copy of `v` in which one object (walking objects and arrays) holds the
/// unknown key, once per object, and the object's path.
fn each_object_json(v: &serde_json::Value, f: &mut dyn FnMut(serde_json::Value, String)) {
    fn walk(
        root: &serde_json::Value,
        at: &mut Vec<PathStep>,
        cur: &serde_json::Value,
        f: &mut dyn FnMut(serde_json::Value, String),
    ) {
        match cur {
            serde_json::Value::Object(o) => {
                let mut copy = root.clone();
                let mut target = &mut copy;
                for s in at.iter() {
                    target = match s {
                        PathStep::Key(k) => &mut target[k.as_str()],
                        PathStep::Index(i) => &mut target[*i],
                    };
                }
                target
                    .as_object_mut()
                    .expect("an object")
                    .insert(KEY.into(), serde_json::Value::from(1));
                f(copy, describe(at));
                for (k, child) in o {
                    at.push(PathStep::Key(k.clone()));
                    walk(root, at, child, f);
                    at.pop();
                }
            }
            serde_json::Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(PathStep::Index(i));
                    walk(root, at, child, f);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut Vec::new(), v, f);
}

enum PathStep {
    Key(String),
    Index(usize),
}

fn describe(at: &[PathStep]) -> String {
    if at.is_empty() {
        return "the top level".into();
    }
    at.iter()
        .map(|s| match s {
            PathStep::Key(k) => k.clone(),
            PathStep::Index(i) => format!("[{i}]"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn every_toml_table_and_variant_refuses_an_unknown_key() {
    let mut tables = 0;
    for sample in TOML_SAMPLES {
        RunConfig::from_toml(sample, "sample.toml")
            .unwrap_or_else(|e| panic!("the sample itself must parse: {e}\n{sample}"));
        let v: toml::Value = toml::from_str(sample).unwrap();
        each_table_toml(&v, &mut |bad, at| {
            tables += 1;
            let text = toml::to_string(&bad).unwrap();
            match RunConfig::from_toml(&text, "bad.toml") {
                Ok(_) => panic!("an unknown key in {at} was accepted:\n{text}"),
                Err(e) => assert!(
                    e.to_string().contains(KEY),
                    "the error for an unknown key in {at} does not name it: {e}"
                ),
            }
        });
    }
    // 14 tables in the first sample (top, 8 tables, 8 layers, schedule, 3 inline tables
    // in [train] and [incremental]) and two in each schedule sample.
    assert!(tables >= 25, "only {tables} tables were tried");
}

#[test]
fn every_json_spec_object_and_variant_refuses_an_unknown_key() {
    let samples = [
        r#"{"seed": 1, "data": {"standardize": true},
            "model": {"input": [1, 8, 8], "layers": [
              {"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1},
              {"type": "maxpool2d", "size": 2}, {"type": "avgpool2d", "size": 2},
              {"type": "flatten"}, {"type": "dropout", "rate": 0.1},
              {"type": "dense", "units": 4}, {"type": "activation", "activation": "elu"},
              {"type": "dense", "units": 3}]},
            "optimizer": {"type": "adam", "lr": 0.01, "schedule": {"type": "constant"}},
            "train": {"batch_size": 4, "early_stopping": {"patience": 2}},
            "incremental": {"rehearsal": {"size": 10, "per_batch": 2}, "ewc": {"decay": 0.5},
                            "agem": {"size": 10, "per_batch": 2}},
            "recovery": {"spike_factor": 3.0}}"#,
        r#"{"model": {"input": [2], "layers": [{"type": "dense", "units": 2}]},
            "optimizer": {"type": "sgd", "schedule": {"type": "cosine", "warmup_steps": 2}}}"#,
        r#"{"model": {"input": [6], "layers": [{"type": "dense", "units": 4},
            {"type": "dense", "units": 6, "share": {"layer": 0, "transpose": true}}]}}"#,
    ];
    let mut objects = 0;
    for sample in samples {
        SessionSpec::from_json(sample, "spec")
            .unwrap_or_else(|e| panic!("the sample itself must parse: {e}\n{sample}"));
        let v: serde_json::Value = serde_json::from_str(sample).unwrap();
        each_object_json(&v, &mut |bad, at| {
            objects += 1;
            let text = bad.to_string();
            match SessionSpec::from_json(&text, "spec") {
                Ok(_) => panic!("an unknown key in {at} was accepted:\n{text}"),
                Err(e) => assert!(
                    e.to_string().contains(KEY),
                    "the error for an unknown key in {at} does not name it: {e}"
                ),
            }
        });
    }
    assert!(objects >= 20, "only {objects} objects were tried");
}
