//! Optimizer update rules, applied in place on the GPU: parameters `w`, gradient `g` and
//! the rule's state tensors (see shaders/optim.wgsl for the formulas). The CPU twin in
//! [`reference`] follows the same formulas in f64.
//!
//! Two launch shapes run the same per-element code (shaders/lib/optim_rules.wgsl):
//! - per tensor ([`update_scheduled_into`]): one dispatch per parameter tensor;
//! - multi-tensor ([`update_multi_scheduled_into`]): one dispatch updates every tensor of a
//!   flat buffer listed in a [`Segment`] table (offset, length, lr multiplier) — a model
//!   keeps its parameters, gradients and states in such buffers (`nn::model::Arena`), so a
//!   training step updates the whole model in one dispatch. Each workgroup covers the same
//!   elements of the same tensor as in the per-tensor launch, so the results are
//!   bit-identical. [`MultiClip`] does global-norm clipping the same way (3 dispatches per
//!   step instead of 2 per tensor + 1), bit-identical to [`super::clip::GlobalNormClip`].

use super::elementwise::same_len;
use super::{groups_1d, shader};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, Shader, Tensor};
use serde::{Deserialize, Serialize};

pub const SHADER: Shader = shader!("optim", "common", "optim_rules");
/// The multi-tensor update.
pub const MULTI: Shader = shader!("optim_multi", "common", "optim_rules", "optim_segments");
/// Multi-tensor global-norm clipping (sum of squares and scaling phases).
pub const CLIP: Shader = shader!("optim_clip", "common", "optim_segments");

/// An update rule with its hyper-parameters (learning rate aside, which is scheduled).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    Sgd,
    Momentum {
        momentum: f32,
        nesterov: bool,
    },
    Adagrad {
        eps: f32,
    },
    #[serde(rename = "rmsprop")]
    RmsProp {
        alpha: f32,
        eps: f32,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    #[serde(rename = "adamw")]
    AdamW {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Rule {
    /// Adam with PyTorch's defaults (β1 0.9, β2 0.999, ε 1e-8).
    pub const ADAM: Rule = Rule::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// Number of state tensors (each shaped like the parameter).
    pub fn state_count(&self) -> usize {
        self.state_names().len()
    }

    /// PyTorch's names for the state tensors, in the order the kernels bind them
    /// (checkpoints store them as `optimizer.{parameter}.{name}`).
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            Rule::Sgd => &[],
            Rule::Momentum { .. } => &["momentum_buffer"],
            Rule::Adagrad { .. } => &["sum"],
            Rule::RmsProp { .. } => &["square_avg"],
            Rule::Adam { .. } | Rule::AdamW { .. } => &["exp_avg", "exp_avg_sq"],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Rule::Sgd => "sgd",
            Rule::Momentum {
                nesterov: false, ..
            } => "momentum",
            Rule::Momentum { nesterov: true, .. } => "nesterov",
            Rule::Adagrad { .. } => "adagrad",
            Rule::RmsProp { .. } => "rmsprop",
            Rule::Adam { .. } => "adam",
            Rule::AdamW { .. } => "adamw",
        }
    }

    fn entry(&self) -> &'static str {
        match self {
            Rule::Sgd => "sgd",
            Rule::Momentum { .. } => "momentum",
            Rule::Adagrad { .. } => "adagrad",
            Rule::RmsProp { .. } => "rmsprop",
            Rule::Adam { .. } | Rule::AdamW { .. } => "adam",
        }
    }

    /// Refuses hyper-parameters outside their meaningful ranges.
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{} {name}", self.name()),
                    format!("{v} must be in [0, 1)"),
                ))
            }
        };
        let pos = |name: &str, v: f32| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{} {name}", self.name()),
                    format!("{v} must be positive"),
                ))
            }
        };
        match *self {
            Rule::Sgd => Ok(()),
            Rule::Momentum { momentum, .. } => unit("momentum", momentum),
            Rule::Adagrad { eps } => pos("eps", eps),
            Rule::RmsProp { alpha, eps } => unit("alpha", alpha).and(pos("eps", eps)),
            Rule::Adam { beta1, beta2, eps } => unit("beta1", beta1)
                .and(unit("beta2", beta2))
                .and(pos("eps", eps)),
            Rule::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => unit("beta1", beta1)
                .and(unit("beta2", beta2))
                .and(pos("eps", eps))
                .and(if weight_decay >= 0.0 {
                    Ok(())
                } else {
                    pos("weight_decay", weight_decay)
                }),
        }
    }
}

