// ewc_fisher.wgsl — the diagonal empirical Fisher information of Elastic Weight
// Consolidation (Kirkpatrick et al. 2017), estimated from per-sample gradients.
//
// entry `accumulate`: acc[i] += g[i]²        (after the backward pass of one sample, batch 1,
//                     g = ∇θ −log p(y | x) with the sample's own label: the empirical Fisher)
// entry `finish`:     fisher[i] = decay · fisher[i] + scale · acc[i]   (scale = 1/N over the
//                     N samples accumulated: F_new is their mean; decay < 1 is online EWC)
//                     anchor[i] = values[i]                            (θ* of the penalty)
//                     acc[i] = 0
// Shapes: every buffer [n] (a parameter arena). Bindings: 0 params; `accumulate`: 1 g,
// 2 acc; `finish`: 1 values, 2 acc, 3 fisher, 4 anchor.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,
    decay: f32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read_write> fisher: array<f32>;
@group(0) @binding(4) var<storage, read_write> anchor: array<f32>;

@compute @workgroup_size(WG)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let g = src[i];
        acc[i] = fma(g, g, acc[i]);
    }
}

@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        fisher[i] = fma(p.decay, fisher[i], p.scale * acc[i]);
        anchor[i] = src[i];
        acc[i] = 0.0;
    }
}
