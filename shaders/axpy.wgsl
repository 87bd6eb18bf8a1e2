// axpy.wgsl — scaled updates.
//
// entry `axpy`:  y[i] = alpha · x[i] + y[i]     (in place on y)
// entry `scale`: y[i] = alpha · x[i]            (y may be a fresh buffer)
// Shapes: x, y: [n]. Bindings: 0 params, 1 x, 2 y.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        y[i] = fma(p.alpha, x[i], y[i]);
    }
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        y[i] = p.alpha * x[i];
    }
}
