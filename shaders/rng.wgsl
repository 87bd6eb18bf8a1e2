// rng.wgsl — random tensors from Philox4x32-10 keyed by (seed) and counter (i, stream, offset).
//
// Element i draws w = philox((i, stream, offset + counter[1], 0), (seed_lo, seed_hi)), where
// counter[1] is the global training step kept on the GPU (step.wgsl), so a recorded dropout
// draws a fresh mask every step; the dummy counter of a one-off launch reads 0.
//   uniform:   out[i] = lo + (hi − lo) · u01(w.x)
//   normal:    out[i] = mean + std · √(−2 ln u1) · cos(2π u2),  u1 = 1 − u01(w.x) ∈ (0, 1], u2 = u01(w.y)
//   bernoulli: out[i] = (w.x >> 8) ≥ threshold ? keep_value : 0      (dropout mask: threshold = round(rate·2²⁴),
//              keep_value = 1/(1 − rate)); the comparison is integer, so masks match on every device.
// Shapes: out: [n]; counter: [4] u32. Bindings: 0 params, 1 out, 2 counter.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/philox.wgsl.

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    offset: u32,
    threshold: u32,
    a: f32, // lo | mean | keep_value
    b: f32, // hi | std
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> counter: array<u32>;

fn draw(i: u32) -> vec4<u32> {
    return philox(vec4<u32>(i, p.stream, p.offset + counter[1], 0u), vec2<u32>(p.seed_lo, p.seed_hi));
}

@compute @workgroup_size(WG)
fn draw_uniform(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        out[i] = p.a + (p.b - p.a) * u01(draw(i).x);
    }
}

@compute @workgroup_size(WG)
fn draw_normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        let w = draw(i);
        let u1 = 1.0 - u01(w.x);
        let u2 = u01(w.y);
        out[i] = p.a + p.b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    }
}

@compute @workgroup_size(WG)
fn draw_bernoulli(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        out[i] = select(0.0, p.a, (draw(i).x >> 8u) >= p.threshold);
    }
}
