// agem_project.wgsl — A-GEM's projection of the step's gradient g onto the half-space
// where it does not increase the memory loss to first order (Chaudhry et al. 2019):
//   dot = g·g_ref,  rr = g_ref·g_ref
//   g ← g − (dot / rr)·g_ref   when dot < 0 (and rr > 0), else g unchanged.
// Over several gradient arenas (each its own `dots` launch writing its own slice of
// `partials`), then one `finalize`, then one `project` per arena:
//   dots:     partials[2(base + wg)] = Σ over this workgroup's WG elements of g·r,
//             partials[2(base + wg) + 1] = Σ of r·r                      (fixed tree)
//   finalize: dot = Σ_k partials[2k], rr = Σ_k partials[2k + 1] (k in order, one thread);
//             result = (dot, rr, coef) with coef = dot / rr when dot < 0 and rr > 0, else 0
//   project:  g[i] −= coef · r[i]
// Fixed summation order: the dot products, and so the step, are bit-reproducible.
// Shapes: g, r [n]; partials [2 · Σ workgroups]; result [4].
// Bindings: 0 params, 1 g (read_write), 2 r (the reference gradient), 3 partials, 4 result.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,         // elements of g and r (dots, project) or number of partial pairs (finalize)
    base: u32,      // first partial pair of this arena (dots)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;

var<workgroup> red_gr: array<f32, WG>;
var<workgroup> red_rr: array<f32, WG>;

@compute @workgroup_size(WG)
fn dots(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let grp = linear_group(wid, nwg);
    let i = grp * WG + lid;
    var gr = 0.0;
    var rr = 0.0;
    if (i < p.n) {
        gr = g[i] * r[i];
        rr = r[i] * r[i];
    }
    red_gr[lid] = gr;
    red_rr[lid] = rr;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_gr[lid] = red_gr[lid] + red_gr[lid + s];
            red_rr[lid] = red_rr[lid] + red_rr[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u && grp * WG < p.n) {
        partials[2u * (p.base + grp)] = red_gr[0];
        partials[2u * (p.base + grp) + 1u] = red_rr[0];
    }
}

@compute @workgroup_size(1)
fn finalize() {
    var dot = 0.0;
    var rr = 0.0;
    for (var k = 0u; k < p.n; k++) {
        dot += partials[2u * k];
        rr += partials[2u * k + 1u];
    }
    var coef = 0.0;
    if (dot < 0.0 && rr > 0.0) {
        coef = dot / rr;
    }
    result[0] = dot;
    result[1] = rr;
    result[2] = coef;
    result[3] = 0.0;
}

@compute @workgroup_size(WG)
fn project(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        g[i] = fma(-result[2], r[i], g[i]);
    }
}
