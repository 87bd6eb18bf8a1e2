// optim_clip.wgsl — global-norm clipping over the listed tensors of flat gradient buffers
// (a model's gradient arenas), one launch per buffer for each phase instead of one per
// tensor. Same arithmetic as clip.wgsl: each workgroup squares and tree-sums the same WG
// elements of the same tensor as clip.wgsl's per-tensor `sumsq` and writes the same partial
// slot (p.base + workgroup, the table's workgroups numbered like the per-tensor launches'
// bases), so clip.wgsl's `finalize` then sums identical partials in the identical order and
// the norm is bit-identical to the per-tensor path.
//   sumsq: partials[p.base + grp] = Σ over the workgroup's elements of g²
//   apply: g[i] *= result[1] for every listed element
// p.n = total workgroups of the table, p.segments = table rows (optim_segments.wgsl).
// Bindings: 0 params, 1 g (read_write), 2 partials, 3 result [2], 4 segs.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/optim_segments.wgsl.

struct Params {
    n: u32,
    base: u32,
    max_norm: f32,
    segments: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read> segs: array<vec4<u32>>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let grp = linear_group(wid, nwg);
    if (grp >= p.n) {
        return; // uniform across the workgroup: no barrier is skipped by only some threads
    }
    let s = segment_slot(grp, lid, p.segments);
    var v = 0.0;
    if (s.ok) {
        v = g[s.i] * g[s.i];
    }
    red[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            red[lid] = red[lid] + red[lid + k];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[p.base + grp] = red[0];
    }
}

@compute @workgroup_size(WG)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        g[s.i] = g[s.i] * result[1];
    }
}
