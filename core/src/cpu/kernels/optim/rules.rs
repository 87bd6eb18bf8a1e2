//! `shaders/optim.wgsl` (one tensor) and `shaders/optim_multi.wgsl` (the tensors of a
//! segment table): the update rules of `lib/optim_rules.wgsl`, in the shader's f32 order.

use super::{bad, Segs};
use crate::cpu::{Call, Kernel};
use crate::error::Result;
use crate::kernels::optim::Params;

#[derive(Clone, Copy)]
enum Kind {
    Sgd,
    Momentum,
    Adagrad,
    RmsProp,
    Adam,
}

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    let kernel: Kernel = match (shader, entry) {
        ("optim", "sgd") => |c| single(c, Kind::Sgd),
        ("optim", "momentum") => |c| single(c, Kind::Momentum),
        ("optim", "adagrad") => |c| single(c, Kind::Adagrad),
        ("optim", "rmsprop") => |c| single(c, Kind::RmsProp),
        ("optim", "adam") => |c| single(c, Kind::Adam),
        ("optim_multi", "sgd") => |c| multi(c, Kind::Sgd),
        ("optim_multi", "momentum") => |c| multi(c, Kind::Momentum),
        ("optim_multi", "adagrad") => |c| multi(c, Kind::Adagrad),
        ("optim_multi", "rmsprop") => |c| multi(c, Kind::RmsProp),
        ("optim_multi", "adam") => |c| multi(c, Kind::Adam),
        _ => return None,
    };
    Some(kernel)
}

impl Kind {
    /// How many state tensors (s1, s2) the rule keeps.
    fn states(self) -> usize {
        match self {
            Kind::Sgd => 0,
            Kind::Momentum | Kind::Adagrad | Kind::RmsProp => 1,
            Kind::Adam => 2,
        }
    }
}

/// `Hyper`: the step's (lr · lr_scale, bc1, √bc2).
#[derive(Clone, Copy)]
struct Hyper {
    lr: f32,
    bc1: f32,
    sqrt_bc2: f32,
}

/// The bound tensors of one update.
struct Update<'a> {
    p: Params,
    kind: Kind,
    w: &'a mut [f32],
    grad: &'a [f32],
    s1: &'a mut [f32],
    s2: &'a mut [f32],
    row: [f32; 3],
    skipped: bool,
}

impl<'a> Update<'a> {
    fn bind(call: &Call<'a>, kind: Kind) -> Result<Self> {
        let p: Params = call.params()?;
        let w = call.f32_mut(1)?;
        let grad = call.f32(2)?;
        let state = |b: usize| -> Result<&'a mut [f32]> {
            if call.has(b) {
                call.f32_mut(b)
            } else {
                Ok(&mut [])
            }
        };
        let (s1, s2) = (state(3)?, state(4)?);
        let sched = call.f32(5)?;
        let counter = call.u32(6)?;
        let need = kind.states();
        for (k, s) in [&*s1, &*s2].iter().enumerate().take(need) {
            if s.len() != w.len() {
                return Err(bad(
                    call,
                    format!("state {} has {} elements, w {}", k + 1, s.len(), w.len()),
                ));
            }
        }
        if grad.len() != w.len() {
            return Err(bad(call, "w and grad differ in length"));
        }
        let c = *counter
            .first()
            .ok_or_else(|| bad(call, "empty step counter"))? as usize;
        let row = sched
            .get(c.saturating_mul(4)..c.saturating_mul(4).saturating_add(3))
            .ok_or_else(|| {
                bad(
                    call,
                    format!("step {c} is past the {}-row schedule", sched.len() / 4),
                )
            })?;
        Ok(Update {
            p,
            kind,
            w,
            grad,
            s1,
            s2,
            row: [row[0], row[1], row[2]],
            skipped: counter.len() > 2 && counter[2] != 0,
        })
    }

    /// Applies the rule to the runs `(start, end, lr_scale)` of elements (sorted, disjoint),
    /// cut into pieces that the pool's threads share (each element's update is independent of the others,
    /// so the pieces and threads do not change a bit of the result).
    fn apply_runs(&mut self, runs: &[(usize, usize, f32)]) {
        if self.skipped || runs.is_empty() {
            return;
        }
        let (p, kind, row) = (self.p, self.kind, self.row);
        // The states the rule keeps (checked in `bind` to be as long as w).
        let need = kind.states();
        let (has1, has2) = (need >= 1, need >= 2);
        let mut w: &mut [f32] = &mut self.w[..];
        let mut s1: &mut [f32] = &mut self.s1[..];
        let mut s2: &mut [f32] = &mut self.s2[..];
        let mut at = 0;
        let mut pieces = Vec::new();
        let total: usize = runs.iter().map(|r| r.1 - r.0).sum();
        for &(start, end, scale) in runs {
            let skip = start - at;
            w = &mut std::mem::take(&mut w)[skip..];
            if has1 {
                s1 = &mut std::mem::take(&mut s1)[skip..];
            }
            if has2 {
                s2 = &mut std::mem::take(&mut s2)[skip..];
            }
            let mut lo = start;
            while lo < end {
                let len = PIECE.min(end - lo);
                let (wp, rest) = std::mem::take(&mut w).split_at_mut(len);
                w = rest;
                let (a, b) = (take(&mut s1, len, has1), take(&mut s2, len, has2));
                pieces.push((scale, &self.grad[lo..lo + len], wp, a, b));
                lo += len;
            }
            at = end;
        }
        let threads = if total >= 1 << 16 {
            crate::cpu::threads()
        } else {
            1
        };
        crate::cpu::pool::for_parts(pieces, threads, |_, (scale, g, w, s1, s2)| {
            let h = Hyper {
                lr: row[0] * scale,
                bc1: row[1],
                sqrt_bc2: row[2],
            };
            rule(kind, &p, h, w, g, s1, s2);
        });
    }
}

