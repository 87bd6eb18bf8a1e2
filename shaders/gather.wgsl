// gather.wgsl — assemble a batch from a GPU-resident dataset by an index buffer.
//
// out[r, c] = src[idx[o + r], c]  for r < rows, c < cols, with o = offset + counter[0]·rows
// (the counter advances once per training step on the GPU, so one recorded gather walks
// through an epoch's shuffled index buffer batch by batch); an index ≥ src_rows
// (e.g. 0xffffffff, used to pad a short last batch) yields a row filled with `fill`
// (0 for features; 0xffffffff for labels, which the loss treats as padding).
// Elements are copied as raw 32-bit words, so f32 features and u32 labels both work.
// Shapes: src: [src_rows, cols]; idx: [≥ o + rows] u32; out: [rows, cols]; counter: [1] u32.
// Bindings: 0 params, 1 src, 2 idx, 3 out, 4 counter.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    src_rows: u32,
    offset: u32,
    fill: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> counter: array<u32>;

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
