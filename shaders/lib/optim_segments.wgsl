// optim_segments.wgsl — the segment table of a multi-tensor launch over a flat buffer.
//
// A flat buffer (a model's parameter arena, or its gradients) holds many tensors at aligned
// offsets. The launch covers only the listed segments: row s of `segs` is
// (first workgroup, offset, len, bits of a per-segment f32), rows sorted by first workgroup,
// each segment given ceil(len / WG) workgroups of its own. So a workgroup never straddles two
// tensors: it processes exactly the elements (and in the same WG-chunks) that a per-tensor
// launch over that tensor alone would, and gaps and unlisted (frozen) tensors are untouched.
// The including shader declares `segs: array<vec4<u32>>` and passes the row count.

struct Slot {
    i: u32,     // element of the flat buffer, valid when ok
    scale: f32, // the segment's f32 (lr multiplier)
    ok: bool,   // false past the segment's end
}

// Finds the segment of workgroup `grp` (< total workgroups) by binary search over the first
// workgroups (uniform across the workgroup, so there is no divergence).
fn segment_slot(grp: u32, lid: u32, rows: u32) -> Slot {
    var lo = 0u;
    var hi = rows;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (segs[mid].x <= grp) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = segs[lo];
    let at = (grp - s.x) * WG + lid; // index within the tensor
    return Slot(s.y + at, bitcast<f32>(s.w), at < s.z);
}

// The slot of invocation `lid` of workgroup `wid` in a launch of `groups` workgroups over a
// table of `rows` segments (the entry points' common start); ok is false past the launch.
fn launch_slot(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, groups: u32, rows: u32) -> Slot {
    let grp = linear_group(wid, nwg);
    if (grp >= groups) {
        return Slot(0u, 0.0, false);
    }
    return segment_slot(grp, lid, rows);
}
