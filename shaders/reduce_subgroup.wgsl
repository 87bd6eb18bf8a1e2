// reduce_subgroup.wgsl — column sums with subgroup shuffles (needs wgpu::Features::SUBGROUP).
//
// entry `cols`: out[c] = scale · Σ_r x[r, c]. Shapes: x: [rows, cols]; out: [cols].
// Bindings: 0 params, 1 x, 2 out. Injected constants:
//   TR: u32        lanes per column, a power of two no larger than the adapter's smallest
//                  subgroup size (so the TR lanes of a column share one subgroup)
//   FORCE_SERIAL: bool   take the serial fallback below (tests exercise it with this)
//
// Invocation lid of a workgroup handles column c = group · (WG / TR) + lid / TR and rows
// k, k + TR, k + 2·TR, ... with k = lid % TR, summed in order. The TR partials of a column
// are then combined by a butterfly of subgroupShuffleXor over offsets TR/2, ..., 1: every lane
// computes a + b and its partner b + a, which are the same bits, so the order is fixed by TR
// alone (not by the subgroup size) and results are bit-reproducible on a device.
//
// The butterfly needs lane (subgroup_invocation_id) ≡ lid within each aligned block of TR
// invocations. Every known implementation forms subgroups from consecutive, aligned runs of
// local_invocation_index, but no specification promises it, so each subgroup checks; if any
// lane disagrees (or FORCE_SERIAL), the subgroup falls back to lane k = 0 summing its whole
// column serially, which is correct under any mapping. All lanes reach every subgroup
// operation (no early return), as those operations require.
//
// No `enable subgroups;` directive: naga 30 refuses it ("the `subgroups` enable-extension is
// not yet supported") and accepts the builtins without it on a device with SUBGROUP. Browsers
// require the directive, so this kernel is native-only (wasm builds use reduce.wgsl `cols`).
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let c = linear_group(wid, nwg) * (WG / TR) + lid / TR;
    let k = lid % TR;
    let valid = c < p.cols;

    // Does this subgroup's lane numbering line up with lid in aligned blocks of TR?
    let block_first = subgroupShuffle(lid, lane & ~(TR - 1u));
    let mapped = (lane % TR == k) && (block_first == lid - k);
    let fast = subgroupAll(mapped) && !FORCE_SERIAL;

    var s = 0.0;
    if (fast) {
        if (valid) {
            for (var r = k; r < p.rows; r += TR) {
                s += x[r * p.cols + c];
            }
        }
    } else if (valid && k == 0u) {
        for (var r = 0u; r < p.rows; r++) {
            s += x[r * p.cols + c];
        }
    }
    // `fast` is the same on every lane of the subgroup, so all lanes shuffle together.
    if (fast) {
        for (var m = TR / 2u; m > 0u; m >>= 1u) {
            s += subgroupShuffleXor(s, m);
        }
    }
    if (valid && k == 0u) {
        out[c] = s * p.scale;
    }
}
