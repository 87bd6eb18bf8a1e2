// metrics.wgsl — accumulate loss and accuracy on the GPU across steps (read back only at
// report points).
//
// entry `classify`: over the batch's rows r with label[r] < cols (not padding, not unlabelled):
//     metrics[0] += Σ loss[r];   metrics[1] += Σ [argmax logits[r, :] = label[r]];   metrics[2] += count
// entry `regress`: metrics[0] += Σ_{r < valid} loss[r]; metrics[2] += valid (regression
//     targets carry no padding marker, so the launcher passes the real row count).
// entry `regress_labelled`: like `regress`, over the rows whose label is not PAD
//     (0xffffffff; a regression batch's labels are 0, its padding rows PAD).
// One workgroup of RW threads; fixed-order tree sums, so the totals are bit-reproducible.
// Shapes: loss: [rows]; logits: [rows, cols]; labels: [rows] u32; metrics: [4].
// Bindings: 0 params, 1 loss, 2 logits, 3 labels, 4 metrics.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    valid: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

fn row_argmax(r: u32) -> u32 {
    var best = 0u;
    var bv = logits[r * p.cols];
    for (var c = 1u; c < p.cols; c++) {
        let v = logits[r * p.cols + c];
        if (v > bv) {
            bv = v;
            best = c;
        }
    }
    return best;
}

@compute @workgroup_size(RW)
fn classify(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    var correct = 0.0;
    var count = 0.0;
    for (var r = lid; r < p.rows; r += RW) {
        let y = labels[r];
        if (y < p.cols) {
            l += loss[r];
            count += 1.0;
            correct += select(0.0, 1.0, row_argmax(r) == y);
        }
    }
    l = tree_sum(lid, l);
    correct = tree_sum(lid, correct);
    count = tree_sum(lid, count);
    if (lid == 0u) {
        metrics[0] = metrics[0] + l;
        metrics[1] = metrics[1] + correct;
        metrics[2] = metrics[2] + count;
    }
}

@compute @workgroup_size(RW)
fn regress(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    for (var r = lid; r < p.valid; r += RW) {
        l += loss[r];
    }
    l = tree_sum(lid, l);
    if (lid == 0u) {
        metrics[0] = metrics[0] + l;
        metrics[2] = metrics[2] + f32(p.valid);
    }
}

@compute @workgroup_size(RW)
fn regress_labelled(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    var count = 0.0;
    for (var r = lid; r < p.rows; r += RW) {
        if (labels[r] != 0xffffffffu) {
            l += loss[r];
            count += 1.0;
        }
    }
    l = tree_sum(lid, l);
    count = tree_sum(lid, count);
    if (lid == 0u) {
        metrics[0] = metrics[0] + l;
        metrics[2] = metrics[2] + count;
    }
}
