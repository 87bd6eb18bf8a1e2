//! Continual learning in the browser: the data evaluated at every chunk's end (per task for
//! a class-incremental stream) and the class groups of the tasks, both from core
//! ([`accrete::train::Trainer::set_chunk_evaluation`], [`accrete::metrics::task_groups`]).
//! The accuracy matrix's rows and summaries (average accuracy, BWT, forgetting) arrive in
//! the history's `chunk_end` events, computed by core as `accrete train` writes them to
//! `metrics.jsonl`.

use crate::args::{describe, features_arg, labels_arg, to_js};
use crate::errors::invalid;
use crate::{err, prepare, Lease, Trainer};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

/// The classes of each of `tasks` tasks of a class-incremental stream over `classes`
/// classes: `[[lo, hi], …]` (classes `lo ≤ c < hi`), contiguous groups of near-equal size,
/// larger last (10 classes in 5 tasks: `[[0, 2], [2, 4], …]`) — the rule the CLI's
/// `split_by = "class"` splits by. Throws unless `1 ≤ tasks ≤ classes`.
#[wasm_bindgen(js_name = taskGroups, unchecked_return_type = "[number, number][]")]
pub fn task_groups(classes: u32, tasks: u32) -> Result<JsValue, JsValue> {
    let groups = accrete::metrics::task_groups(classes as usize, tasks as usize).map_err(err)?;
    let pairs: Vec<[u32; 2]> = groups.iter().map(|g| [g.start, g.end]).collect();
    to_js(&pairs)
}

/// `options.tasks` of `setChunkEvaluation`, checked.
fn tasks_option(options: &JsValue) -> Result<Option<usize>, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    if !options.is_object() {
        return Err(invalid(&format!(
            "setChunkEvaluation: options must be an object such as {{ tasks: 5 }}; got {}",
            describe(options)
        )));
    }
    let v = Reflect::get(options, &"tasks".into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
        _ => Err(invalid(&format!(
            "setChunkEvaluation: options.tasks must be a whole number ≥ 1 (the chunks of a class-incremental stream); got {}",
            v.as_f64().map_or_else(|| describe(&v), |n| n.to_string())
        ))),
    }
}

#[wasm_bindgen]
impl Trainer {
    /// Sets the labelled data evaluated at the end of every `fitChunk` (as `accrete train`
    /// evaluates its test data): each end adds a `chunk_end` event to the history with the
    /// accuracy on all of it. With `options.tasks` (a class-incremental stream whose chunk
    /// `i` brings the classes of `taskGroups(classes, tasks)[i]`), after chunk `i` each task
    /// seen so far is evaluated too — row `i` of the accuracy matrix (`taskAccuracy`) with
    /// `averageAccuracy`, `bwt` and `forgetting`. `x` null clears it. Classification specs
    /// only; with `data.standardize`, call it after the first `fitChunk`.
    #[wasm_bindgen(js_name = setChunkEvaluation)]
    pub fn set_chunk_evaluation(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | number[] | null")] x: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Uint32Array | number[]")] y: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ChunkEvaluationOptions")] options: JsValue,
    ) -> Result<(), JsValue> {
        let tasks = tasks_option(&options)?;
        let mut lease = Lease::take(&self.shared, "setChunkEvaluation")?;
        let s = lease.get();
        if x.is_null() || x.is_undefined() {
            return s.trainer.set_chunk_evaluation(None, "", None).map_err(err);
        }
        let xs = features_arg(&x, "setChunkEvaluation")?;
        let ys = labels_arg(&y, "setChunkEvaluation")?;
        let data = prepare(s, xs, Some(ys), "setChunkEvaluation")?;
        let groups = tasks
            .map(|t| {
                let classes = s.trainer.model.spec.outputs()?;
                accrete::metrics::task_groups(classes, t)
            })
            .transpose()
            .map_err(|e| {
                crate::errors::core_with(e, |m| format!("setChunkEvaluation: options.tasks: {m}"))
            })?;
        s.trainer
            .set_chunk_evaluation(Some(&data), "test", groups)
            .map_err(|e| crate::errors::core_with(e, |m| format!("setChunkEvaluation: {m}")))
    }
}
