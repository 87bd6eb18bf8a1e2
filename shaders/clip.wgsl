// clip.wgsl — global-norm gradient clipping without a CPU round trip.
//
// For gradient tensors g_1..g_T (each its own `sumsq` launch writing its own slice of
// `partials`), then one `finalize`, then one `apply` per tensor:
//   sumsq:    partials[base + wg] = Σ over this workgroup's WG elements of g²   (fixed tree)
//   finalize: norm = √(Σ_k partials[k]) (k in order, one thread);
//             result = (norm, scale) with scale = min(1, max_norm / (norm + 1e-6))
//   apply:    g[i] *= scale
// Bindings: 0 params, 1 g (read_write), 2 partials, 3 result [2].
// Fixed summation order: the norm is bit-reproducible.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,         // elements of g (sumsq, apply) or number of partials (finalize)
    base: u32,      // first partial slot of this tensor (sumsq)
    max_norm: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let grp = linear_group(wid, nwg);
    let i = grp * WG + lid;
    var v = 0.0;
    if (i < p.n) {
        v = g[i] * g[i];
    }
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u && grp * WG < p.n) {
        partials[p.base + grp] = red[0];
    }
}

@compute @workgroup_size(1)
fn finalize() {
    var s = 0.0;
    for (var k = 0u; k < p.n; k++) {
        s += partials[k];
    }
    let norm = sqrt(s);
    result[0] = norm;
    result[1] = min(1.0, p.max_norm / (norm + 1e-6));
}

@compute @workgroup_size(WG)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        g[i] = g[i] * result[1];
    }
}