/// L1 and L2 penalty coefficients added to the gradient: g + l2·w + l1·sign(w).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalty {
    #[serde(default)]
    pub l1: f32,
    #[serde(default)]
    pub l2: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) nesterov: u32,
    pub(crate) lr_scale: f32,
    pub(crate) segments: u32,
    pub(crate) beta1: f32,
    pub(crate) beta2: f32,
    pub(crate) eps: f32,
    pub(crate) l1: f32,
    pub(crate) l2: f32,
    pub(crate) weight_decay: f32,
    pub(crate) _pad1: [u32; 2],
}

fn params(rule: &Rule, penalty: Penalty, lr_scale: f32, n: usize) -> Params {
    let mut p = Params {
        n: n as u32,
        nesterov: 0,
        lr_scale,
        segments: 0,
        beta1: 0.0,
        beta2: 0.0,
        eps: 0.0,
        l1: penalty.l1,
        l2: penalty.l2,
        weight_decay: 0.0,
        _pad1: [0; 2],
    };
    match *rule {
        Rule::Sgd => {}
        Rule::Momentum { momentum, nesterov } => {
            p.beta1 = momentum;
            p.nesterov = nesterov as u32;
        }
        Rule::Adagrad { eps } => p.eps = eps,
        Rule::RmsProp { alpha, eps } => {
            p.beta2 = alpha;
            p.eps = eps;
        }
        Rule::Adam { beta1, beta2, eps } => {
            (p.beta1, p.beta2, p.eps) = (beta1, beta2, eps);
        }
        Rule::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            (p.beta1, p.beta2, p.eps, p.weight_decay) = (beta1, beta2, eps, weight_decay);
        }
    }
    p
}

/// The schedule-table row for 1-based step `step` at learning rate `lr`:
/// (lr, bc1, √bc2, 0) with Adam's bias corrections bc = 1 − βᵗ computed in f64
/// (1 for rules without them).
pub fn schedule_row(rule: &Rule, lr: f32, step: u64) -> [f32; 4] {
    let bc = |beta: f32| 1.0 - (beta as f64).powf(step as f64);
    match *rule {
        Rule::Adam { beta1, beta2, .. } | Rule::AdamW { beta1, beta2, .. } => {
            [lr, bc(beta1) as f32, bc(beta2).sqrt() as f32, 0.0]
        }
        _ => [lr, 1.0, 1.0, 0.0],
    }
}

fn check_operands(rule: &Rule, w: &Tensor, g: &Tensor, state: &[&Tensor]) -> Result<()> {
    rule.validate()?;
    same_len("optimizer update", w, g)?;
    if state.len() != rule.state_count() {
        return Err(Error::invalid(
            format!("{} state", rule.name()),
            format!(
                "needs {} state tensors, got {}",
                rule.state_count(),
                state.len()
            ),
        ));
    }
    for s in state {
        same_len("optimizer state", w, s)?;
    }
    Ok(())
}

/// Builds an update whose learning rate and bias corrections come from row `counter[0]` of
/// the GPU schedule table `sched` ([steps, 4], rows from [`schedule_row`]), scaled by
/// `lr_scale` (per-layer multiplier). Recorded once, it serves every step of a chunk.
#[allow(clippy::too_many_arguments)]
pub fn update_scheduled_into(
    rule: &Rule,
    penalty: Penalty,
    lr_scale: f32,
    w: &Tensor,
    g: &Tensor,
    state: &[&Tensor],
    sched: &Tensor,
    counter: &Tensor,
) -> Result<Dispatch> {
    check_operands(rule, w, g, state)?;
    counter.expect_dtype("optimizer step counter", DType::U32)?;
    let gpu = w.gpu();
    let p = params(rule, penalty, lr_scale, w.len());
    let s1 = state.first().map_or(Bind::Skip, |t| Bind::T(t));
    let s2 = state.get(1).map_or(Bind::Skip, |t| Bind::T(t));
    let binds = [
        Bind::T(w),
        Bind::T(g),
        s1,
        s2,
        Bind::T(sched),
        Bind::T(counter),
    ];
    gpu.dispatch(
        &SHADER,
        "",
        rule.entry(),
        &p,
        &binds,
        gpu.grid(groups_1d(w.len()))?,
    )
}

/// One tensor of a flat buffer in a multi-tensor launch: elements `offset .. offset + len`,
/// updated with the learning rate multiplied by `lr_scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub offset: usize,
    pub len: usize,
    pub lr_scale: f32,
}

/// A segment table on the GPU: rows (first workgroup, offset, len, lr_scale bits) of the
/// non-empty segments, and the launch's total workgroups.
pub(crate) struct Table {
    pub(crate) rows: Tensor,
    pub(crate) count: u32,
    pub(crate) groups: u64,
}

