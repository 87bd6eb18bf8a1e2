// optim.wgsl — optimizer updates of one tensor, in place on parameters and state (one thread
// per element). The rules themselves are in optim_rules.wgsl (shared with optim_multi.wgsl).
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
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/optim_rules.wgsl.

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        sgd_at(i, hyper_scaled(p.lr_scale));
    }
}

@compute @workgroup_size(WG)
fn momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        momentum_at(i, hyper_scaled(p.lr_scale));
    }
}

@compute @workgroup_size(WG)
fn adagrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        adagrad_at(i, hyper_scaled(p.lr_scale));
    }
}

@compute @workgroup_size(WG)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        rmsprop_at(i, hyper_scaled(p.lr_scale));
    }
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        adam_at(i, hyper_scaled(p.lr_scale));
    }
}
