// ewc_penalty.wgsl — the gradient of Elastic Weight Consolidation's quadratic penalty,
// added to a parameter arena's gradients before clipping and the optimizer update:
//   penalty = (λ/2) · Σ_i F_i (θ_i − θ*_i)²,   g[i] += λ · F_i · (θ_i − θ*_i)
// with F the diagonal Fisher and θ* the parameters at the end of the last chunk
// (ewc_fisher.wgsl). A separate dispatch rather than a term of the update rule, so that
// global-norm clipping sees the penalised gradient and mixed precision's unscaling has
// already happened.
// Shapes: every buffer [n]. Bindings: 0 params, 1 values, 2 fisher, 3 anchor, 4 grads.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,
    weight: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> fisher: array<f32>;
@group(0) @binding(3) var<storage, read> anchor: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        grads[i] = fma(p.weight * fisher[i], values[i] - anchor[i], grads[i]);
    }
}
