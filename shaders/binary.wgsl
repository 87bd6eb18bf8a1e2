// binary.wgsl — elementwise binary operations.
//
// Injected: OP (0 add, 1 sub, 2 mul).
// entry `binary`:   out[i] = x[i] OP y[i]                 x, y, out: [n]
// entry `bias_add`: out[r, c] = x[r, c] + y[c]            x, out: [n / cols, cols], y: [cols]
// Bindings: 0 params, 1 x, 2 y, 3 out. Output may alias neither input.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    n: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    switch OP {
        case 0u: { out[i] = x[i] + y[i]; }
        case 1u: { out[i] = x[i] - y[i]; }
        default: { out[i] = x[i] * y[i]; }
    }
}

@compute @workgroup_size(WG)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    out[i] = x[i] + y[i % p.cols];
}
