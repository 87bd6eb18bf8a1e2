// im2col.wgsl — unfold image patches into matrix rows (im2col) and its adjoint (col2im).
//
// Geometry: x is [B, C, H, W] (NCHW); a K×K kernel moves with stride S over x padded by P
// zeros on every side; OH = (H + 2P − K)/S + 1 and OW = (W + 2P − K)/S + 1 (floor).
// cols is [B·OH·OW, C·K·K] with row r = (b·OH + oh)·OW + ow and column j = (c·K + kh)·K + kw:
//   cols[r, j] = x[b, c, oh·S + kh − P, ow·S + kw − P]   (0 where that lies in the padding)
// so that a convolution with weights [F, C, K, K] (viewed as [F, C·K·K]) is cols · Wᵀ.
//
// col2im is the adjoint, dx = im2colᵀ(dcols), written as a gather: one thread per
// dx[b, c, h, w] adds, in the fixed order kh then kw, every dcols[r, j] that im2col copied
// from x[b, c, h, w] (those with oh·S + kh = h + P and ow·S + kw = w + P). No atomics, so
// the result is deterministic, and every element of dx is written (0 where no patch reads it).
//
// Shapes: src is x (im2col) or dcols (col2im); dst is cols (im2col) or dx (col2im).
// One thread per element of dst. Bindings: 0 params, 1 src, 2 dst.
// Libraries prepended by the launcher, in order: lib/common.wgsl.

struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let kk = p.kernel * p.kernel;
    let plen = p.channels * kk; // patch length C·K·K ("patch" is a WGSL keyword)
    if (i >= p.batch * p.out_h * p.out_w * plen) {
        return;
    }
    let r = i / plen;
    let j = i % plen;
    let c = j / kk;
    let kh = (j / p.kernel) % p.kernel;
    let kw = j % p.kernel;
    let b = r / (p.out_h * p.out_w);
    let oh = (r / p.out_w) % p.out_h;
    let ow = r % p.out_w;
    // Coordinates in the padded image (unsigned); the image occupies [P, P + H) × [P, P + W).
    let hp = oh * p.stride + kh;
    let wp = ow * p.stride + kw;
    var v = 0.0;
    if (hp >= p.padding && hp < p.height + p.padding && wp >= p.padding && wp < p.width + p.padding) {
        v = src[((b * p.channels + c) * p.height + (hp - p.padding)) * p.width + (wp - p.padding)];
    }
    dst[i] = v;
}

@compute @workgroup_size(WG)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.batch * p.channels * p.height * p.width) {
        return;
    }
    let w = i % p.width;
    let h = (i / p.width) % p.height;
    let c = (i / (p.width * p.height)) % p.channels;
    let b = i / (p.width * p.height * p.channels);
    let plen = p.channels * p.kernel * p.kernel;
    let hp = h + p.padding;
    let wp = w + p.padding;
    var acc = 0.0;
    // kh ≤ hp is needed for oh·S = hp − kh ≥ 0; likewise kw ≤ wp.
    for (var kh = 0u; kh < p.kernel && kh <= hp; kh += 1u) {
        let dh = hp - kh;
        let oh = dh / p.stride;
        if (dh % p.stride != 0u || oh >= p.out_h) {
            continue;
        }
        let row0 = (b * p.out_h + oh) * p.out_w;
        let col0 = (c * p.kernel + kh) * p.kernel;
        for (var kw = 0u; kw < p.kernel && kw <= wp; kw += 1u) {
            let dw = wp - kw;
            let ow = dw / p.stride;
            if (dw % p.stride != 0u || ow >= p.out_w) {
                continue;
            }
            acc += src[(row0 + ow) * plen + col0 + kw];
        }
    }
    dst[i] = acc;
}
