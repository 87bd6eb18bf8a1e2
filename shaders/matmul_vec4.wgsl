// matmul_vec4.wgsl — C = act(op(A) · op(B) + bias), register-blocked in quads (vec4):
// vec4 global loads, vec4 workgroup-memory reads, TM × TN outputs per thread, and optionally
// two workgroup-memory tile buffers so that the next tile's global loads overlap this tile's
// arithmetic (one barrier per depth step instead of two).
//
// Injected constants and aliases (core::kernels::matmul):
//   BM, BN, BK   tile of C and depth step (BK a multiple of 4)
//   TM, TN       outputs per thread, multiples of 4
//   STAGES       1 (load, barrier, compute, barrier) or 2 (double-buffered tiles)
//   TRANS_A, TRANS_B, HAS_BIAS (bool), ACT (activation code)
//   ONES_COL (bool): op(B) has a virtual column N of ones and the grid one more column,
//                whose outputs — the row sums Σ_k op(A)[i, k] — go to `store_row_sum(i, v)`
//                (also injected: it writes binding 7, `row_sums` [M], declared only then;
//                without ONES_COL it does nothing). f32 tiles only.
//   VEC_A, VEC_B (bool): the stored matrix's contiguous dimension is a multiple of 4, so a
//                quad of consecutive elements is one aligned vec4 load; otherwise the four
//                elements are loaded one by one (same values, same arithmetic).
//   TILE_S, TILE_V: element and quad types of the workgroup tiles: f32 / vec4<f32>, or
//                f16 / vec4<f16> (operands rounded to f16 once, when a tile is stored; the
//                products of two f16 values are exact in f32 and are summed in f32).
// Shapes: C is [M, N]. op(A) is [M, K]: A is stored [M, K], or [K, M] when TRANS_A.
//         op(B) is [K, N]: B is stored [K, N], or [N, K] when TRANS_B. bias is [N].
// Bindings: 0 params, 1 A as quads (when VEC_A, else a dummy), 2 B as quads (when VEC_B,
//           else a dummy), 3 bias (a dummy when !HAS_BIAS), 4 C, 5 A as f32 (when !VEC_A,
//           else a dummy), 6 B as f32 (when !VEC_B, else a dummy). A tensor bound as quads
//           has a multiple of 4 elements, so its binding is a multiple of 16 bytes even when
//           it is a view of part of a buffer.
// Grid: (ceil(N / BN), ceil(M / BM)); workgroup (BN / TN, BM / TM).
// Thread (tx, ty) owns the row quads ty + g·(BM/TM) (g < TM/4) and the column quads
// tx + h·(BN/TN) (h < TN/4) of the tile: strided, so that neighbouring threads read
// neighbouring quads of the B tile and the same quad of the A tile (a broadcast).
// Any M, N, K: loads outside the matrices read 0 and stores outside are skipped.
// Every element is the same chain as matmul.wgsl: acc = fma(a_k, b_k, acc) for k = 0, 1, ...
// from acc = 0, then + bias and the activation — so with f32 tiles the result is
// bit-identical to matmul.wgsl whatever the tiles (zero padding adds exact zeros).
// Libraries prepended by the launcher, in order: lib/activation_fns.wgsl.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32, // activation parameter (leaky slope, ELU alpha)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> a1: array<f32>;
@group(0) @binding(6) var<storage, read> b1: array<f32>;

const TX: u32 = BN / TN;
const TY: u32 = BM / TM;
const THREADS: u32 = TX * TY;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;
const BK4: u32 = BK / 4u;
const QA: u32 = BM * BK / 4u; // quads in an A tile
const QB: u32 = BN * BK / 4u; // quads in a B tile
const LA: u32 = (QA + THREADS - 1u) / THREADS; // quads of A each thread loads
const LB: u32 = (QB + THREADS - 1u) / THREADS;
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;

// Tiles stored depth-major in quads: As[stage][kk][i / 4], Bs[stage][kk][j / 4].
var<workgroup> As: array<TILE_V, STAGES * BK * BM4>;
var<workgroup> Bs: array<TILE_V, STAGES * BK * BN4>;

