// conv_fwd.wgsl — 2-D convolution forward as an implicit GEMM: the im2col matrix is never
// materialised; each workgroup gathers its tile of patches straight from the NCHW input.
//
// GEMM view: rows m = output positions (B·OH·OW), columns n = filters (F), depth k = patch
// index (C·KS·KS); A[m, k] = tap of x (conv_geom.wgsl), B[k, n] = weights[n, k].
// Epilogue: z = A·B + bias[n] written straight to NCHW [B, F, OH, OW], then y = act(z).
//   main:   writes y only (z not kept: identity activation, or inference);
//   main_z: writes z and y (training keeps z for the activation's backward).
// Per output it is a chain of C·KS·KS fused multiply-adds in k order starting from 0, then
// the bias: the same arithmetic as im2col + matmul, deterministic, no atomics. Every output
// element is written. The tiles hold TILE_S (conv_geom.wgsl): with f16 the operands x and W
// are rounded to f16, the sums and the epilogue stay f32.
// Grid: (ceil(M / BM), ceil(F / BN)); workgroup (BM / TM, BN / TN): x runs along m so that
// neighbouring threads store neighbouring NCHW addresses (the GEMM: conv_gemm.wgsl).
// Bindings: 0 params, 1 x, 2 weights, 3 bias (a dummy when !HAS_BIAS), 4 z, 5 y.
// Libraries prepended by the launcher, in order: lib/activation_fns.wgsl, lib/conv_geom.wgsl,
//   lib/conv_gemm.wgsl, lib/conv_tap.wgsl.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// The GEMM (conv_gemm.wgsl): A[m, k] = tap k of output position m, B[k, n] = wt[n, k].
// Row m's decomposition: (xb, hp0, wp0) as conv_tap.wgsl takes them.
fn a_row(m: u32) -> vec4<u32> {
    let ohw = p.out_h * p.out_w;
    let b = m / ohw;
    let s = m % ohw;
    let hp0 = (s / p.out_w) * STRIDE;
    let wp0 = (s % p.out_w) * STRIDE;
    return vec4<u32>(b * p.channels * p.height * p.width, hp0, wp0, 0u);
}

fn a_elem(row: vec4<u32>, k: u32) -> f32 {
    return tap(row.x, row.y, row.z, k);
}

fn b_elem(k: u32, n: u32) -> f32 {
    return wt[n * p.channels * KK + k];
}

// The NCHW index of output (m, n), or 0xffffffff when outside the output.
fn out_index(m: u32, n: u32) -> u32 {
    let ohw = p.out_h * p.out_w;
    if (m >= p.batch * ohw || n >= p.filters) {
        return 0xffffffffu;
    }
    return ((m / ohw) * p.filters + n) * ohw + m % ohw;
}

fn with_bias(v: f32, n: u32) -> f32 {
    if (HAS_BIAS) {
        return v + bias[n];
    }
    return v;
}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = gemm(wid, lid, p.batch * p.out_h * p.out_w, p.filters, p.channels * KK);
    for (var a = 0u; a < TM; a++) {
        let m = wid.x * BM + lid.x + a * TX;
        for (var c = 0u; c < TN; c++) {
            let n = wid.y * BN + lid.y + c * TY;
            let o = out_index(m, n);
            if (o != 0xffffffffu) {
                y[o] = act_forward(ACT, with_bias(acc[a * TN + c], n), p.alpha);
            }
        }
    }
}

@compute @workgroup_size(TX, TY, 1)
fn main_z(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = gemm(wid, lid, p.batch * p.out_h * p.out_w, p.filters, p.channels * KK);
    for (var a = 0u; a < TM; a++) {
        let m = wid.x * BM + lid.x + a * TX;
        for (var c = 0u; c < TN; c++) {
            let n = wid.y * BN + lid.y + c * TY;
            let o = out_index(m, n);
            if (o != 0xffffffffu) {
                let v = with_bias(acc[a * TN + c], n);
                z[o] = v;
                y[o] = act_forward(ACT, v, p.alpha);
            }
        }
    }
}
