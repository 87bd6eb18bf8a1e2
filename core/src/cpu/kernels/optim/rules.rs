//! `shaders/optim.wgsl` (one tensor) and `shaders/optim_multi.wgsl` (the tensors of a
//! segment table): the update rules of `lib/optim_rules.wgsl`, in the shader's f32 order.

use super::{bad, Segs, WG};
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
        let need = match kind {
            Kind::Sgd => 0,
            Kind::Momentum | Kind::Adagrad | Kind::RmsProp => 1,
            Kind::Adam => 2,
        };
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

    /// `hyper_scaled(lr_scale)`.
    fn hyper(&self, lr_scale: f32) -> Hyper {
        Hyper {
            lr: self.row[0] * lr_scale,
            bc1: self.row[1],
            sqrt_bc2: self.row[2],
        }
    }

    /// `penalised(i)`: grad + l2·w + l1·sign(w).
    fn penalised(&self, i: usize) -> f32 {
        let wi = self.w[i];
        let sign = if wi > 0.0 {
            1.0
        } else if wi < 0.0 {
            -1.0
        } else {
            0.0
        };
        self.grad[i] + self.p.l2 * wi + self.p.l1 * sign
    }

    /// The rule's `*_at(i, h)`.
    fn at(&mut self, i: usize, h: Hyper) {
        if self.skipped {
            return;
        }
        let p = self.p;
        let g = self.penalised(i);
        match self.kind {
            Kind::Sgd => self.w[i] -= h.lr * g,
            Kind::Momentum => {
                let b = p.beta1 * self.s1[i] + g;
                self.s1[i] = b;
                let u = if p.nesterov != 0 { g + p.beta1 * b } else { b };
                self.w[i] -= h.lr * u;
            }
            Kind::Adagrad => {
                let s = self.s1[i] + g * g;
                self.s1[i] = s;
                self.w[i] -= h.lr * g / (s.sqrt() + p.eps);
            }
            Kind::RmsProp => {
                let v = p.beta2 * self.s1[i] + (1.0 - p.beta2) * g * g;
                self.s1[i] = v;
                self.w[i] -= h.lr * g / (v.sqrt() + p.eps);
            }
            Kind::Adam => {
                let wi = self.w[i] * (1.0 - h.lr * p.weight_decay);
                let m = p.beta1 * self.s1[i] + (1.0 - p.beta1) * g;
                let v = p.beta2 * self.s2[i] + (1.0 - p.beta2) * g * g;
                self.s1[i] = m;
                self.s2[i] = v;
                self.w[i] = wi - (h.lr / h.bc1) * m / (v.sqrt() / h.sqrt_bc2 + p.eps);
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
    let h = u.hyper(u.p.lr_scale);
    for i in 0..n {
        u.at(i, h);
    }
    Ok(())
}

/// optim_multi.wgsl's entry points: the slots of workgroups `0 .. p.n` of the table.
fn multi(call: &Call<'_>, kind: Kind) -> Result<()> {
    let mut u = Update::bind(call, kind)?;
    let segs = Segs::new(call, call.u32(7)?, u.p.segments)?;
    let len = u.w.len();
    for grp in 0..u.p.n {
        let mut slots = [(0usize, 0f32); WG];
        let mut k = 0;
        segs.group(call, grp, len, |_, i, scale| {
            slots[k] = (i, scale);
            k += 1;
        })?;
        for &(i, scale) in &slots[..k] {
            let h = u.hyper(scale);
            u.at(i, h);
        }
    }
    Ok(())
}
