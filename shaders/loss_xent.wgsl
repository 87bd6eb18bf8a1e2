// loss_xent.wgsl — fused, numerically stable softmax cross-entropy with label smoothing.
//
// Per row r with logits z = x[r, :], label y_r, C classes, smoothing ε:
//   q_c   = (1 − ε)·[c = y_r] + ε / C                       (smoothed target)
//   lse   = m + log Σ_c exp(z_c − m),   m = max_c z_c
//   loss[r]      = lse − Σ_c q_c z_c                          (= −Σ q_c log softmax(z)_c)
//   dx[r, c]     = grad_scale · (softmax(z)_c − q_c)          (grad_scale = 1/B for a mean loss)
// A label of 0xffffffff marks a padding row (a short last batch): loss 0, gradient 0. With
// `normalize` set, grad_scale is divided by the number of non-padding rows, giving the
// gradient of the mean over real samples. Any other label ≥ C makes the row's loss and
// gradient NaN, so a bad label cannot pass silently.
// Shapes: x, dx: [rows, cols]; labels: [rows] u32; loss: [rows]; metrics: [4].
// entry `main`: one workgroup per row, its RW threads share the row (tree max and sums).
// entry `with_metrics`: the loss and gradient fused with the epoch metrics of
//     metrics.wgsl's `classify` (one dispatch instead of two): one workgroup of RW threads,
//     thread t takes rows t, t + RW, ... and folds each row's columns in order (so the loss
//     bits differ from `main`'s, whose sums are trees — suited to few classes); then, over
//     the rows with label < cols, metrics[0] += Σ loss, metrics[1] += Σ [argmax = label],
//     metrics[2] += count, with fixed-order tree sums.
// Bindings: 0 params, 1 x, 2 labels, 3 loss, 4 dx, 5 metrics (with_metrics only).
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    smoothing: f32,
    grad_scale: f32,
    normalize: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const PAD: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> metrics: array<f32>;

@compute @workgroup_size(RW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let y = labels[r];
    let off = p.smoothing / f32(p.cols);
    let on = 1.0 - p.smoothing + off;
    var m = -3.402823e38;
    for (var c = lid; c < p.cols; c += RW) {
        m = max(m, x[base + c]);
    }
    m = tree_max(lid, m);
    var s = 0.0;
    var qz = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        let z = x[base + c];
        s += exp(z - m);
        qz += select(off, on, c == y) * z;
    }
    s = tree_sum(lid, s);
    qz = tree_sum(lid, qz);
    var scale = p.grad_scale;
    if (p.normalize != 0u) {
        var valid = 0.0;
        for (var k = lid; k < p.rows; k += RW) {
            valid += select(1.0, 0.0, labels[k] == PAD);
        }
        valid = tree_sum(lid, valid);
        scale = scale / max(valid, 1.0);
    }
    let pad = y == PAD;
    let bad = y >= p.cols && !pad;
    // Through a var: a constant expression that is NaN is a shader-creation error in WGSL
    // (Chromium's Tint refuses it; naga accepts it).
    var nan_bits = 0x7fc00000u;
    let nan = bitcast<f32>(nan_bits);
    let inv = 1.0 / s;
    for (var c = lid; c < p.cols; c += RW) {
        let prob = exp(x[base + c] - m) * inv;
        let g = scale * (prob - select(off, on, c == y));
        dx[base + c] = select(select(g, 0.0, pad), nan, bad);
    }
    if (lid == 0u) {
        loss[r] = select(select(m + log(s) - qz, 0.0, pad), nan, bad);
    }
}

@compute @workgroup_size(RW)
fn with_metrics(@builtin(local_invocation_index) lid: u32) {
    let off = p.smoothing / f32(p.cols);
    let on = 1.0 - p.smoothing + off;
    var scale = p.grad_scale;
    if (p.normalize != 0u) {
        var valid = 0.0;
        for (var k = lid; k < p.rows; k += RW) {
            valid += select(1.0, 0.0, labels[k] == PAD);
        }
        valid = tree_sum(lid, valid);
        scale = scale / max(valid, 1.0);
    }
    var nan_bits = 0x7fc00000u;
    let nan = bitcast<f32>(nan_bits);
    var total = 0.0;
    var correct = 0.0;
    var count = 0.0;
    for (var r = lid; r < p.rows; r += RW) {
        let base = r * p.cols;
        let y = labels[r];
        // The maximum and the first column holding it (metrics.wgsl's argmax).
        var m = x[base];
        var best = 0u;
        for (var c = 1u; c < p.cols; c++) {
            let z = x[base + c];
            if (z > m) {
                m = z;
                best = c;
            }
        }
        var s = 0.0;
        var qz = 0.0;
        for (var c = 0u; c < p.cols; c++) {
            let z = x[base + c];
            s += exp(z - m);
            qz += select(off, on, c == y) * z;
        }
        let pad = y == PAD;
        let bad = y >= p.cols && !pad;
        let inv = 1.0 / s;
        for (var c = 0u; c < p.cols; c++) {
            let prob = exp(x[base + c] - m) * inv;
            let g = scale * (prob - select(off, on, c == y));
            dx[base + c] = select(select(g, 0.0, pad), nan, bad);
        }
        let l = select(select(m + log(s) - qz, 0.0, pad), nan, bad);
        loss[r] = l;
        if (y < p.cols) {
            total += l;
            count += 1.0;
            correct += select(0.0, 1.0, best == y);
        }
    }
    total = tree_sum(lid, total);
    correct = tree_sum(lid, correct);
    count = tree_sum(lid, count);
    if (lid == 0u) {
        metrics[0] = metrics[0] + total;
        metrics[1] = metrics[1] + correct;
        metrics[2] = metrics[2] + count;
    }
}
