//! Datasets from files in the browser: `datasetFromSafetensors(bytes, options)` reads a
//! safetensors file holding a features tensor `[n, ...]` and a labels tensor `[n]` (the
//! same reader as the CLI's `format = "safetensors"`, [`accrete::data::tensors`]) into the
//! arrays `fitChunk`, `evaluate` and `predict` take.

use crate::args::describe;
use crate::errors::{core, invalid};
use js_sys::{Array, Float32Array, Object, Reflect, Uint32Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `options.features` / `options.labels` (strings), or the defaults.
fn names(options: &JsValue) -> Result<accrete::data::ArrayNames, JsValue> {
    let mut names = accrete::data::ArrayNames::default();
    if options.is_undefined() || options.is_null() {
        return Ok(names);
    }
    if !options.is_object() {
        return Err(invalid(&format!(
            "datasetFromSafetensors: options must be an object {{ features?: string, labels?: string }}; got {}",
            describe(options)
        )));
    }
    for (key, slot) in [
        ("features", &mut names.features),
        ("labels", &mut names.labels),
    ] {
        let v = Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            continue;
        }
        *slot = v.as_string().ok_or_else(|| {
            invalid(&format!(
                "datasetFromSafetensors: options.{key} must be the name of a tensor (a string); got {}",
                describe(&v)
            ))
        })?;
    }
    Ok(names)
}

/// Reads a dataset from the bytes of a safetensors file (a `Uint8Array` or `ArrayBuffer`)
/// holding a features tensor `[n, ...]` (U8 — scaled to [0, 1] —, I32, I64, F32 or F64) and
/// a labels tensor `[n]` of class indices, named `features` and `labels` unless `options`
/// names others. Returns `{ x: Float32Array, y: Uint32Array, n, sampleShape, classes }`
/// (`classes`: the largest label + 1), ready for `fitChunk(x, y)`. Throws an AccreteError
/// (code `"data"`) naming what is wrong with the file.
#[wasm_bindgen(js_name = datasetFromSafetensors, unchecked_return_type = "ArrayDataset")]
pub fn dataset_from_safetensors(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "SafetensorsDatasetOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let names = names(&options)?;
    let bytes = if let Some(a) = bytes.dyn_ref::<Uint8Array>() {
        a.to_vec()
    } else if bytes.is_instance_of::<js_sys::ArrayBuffer>() {
        Uint8Array::new(&bytes).to_vec()
    } else {
        return Err(invalid(&format!(
            "datasetFromSafetensors: bytes must be a Uint8Array or ArrayBuffer holding a .safetensors file; got {}",
            describe(&bytes)
        )));
    };
    let d = accrete::data::tensors::dataset(&bytes, "datasetFromSafetensors", &names, None)
        .map_err(core)?;
    let out = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&out, &k.into(), v).map(|_| ());
    set("x", &Float32Array::from(d.features.as_slice()).into())?;
    set("y", &Uint32Array::from(d.labels.as_slice()).into())?;
    set("n", &JsValue::from(d.len() as f64))?;
    let shape: Array = d
        .sample_shape
        .iter()
        .map(|&s| JsValue::from(s as f64))
        .collect();
    set("sampleShape", &shape.into())?;
    set("classes", &JsValue::from(d.classes as f64))?;
    Ok(out.into())
}
