// pool.wgsl — 2-D max and average pooling over NCHW tensors, forward and backward.
//
// Geometry: x is [B, C, H, W]; a size×size window moves with stride S, no padding, floor
// mode (PyTorch's defaults): OH = (H − size)/S + 1, OW = (W − size)/S + 1; y is [B, C, OH, OW].
// Window (oh, ow) covers rows oh·S .. oh·S + size − 1 and columns ow·S .. ow·S + size − 1.
//
// max_forward: y = the window's maximum, argmax = its flat index h·W + w within the input
//   plane; the first maximum in row-major window order wins ties. NaN counts as larger than
//   every number (the first NaN wins), so a NaN input propagates as PyTorch's does.
// max_backward: dx[h, w] = Σ dy[oh, ow] over the windows containing (h, w) whose argmax is
//   h·W + w (correct for overlapping windows, stride < size).
// avg_forward: y = scale · Σ window (scale = 1/size², rounded to f32 by the launcher).
// avg_backward: dx[h, w] = scale · Σ dy[oh, ow] over the windows containing (h, w).
// Both backward kernels are gathers: one thread per dx element sums in the fixed order oh
// then ow — no atomics, deterministic, and every dx is written (0 outside all windows).
//
// Bindings: 0 params, 1 src (x or dy), 2 dst (y or dx), 3 argmax (u32; max kernels only:
// written by max_forward, read by max_backward).
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    size: u32,
    stride: u32,
    out_h: u32,
    out_w: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;

// Bit test, so that no floating-point optimisation can drop it.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// The half-open range of window positions o with o·S ≤ i < o·S + size, clipped to [0, n).
fn windows(i: u32, n: u32) -> vec2<u32> {
    var lo = 0u;
    if (i + 1u > p.size) {
        lo = (i + 1u - p.size + p.stride - 1u) / p.stride;
    }
    let hi = min(i / p.stride + 1u, n);
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.batch * p.channels * p.out_h * p.out_w) {
        return;
    }
    let ow = i % p.out_w;
    let oh = (i / p.out_w) % p.out_h;
    let base = (i / (p.out_w * p.out_h)) * p.height * p.width; // start of plane (b, c)
    let h0 = oh * p.stride;
    let w0 = ow * p.stride;
    var best_k = h0 * p.width + w0;
    var best = src[base + best_k];
    for (var kh = 0u; kh < p.size; kh += 1u) {
        for (var kw = 0u; kw < p.size; kw += 1u) {
            let k = (h0 + kh) * p.width + w0 + kw;
            let v = src[base + k];
            if (!is_nan(best) && (is_nan(v) || v > best)) {
                best = v;
                best_k = k;
            }
        }
    }
    dst[i] = best;
    arg[i] = best_k;
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.batch * p.channels * p.height * p.width) {
        return;
    }
    let w = i % p.width;
    let h = (i / p.width) % p.height;
    let plane = i / (p.width * p.height);
    let k = h * p.width + w;
    let rh = windows(h, p.out_h);
    let rw = windows(w, p.out_w);
    var acc = 0.0;
    for (var oh = rh.x; oh < rh.y; oh += 1u) {
        for (var ow = rw.x; ow < rw.y; ow += 1u) {
            let o = (plane * p.out_h + oh) * p.out_w + ow;
            if (arg[o] == k) {
                acc += src[o];
            }
        }
    }
    dst[i] = acc;
}

@compute @workgroup_size(WG)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.batch * p.channels * p.out_h * p.out_w) {
        return;
    }
    let ow = i % p.out_w;
    let oh = (i / p.out_w) % p.out_h;
    let base = (i / (p.out_w * p.out_h)) * p.height * p.width;
    let h0 = oh * p.stride;
    let w0 = ow * p.stride;
    var acc = 0.0;
    for (var kh = 0u; kh < p.size; kh += 1u) {
        for (var kw = 0u; kw < p.size; kw += 1u) {
            acc += src[base + (h0 + kh) * p.width + w0 + kw];
        }
    }
    dst[i] = acc * p.scale;
}

@compute @workgroup_size(WG)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.batch * p.channels * p.height * p.width) {
        return;
    }
    let w = i % p.width;
    let h = (i / p.width) % p.height;
    let plane = i / (p.width * p.height);
    let rh = windows(h, p.out_h);
    let rw = windows(w, p.out_w);
    var acc = 0.0;
    for (var oh = rh.x; oh < rh.y; oh += 1u) {
        for (var ow = rw.x; ow < rw.y; ow += 1u) {
            acc += src[(plane * p.out_h + oh) * p.out_w + ow];
        }
    }
    dst[i] = acc * p.scale;
}
