// gather.wgsl — assemble a batch from a GPU-resident dataset by an index buffer.
//
// out[r, c] = src[idx[o + r], c]  for r < rows, c < cols, with o = offset + counter[0]·rows
// (the counter advances once per training step on the GPU, so one recorded gather walks
// through an epoch's shuffled index buffer batch by batch); an index ≥ src_rows
// (e.g. 0xffffffff, used to pad a short last batch) yields a row filled with `fill`
// (0 for features; 0xffffffff for labels, which the loss treats as padding).
// Elements are copied as raw 32-bit words, so f32 features and u32 labels both work.
// Shapes: src: [src_rows, cols]; idx: [≥ o + rows] u32; out: [rows, cols]; counter: [1] u32.
// entry `main`: one source. entry `pair`: two sources gathered by the same indices in one
// dispatch (a batch's features and its labels): elements i < rows·cols are main's; the next
// rows·cols2 ones are out2[r, c] = src2[idx[o + r], c] (fill2 for a padding index).
// Bindings: 0 params, 1 src, 2 idx, 3 out, 4 counter, 5 src2, 6 out2 (pair only).
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    src_rows: u32,
    offset: u32,
    fill: u32,
    cols2: u32, // pair: columns of src2 / out2
    fill2: u32, // pair: out2's value for a padding index
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> counter: array<u32>;
@group(0) @binding(5) var<storage, read> src2: array<u32>;
@group(0) @binding(6) var<storage, read_write> out2: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.rows * p.cols) {
        return;
    }
    let r = i / p.cols;
    let c = i % p.cols;
    let s = idx[p.offset + counter[0] * p.rows + r];
    out[i] = select(p.fill, src[s * p.cols + c], s < p.src_rows);
}

@compute @workgroup_size(WG)
fn pair(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let first = p.rows * p.cols;
    if (i < first) {
        let r = i / p.cols;
        let s = idx[p.offset + counter[0] * p.rows + r];
        out[i] = select(p.fill, src[s * p.cols + i % p.cols], s < p.src_rows);
        return;
    }
    let j = i - first;
    if (j >= p.rows * p.cols2) {
        return;
    }
    let r = j / p.cols2;
    let s = idx[p.offset + counter[0] * p.rows + r];
    out2[j] = select(p.fill2, src2[s * p.cols2 + j % p.cols2], s < p.src_rows);
}
