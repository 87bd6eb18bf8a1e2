// loss_scale.wgsl — dynamic loss scaling for mixed-precision training, all on the GPU so a
// chunk of steps still needs no host work between steps.
//
// scaler (u32 × 4): [0] bits of the f32 scale S, [1] steps since the last overflow or growth,
//                   [2] total skipped steps, [3] unused.
// counter (u32 × 4, step.wgsl's): [2] is the step's overflow flag, read by the optimizer
//                   rules (optim_rules.wgsl: a flagged step updates nothing).
// One step: loss → `scale` (∂L/∂logits ×= S) → backward (GEMM operands rounded to f16: S
// keeps small gradients above f16's underflow) → `unscale` per gradient arena (×= 1/S, and
// any non-finite gradient — an f16 overflow — sets the flag) → clipping → optimizer →
// `update` (flag set: S ×= backoff, counter reset, step skipped; else after `interval`
// clean steps S ×= growth; the flag is cleared) → counter advance.
// S stays a power of two (growth 2, backoff 1/2) so scaling and unscaling are exact in f32;
// it is kept within [2⁻²⁴, 2²⁴].
// Bindings: 0 params, 1 x / grad (read_write), 2 scaler, 3 counter, 4 segs.
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/optim_segments.wgsl.

struct Params {
    n: u32,        // scale: elements; unscale: workgroups of the segment table
    segments: u32, // unscale: rows of the segment table
    interval: u32, // update: clean steps before growing S
    _pad: u32,
    growth: f32,
    backoff: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> scaler: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> segs: array<vec4<u32>>;

const MIN_SCALE: f32 = 5.9604645e-8; // 2⁻²⁴
const MAX_SCALE: f32 = 16777216.0; // 2²⁴

// ∂L/∂logits ×= S.
@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        x[i] = x[i] * bitcast<f32>(scaler[0]);
    }
}

// Exponent bits all ones: ±inf or NaN (WGSL has no isinf/isnan, and compilers may assume
// finite floats, so test the bits).
fn non_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

// The listed gradient segments ×= 1/S; a non-finite one flags the step.
@compute @workgroup_size(WG)
fn unscale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = launch_slot(wid, nwg, lid, p.n, p.segments);
    if (s.ok) {
        let g = x[s.i] * (1.0 / bitcast<f32>(scaler[0]));
        x[s.i] = g;
        if (non_finite(g)) {
            atomicOr(&counter[2], 1u);
        }
    }
}

// After the optimizer: adjust S from the step's flag, then clear the flag.
@compute @workgroup_size(1)
fn update() {
    var s = bitcast<f32>(scaler[0]);
    if (atomicLoad(&counter[2]) != 0u) {
        s = max(s * p.backoff, MIN_SCALE);
        scaler[1] = 0u;
        scaler[2] = scaler[2] + 1u;
    } else {
        scaler[1] = scaler[1] + 1u;
        if (scaler[1] >= p.interval) {
            s = min(s * p.growth, MAX_SCALE);
            scaler[1] = 0u;
        }
    }
    scaler[0] = bitcast<u32>(s);
    atomicStore(&counter[2], 0u);
}