// Quad of stored A at (row r, columns col..col+3); col is a multiple of 4.
fn fetch_a(r: u32, col: u32) -> vec4<f32> {
    var rows = p.m;
    var cols = p.k;
    if (TRANS_A) {
        rows = p.k;
        cols = p.m;
    }
    var v = vec4<f32>(0.0);
    if (r >= rows || col >= cols) {
        return v;
    }
    let at = r * cols + col;
    if (VEC_A) {
        return a4[at / 4u];
    }
    for (var t = 0u; t < 4u; t++) {
        if (col + t < cols) {
            v[t] = a1[at + t];
        }
    }
    return v;
}

// Quad of stored B at (row r, columns col..col+3); col is a multiple of 4.
fn fetch_b(r: u32, col: u32) -> vec4<f32> {
    if (ONES_COL) {
        if (TRANS_B && r == p.n) {
            // Stored row N of Bᵀ: the ones, for depths below K.
            var ones = vec4<f32>(0.0);
            for (var t = 0u; t < 4u; t++) {
                if (col + t < p.k) {
                    ones[t] = 1.0;
                }
            }
            return ones;
        }
        if (!TRANS_B && r < p.k && col <= p.n && p.n < col + 4u) {
            // The quad holding column N: its elements past N - 1 are outside B (zeros).
            var v = fetch_b_stored(r, col);
            v[p.n - col] = 1.0;
            return v;
        }
    }
    return fetch_b_stored(r, col);
}

// Quad of stored B itself (zeros outside it).
fn fetch_b_stored(r: u32, col: u32) -> vec4<f32> {
    var rows = p.k;
    var cols = p.n;
    if (TRANS_B) {
        rows = p.n;
        cols = p.k;
    }
    var v = vec4<f32>(0.0);
    if (r >= rows || col >= cols) {
        return v;
    }
    let at = r * cols + col;
    if (VEC_B) {
        return b4[at / 4u];
    }
    for (var t = 0u; t < 4u; t++) {
        if (col + t < cols) {
            v[t] = b1[at + t];
        }
    }
    return v;
}

// Global quads of the tile at depth k0, staged in registers: quad q of a tile is read along
// the stored matrix's contiguous dimension (K for A, M for Aᵀ; N for B, K for Bᵀ).
fn load_a(row0: u32, k0: u32, tid: u32, ra: ptr<function, array<vec4<f32>, LA>>) {
    for (var l = 0u; l < LA; l++) {
        let q = tid + l * THREADS;
        if (q < QA) {
            if (TRANS_A) {
                (*ra)[l] = fetch_a(k0 + q / BM4, row0 + 4u * (q % BM4));
            } else {
                (*ra)[l] = fetch_a(row0 + q / BK4, k0 + 4u * (q % BK4));
            }
        }
    }
}

fn load_b(col0: u32, k0: u32, tid: u32, rb: ptr<function, array<vec4<f32>, LB>>) {
    for (var l = 0u; l < LB; l++) {
        let q = tid + l * THREADS;
        if (q < QB) {
            if (TRANS_B) {
                (*rb)[l] = fetch_b(col0 + q / BK4, k0 + 4u * (q % BK4));
            } else {
                (*rb)[l] = fetch_b(k0 + q / BN4, col0 + 4u * (q % BN4));
            }
        }
    }
}

// Registers → tile buffer `s`. A quad along M (or N) is one vec4 store; a quad along K is
// spread over four depth rows.
fn store_a(s: u32, tid: u32, ra: ptr<function, array<vec4<f32>, LA>>) {
    let base = s * BK * BM4;
    for (var l = 0u; l < LA; l++) {
        let q = tid + l * THREADS;
        if (q < QA) {
            let v = (*ra)[l];
            if (TRANS_A) {
                As[base + q] = TILE_V(v); // q = kk·BM4 + i/4
            } else {
                let i = q / BK4;
                let kk = 4u * (q % BK4);
                for (var t = 0u; t < 4u; t++) {
                    As[base + (kk + t) * BM4 + i / 4u][i % 4u] = TILE_S(v[t]);
                }
            }
        }
    }
}

