// step.wgsl — the training-step counter kept on the GPU.
//
// counter[0]: step within the recorded chunk (row of the schedule table, batch of the index
//             buffer); counter[1]: global step (RNG offset for dropout); [2], [3] reserved.
// entry `advance`: counter[0] += n, counter[1] += n (n = 1) — recorded last in every step, so
// a chunk of steps is the same dispatch list recorded many times with no host work between.
// Bindings: 0 params, 1 counter.
// Libraries prepended by the launcher: none.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> counter: array<u32>;

@compute @workgroup_size(1)
fn advance() {
    counter[0] = counter[0] + p.n;
    counter[1] = counter[1] + p.n;
}
