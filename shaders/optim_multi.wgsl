// optim_multi.wgsl — one launch updates every listed tensor of a flat parameter buffer (a
// model's arena): w, grad, s1, s2 are the arena's flat values, gradients and optimizer
// states, and the segment table (optim_segments.wgsl) lists each trainable tensor with its
// per-layer lr multiplier. Frozen tensors are simply not listed. Each element runs the same
// rule function as the per-tensor launch (optim_rules.wgsl), so results are bit-identical.
// p.n = total workgroups, p.segments = table rows.
// Bindings: 0 params, 1 w, 2 grad, 3 s1, 4 s2, 5 sched, 6 counter, 7 segs [rows] vec4<u32>.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/optim_rules.wgsl,
//   lib/optim_segments.wgsl.

@group(0) @binding(7) var<storage, read> segs: array<vec4<u32>>;

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        sgd_at(s.i, hyper_scaled(s.scale));
    }
}

@compute @workgroup_size(WG)
fn momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        momentum_at(s.i, hyper_scaled(s.scale));
    }
}

@compute @workgroup_size(WG)
fn adagrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        adagrad_at(s.i, hyper_scaled(s.scale));
    }
}

@compute @workgroup_size(WG)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        rmsprop_at(s.i, hyper_scaled(s.scale));
    }
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        adam_at(s.i, hyper_scaled(s.scale));
    }
}