fn store_b(s: u32, tid: u32, rb: ptr<function, array<vec4<f32>, LB>>) {
    let base = s * BK * BN4;
    for (var l = 0u; l < LB; l++) {
        let q = tid + l * THREADS;
        if (q < QB) {
            let v = (*rb)[l];
            if (TRANS_B) {
                let j = q / BK4;
                let kk = 4u * (q % BK4);
                for (var t = 0u; t < 4u; t++) {
                    Bs[base + (kk + t) * BN4 + j / 4u][j % 4u] = TILE_S(v[t]);
                }
            } else {
                Bs[base + q] = TILE_V(v); // q = kk·BN4 + j/4
            }
        }
    }
}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let tid = lid.y * TX + lid.x;
    var acc: array<vec4<f32>, TM * TN4>; // acc[i * TN4 + h]: row i, column quad h
    var ar: array<vec4<f32>, TM4>;
    var br: array<vec4<f32>, TN4>;
    var ra: array<vec4<f32>, LA>;
    var rb: array<vec4<f32>, LB>;
    let tiles = (p.k + BK - 1u) / BK;
    if (STAGES == 2u && tiles > 0u) {
        load_a(row0, 0u, tid, &ra);
        load_b(col0, 0u, tid, &rb);
        store_a(0u, tid, &ra);
        store_b(0u, tid, &rb);
        workgroupBarrier();
    }
    for (var t = 0u; t < tiles; t++) {
        var s = 0u;
        if (STAGES == 2u) {
            s = t % 2u;
            // Issue the next tile's global loads before this tile's arithmetic.
            if (t + 1u < tiles) {
                load_a(row0, (t + 1u) * BK, tid, &ra);
                load_b(col0, (t + 1u) * BK, tid, &rb);
            }
        } else {
            load_a(row0, t * BK, tid, &ra);
            load_b(col0, t * BK, tid, &rb);
            store_a(0u, tid, &ra);
            store_b(0u, tid, &rb);
            workgroupBarrier();
        }
        let abase = s * BK * BM4;
        let bbase = s * BK * BN4;
        for (var kk = 0u; kk < BK; kk++) {
            for (var g = 0u; g < TM4; g++) {
                ar[g] = vec4<f32>(As[abase + kk * BM4 + lid.y + g * TY]);
            }
            for (var h = 0u; h < TN4; h++) {
                br[h] = vec4<f32>(Bs[bbase + kk * BN4 + lid.x + h * TX]);
            }
            for (var g = 0u; g < TM4; g++) {
                for (var r = 0u; r < 4u; r++) {
                    let av = vec4<f32>(ar[g][r]);
                    for (var h = 0u; h < TN4; h++) {
                        let at = (g * 4u + r) * TN4 + h;
                        acc[at] = fma(av, br[h], acc[at]);
                    }
                }
            }
        }
        if (STAGES == 2u) {
            // The other buffer was last read before the previous barrier: safe to fill.
            if (t + 1u < tiles) {
                store_a(1u - s, tid, &ra);
                store_b(1u - s, tid, &rb);
            }
        }
        workgroupBarrier();
    }
    for (var g = 0u; g < TM4; g++) {
        for (var r = 0u; r < 4u; r++) {
            let row = row0 + 4u * (lid.y + g * TY) + r;
            if (row >= p.m) {
                continue;
            }
            for (var h = 0u; h < TN4; h++) {
                let v4 = acc[(g * 4u + r) * TN4 + h];
                let col4 = col0 + 4u * (lid.x + h * TX);
                for (var t = 0u; t < 4u; t++) {
                    let col = col4 + t;
                    if (col < p.n) {
                        var v = v4[t];
                        if (HAS_BIAS) {
                            v += bias[col];
                        }
                        c[row * p.n + col] = act_forward(ACT, v, p.alpha);
                    } else if (ONES_COL && col == p.n) {
                        store_row_sum(row, v4[t]);
                    }
                }
            }
        }
    }
}
