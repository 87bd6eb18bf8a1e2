// loss_mse.wgsl — mean squared error and its gradient.
//
// loss[r]  = row_scale · Σ_c (y[r, c] − t[r, c])²        (row_scale = 1/cols: per-row mean)
// dy[r, c] = grad_scale · (y[r, c] − t[r, c])            (grad_scale = 2/(rows·cols) for the mean loss)
// entry `masked` (training batches): rows whose label is PAD (0xffffffff, the padding of
// an epoch's last batch) get zero loss and gradient, and grad_scale = 2/(valid·cols) with
// valid the number of other rows, counted here in a fixed order (so the result does not
// depend on how much of the batch is padding, and nothing is read back).
// Shapes: y, t, dy: [rows, cols]; loss: [rows]; labels: [rows] u32. One workgroup per row.
// Bindings: 0 params, 1 y, 2 t, 3 loss, 4 dy, 5 labels (masked only).
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

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
@group(0) @binding(5) var<storage, read> labels: array<u32>;

const PAD: u32 = 0xffffffffu;

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

@compute @workgroup_size(RW)
fn masked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    var valid = 0.0;
    for (var k = lid; k < p.rows; k += RW) {
        valid += select(1.0, 0.0, labels[k] == PAD);
    }
    valid = tree_sum(lid, valid);
    let pad = labels[r] == PAD;
    let scale = 2.0 / (max(valid, 1.0) * f32(p.cols));
    let base = r * p.cols;
    var s = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        let d = y[base + c] - t[base + c];
        s += d * d;
        dy[base + c] = select(scale * d, 0.0, pad);
    }
    s = tree_sum(lid, s);
    if (lid == 0u) {
        loss[r] = select(s * p.row_scale, 0.0, pad);
    }
}
