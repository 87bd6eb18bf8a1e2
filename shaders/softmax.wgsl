// softmax.wgsl — row-wise numerically stable softmax.
//
// out[r, c] = exp(x[r, c] − m_r) / Σ_c' exp(x[r, c'] − m_r),   m_r = max_c x[r, c]
// Shapes: x, out: [rows, cols]. One workgroup (RW threads) per row; grid spread over x, y.
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
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(RW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return; // uniform per workgroup: safe before barriers
    }
    let base = r * p.cols;
    var m = -3.402823e38;
    for (var c = lid; c < p.cols; c += RW) {
        m = max(m, x[base + c]);
    }
    m = tree_max(lid, m);
    var s = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        s += exp(x[base + c] - m);
    }
    s = tree_sum(lid, s);
    let inv = 1.0 / s;
    for (var c = lid; c < p.cols; c += RW) {
        out[base + c] = exp(x[base + c] - m) * inv;
    }
}
