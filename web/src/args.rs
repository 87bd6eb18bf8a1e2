//! JavaScript arguments turned into Rust values, with errors that say what to pass, and
//! Rust values turned into plain JS objects.

use crate::errors::{error, invalid};
use js_sys::{Array, ArrayBuffer, Float32Array, Float64Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The spec argument as JSON text: a string, or a plain object (stringified).
pub(crate) fn spec_text(spec: &JsValue) -> Result<String, JsValue> {
    if let Some(s) = spec.as_string() {
        return Ok(s);
    }
    if spec.is_object() && !Array::is_array(spec) {
        if let Ok(s) = js_sys::JSON::stringify(spec) {
            if let Some(s) = s.as_string() {
                return Ok(s);
            }
        }
    }
    Err(invalid(&format!(
        "Trainer.create: spec must be a JSON string (or a plain object) with at least a \"model\" key, e.g. {{\"model\":{{\"input\":[2],\"layers\":[{{\"type\":\"dense\",\"units\":2}}]}}}}; got {}",
        describe(spec)
    )))
}

/// A short description of a JS value's type for messages.
pub(crate) fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    if v.is_null() {
        return "null".into();
    }
    if Array::is_array(v) {
        return "an Array".into();
    }
    if v.is_object() {
        let ctor = Reflect::get(v, &"constructor".into())
            .ok()
            .and_then(|c| Reflect::get(&c, &"name".into()).ok())
            .and_then(|n| n.as_string());
        return match ctor {
            Some(name) => format!("a {name}"),
            None => "an object".into(),
        };
    }
    v.js_typeof()
        .as_string()
        .unwrap_or_else(|| "a value".into())
}

fn is_bigint_array(v: &JsValue) -> bool {
    v.is_instance_of::<js_sys::BigInt64Array>() || v.is_instance_of::<js_sys::BigUint64Array>()
}

/// Typed arrays (not DataView, not BigInt arrays) and plain Arrays.
fn is_array_like(v: &JsValue) -> bool {
    Array::is_array(v)
        || (ArrayBuffer::is_view(v)
            && !v.is_instance_of::<js_sys::DataView>()
            && !is_bigint_array(v))
}

pub(crate) fn features_arg(x: &JsValue, op: &str) -> Result<Vec<f32>, JsValue> {
    if let Some(a) = x.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    if is_array_like(x) {
        // Numbers convert exactly as JS converts them; anything else becomes NaN and is
        // refused by the finite check.
        return Ok(Float32Array::new(x).to_vec());
    }
    Err(invalid(&format!(
        "{op}: x must be a Float32Array (or an array of numbers) of n × features values, row-major; got {}",
        describe(x)
    )))
}

pub(crate) fn labels_arg(y: &JsValue, op: &str) -> Result<Vec<u32>, JsValue> {
    if let Some(a) = y.dyn_ref::<js_sys::Uint32Array>() {
        return Ok(a.to_vec());
    }
    if is_array_like(y) {
        let v = Float64Array::new(y).to_vec();
        return v
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                if l >= 0.0 && l.fract() == 0.0 && l <= u32::MAX as f64 {
                    Ok(l as u32)
                } else {
                    Err(invalid(&format!(
                        "{op}: label of sample {i} is {l}; labels must be class indices 0, 1, 2, … (non-negative integers)"
                    )))
                }
            })
            .collect();
    }
    Err(invalid(&format!(
        "{op}: y must be a Uint32Array (or an array of non-negative integers) with one class index per sample; got {}",
        describe(y)
    )))
}

pub(crate) fn bytes_arg(b: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(a) = b.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if b.is_instance_of::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    if ArrayBuffer::is_view(b) {
        // Another typed array or a DataView: its bytes.
        let get = |k: &str| Reflect::get(b, &k.into()).unwrap_or(JsValue::UNDEFINED);
        let at = |k: &str| get(k).as_f64().unwrap_or(0.0) as u32;
        let view = Uint8Array::new_with_byte_offset_and_length(
            &get("buffer"),
            at("byteOffset"),
            at("byteLength"),
        );
        return Ok(view.to_vec());
    }
    Err(invalid(&format!(
        "Trainer.load: bytes must be a Uint8Array or ArrayBuffer holding a .safetensors checkpoint (from save() or accrete train); got {}",
        describe(b)
    )))
}