/// Checks that `segments` are ascending, disjoint, inside a buffer of `len` elements, with
/// finite lr multipliers ≥ 0, and uploads their table (each gets ⌈len/256⌉ workgroups).
pub(crate) fn segment_table(gpu: &Gpu, segments: &[Segment], len: usize) -> Result<Table> {
    let mut rows = Vec::with_capacity(segments.len() * 4);
    let mut groups = 0u64;
    let mut end = 0usize;
    for (k, s) in segments.iter().enumerate() {
        if s.offset < end || s.offset.checked_add(s.len).is_none_or(|e| e > len) {
            return Err(Error::invalid(
                format!("optimizer segment {k} {s:?}"),
                format!("segments must be ascending, disjoint and inside the {len}-element buffer"),
            ));
        }
        if !(s.lr_scale >= 0.0 && s.lr_scale.is_finite()) {
            return Err(Error::invalid(
                format!("optimizer segment {k}"),
                format!("lr_scale {} must be ≥ 0", s.lr_scale),
            ));
        }
        end = s.offset + s.len;
        if s.len == 0 {
            continue;
        }
        rows.extend_from_slice(&[
            groups as u32,
            s.offset as u32,
            s.len as u32,
            s.lr_scale.to_bits(),
        ]);
        groups += groups_1d(s.len);
    }
    let count = rows.len() / 4;
    Ok(Table {
        rows: Tensor::from_u32(gpu, &[count.max(1), 4], &{
            rows.resize(count.max(1) * 4, 0);
            rows
        })?,
        count: count as u32,
        groups,
    })
}

