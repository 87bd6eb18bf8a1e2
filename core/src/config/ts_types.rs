//! The TypeScript declarations of the session spec (feature `ts`, enabled by the browser
//! package): every type a [`SessionSpec`] holds derives `tsify_next::Tsify` from its serde
//! attributes, and these declarations land in `web/pkg/accrete_web.d.ts`.
//!
//! The test walks the types as serde sees them — the field and variant names serde itself
//! lists when it refuses an unknown key or variant — and requires each to be declared in
//! the TypeScript of its type, and every type a declaration mentions to be declared too. A
//! spec field added without its type (a skipped or hand-typed field, a nested type without
//! the derive, a type missing from [`DECLS`]) fails here.

use super::{SessionData, SessionIncremental, SessionSpec};
use crate::kernels::Activation;
use crate::nn::{BiasInit, Init, LayerSpec, ModelSpec, Share};
use crate::optim::{CosineCycle, OptimKind, OptimizerSpec, Schedule};
use crate::train::{
    AgemSpec, EarlyStopping, EwcSpec, LossKind, LwfSpec, MixedPrecision, Monitor, RecoverySpec,
    RehearsalSpec, Strategy, TrainSpec,
};
use serde::de::DeserializeOwned;
use tsify_next::Tsify;

/// How serde reads a type: a struct (an object with fields), an internally tagged enum
/// (`type` names a variant with fields) or a string enum.
#[derive(Clone, Copy)]
enum Shape {
    Struct,
    Tagged,
    Strings,
}

type Probe = fn(&str) -> Result<(), String>;

fn probe<T: DeserializeOwned>(json: &str) -> Result<(), String> {
    serde_json::from_str::<T>(json)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

macro_rules! decl {
    ($t:ty, $shape:expr) => {
        (
            stringify!($t),
            <$t as Tsify>::DECL,
            $shape,
            probe::<$t> as Probe,
        )
    };
}

/// Every type of the spec: its name, TypeScript declaration, serde shape and a parser.
const DECLS: &[(&str, &str, Shape, Probe)] = &[
    decl!(SessionSpec, Shape::Struct),
    decl!(SessionData, Shape::Struct),
    decl!(SessionIncremental, Shape::Struct),
    decl!(ModelSpec, Shape::Struct),
    decl!(LayerSpec, Shape::Tagged),
    decl!(Init, Shape::Strings),
    decl!(BiasInit, Shape::Strings),
    decl!(Activation, Shape::Strings),
    decl!(OptimizerSpec, Shape::Struct),
    decl!(OptimKind, Shape::Strings),
    decl!(Schedule, Shape::Tagged),
    decl!(CosineCycle, Shape::Strings),
    decl!(TrainSpec, Shape::Struct),
    decl!(LossKind, Shape::Strings),
    decl!(EarlyStopping, Shape::Struct),
    decl!(Monitor, Shape::Strings),
    decl!(MixedPrecision, Shape::Struct),
    decl!(RehearsalSpec, Shape::Struct),
    decl!(LwfSpec, Shape::Struct),
    decl!(EwcSpec, Shape::Struct),
    decl!(AgemSpec, Shape::Struct),
    decl!(Share, Shape::Struct),
    decl!(RecoverySpec, Shape::Struct),
    decl!(Strategy, Shape::Strings),
];

const PROBE: &str = "__probe__";

/// The names serde lists after refusing the probe: "unknown field `__probe__`, expected one
/// of `a`, `b`" (or "expected `a`", "`a` or `b`", "there are no fields").
fn listed(message: &str) -> Vec<String> {
    assert!(
        message.contains(&format!("`{PROBE}`")),
        "serde did not refuse the probe by name: {message}"
    );
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| *n != PROBE)
        .map(String::from)
        .collect()
}

fn refused(p: Probe, json: &str) -> Vec<String> {
    match p(json) {
        Ok(()) => panic!("{json} was accepted; the probe must be refused"),
        Err(e) => listed(&e),
    }
}

/// Whether `decl` declares the property `name` (`name: …` or `name?: …`).
fn has_field(decl: &str, name: &str) -> bool {
    let bytes = decl.as_bytes();
    decl.match_indices(name).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let boundary = before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        let rest = &decl[i + name.len()..];
        boundary && (rest.starts_with(':') || rest.starts_with("?:"))
    })
}

