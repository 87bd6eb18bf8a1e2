//! `shaders/gather.wgsl`: batch rows gathered by an index buffer, stepped by `counter[0]`.

use super::{take, take_mut};
use crate::cpu::Call;
use crate::error::Result;
use crate::kernels::gather::Params;

/// `counter[0]` of binding `b`; the dummy (a one-off gather) reads 0, as on the GPU.
fn step(call: &Call<'_>, b: usize) -> Result<u32> {
    Ok(call.u32(b)?.first().copied().unwrap_or(0))
}

/// `out[r, c] = src[idx[o + r], c]` (or `fill` for an index ≥ src_rows), o = offset +
/// counter·rows in u32 arithmetic as in the WGSL. An index read past the end of `idx` (a
/// recorded program stepped beyond its index buffer) is an error here.
fn gather_rows(
    call: &Call<'_>,
    (src, out): (&[u32], &mut [u32]),
    idx: &[u32],
    p: &Params,
    (cols, fill): (usize, u32),
    counter: u32,
) -> Result<()> {
    let rows = p.rows as usize;
    let src_rows = p.src_rows as usize;
    if cols == 0 || rows == 0 {
        return Ok(());
    }
    let src = take(call, "src", src, src_rows * cols)?;
    let out = take_mut(call, "out", out, rows * cols)?;
    let o = p.offset.wrapping_add(counter.wrapping_mul(p.rows));
    for (r, orow) in out.chunks_exact_mut(cols).enumerate() {
        let at = o.wrapping_add(r as u32) as usize;
        let s = *idx.get(at).ok_or_else(|| {
            call.bug(format!(
                "batch {counter} reads index {at}, past the end of the {}-entry index buffer",
                idx.len()
            ))
        })? as usize;
        if s < src_rows {
            orow.copy_from_slice(&src[s * cols..(s + 1) * cols]);
        } else {
            orow.fill(fill);
        }
    }
    Ok(())
}

/// Entry `main`: bindings 1 src, 2 idx, 3 out, 4 counter.
pub(super) fn main(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let counter = step(call, 4)?;
    let (src, idx, out) = (call.u32(1)?, call.u32(2)?, call.u32_mut(3)?);
    gather_rows(
        call,
        (src, out),
        idx,
        &p,
        (p.cols as usize, p.fill),
        counter,
    )
}

/// Entry `pair`: two sources by the same indices; bindings 1 src, 2 idx, 3 out, 4 counter,
/// 5 src2, 6 out2.
pub(super) fn pair(call: &Call<'_>) -> Result<()> {
    let p: Params = call.params()?;
    let counter = step(call, 4)?;
    let idx = call.u32(2)?;
    gather_rows(
        call,
        (call.u32(1)?, call.u32_mut(3)?),
        idx,
        &p,
        (p.cols as usize, p.fill),
        counter,
    )?;
    gather_rows(
        call,
        (call.u32(5)?, call.u32_mut(6)?),
        idx,
        &p,
        (p.cols2 as usize, p.fill2),
        counter,
    )
}
