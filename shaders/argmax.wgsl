// argmax.wgsl — index of the largest element of each row (the first one on ties).
//
// out[r] = min { c : x[r, c] = max_c' x[r, c'] }. NaN never wins a comparison.
// Shapes: x: [rows, cols] f32; out: [rows] u32. One workgroup (RW threads) per row.
// Bindings: 0 params, 1 x, 2 out.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> best_v: array<f32, RW>;
var<workgroup> best_i: array<u32, RW>;

// (va, ia) beats (vb, ib) when larger, or equal with a smaller index.
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(RW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    var bv = -3.402823e38;
    var bi = 0xffffffffu;
    for (var c = lid; c < p.cols; c += RW) {
        let v = x[r * p.cols + c];
        if (bi == 0xffffffffu || better(v, c, bv, bi)) {
            bv = v;
            bi = c;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var s = RW / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let oi = best_i[lid + s];
            if (oi != 0xffffffffu && (best_i[lid] == 0xffffffffu ||
                better(best_v[lid + s], oi, best_v[lid], best_i[lid]))) {
                best_v[lid] = best_v[lid + s];
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[r] = best_i[0];
    }
}
