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
// Grid: (ceil(B·H·W / BM), ceil(C / BN)); workgroup (BM / TM, BN / TN), x along m.
// Bindings: 0 params, 1 dy, 2 zin (dy again for the identity), 3 weights, 4 dx.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> zin: array<f32>;
@group(0) @binding(3) var<storage, read> wt: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const TX: u32 = BM / TM;
const TY: u32 = BN / TN;

var<workgroup> As: array<TILE_S, BK * BM>; // As[kk * BM + i]: dz tap k0 + kk of position m0 + i
var<workgroup> Bs: array<TILE_S, BK * BN>; // Bs[kk * BN + j]: weight of tap k0 + kk, channel n0 + j

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wid.x * BM;
    let n0 = wid.y * BN;
    let tid = lid.y * TX + lid.x;
    let hw = p.height * p.width;
    let rows = p.batch * hw;
    let depth = p.filters * KK;
    let plen = p.channels * KK; // ("patch" is a WGSL keyword)
    // This thread always loads row i of the A tile (THREADS is a multiple of BM).
    let i = tid % BM;
    let m = m0 + i;
    let mv = m < rows;
    let b = m / hw;
    let hp = (m % hw) / p.width + p.padding;
    let wp = m % p.width + p.padding;
    var acc: array<f32, TM * TN>;
    var ar: array<f32, TM>;
    var br: array<f32, TN>;
    for (var k0 = 0u; k0 < depth; k0 += BK) {
        for (var kk = tid / BM; kk < BK; kk += THREADS / BM) {
            let k = k0 + kk;
            var v = 0.0;
            let r = k % KK;
            let kh = r / KS;
            let kw = r % KS;
            if (mv && k < depth && hp >= kh && wp >= kw) {
                let dh = hp - kh;
                let dwp = wp - kw;
                let oh = dh / STRIDE;
                let ow = dwp / STRIDE;
                if (dh % STRIDE == 0u && dwp % STRIDE == 0u && oh < p.out_h && ow < p.out_w) {
                    v = dz_at(((b * p.filters + k / KK) * p.out_h + oh) * p.out_w + ow);
                }
            }
            As[kk * BM + i] = TILE_S(v);
        }
        for (var e = tid; e < BN * BK; e += THREADS) {
            let kk = e % BK;
            let j = e / BK;
            let k = k0 + kk;
            let c = n0 + j;
            var v = 0.0;
            if (k < depth && c < p.channels) {
                v = wt[(k / KK) * plen + c * KK + k % KK];
            }
            Bs[kk * BN + j] = TILE_S(v);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var a = 0u; a < TM; a++) {
                ar[a] = f32(As[kk * BM + lid.x + a * TX]);
            }
            for (var c = 0u; c < TN; c++) {
                br[c] = f32(Bs[kk * BN + lid.y + c * TY]);
            }
            for (var a = 0u; a < TM; a++) {
                for (var c = 0u; c < TN; c++) {
                    acc[a * TN + c] = fma(ar[a], br[c], acc[a * TN + c]);
                }
            }
        }
        workgroupBarrier();
    }
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