/// The part of a tagged enum's declaration for variant `tag`: from `type: "tag"` to the
/// next variant.
fn variant<'a>(decl: &'a str, tag: &str) -> Option<&'a str> {
    let start = decl.find(&format!("type: \"{tag}\""))?;
    let rest = &decl[start + 1..];
    let end = rest.find("type: \"").map_or(rest.len(), |e| e + 1);
    Some(&decl[start..start + end])
}

/// Capitalised identifiers a declaration refers to (other than its own name).
fn referenced(decl: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut in_comment = false;
    let mut word = String::new();
    let mut chars = decl.chars().peekable();
    while let Some(c) = chars.next() {
        if in_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_comment = false;
            }
            continue;
        }
        if c == '/' && chars.peek() == Some(&'*') {
            in_comment = true;
            continue;
        }
        if c == '"' {
            in_string = !in_string;
            continue;
        }
        if in_string {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else if !word.is_empty() {
            if word.starts_with(|w: char| w.is_ascii_uppercase()) {
                out.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    out
}

#[test]
fn every_spec_field_and_variant_has_a_typescript_declaration() {
    let mut problems = Vec::new();
    let names: Vec<&str> = DECLS.iter().map(|d| d.0).collect();
    for &(name, decl, shape, p) in DECLS {
        assert!(
            decl.contains(&format!("export type {name} "))
                || decl.contains(&format!("export interface {name} ")),
            "{name}: no declaration of {name} in {decl}"
        );
        match shape {
            Shape::Struct => {
                let fields = refused(p, &format!("{{\"{PROBE}\": 0}}"));
                assert!(!fields.is_empty(), "{name}: serde lists no fields");
                for f in fields {
                    if !has_field(decl, &f) {
                        problems.push(format!("{name}.{f} is not declared in: {decl}"));
                    }
                }
            }
            Shape::Tagged => {
                let tags = refused(p, &format!("{{\"type\": \"{PROBE}\"}}"));
                assert!(tags.len() > 1, "{name}: serde lists no variants");
                for tag in tags {
                    let Some(part) = variant(decl, &tag) else {
                        problems.push(format!(
                            "{name}: variant \"{tag}\" is not declared in: {decl}"
                        ));
                        continue;
                    };
                    let json = format!("{{\"type\": \"{tag}\", \"{PROBE}\": 0}}");
                    for f in refused(p, &json) {
                        if !has_field(part, &f) {
                            problems.push(format!(
                                "{name} \"{tag}\": field {f} is not declared in: {part}"
                            ));
                        }
                    }
                }
            }
            Shape::Strings => {
                let variants = refused(p, &format!("\"{PROBE}\""));
                assert!(!variants.is_empty(), "{name}: serde lists no variants");
                for v in variants {
                    if !decl.contains(&format!("\"{v}\"")) {
                        problems.push(format!("{name}: \"{v}\" is not declared in: {decl}"));
                    }
                }
            }
        }
        for r in referenced(decl) {
            let builtin = ["Record", "Array"].contains(&r.as_str());
            if !builtin && !names.contains(&r.as_str()) {
                problems.push(format!(
                    "{name} refers to {r}, which is not in DECLS (derive tsify_next::Tsify under feature \"ts\" and list it)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_probe_finds_what_serde_knows() {
    // The walk above relies on serde naming every field; a field it missed would pass
    // unchecked. Spot checks against fields the code names.
    let train = refused(probe::<TrainSpec>, "{\"__probe__\": 1}");
    for f in ["batch_size", "epochs", "mixed_precision", "early_stopping"] {
        assert!(train.iter().any(|t| t == f), "{f} missing from {train:?}");
    }
    let dense = refused(
        probe::<LayerSpec>,
        "{\"type\": \"dense\", \"__probe__\": 1}",
    );
    assert!(dense.iter().any(|t| t == "units") && dense.iter().any(|t| t == "bias_init"));
    assert!(has_field("{ a?: number; b: string }", "a") && has_field("{ b: x }", "b"));
    assert!(!has_field("{ ab: number }", "b") && !has_field("{ a: number }", "ab"));
}

/// Writes every declaration to `$ACCRETE_TS_OUT` when set (for reading them without a wasm
/// build): `ACCRETE_TS_OUT=spec.d.ts cargo test -p accrete --features ts --lib ts_types`.
#[test]
fn write_declarations_when_asked() {
    if let Ok(path) = std::env::var("ACCRETE_TS_OUT") {
        let text: Vec<&str> = DECLS.iter().map(|d| d.1).collect();
        std::fs::write(&path, text.join("\n\n") + "\n").expect("write the declarations");
    }
}
