// conv_dgrad.wgsl — the input gradient of a 2-D convolution as an implicit GEMM (no dcols
// buffer, no col2im): a gather, one output element per (thread, slot), no atomics.
//
// GEMM view: rows m = input positions (B·H·W), columns n = channels (C), depth k = (f, kh, kw)
// (F·KS·KS):  dx[b, c, h, w] = Σ_{f, kh, kw} dz[b, f, oh, ow] · W[f, c, kh, kw]  over the taps
// with oh·S = h + P − kh and ow·S = w + P − kw inside the output (others contribute 0);
// dz = dy·act'(z) (conv_dz.wgsl). Per element a chain of F·KS·KS fused multiply-adds in k
// order: deterministic. Every element of dx is written (0 where no output reads it).
// The tiles hold TILE_S (conv_geom.wgsl): with f16 the operands dz and W are rounded to f16,
// the sums stay f32.
// Grid: (ceil(B·H·W / BM), ceil(C / BN)); workgroup (BM / TM, BN / TN), x along m (the
// GEMM: conv_gemm.wgsl).
// Bindings: 0 params, 1 dy, 2 zin (dy again for the identity), 3 weights, 4 dx.
// Libraries prepended by the launcher, in order: lib/activation_fns.wgsl, lib/conv_geom.wgsl,
//   lib/conv_gemm.wgsl, lib/conv_dz.wgsl.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> zin: array<f32>;
@group(0) @binding(3) var<storage, read> wt: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// The GEMM (conv_gemm.wgsl): A[m, (f, kh, kw)] = dz at the output position whose tap
// (kh, kw) reads input position m (0 if none), B[(f, kh, kw), c] = W[f, c, kh, kw].
// Row m's decomposition: (b, h + P, w + P).
fn a_row(m: u32) -> vec4<u32> {
    let hw = p.height * p.width;
    return vec4<u32>(m / hw, (m % hw) / p.width + p.padding, m % p.width + p.padding, 0u);
}

fn a_elem(row: vec4<u32>, k: u32) -> f32 {
    let b = row.x;
    let hp = row.y;
    let wp = row.z;
    let r = k % KK;
    let kh = r / KS;
    let kw = r % KS;
    if (hp >= kh && wp >= kw) {
        let dh = hp - kh;
        let dwp = wp - kw;
        let oh = dh / STRIDE;
        let ow = dwp / STRIDE;
        if (dh % STRIDE == 0u && dwp % STRIDE == 0u && oh < p.out_h && ow < p.out_w) {
            return dz_at(((b * p.filters + k / KK) * p.out_h + oh) * p.out_w + ow);
        }
    }
    return 0.0;
}

fn b_elem(k: u32, c: u32) -> f32 {
    return wt[(k / KK) * p.channels * KK + c * KK + k % KK];
}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wid.x * BM;
    let n0 = wid.y * BN;
    let hw = p.height * p.width;
    let rows = p.batch * hw;
    var acc = gemm(wid, lid, rows, p.channels, p.filters * KK);
    for (var a = 0u; a < TM; a++) {
        let mo = m0 + lid.x + a * TX;
        if (mo >= rows) {
            continue;
        }
        for (var c = 0u; c < TN; c++) {
            let ch = n0 + lid.y + c * TY;
            if (ch < p.channels) {
                dx[((mo / hw) * p.channels + ch) * hw + mo % hw] = acc[a * TN + c];
            }
        }
    }
}
