// loss_replay.wgsl — the loss of a rehearsal batch whose replayed rows carry the logits the
// model gave them when they entered the buffer: Dark Experience Replay, DER and DER++
// (Buzzega et al. 2020).
//
// A batch holds `fresh` new rows followed by rows − fresh replayed ones. Per row r with
// logits z, label y, stored logits s (read for replayed rows only), C classes, logit weight
// α and label weight β:
//   ce_r = logsumexp(z) − z_y
//   new row:      loss[r] = ce_r
//                 dz[r,c] = (softmax(z)_c − [c = y]) / N_new
//   replayed row: loss[r] = α·mean_c (z_c − s_c)² + β·ce_r
//                 dz[r,c] = (2α·(z_c − s_c)/C + β·(softmax(z)_c − [c = y])) / N_rep
// where N_new and N_rep count the new and the replayed rows whose label is not 0xffffffff
// (padding: loss 0, gradient 0). dz is the gradient of the batch objective
//   L = mean_new ce + α·mean_{rep, c} (z − s)² + β·mean_rep ce
// (PyTorch's F.cross_entropy and F.mse_loss means); β = 0 is DER, β > 0 DER++. Any other
// label ≥ C makes the row's loss and gradient NaN, so a bad label cannot pass silently.
// Shapes: z, s, dz: [rows, cols]; labels: [rows] u32; loss: [rows]. One workgroup per row.
// Bindings: 0 params, 1 z, 2 s, 3 labels, 4 loss, 5 dz.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    fresh: u32,
    _pad: u32,
    alpha: f32,
    beta: f32,
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dz: array<f32>;

const PAD: u32 = 0xffffffffu;

@compute @workgroup_size(RW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = linear_group(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let y = labels[r];
    let replayed = r >= p.fresh;
    // The valid rows of this row's part of the batch.
    let lo = select(0u, p.fresh, replayed);
    let hi = select(p.fresh, p.rows, replayed);
    var valid = 0.0;
    for (var k = lo + lid; k < hi; k += RW) {
        valid += select(1.0, 0.0, labels[k] == PAD);
    }
    valid = tree_sum(lid, valid);
    var m = -3.402823e38;
    for (var c = lid; c < p.cols; c += RW) {
        m = max(m, z[base + c]);
    }
    m = tree_max(lid, m);
    var se = 0.0; // Σ exp(z − m)
    var zy = 0.0;
    var sq = 0.0; // Σ (z − s)², replayed rows
    for (var c = lid; c < p.cols; c += RW) {
        let v = z[base + c];
        se += exp(v - m);
        zy += select(0.0, v, c == y);
        if (replayed) {
            let d = v - s[base + c];
            sq += d * d;
        }
    }
    se = tree_sum(lid, se);
    zy = tree_sum(lid, zy);
    sq = tree_sum(lid, sq);
    let pad = y == PAD;
    let bad = y >= p.cols && !pad;
    var nan_bits = 0x7fc00000u;
    let nan = bitcast<f32>(nan_bits);
    let a = select(0.0, p.alpha, replayed);
    let b = select(1.0, p.beta, replayed);
    let inv_n = 1.0 / max(valid, 1.0);
    let inv_s = 1.0 / se;
    let two_a_c = 2.0 * a / f32(p.cols);
    for (var c = lid; c < p.cols; c += RW) {
        let v = z[base + c];
        let prob = exp(v - m) * inv_s;
        var g = b * (prob - select(0.0, 1.0, c == y));
        if (replayed) {
            g += two_a_c * (v - s[base + c]);
        }
        dz[base + c] = select(select(g * inv_n, 0.0, pad), nan, bad);
    }
    if (lid == 0u) {
        let ce = m + log(se) - zy;
        let l = b * ce + a * sq / f32(p.cols);
        loss[r] = select(select(l, 0.0, pad), nan, bad);
    }
}
