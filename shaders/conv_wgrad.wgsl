// conv_wgrad.wgsl — the weight and bias gradients of a 2-D convolution as an implicit GEMM
// with a deterministic split over the output positions (no im2col buffer, no atomics).
//
// GEMM view: rows f = filters (F), columns k = patch index (C·KS·KS) plus one extra column
// k = C·KS·KS for the bias, depth m = output positions (B·OH·OW):
//   G[f, k] = Σ_m dz[b, f, oh, ow] · A[m, k],  A = the implicit im2col (conv_tap.wgsl) with a
//   column of ones appended, so G[f, C·KS·KS] = Σ_m dz = db[f];  dz = dy·act'(z) (conv_dz.wgsl).
// The m range is cut into `splits` runs of `split_len` (a multiple of BK) so that small
// weight tensors still fill the GPU:
//   main:   workgroup (tile, s) sums its tile over run s, in m order (a chain of fused
//           multiply-adds), into partials[s, f, k]; every partial is written (0 past the end);
//   reduce: dw[f, k] (k < C·KS·KS) or db[f] (k = C·KS·KS) = Σ_s partials[s, f, k], s in order.
// Fixed reduction order throughout: bit-reproducible on a given device and tile choice.
// Tiles of TILE_S (f32, or f16 when TILE_F16: operands rounded to f16 when stored, products
// summed in f32); with f16 tiles the bias column is summed from the f32 dz instead (below).
// Grid main: (ceil((C·KS·KS + 1) / BN), ceil(F / BM), splits), workgroup (BN / TN, BM / TM)
// (x along k: neighbouring threads store neighbouring partials). Grid reduce: 1-D, WG threads.
// Bindings: 0 params, 1 x, 2 dy, 3 zin (dy again for the identity), 4 partials
// [splits, F, C·KS·KS + 1], 5 dw [F, C, KS, KS], 6 db [F].
// Libraries prepended by the launcher, in order: lib/common.wgsl, lib/activation_fns.wgsl,
//   lib/conv_geom.wgsl, lib/conv_tap.wgsl, lib/conv_dz.wgsl.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> zin: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> dw: array<f32>;
@group(0) @binding(6) var<storage, read_write> db: array<f32>;

const TX: u32 = BN / TN;
const TY: u32 = BM / TM;

var<workgroup> Ds: array<TILE_S, BK * BM>; // Ds[mm * BM + i]: dz of filter f0 + i
var<workgroup> Xs: array<TILE_S, BK * BN>; // Xs[mm * BN + j]: A column k0 + j

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n0 = wid.x * BN;
    let f0 = wid.y * BM;
    let tid = lid.y * TX + lid.x;
    let ohw = p.out_h * p.out_w;
    let rows = p.batch * ohw;
    let depth = p.channels * KK;
    let cols = depth + 1u;
    let m_start = wid.z * p.split_len;
    let m_end = min(m_start + p.split_len, rows);
    var acc: array<f32, TM * TN>;
    var ar: array<f32, TM>;
    var br: array<f32, TN>;
    // This thread always loads depth row mm of both tiles (THREADS is a multiple of BK).
    let mm = tid % BK;
    for (var m0 = m_start; m0 < m_end; m0 += BK) {
        let m = m0 + mm;
        let mv = m < m_end;
        let b = m / ohw;
        let s = m % ohw;
        let hp0 = (s / p.out_w) * STRIDE;
        let wp0 = (s % p.out_w) * STRIDE;
        let xb = b * p.channels * p.height * p.width;
        for (var i = tid / BK; i < BM; i += THREADS / BK) {
            let f = f0 + i;
            var v = 0.0;
            if (mv && f < p.filters) {
                v = dz_at((b * p.filters + f) * ohw + s);
            }
            Ds[mm * BM + i] = TILE_S(v);
        }
        for (var j = tid / BK; j < BN; j += THREADS / BK) {
            let k = n0 + j;
            var v = 0.0;
            if (mv && k < depth) {
                v = tap(xb, hp0, wp0, k);
            } else if (mv && k == depth) {
                v = 1.0;
            }
            Xs[mm * BN + j] = TILE_S(v);
        }
        workgroupBarrier();
        for (var d = 0u; d < BK; d++) {
            for (var a = 0u; a < TM; a++) {
                ar[a] = f32(Ds[d * BM + lid.y + a * TY]);
            }
            for (var c = 0u; c < TN; c++) {
                br[c] = f32(Xs[d * BN + lid.x + c * TX]);
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
        let f = f0 + lid.y + a * TY;
        if (f >= p.filters) {
            continue;
        }
        for (var c = 0u; c < TN; c++) {
            let k = n0 + lid.x + c * TX;
            // With f16 tiles the bias column comes from the f32 pass below instead.
            if (k < depth || (k == depth && !TILE_F16)) {
                partials[(wid.z * p.filters + f) * cols + k] = acc[a * TN + c];
            }
        }
    }
    // f16 tiles: the GEMM's bias column summed dz rounded to f16, so the workgroups holding
    // that column sum the f32 dz of each of their filters over the run instead, in m order:
    // the same chain (fma(dz, 1, acc) = acc + dz exactly) as the f32 tiles' column of ones,
    // so db keeps f32 precision and the same bits.
    if (TILE_F16 && n0 <= depth && depth < n0 + BN) {
        for (var i = tid; i < BM; i += THREADS) {
            let f = f0 + i;
            if (f >= p.filters) {
                break;
            }
            var b = m_start / ohw;
            var s = m_start % ohw;
            var sum = 0.0;
            for (var m = m_start; m < m_end; m++) {
                sum += dz_at((b * p.filters + f) * ohw + s);
                s += 1u;
                if (s == ohw) {
                    s = 0u;
                    b += 1u;
                }
            }
            partials[(wid.z * p.filters + f) * cols + depth] = sum;
        }
    }
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let e = linear_index(wid, nwg, lid);
    let depth = p.channels * KK;
    let cols = depth + 1u;
    if (e >= p.filters * cols) {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        s += partials[z * p.filters * cols + e];
    }
    let f = e / cols;
    let k = e % cols;
    if (k < depth) {
        dw[f * depth + k] = s;
    } else {
        db[f] = s;
    }
}
