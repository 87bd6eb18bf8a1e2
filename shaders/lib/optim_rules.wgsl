// optim_rules.wgsl — the per-element update rules shared by the per-tensor (optim.wgsl) and
// multi-tensor (optim_multi.wgsl) launches, so both run the very same arithmetic on each
// element. Formulas: see optim.wgsl. Each `*_at(i, h)` updates element i of w (and its
// state) with the step's hyper-parameters h (lr already multiplied by the lr_scale).
// Bindings (shared): 0 params, 1 w, 2 grad, 3 s1, 4 s2, 5 sched, 6 counter.
// A step whose overflow flag counter[2] is set (mixed precision: a gradient overflowed f16,
// see loss_scale.wgsl) updates nothing: weights and state stay as they were. f32 training
// never sets it.

struct Params {
    n: u32,        // elements (per-tensor) or workgroups (multi-tensor)
    nesterov: u32,
    lr_scale: f32, // per-tensor only; the multi-tensor launch takes it from the segment table
    segments: u32, // multi-tensor only: rows of the segment table
    beta1: f32,    // momentum μ for momentum, β1 for adam
    beta2: f32,    // α for rmsprop, β2 for adam
    eps: f32,
    l1: f32,
    l2: f32,
    weight_decay: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;
@group(0) @binding(5) var<storage, read> sched: array<f32>;
@group(0) @binding(6) var<storage, read> counter: array<u32>;

struct Hyper {
    lr: f32,
    bc1: f32,
    sqrt_bc2: f32,
}

// Row counter[0] of the schedule table, lr multiplied by `lr_scale`.
fn hyper_scaled(lr_scale: f32) -> Hyper {
    let row = counter[0] * 4u;
    return Hyper(sched[row] * lr_scale, sched[row + 1u], sched[row + 2u]);
}

// The step's overflow flag (counters shorter than 3 elements have none).
fn skipped() -> bool {
    return arrayLength(&counter) > 2u && counter[2] != 0u;
}

fn penalised(i: u32) -> f32 {
    let wi = w[i];
    return grad[i] + p.l2 * wi + p.l1 * sign(wi);
}

fn sgd_at(i: u32, h: Hyper) {
    if (skipped()) {
        return;
    }
    w[i] = w[i] - h.lr * penalised(i);
}

fn momentum_at(i: u32, h: Hyper) {
    if (skipped()) {
        return;
    }
    let g = penalised(i);
    let b = p.beta1 * s1[i] + g;
    s1[i] = b;
    let u = select(b, g + p.beta1 * b, p.nesterov != 0u);
    w[i] = w[i] - h.lr * u;
}

fn adagrad_at(i: u32, h: Hyper) {
    if (skipped()) {
        return;
    }
    let g = penalised(i);
    let s = s1[i] + g * g;
    s1[i] = s;
    w[i] = w[i] - h.lr * g / (sqrt(s) + p.eps);
}

fn rmsprop_at(i: u32, h: Hyper) {
    if (skipped()) {
        return;
    }
    let g = penalised(i);
    let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
    s1[i] = v;
    w[i] = w[i] - h.lr * g / (sqrt(v) + p.eps);
}

fn adam_at(i: u32, h: Hyper) {
    if (skipped()) {
        return;
    }
    let g = penalised(i);
    let wi = w[i] * (1.0 - h.lr * p.weight_decay);
    let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
    s1[i] = m;
    s2[i] = v;
    w[i] = wi - (h.lr / h.bc1) * m / (sqrt(v) / h.sqrt_bc2 + p.eps);
}
