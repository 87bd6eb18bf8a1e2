// gather.wgsl — assemble a batch from a GPU-resident dataset by an index buffer.
//
// out[r, c] = src[idx[offset + r], c]  for r < rows, c < cols; an index ≥ src_rows
// (e.g. 0xffffffff, used to pad a short last batch) yields a row of zero bits.
// Elements are copied as raw 32-bit words, so f32 features and u32 labels both work.
// Shapes: src: [src_rows, cols]; idx: [≥ offset + rows] u32; out: [rows, cols].
// Bindings: 0 params, 1 src, 2 idx, 3 out.

struct Params {
    rows: u32,
    cols: u32,
    src_rows: u32,
    offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.rows * p.cols) {
        return;
    }
    let r = i / p.cols;
    let c = i % p.cols;
    let s = idx[p.offset + r];
    out[i] = select(0u, src[s * p.cols + c], s < p.src_rows);
}