/// Builds one update of every tensor listed in `segments` of the flat buffers `w` (values),
/// `g` (gradients) and `state` (the rule's states, each like `w`), with the learning rate and
/// bias corrections of row `counter[0]` of `sched` as in [`update_scheduled_into`], and each
/// segment's lr multiplier. Elements outside the segments are not touched. Per element the
/// arithmetic is that of [`update_scheduled_into`] on the segment's tensor alone.
#[allow(clippy::too_many_arguments)]
pub fn update_multi_scheduled_into(
    rule: &Rule,
    penalty: Penalty,
    w: &Tensor,
    g: &Tensor,
    state: &[&Tensor],
    segments: &[Segment],
    sched: &Tensor,
    counter: &Tensor,
) -> Result<Dispatch> {
    check_operands(rule, w, g, state)?;
    counter.expect_dtype("optimizer step counter", DType::U32)?;
    let gpu = w.gpu();
    let table = segment_table(gpu, segments, w.len())?;
    let mut p = params(rule, penalty, 1.0, 0);
    p.n = u32::try_from(table.groups).map_err(|_| {
        Error::invalid(
            "multi-tensor update",
            "too many workgroups for 32-bit indexing",
        )
    })?;
    p.segments = table.count;
    let s1 = state.first().map_or(Bind::Skip, |t| Bind::T(t));
    let s2 = state.get(1).map_or(Bind::Skip, |t| Bind::T(t));
    let binds = [
        Bind::T(w),
        Bind::T(g),
        s1,
        s2,
        Bind::T(sched),
        Bind::T(counter),
        Bind::T(&table.rows),
    ];
    gpu.dispatch(
        &MULTI,
        "",
        rule.entry(),
        &p,
        &binds,
        gpu.grid(table.groups)?,
    )
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ClipParams {
    pub(crate) n: u32,
    pub(crate) base: u32,
    pub(crate) max_norm: f32,
    pub(crate) segments: u32,
}

/// Global-norm clipping of the tensors listed in segment tables over flat gradient buffers:
/// `norm = √(Σ g²)` over all of them, then each is scaled by `min(1, max_norm / (norm +
/// 1e-6))`. One `sumsq` and one `apply` dispatch per buffer plus one `finalize`
/// (clip.wgsl's), bit-identical to [`super::clip::GlobalNormClip`] over the same tensors
/// in the same order.
pub struct MultiClip {
    pub dispatches: Vec<Dispatch>,
    /// [2]: the pre-clip global norm and the applied scale.
    pub result: Tensor,
}

impl MultiClip {
    /// Plans clipping of the segments of each `(buffer, segments)` to `max_norm`.
    pub fn new(gpu: &Gpu, sets: &[(&Tensor, &[Segment])], max_norm: f32) -> Result<Self> {
        if !(max_norm > 0.0 && max_norm.is_finite()) {
            return Err(Error::invalid(
                "clip max_norm",
                format!("{max_norm} must be positive"),
            ));
        }
        let tables = sets
            .iter()
            .map(|(g, segs)| segment_table(gpu, segs, g.len()))
            .collect::<Result<Vec<_>>>()?;
        let total: u64 = tables.iter().map(|t| t.groups).sum();
        let total32 = u32::try_from(total)
            .map_err(|_| Error::invalid("gradient clipping", "too many workgroups"))?;
        let partials = Tensor::uninit(gpu, &[total.max(1) as usize], DType::F32)?;
        let result = Tensor::uninit(gpu, &[2], DType::F32)?;
        let mut sumsq = Vec::with_capacity(sets.len());
        let mut apply = Vec::with_capacity(sets.len());
        let mut base = 0u32;
        for ((g, _), t) in sets.iter().zip(&tables) {
            let p = ClipParams {
                n: t.groups as u32,
                base,
                max_norm,
                segments: t.count,
            };
            sumsq.push(gpu.dispatch(
                &CLIP,
                "",
                "sumsq",
                &p,
                &[Bind::T(g), Bind::T(&partials), Bind::Skip, Bind::T(&t.rows)],
                gpu.grid(t.groups)?,
            )?);
            apply.push(gpu.dispatch(
                &CLIP,
                "",
                "apply",
                &p,
                &[Bind::T(g), Bind::Skip, Bind::T(&result), Bind::T(&t.rows)],
                gpu.grid(t.groups)?,
            )?);
            base += t.groups as u32;
        }
        let p = ClipParams {
            n: total32,
            base: 0,
            max_norm,
            segments: 0,
        };
        let finalize = gpu.dispatch(
            &super::clip::SHADER,
            "",
            "finalize",
            &p,
            &[Bind::Skip, Bind::T(&partials), Bind::T(&result)],
            [1, 1, 1],
        )?;
        let mut dispatches = sumsq;
        dispatches.push(finalize);
        dispatches.extend(apply);
        Ok(MultiClip { dispatches, result })
    }

    /// All dispatches, for recording into a step.
    pub fn all(&self) -> Vec<&Dispatch> {
        self.dispatches.iter().collect()
    }
}

/// Builds one update of `w` with gradient `g` at 1-based step `step` (Adam's t) and a fixed
/// learning rate. `state` holds [`Rule::state_count`] tensors shaped like `w`, zero before
/// the first step.
pub fn update_into(
    rule: &Rule,
    lr: f32,
    penalty: Penalty,
    step: u64,
    w: &Tensor,
    g: &Tensor,
    state: &[&Tensor],
) -> Result<Dispatch> {
    if step == 0 {
        return Err(Error::invalid("optimizer step", "steps count from 1"));
    }
    check_operands(rule, w, g, state)?;
    let gpu = w.gpu();
    let sched = Tensor::from_f32(gpu, &[1, 4], &schedule_row(rule, lr, step))?;
    let counter = super::step::counter(gpu, 0)?;
    update_scheduled_into(rule, penalty, 1.0, w, g, state, &sched, &counter)
}

/// f64 references.
pub mod reference {
    use super::{Penalty, Rule};

    /// One update in f64, same formulas as the shader (PyTorch's semantics).
    pub fn update(
        rule: &Rule,
        lr: f64,
        pen: Penalty,
        step: u64,
        w: &mut [f64],
        g: &[f64],
        state: &mut [Vec<f64>],
    ) {
        let (l1, l2) = (pen.l1 as f64, pen.l2 as f64);
        for i in 0..w.len() {
            let gi = g[i] + l2 * w[i] + l1 * w[i].signum() * f64::from(u8::from(w[i] != 0.0));
            match *rule {
                Rule::Sgd => w[i] -= lr * gi,
                Rule::Momentum { momentum, nesterov } => {
                    let mu = momentum as f64;
                    state[0][i] = mu * state[0][i] + gi;
                    let u = if nesterov {
                        gi + mu * state[0][i]
                    } else {
                        state[0][i]
                    };
                    w[i] -= lr * u;
                }
                Rule::Adagrad { eps } => {
                    state[0][i] += gi * gi;
                    w[i] -= lr * gi / (state[0][i].sqrt() + eps as f64);
                }
                Rule::RmsProp { alpha, eps } => {
                    let a = alpha as f64;
                    state[0][i] = a * state[0][i] + (1.0 - a) * gi * gi;
                    w[i] -= lr * gi / (state[0][i].sqrt() + eps as f64);
                }
                Rule::Adam { beta1, beta2, eps }
                | Rule::AdamW {
                    beta1, beta2, eps, ..
                } => {
                    if let Rule::AdamW { weight_decay, .. } = *rule {
                        w[i] *= 1.0 - lr * weight_decay as f64;
                    }
                    let (b1, b2) = (beta1 as f64, beta2 as f64);
                    state[0][i] = b1 * state[0][i] + (1.0 - b1) * gi;
                    state[1][i] = b2 * state[1][i] + (1.0 - b2) * gi * gi;
                    let bc1 = 1.0 - b1.powf(step as f64);
                    let bc2 = 1.0 - b2.powf(step as f64);
                    w[i] -=
                        (lr / bc1) * state[0][i] / (state[1][i].sqrt() / bc2.sqrt() + eps as f64);
                }
            }
        }
    }
}
