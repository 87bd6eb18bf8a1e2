//! matmul autotuning: the problem classes choices are kept for ([`class_key`]), the variant a
//! launch uses ([`choose`]: explicit, cached or heuristic) and the timing of the candidates
//! ([`autotune`]).

use super::{dims, matmul_into, Kernel, MatmulSpec, Precision, Variant};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTimer, Tensor, TunedEntry};
use crate::kernels::Activation;
use serde::Serialize;
use std::collections::BTreeMap;

/// The variant [`matmul_into`] uses for these operands: `spec.variant`, else the tiled
/// kernel with `spec.tiles`, else — when autotuning is on — the tuned choice for the shape
/// class (tuning it now, natively, if it is new), else [`Variant::heuristic`].
pub fn choose(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<Variant> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    match (spec.variant, spec.tiles) {
        (Some(v), None) => return Ok(v),
        (None, Some(t)) => return Ok(Variant::tiled(t)),
        (Some(v), Some(t)) => {
            if v.tiles == t && v.kernel == Kernel::Tiled {
                return Ok(v);
            }
            return Err(Error::invalid(
                "matmul spec",
                format!(
                    "set either tiles ({t:?}) or variant ({}), not both",
                    v.name()
                ),
            ));
        }
        (None, None) => {}
    }
    let fallback = Variant::heuristic(gpu, m, k, n);
    if !gpu.autotune_mode().is_on() || m == 0 || n == 0 {
        return Ok(fallback);
    }
    let class = class_key(m, k, n, spec);
    if let Some(v) = cached_choice(gpu, &class) {
        return Ok(v);
    }
    #[cfg(not(target_arch = "wasm32"))]
    match now_or_never(autotune(a, b, spec)) {
        Some(Ok(t)) => return Ok(t.choice),
        Some(Err(e)) => gpu.autotune_warning(format!(
            "autotuning {class} failed ({e}); using {}",
            fallback.name()
        )),
        None => gpu.autotune_warning(format!(
            "autotuning {class} did not complete synchronously; using {}",
            fallback.name()
        )),
    }
    Ok(fallback)
}

/// The autotuning class of a problem: transposes, each of M, N, K rounded up to a power of
/// two, and whether A and B can be loaded as quads (which the kernels' speed depends on).
pub fn class_key(m: usize, k: usize, n: usize, spec: &MatmulSpec) -> String {
    let bucket = |x: usize| x.max(1).next_power_of_two();
    let row_a = if spec.trans_a { m } else { k };
    let row_b = if spec.trans_b { k } else { n };
    format!(
        "matmul f32 {}{} m{} n{} k{} quads{}{}",
        if spec.trans_a { 't' } else { 'n' },
        if spec.trans_b { 't' } else { 'n' },
        bucket(m),
        bucket(n),
        bucket(k),
        u8::from(row_a.is_multiple_of(4)),
        u8::from(row_b.is_multiple_of(4)),
    )
}

/// The cached choice for `class`, if it is an f32 variant this device can run.
fn cached_choice(gpu: &Gpu, class: &str) -> Option<Variant> {
    let entry = gpu.autotuned(class)?;
    match serde_json::from_value::<Variant>(entry.choice) {
        Ok(v) if v.precision == Precision::F32 && v.validate(gpu).is_ok() => Some(v),
        _ => None,
    }
}

/// What [`autotune`] decided for one problem class.
#[derive(Clone, Debug, Serialize)]
pub struct Tuned {
    /// The class key ([`class_key`]).
    pub class: String,
    pub choice: Variant,
    pub name: String,
    /// True when the choice came from the cache and nothing was timed.
    pub cached: bool,
    /// Seconds per multiply of each candidate timed (by name), on the class's first problem.
    pub seconds: BTreeMap<String, f64>,
    /// "timestamp" or "wall".
    pub timing: String,
    /// The problem the candidates were timed on, "MxKxN".
    pub measured_on: String,
}

/// Times the f32 candidates ([`Variant::candidates`]) on these operands (the output goes to
/// a scratch tensor) and records the fastest for the shape class, in memory and — in
/// `Persist` mode — in the cache file. A class already tuned is answered from the cache.
/// Works whatever the autotune mode; [`matmul_into`] uses the choice only when the mode is on.
pub async fn autotune(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<Tuned> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    let class = class_key(m, k, n, spec);
    if let Some(choice) = cached_choice(gpu, &class) {
        let e = gpu.autotuned(&class).expect("cached entry");
        return Ok(Tuned {
            class,
            choice,
            name: choice.name(),
            cached: true,
            seconds: e.seconds,
            timing: e.timing,
            measured_on: e.measured_on,
        });
    }
    let measured_on = format!("{m}x{k}x{n}");
    let candidates = Variant::candidates(gpu);
    if m == 0 || n == 0 || candidates.is_empty() {
        let choice = Variant::heuristic(gpu, m, k, n);
        return Ok(Tuned {
            class,
            choice,
            name: choice.name(),
            cached: false,
            seconds: BTreeMap::new(),
            timing: "none".into(),
            measured_on,
        });
    }
    let scratch = Tensor::uninit(gpu, &[m, n], crate::gpu::DType::F32)?;
    let timer = GpuTimer::new(gpu);
    let mut seconds = BTreeMap::new();
    let mut best: Option<(Variant, f64)> = None;
    for (name, v) in candidates {
        let s = MatmulSpec {
            activation: Activation::Identity,
            tiles: None,
            variant: Some(v),
            ..*spec
        };
        let d = matmul_into(a, b, None, &scratch, &s)?;
        gpu.run(&[&d])?; // compiles the pipeline and warms up
        let once = timer.time(&[&d], 1).await?;
        // Short problems are repeated in one pass to about 2 ms, to rise above clock noise.
        let reps = (2e-3 / once.max(1e-7)).ceil().clamp(1.0, 20.0) as usize;
        let per = if reps > 1 {
            timer.time(&[&d], reps).await? / reps as f64
        } else {
            once
        };
        seconds.insert(name.to_string(), per);
        if best.is_none_or(|(_, t)| per < t) {
            best = Some((v, per));
        }
    }
    let (choice, _) = best.expect("at least one candidate");
    let timing = TunedEntry::timing_of(timer.source());
    gpu.record_autotuned(
        &class,
        TunedEntry {
            choice: serde_json::to_value(choice).expect("a variant serializes"),
            name: choice.name(),
            seconds: seconds.clone(),
            timing: timing.clone(),
            measured_on: measured_on.clone(),
        },
    );
    Ok(Tuned {
        class,
        choice,
        name: choice.name(),
        cached: false,
        seconds,
        timing,
        measured_on,
    })
}

/// Polls a future once. Natively, GPU read-backs complete inside the poll (the device is
/// waited on), so autotuning can run synchronously inside [`matmul_into`].
#[cfg(not(target_arch = "wasm32"))]
fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
