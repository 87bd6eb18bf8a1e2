// conv_gemm.wgsl — the workgroup GEMM shared by the implicit-GEMM forward (conv_fwd.wgsl)
// and input gradient (conv_dgrad.wgsl): a library; each includer declares `wt` and the
// three element functions below, whose gathers are what differ between the two.
//
// GEMM view: rows m (output positions forward, input positions for dx), columns n (filters
// forward, channels for dx), depth k. The including shader supplies
//   fn a_row(m: u32) -> vec4<u32>          row m's decomposition (computed once per thread),
//   fn a_elem(row: vec4<u32>, k: u32) -> f32   A[m, k] for k < depth (0 outside the input),
//   fn b_elem(k: u32, n: u32) -> f32       B[k, n] for k < depth, n < cols.
// Grid: (ceil(rows / BM), ceil(cols / BN)); workgroup (TX, TY) = (BM / TM, BN / TN): x runs
// along m so that neighbouring threads store neighbouring NCHW addresses. Thread (lid.x,
// lid.y) owns rows lid.x + a·TX (a < TM) and columns lid.y + c·TY (c < TN) of the tile.
// Per element: a chain of `depth` fused multiply-adds in k order from 0 (the tiles pad with
// exact zeros), on operands stored as TILE_S and read back as f32 (conv_geom.wgsl).

const TX: u32 = BM / TM;
const TY: u32 = BN / TN;

var<workgroup> As: array<TILE_S, BK * BM>; // As[kk * BM + i]: A[m0 + i, k0 + kk]
var<workgroup> Bs: array<TILE_S, BK * BN>; // Bs[kk * BN + j]: B[k0 + kk, n0 + j]

// This thread's TM × TN accumulators of the workgroup's tile (rows lid.x + a·TX, columns
// lid.y + c·TY): acc[a * TN + c].
fn gemm(wid: vec3<u32>, lid: vec3<u32>, rows: u32, cols: u32, depth: u32) -> array<f32, TM * TN> {
    let m0 = wid.x * BM;
    let n0 = wid.y * BN;
    let tid = lid.y * TX + lid.x;
    // This thread always loads row i of the A tile (THREADS is a multiple of BM): decompose
    // its row once.
    let i = tid % BM;
    let m = m0 + i;
    let mv = m < rows;
    let row = a_row(m);
    var acc: array<f32, TM * TN>;
    var ar: array<f32, TM>;
    var br: array<f32, TN>;
    for (var k0 = 0u; k0 < depth; k0 += BK) {
        for (var kk = tid / BM; kk < BK; kk += THREADS / BM) {
            let k = k0 + kk;
            var v = 0.0;
            if (mv && k < depth) {
                v = a_elem(row, k);
            }
            As[kk * BM + i] = TILE_S(v);
        }
        for (var e = tid; e < BN * BK; e += THREADS) {
            let kk = e % BK;
            let j = e / BK;
            let k = k0 + kk;
            let n = n0 + j;
            var v = 0.0;
            if (k < depth && n < cols) {
                v = b_elem(k, n);
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
    return acc;
}
