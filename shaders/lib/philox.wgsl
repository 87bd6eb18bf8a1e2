// philox.wgsl — Philox4x32-10 counter-based RNG (Salmon et al., SC'11), a library.
//
// philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> is a pure function: the same
// (counter, key) gives the same four words on every device, in any thread order, because
// it uses only 32-bit integer arithmetic. WGSL has no 64-bit multiply, so the 32×32→64
// product is assembled from 16-bit halves. core::kernels::rng::philox is the CPU twin.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (hi, lo) words of the 64-bit product a·b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let cross = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (cross >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let p0 = mulhilo(PHILOX_M0, c.x);
    let p1 = mulhilo(PHILOX_M1, c.z);
    return vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    c = philox_round(c, k);
    for (var r = 1u; r < 10u; r++) {
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        c = philox_round(c, k);
    }
    return c;
}

// A uniform float in [0, 1) with 24 random bits: exact in f32 on every device.
fn u01(x: u32) -> f32 {
    return f32(x >> 8u) * (1.0 / 16777216.0);
}
