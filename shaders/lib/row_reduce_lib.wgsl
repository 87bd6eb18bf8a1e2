// row_reduce_lib.wgsl — workgroup tree reductions over one row (a library, no bindings).
//
// One workgroup of RW threads handles one row. Each thread folds a strided slice
// (columns lid, lid + RW, ...) in order, then a fixed binary tree combines the RW partials:
// the same order on every run, so results are bit-reproducible (no atomics).

const RW: u32 = 64u;

var<workgroup> red: array<f32, RW>;

fn tree_max(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = RW / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn tree_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = RW / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}
