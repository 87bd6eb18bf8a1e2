// reduce.wgsl — row and column sums (means with scale = 1/count).
//
// entry `rows`: out[r] = scale · Σ_c x[r, c]   one workgroup (RW threads) per row, fixed tree
// entry `cols`: out[c] = scale · Σ_r x[r, c]   one thread per column, rows summed in order
// Shapes: x: [rows, cols]; out: [rows] or [cols]. Bindings: 0 params, 1 x, 2 out.
// Both orders are fixed, so results are bit-reproducible.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(RW)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    var s = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        s += x[r * p.cols + c];
    }
    s = tree_sum(lid, s);
    if (lid == 0u) {
        out[r] = s * p.scale;
    }
}

@compute @workgroup_size(WG)
fn cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = linear_index(wid, nwg, lid);
    if (c >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += x[r * p.cols + c];
    }
    out[c] = s * p.scale;
}
