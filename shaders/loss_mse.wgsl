// loss_mse.wgsl — mean squared error and its gradient.
//
// loss[r]  = row_scale · Σ_c (y[r, c] − t[r, c])²        (row_scale = 1/cols: per-row mean)
// dy[r, c] = grad_scale · (y[r, c] − t[r, c])            (grad_scale = 2/(rows·cols) for the mean loss)
// Shapes: y, t, dy: [rows, cols]; loss: [rows]. One workgroup per row.
// Bindings: 0 params, 1 y, 2 t, 3 loss, 4 dy.

struct Params {
    rows: u32,
    cols: u32,
    row_scale: f32,
    grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;

@compute @workgroup_size(RW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var s = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        let d = y[base + c] - t[base + c];
        s += d * d;
        dy[base + c] = p.grad_scale * d;
    }
    s = tree_sum(lid, s);
    if (lid == 0u) {
        loss[r] = s * p.row_scale;
    }
}
