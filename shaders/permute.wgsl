// permute.wgsl — batched transpose of the last two axes: out[b, q, p] = x[b, p, q].
//
// Shapes: x is [B, P, Q]; out is [B, Q, P]. Elements are copied as raw 32-bit words (exact,
// and f32 or u32 alike). Conv layers use it to turn the matmul output [B·OH·OW, F] into NCHW
// [B, F, OH, OW] (B, P = OH·OW, Q = F) and back (B, P = F, Q = OH·OW).
//
// One 16×16 workgroup per 16×16 tile of one batch element: threads read the tile along q
// (contiguous in x) into workgroup memory and write it along p (contiguous in out), so both
// sides are coalesced. Tiles are numbered t = (b·tiles_p + tp)·tiles_q + tq, spread over
// the x and y workgroup dimensions by Gpu::grid; workgroups past the end return at once.
// Bindings: 0 params, 1 x, 2 out.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

const TILE: u32 = 16u;

struct Params {
    batch: u32,
    rows: u32,    // P
    cols: u32,    // Q
    tiles_p: u32, // ceil(P / TILE)
    tiles_q: u32, // ceil(Q / TILE)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

// One padding column so that reading a column of the tile does not hit one memory bank.
var<workgroup> tile: array<array<u32, 17>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = linear_group(wid, nwg);
    let per_batch = p.tiles_p * p.tiles_q;
    if (t >= p.batch * per_batch) {
        return; // uniform across the workgroup, so the barrier below stays in uniform control flow
    }
    let b = t / per_batch;
    let tp = (t % per_batch) / p.tiles_q;
    let tq = t % p.tiles_q;
    let base = b * p.rows * p.cols;

    let pi = tp * TILE + lid.y;
    let qi = tq * TILE + lid.x;
    if (pi < p.rows && qi < p.cols) {
        tile[lid.y][lid.x] = x[base + pi * p.cols + qi];
    }
    workgroupBarrier();
    let qo = tq * TILE + lid.y;
    let po = tp * TILE + lid.x;
    if (qo < p.cols && po < p.rows) {
        out[base + qo * p.rows + po] = tile[lid.x][lid.y];
    }
}
