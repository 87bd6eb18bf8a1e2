// matmul.wgsl — C = act(op(A) · op(B) + bias), tiled in workgroup memory, register-blocked.
//
// Injected constants (core::kernels::matmul): BM, BN, BK (tile of C and depth step),
// TM, TN (outputs per thread), TRANS_A, TRANS_B (bool), HAS_BIAS (bool), ACT (activation code),
// ONES_COL (bool): op(B) has a virtual column N of ones and the grid one more column, whose
// outputs — the row sums Σ_k op(A)[i, k] — go to `store_row_sum(i, v)` (also injected: it
// writes binding 5, `row_sums` [M], declared only then; without ONES_COL it does nothing).
// Shapes: C is [M, N]. op(A) is [M, K]: A is stored [M, K], or [K, M] when TRANS_A.
//         op(B) is [K, N]: B is stored [K, N], or [N, K] when TRANS_B. bias is [N].
// Bindings: 0 params, 1 A, 2 B, 3 bias (a dummy when !HAS_BIAS), 4 C.
// Grid: (ceil(N / BN), ceil(M / BM)); workgroup (BN / TN, BM / TM).
// Each thread owns rows ty + i·(BM/TM) and columns tx + j·(BN/TN) of the tile (strided, so
// that neighbouring threads write neighbouring columns). Any M, N, K: loads outside the
// matrices read 0 and stores outside are skipped. Summation order over K is fixed, so the
// result is deterministic; per element it is a chain of K fused multiply-adds.
// Libraries prepended by the launcher, in order: lib/activation_fns.wgsl.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32, // activation parameter (leaky slope, ELU alpha)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TX: u32 = BN / TN;
const TY: u32 = BM / TM;
const THREADS: u32 = TX * TY;

var<workgroup> As: array<f32, BK * BM>; // As[kk * BM + i]
var<workgroup> Bs: array<f32, BK * BN>; // Bs[kk * BN + j]

fn load_a(i: u32, kk: u32) -> f32 {
    if (i >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + i];
    }
    return a[i * p.k + kk];
}

fn load_b(kk: u32, j: u32) -> f32 {
    if (ONES_COL && j == p.n) {
        return select(0.0, 1.0, kk < p.k);
    }
    if (kk >= p.k || j >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[j * p.k + kk];
    }
    return b[kk * p.n + j];
}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let tid = lid.y * TX + lid.x;
    var acc: array<f32, TM * TN>;
    var ar: array<f32, TM>;
    var br: array<f32, TN>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Cooperative tile loads; the fastest-varying index follows memory order.
        for (var e = tid; e < BM * BK; e += THREADS) {
            var i: u32;
            var kk: u32;
            if (TRANS_A) { i = e % BM; kk = e / BM; } else { kk = e % BK; i = e / BK; }
            As[kk * BM + i] = load_a(row0 + i, k0 + kk);
        }
        for (var e = tid; e < BN * BK; e += THREADS) {
            var j: u32;
            var kk: u32;
            if (TRANS_B) { kk = e % BK; j = e / BK; } else { j = e % BN; kk = e / BN; }
            Bs[kk * BN + j] = load_b(k0 + kk, col0 + j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var i = 0u; i < TM; i++) {
                ar[i] = As[kk * BM + lid.y + i * TY];
            }
            for (var j = 0u; j < TN; j++) {
                br[j] = Bs[kk * BN + lid.x + j * TX];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let r = row0 + lid.y + i * TY;
        if (r >= p.m) {
            continue;
        }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid.x + j * TX;
            if (col < p.n) {
                var v = acc[i * TN + j];
                if (HAS_BIAS) {
                    v += bias[col];
                }
                c[r * p.n + col] = act_forward(ACT, v, p.alpha);
            } else if (ONES_COL && col == p.n) {
                store_row_sum(r, acc[i * TN + j]);
            }
        }
    }
}
