// common.wgsl — helpers prepended to every 1-D kernel.
//
// 1-D launches may exceed the 65535-workgroup limit of one dimension, so the launcher
// spreads them over x and y (Gpu::grid). The linear workgroup index is wid.x + wid.y * nwg.x;
// kernels skip indices past the end.

const WG: u32 = 256u;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

fn linear_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