/// The `fitChunk` options: `epochs`, `lr`, `onProgress`, `reportEvery`.
pub(crate) struct FitOptions {
    pub epochs: Option<usize>,
    /// The base learning rate from this chunk on (recorded in the history when it changes).
    pub lr: Option<f32>,
    pub on_progress: Option<js_sys::Function>,
    pub report_every: Option<u64>,
}

pub(crate) fn fit_options(o: &JsValue) -> Result<FitOptions, JsValue> {
    let mut out = FitOptions {
        epochs: None,
        lr: None,
        on_progress: None,
        report_every: None,
    };
    if o.is_undefined() || o.is_null() {
        return Ok(out);
    }
    if !o.is_object() || Array::is_array(o) {
        return Err(invalid(&format!(
            "fitChunk: options must be an object like {{epochs: 5, lr: 1e-4, onProgress: (p) => …, reportEvery: 10}}; got {}",
            describe(o)
        )));
    }
    let count = |key: &str, min: f64| -> Result<Option<f64>, JsValue> {
        let v = Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            return Ok(None);
        }
        match v.as_f64() {
            Some(n) if n >= min && n.fract() == 0.0 && n <= 1e9 => Ok(Some(n)),
            _ => Err(invalid(&format!(
                "fitChunk: options.{key} must be an integer ≥ {min}; got {}",
                v.as_f64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| describe(&v))
            ))),
        }
    };
    for key in Object::keys(o.unchecked_ref::<Object>()).iter() {
        let k = key.as_string().unwrap_or_default();
        if !["epochs", "lr", "onProgress", "reportEvery"].contains(&k.as_str()) {
            return Err(invalid(&format!(
                "fitChunk: unknown option `{k}`; the options are epochs, lr, onProgress and reportEvery"
            )));
        }
    }
    let lr = Reflect::get(o, &"lr".into()).unwrap_or(JsValue::UNDEFINED);
    if !lr.is_undefined() {
        match lr.as_f64() {
            Some(v) if v.is_finite() && v > 0.0 && (v as f32) > 0.0 => out.lr = Some(v as f32),
            _ => {
                return Err(invalid(&format!(
                    "fitChunk: options.lr must be a positive number (the base learning rate from this chunk on, e.g. 1e-4); got {}",
                    lr.as_f64()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| describe(&lr))
                )))
            }
        }
    }
    out.epochs = count("epochs", 1.0)?.map(|n| n as usize);
    out.report_every = count("reportEvery", 0.0)?.map(|n| n as u64);
    let f = Reflect::get(o, &"onProgress".into()).unwrap_or(JsValue::UNDEFINED);
    if !f.is_undefined() && !f.is_null() {
        out.on_progress = Some(f.dyn_into::<js_sys::Function>().map_err(|v| {
            invalid(&format!(
                "fitChunk: options.onProgress must be a function; got {}",
                describe(&v)
            ))
        })?);
    }
    Ok(out)
}

/// Converts any serialisable value to a plain JS object (through JSON, which keeps the
/// dependency list short; the values here are small). Non-finite numbers become `null`.
pub(crate) fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|e| error("internal", &e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| {
        error(
            "internal",
            &format!(
                "JSON.parse failed: {}",
                e.as_string().unwrap_or_else(|| format!("{e:?}"))
            ),
        )
    })
}

/// `snake_case` keys as `camelCase` (`train_loss` → `trainLoss`), in every object of `v`;
/// values are left alone.
pub(crate) fn camel_keys(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (camel(&k), camel_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_become_camel_case() {
        let v = serde_json::json!({"train_loss": 1, "event": "early_stop", "per_class": [{"max_f1_x": 2}], "lr": 3});
        assert_eq!(
            super::camel_keys(v),
            serde_json::json!({"trainLoss": 1, "event": "early_stop", "perClass": [{"maxF1X": 2}], "lr": 3})
        );
    }
}
