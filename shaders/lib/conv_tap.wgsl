// conv_tap.wgsl — the implicit im2col gather (a library for conv_fwd.wgsl and
// conv_wgrad.wgsl, which declare `p: ConvParams` and the input `x`).
//
// The input element patch tap k = (c·KS + kh)·KS + kw of an output position reads:
// x[b, c, oh·S + kh − P, ow·S + kw − P], or 0 in the padding — im2col's cols[m, k] without
// the cols buffer. (hp0, wp0) = (oh·S, ow·S) is the position's top-left corner in the padded
// image and xb = b·C·H·W its image's base.
fn tap(xb: u32, hp0: u32, wp0: u32, k: u32) -> f32 {
    let c = k / KK;
    let r = k % KK;
    let hp = hp0 + r / KS;
    let wp = wp0 + r % KS;
    if (hp < p.padding || hp >= p.height + p.padding || wp < p.padding || wp >= p.width + p.padding) {
        return 0.0;
    }
    return x[xb + (c * p.height + hp - p.padding) * p.width + wp - p.padding];
}
