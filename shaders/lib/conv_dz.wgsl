// conv_dz.wgsl — the pre-activation gradient of a convolution's output, computed as it is
// loaded (a library for conv_wgrad.wgsl and conv_dgrad.wgsl, which declare `p: ConvParams`,
// the output gradient `dy` and the pre-activation `zin`, all NCHW [B, F, OH, OW]).
//
// dz = dy · act'(z) for the injected activation ACT (the activation's backward fused into
// the convolution's, so dz is never stored); dz = dy for the identity (zin then unused).
fn dz_at(o: u32) -> f32 {
    if (ACT == 0u) {
        return dy[o];
    }
    return dy[o] * act_grad(ACT, zin[o], p.alpha);
}
