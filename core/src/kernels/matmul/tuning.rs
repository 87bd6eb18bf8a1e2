//! matmul autotuning: the problem classes choices are kept for ([`class_key`]), the variant a
//! launch uses ([`choose`]: explicit, else the cached choice, else the heuristic), and the
//! tuning pass that times the candidates ([`tune_problems`] for the GEMMs a graph will launch,
//! [`autotune`] for given operands).
//!
//! Tuning is a pass of its own, run (awaited) before the dispatches are built — the trainer
//! runs it for its step and evaluation programs when autotuning is on, with the problems of
//! `nn::graph::gemm_problems`. A launch never times anything: it only reads the cache, so
//! building a dispatch stays synchronous and cheap natively and in the browser alike.

use super::{dims, matmul_into, Kernel, MatmulSpec, Precision, Variant};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTimer, Tensor, TunedEntry};
use crate::kernels::Activation;
use serde::Serialize;
use std::collections::BTreeMap;

/// The variant [`matmul_into`] uses for these operands: `spec.variant`, else the tiled
/// kernel with `spec.tiles`, else — when autotuning is on — the cached choice for the shape
/// class, else [`Variant::heuristic`]. Nothing is timed here: a class that the tuning pass
/// ([`tune_problems`], [`autotune`]) has not seen gets the heuristic, with a warning (once per
/// class) when autotuning is on.
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
    // The CPU backend's GEMM is one fixed code path: nothing to tune.
    if gpu.is_cpu() || !gpu.autotune_mode().is_on() || m == 0 || n == 0 {
        return Ok(fallback);
    }
    let class = class_key(m, k, n, spec);
    if let Some(v) = cached_choice(gpu, &class) {
        return Ok(v);
    }
    gpu.autotune_untuned(
        &class,
        format!(
            "autotuning is on but {class} was not tuned before this launch was built; using {} \
             (run kernels::matmul::tune_problems first)",
            fallback.name()
        ),
    );
    Ok(fallback)
}

/// One GEMM `op(A)·op(B)` by its shape and transposes: what autotuning keys and times on.
/// `op(A)` is [m, k], `op(B)` is [k, n] (A stored [k, m] with `trans_a`, B [n, k] with
/// `trans_b`), as in [`MatmulSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulProblem {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl MatmulProblem {
    /// The spec of the automatic choice for this problem (no bias, identity epilogue, no
    /// explicit kernel): the epilogue does not enter the class.
    pub fn spec(&self) -> MatmulSpec {
        MatmulSpec {
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            ..Default::default()
        }
    }

    /// The problem's autotuning class ([`class_key`]).
    pub fn class_key(&self) -> String {
        class_key(self.m, self.k, self.n, &self.spec())
    }

    /// The stored shapes of A and B.
    fn operand_shapes(&self) -> ([usize; 2], [usize; 2]) {
        let a = if self.trans_a {
            [self.k, self.m]
        } else {
            [self.m, self.k]
        };
        let b = if self.trans_b {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        };
        (a, b)
    }
}

/// The tuning pass: for each problem, the cached choice of its class, or — for a class not
/// tuned yet — the candidates timed on operands of the problem's shape (filled with a
/// constant; the kernels' speed does not depend on the values) and the fastest recorded, as
/// [`autotune`] does. One [`Tuned`] per problem, in order; a class met twice is timed once.
/// Works whatever the autotune mode; launches use the choices only when the mode is on.
pub async fn tune_problems(gpu: &Gpu, problems: &[MatmulProblem]) -> Result<Vec<Tuned>> {
    let mut tuned = Vec::with_capacity(problems.len());
    for p in problems {
        let class = p.class_key();
        let t = match cached_tuned(gpu, &class) {
            Some(t) => t,
            None if p.m == 0 || p.n == 0 => untimed(gpu, class, p.m, p.k, p.n),
            None => {
                let (sa, sb) = p.operand_shapes();
                let a = Tensor::full(gpu, &sa, 0.5)?;
                let b = Tensor::full(gpu, &sb, 0.5)?;
                autotune(&a, &b, &p.spec()).await?
            }
        };
        tuned.push(t);
    }
    Ok(tuned)
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

/// The cached choice for `class` with what was measured to make it, if the choice is usable
/// ([`cached_choice`]).
fn cached_tuned(gpu: &Gpu, class: &str) -> Option<Tuned> {
    let choice = cached_choice(gpu, class)?;
    let e = gpu.autotuned(class)?;
    Some(Tuned {
        class: class.to_string(),
        choice,
        name: choice.name(),
        cached: true,
        seconds: e.seconds,
        timing: e.timing,
        measured_on: e.measured_on,
    })
}

/// The answer for a problem nothing is timed on (an empty product, or no candidate on this
/// device): the heuristic, not recorded.
fn untimed(gpu: &Gpu, class: String, m: usize, k: usize, n: usize) -> Tuned {
    let choice = Variant::heuristic(gpu, m, k, n);
    Tuned {
        class,
        choice,
        name: choice.name(),
        cached: false,
        seconds: BTreeMap::new(),
        timing: "none".into(),
        measured_on: format!("{m}x{k}x{n}"),
    }
}

/// What [`autotune`] (or [`tune_problems`]) decided for one problem class.
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
/// (For the GEMMs of a graph, [`tune_problems`] does the same from their shapes.)
pub async fn autotune(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<Tuned> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    let class = class_key(m, k, n, spec);
    if let Some(t) = cached_tuned(gpu, &class) {
        return Ok(t);
    }
    let candidates = Variant::candidates(gpu);
    if m == 0 || n == 0 || candidates.is_empty() {
        return Ok(untimed(gpu, class, m, k, n));
    }
    let measured_on = format!("{m}x{k}x{n}");
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
