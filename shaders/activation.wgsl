// activation.wgsl — activation layers, forward and backward.
//
// Injected: ACT (activation code, see activation_fns.wgsl).
// entry `forward`:  out[i] = f(x[i])                   bindings 1 x, 3 out
// entry `backward`: dx[i] = dy[i] · f'(x[i])           bindings 1 x, 2 dy, 3 out (= dx)
// x is the pre-activation input. Shapes: all [n].
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/activation_fns.wgsl.

struct Params {
    n: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        out[i] = act_forward(ACT, x[i], p.alpha);
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        out[i] = dy[i] * act_grad(ACT, x[i], p.alpha);
    }
}