/// The first `len` elements of `*s` (none where the rule keeps no such state), leaving the
/// rest in `*s`.
fn take<'a>(s: &mut &'a mut [f32], len: usize, has: bool) -> &'a mut [f32] {
    if !has {
        return &mut [];
    }
    let (a, rest) = std::mem::take(s).split_at_mut(len);
    *s = rest;
    a
}

/// Elements a thread takes at a time.
const PIECE: usize = 1 << 14;

/// `penalised`: grad + l2·w + l1·sign(w).
#[inline(always)]
fn penalised(p: &Params, w: f32, g: f32) -> f32 {
    let sign = if w > 0.0 {
        1.0
    } else if w < 0.0 {
        -1.0
    } else {
        0.0
    };
    g + p.l2 * w + p.l1 * sign
}

/// The rule's `*_at(i, h)` over a piece (`s1`, `s2` as long as `w` where the rule keeps
/// them), in the shader's f32 operation order.
fn rule(
    kind: Kind,
    p: &Params,
    h: Hyper,
    w: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
) {
    match kind {
        Kind::Sgd => {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= h.lr * penalised(p, *w, g);
            }
        }
        Kind::Momentum => {
            for ((w, &g), s) in w.iter_mut().zip(g).zip(s1.iter_mut()) {
                let g = penalised(p, *w, g);
                let b = p.beta1 * *s + g;
                *s = b;
                let u = if p.nesterov != 0 { g + p.beta1 * b } else { b };
                *w -= h.lr * u;
            }
        }
        Kind::Adagrad => {
            for ((w, &g), s) in w.iter_mut().zip(g).zip(s1.iter_mut()) {
                let g = penalised(p, *w, g);
                let acc = *s + g * g;
                *s = acc;
                *w -= h.lr * g / (acc.sqrt() + p.eps);
            }
        }
        Kind::RmsProp => {
            for ((w, &g), s) in w.iter_mut().zip(g).zip(s1.iter_mut()) {
                let g = penalised(p, *w, g);
                let v = p.beta2 * *s + (1.0 - p.beta2) * g * g;
                *s = v;
                *w -= h.lr * g / (v.sqrt() + p.eps);
            }
        }
        Kind::Adam => {
            let step = h.lr / h.bc1;
            let decay = 1.0 - h.lr * p.weight_decay;
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(s1.iter_mut()).zip(s2.iter_mut()) {
                let g = penalised(p, *w, g);
                let wi = *w * decay;
                let mi = p.beta1 * *m + (1.0 - p.beta1) * g;
                let vi = p.beta2 * *v + (1.0 - p.beta2) * g * g;
                *m = mi;
                *v = vi;
                *w = wi - step * mi / (vi.sqrt() / h.sqrt_bc2 + p.eps);
            }
        }
    }
}

/// optim.wgsl's entry points: every element `i < p.n`.
fn single(call: &Call<'_>, kind: Kind) -> Result<()> {
    let mut u = Update::bind(call, kind)?;
    let n = u.p.n as usize;
    if n > u.w.len() {
        return Err(bad(call, format!("n {n} exceeds w's {}", u.w.len())));
    }
    u.apply_runs(&[(0, n, u.p.lr_scale)]);
    Ok(())
}

/// optim_multi.wgsl's entry points: the slots of workgroups `0 .. p.n` of the table, as
/// runs of consecutive elements (one per segment).
fn multi(call: &Call<'_>, kind: Kind) -> Result<()> {
    let mut u = Update::bind(call, kind)?;
    let segs = Segs::new(call, call.u32(7)?, u.p.segments)?;
    let runs = segs.runs(call, u.p.n, u.w.len())?;
    u.apply_runs(&runs);
    Ok(())
}
