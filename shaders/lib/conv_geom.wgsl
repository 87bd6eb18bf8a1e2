// conv_geom.wgsl — the parameters shared by the implicit-GEMM convolution kernels
// (conv_fwd.wgsl, conv_wgrad.wgsl, conv_dgrad.wgsl); a library, no bindings.
//
// Geometry as in im2col.wgsl: x [B, C, H, W] (NCHW), weights [F, C, KS, KS] (PyTorch's layout,
// row f of the [F, C·KS·KS] matrix), zero padding P, output [B, F, OH, OW]. The kernel size
// KS and the stride STRIDE are injected constants (divisions by them are cheap); the rest
// comes from this uniform. (conv_tap.wgsl and conv_dz.wgsl hold the shared index helpers,
// conv_gemm.wgsl the workgroup GEMM of the forward and the input gradient.) A patch index
// k = (c·KS + kh)·KS + kw, an output position m = (b·OH + oh)·OW + ow, as in im2col's
// columns and rows.
//
// Tiles: injected BM, BN, BK (workgroup tile and depth step), TM, TN (outputs per thread),
// and TILE_S, the element type of the GEMM tiles in workgroup memory: f32, or f16 (then
// TILE_F16 is true and `enable f16;` leads the source): operands are rounded to f16 once, as
// a tile is stored, and converted back to f32 for the fused multiply-adds, which sum in f32.
// With f32 tiles both conversions are the identity: the same bits as plain f32 arrays.

struct ConvParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    filters: u32,
    split_len: u32, // conv_wgrad: output positions per split (a multiple of BK)
    alpha: f32,     // activation parameter (leaky slope, ELU alpha)
    splits: u32,    // conv_wgrad: number of splits
    _pad0: u32,
}

const KK: u32 = KS * KS;
const THREADS: u32 = (BM / TM) * (BN / TN);
