// loss_distill.wgsl — knowledge distillation loss and its gradient (Hinton et al. 2015).
//
// Per row r with student logits z, teacher logits t, label y, weight α, temperature T:
//   hard   = logsumexp(z) − z_y                                   (only when y < C)
//   p_t    = softmax(t / T),   p_s = softmax(z / T)
//   soft   = T² · Σ_c p_t,c (log p_t,c − log p_s,c)              (T² · KL(p_t ‖ p_s))
//   loss[r] = α·hard + (1 − α)·soft
//   dz[r,c] = (α·(softmax(z)_c − [c = y]) + (1 − α)·T·(p_s,c − p_t,c)) / N
// where N = number of rows whose label is not 0xffffffff (padding). A label of 0xfffffffe
// marks an unlabelled sample: only the soft term applies (α is treated as 0 for it).
// Shapes: z, t, dz: [rows, cols]; labels: [rows] u32; loss: [rows]. One workgroup per row.
// Bindings: 0 params, 1 z, 2 t, 3 labels, 4 loss, 5 dz.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/row_reduce_lib.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    alpha: f32,
    temperature: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
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
    let inv_t = 1.0 / p.temperature;
    var valid = 0.0;
    for (var k = lid; k < p.rows; k += RW) {
        valid += select(1.0, 0.0, labels[k] == PAD);
    }
    valid = tree_sum(lid, valid);
    // Maxima of z, z/T and t/T.
    var mz = -3.402823e38;
    var mt = -3.402823e38;
    for (var c = lid; c < p.cols; c += RW) {
        mz = max(mz, z[base + c]);
        mt = max(mt, t[base + c]);
    }
    mz = tree_max(lid, mz);
    mt = tree_max(lid, mt);
    var sz = 0.0;  // Σ exp(z − mz)
    var szt = 0.0; // Σ exp((z − mz)/T)
    var stt = 0.0; // Σ exp((t − mt)/T)
    for (var c = lid; c < p.cols; c += RW) {
        sz += exp(z[base + c] - mz);
        szt += exp((z[base + c] - mz) * inv_t);
        stt += exp((t[base + c] - mt) * inv_t);
    }
    sz = tree_sum(lid, sz);
    szt = tree_sum(lid, szt);
    stt = tree_sum(lid, stt);
    let labelled = y < p.cols;
    let a = select(0.0, p.alpha, labelled);
    let tt = p.temperature * p.temperature;
    // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s), with log p = (x − m)/T − log S.
    var kl = 0.0;
    var zy = 0.0;
    for (var c = lid; c < p.cols; c += RW) {
        let lpt = (t[base + c] - mt) * inv_t - log(stt);
        let lps = (z[base + c] - mz) * inv_t - log(szt);
        let pt = exp(lpt);
        kl += pt * (lpt - lps);
        zy += select(0.0, z[base + c], c == y);
        let ps = exp(lps);
        let hard_g = exp(z[base + c] - mz) / sz - select(0.0, 1.0, c == y);
        let g = (a * hard_g + (1.0 - a) * p.temperature * (ps - pt)) / max(valid, 1.0);
        dz[base + c] = select(g, 0.0, y == PAD);
    }
    kl = tree_sum(lid, kl);
    zy = tree_sum(lid, zy);
    if (lid == 0u) {
        let hard = select(0.0, mz + log(sz) - zy, labelled);
        loss[r] = select(a * hard + (1.0 - a) * tt * kl, 0.0, y == PAD);
    }
}
