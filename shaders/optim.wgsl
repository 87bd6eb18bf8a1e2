// optim.wgsl — optimizer updates, in place on parameters and state (one thread per element).
//
// Every rule first forms the penalised gradient  g = grad + l2·w + l1·sign(w)
// (L2 here is PyTorch's `weight_decay` for SGD/Adam; L1 adds λ·sign(w)).
//   sgd       w −= lr·g
//   momentum  b = μ·b + g;  w −= lr·(nesterov ? g + μ·b : b)                      (PyTorch SGD, dampening 0)
//   adagrad   s += g²;      w −= lr·g / (√s + ε)
//   rmsprop   v = α·v + (1−α)·g²;  w −= lr·g / (√v + ε)                             (α in beta2)
//   adam      m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//             w −= (lr / bc1) · m / (√v / √bc2 + ε),  bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ  (PyTorch's form)
//   adamw     w *= 1 − lr·weight_decay, then adam                                  (decoupled decay)
// The per-step values come from a schedule table on the GPU, so a whole chunk of steps can be
// recorded once with no host work per step: row c = counter[0] of `sched` holds
// (lr, bc1, √bc2, unused), and lr is multiplied by the parameter group's lr_scale.
// Shapes: w, grad, s1, s2: [n]; sched: [steps, 4]; counter: [1] u32.
// Bindings: 0 params, 1 w, 2 grad, 3 s1 (b / s / v / m), 4 s2 (v), 5 sched, 6 counter.

struct Params {
    n: u32,
    nesterov: u32,
    lr_scale: f32,
    _pad0: u32,
    beta1: f32, // momentum μ for momentum, β1 for adam
    beta2: f32, // α for rmsprop, β2 for adam
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

fn hyper() -> Hyper {
    let row = counter[0] * 4u;
    return Hyper(sched[row] * p.lr_scale, sched[row + 1u], sched[row + 2u]);
}

fn penalised(i: u32) -> f32 {
    let wi = w[i];
    return grad[i] + p.l2 * wi + p.l1 * sign(wi);
}

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        w[i] = w[i] - hyper().lr * penalised(i);
    }
}

@compute @workgroup_size(WG)
fn momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let g = penalised(i);
        let b = p.beta1 * s1[i] + g;
        s1[i] = b;
        let u = select(b, g + p.beta1 * b, p.nesterov != 0u);
        w[i] = w[i] - hyper().lr * u;
    }
}

@compute @workgroup_size(WG)
fn adagrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let g = penalised(i);
        let s = s1[i] + g * g;
        s1[i] = s;
        w[i] = w[i] - hyper().lr * g / (sqrt(s) + p.eps);
    }
}

@compute @workgroup_size(WG)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let g = penalised(i);
        let v = p.beta2 * s1[i] + (1.0 - p.beta2) * g * g;
        s1[i] = v;
        w[i] = w[i] - hyper().lr * g / (sqrt(v) + p.eps);
    }
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let h = hyper();
        let g = penalised(i);
        let wi = w[i] * (1.0 - h.lr * p.weight_decay);
        let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
        let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
        s1[i] = m;
        s2[i] = v;
        w[i] = wi - (h.lr / h.bc1) * m / (sqrt(v) / h.sqrt_bc2 + p.eps);
    }
}
