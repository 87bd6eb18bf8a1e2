//! The two-pass reductions: global-norm clipping (`shaders/clip.wgsl`, and its multi-tensor
//! form `optim_clip.wgsl`) and A-GEM's projection (`agem_project.wgsl`). Each workgroup's
//! partial sum is the shader's 256-wide tree over the same elements, written to the same
//! partial slot, and `finalize` adds the partials in order on one thread, as the shader does.

use super::{bad, tree, Segs, WG};
use crate::cpu::{Call, Kernel};
use crate::error::Result;
use crate::kernels::agem::Params as AgemParams;
use crate::kernels::clip::Params as ClipParams;
use crate::kernels::optim::ClipParams as MultiClipParams;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    match (shader, entry) {
        ("clip", "sumsq") => Some(clip_sumsq),
        ("clip", "finalize") => Some(clip_finalize),
        ("clip", "apply") => Some(clip_apply),
        ("optim_clip", "sumsq") => Some(multi_sumsq),
        ("optim_clip", "apply") => Some(multi_apply),
        ("agem_project", "dots") => Some(agem_dots),
        ("agem_project", "finalize") => Some(agem_finalize),
        ("agem_project", "project") => Some(agem_project),
        _ => None,
    }
}

/// `slot` of `out`, or an error naming the partial buffer's size.
fn slot<'a>(call: &Call<'_>, out: &'a mut [f32], at: usize) -> Result<&'a mut f32> {
    let len = out.len();
    out.get_mut(at).ok_or_else(|| {
        bad(
            call,
            format!("partial slot {at} outside the {len}-slot buffer"),
        )
    })
}

/// `n` elements of a binding of `len`, or an error.
fn within(call: &Call<'_>, n: u32, len: usize) -> Result<usize> {
    let n = n as usize;
    if n > len {
        return Err(bad(
            call,
            format!("n {n} exceeds the {len}-element binding"),
        ));
    }
    Ok(n)
}

/// clip.wgsl `sumsq`: partials[base + wg] = tree Σ g² over workgroup wg's elements.
fn clip_sumsq(call: &Call<'_>) -> Result<()> {
    let p: ClipParams = call.params()?;
    let g = call.f32_mut(1)?;
    let partials = call.f32_mut(2)?;
    let n = within(call, p.n, g.len())?;
    for (grp, chunk) in g[..n].chunks(WG).enumerate() {
        let mut red = [0f32; WG];
        for (r, &v) in red.iter_mut().zip(chunk) {
            *r = v * v;
        }
        *slot(call, partials, p.base as usize + grp)? = tree(&mut red);
    }
    Ok(())
}

/// clip.wgsl `finalize` (also the last phase of optim_clip): the norm and the scale.
fn clip_finalize(call: &Call<'_>) -> Result<()> {
    let p: ClipParams = call.params()?;
    let partials = call.f32_mut(2)?;
    let result = call.f32_mut(3)?;
    let n = within(call, p.n, partials.len())?;
    if result.len() < 2 {
        return Err(bad(call, "result needs 2 elements"));
    }
    let mut s = 0f32;
    for &v in &partials[..n] {
        s += v;
    }
    let norm = s.sqrt();
    result[0] = norm;
    result[1] = 1f32.min(p.max_norm / (norm + 1e-6));
    Ok(())
}

/// clip.wgsl `apply`: g ×= result[1].
fn clip_apply(call: &Call<'_>) -> Result<()> {
    let p: ClipParams = call.params()?;
    let g = call.f32_mut(1)?;
    let result = call.f32(3)?;
    let n = within(call, p.n, g.len())?;
    let scale = *result
        .get(1)
        .ok_or_else(|| bad(call, "result needs 2 elements"))?;
    for v in &mut g[..n] {
        *v *= scale;
    }
    Ok(())
}

/// optim_clip.wgsl `sumsq`: per workgroup of the table, the tree Σ g² of its slots.
fn multi_sumsq(call: &Call<'_>) -> Result<()> {
    let p: MultiClipParams = call.params()?;
    let g = call.f32_mut(1)?;
    let partials = call.f32_mut(2)?;
    let segs = Segs::new(call, call.u32(4)?, p.segments)?;
    for grp in 0..p.n {
        let mut red = [0f32; WG];
        segs.group(call, grp, g.len(), |lid, i, _| red[lid] = g[i] * g[i])?;
        *slot(call, partials, p.base as usize + grp as usize)? = tree(&mut red);
    }
    Ok(())
}

/// optim_clip.wgsl `apply`: every listed element ×= result[1].
fn multi_apply(call: &Call<'_>) -> Result<()> {
    let p: MultiClipParams = call.params()?;
    let g = call.f32_mut(1)?;
    let result = call.f32(3)?;
    let segs = Segs::new(call, call.u32(4)?, p.segments)?;
    let scale = *result
        .get(1)
        .ok_or_else(|| bad(call, "result needs 2 elements"))?;
    let len = g.len();
    for grp in 0..p.n {
        segs.group(call, grp, len, |_, i, _| g[i] *= scale)?;
    }
    Ok(())
}

/// agem_project.wgsl `dots`: partial pairs (tree Σ g·r, tree Σ r·r) per workgroup.
fn agem_dots(call: &Call<'_>) -> Result<()> {
    let p: AgemParams = call.params()?;
    let g = call.f32_mut(1)?;
    let r = call.f32(2)?;
    let partials = call.f32_mut(3)?;
    let n = within(call, p.n, g.len().min(r.len()))?;
    for (grp, (gc, rc)) in g[..n].chunks(WG).zip(r[..n].chunks(WG)).enumerate() {
        let (mut gr, mut rr) = ([0f32; WG], [0f32; WG]);
        for (l, (&gv, &rv)) in gc.iter().zip(rc).enumerate() {
            gr[l] = gv * rv;
            rr[l] = rv * rv;
        }
        let at = 2 * (p.base as usize + grp);
        *slot(call, partials, at)? = tree(&mut gr);
        *slot(call, partials, at + 1)? = tree(&mut rr);
    }
    Ok(())
}

/// agem_project.wgsl `finalize`: result = (dot, rr, coef, 0).
fn agem_finalize(call: &Call<'_>) -> Result<()> {
    let p: AgemParams = call.params()?;
    let partials = call.f32_mut(3)?;
    let result = call.f32_mut(4)?;
    let n = p.n as usize;
    if 2 * n > partials.len() || result.len() < 4 {
        return Err(bad(
            call,
            format!(
                "{n} partial pairs in {} slots, result of {}",
                partials.len(),
                result.len()
            ),
        ));
    }
    let (mut dot, mut rr) = (0f32, 0f32);
    for k in 0..n {
        dot += partials[2 * k];
        rr += partials[2 * k + 1];
    }
    let coef = if dot < 0.0 && rr > 0.0 { dot / rr } else { 0.0 };
    result[..4].copy_from_slice(&[dot, rr, coef, 0.0]);
    Ok(())
}

/// agem_project.wgsl `project`: g = fma(−coef, r, g).
fn agem_project(call: &Call<'_>) -> Result<()> {
    let p: AgemParams = call.params()?;
    let g = call.f32_mut(1)?;
    let r = call.f32(2)?;
    let result = call.f32(4)?;
    let n = within(call, p.n, g.len().min(r.len()))?;
    let coef = *result
        .get(2)
        .ok_or_else(|| bad(call, "result needs 4 elements"))?;
    for (gv, &rv) in g[..n].iter_mut().zip(&r[..n]) {
        *gv = (-coef).mul_add(rv, *gv);
    }
    Ok(())
}
