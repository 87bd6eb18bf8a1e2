//! The optimizer family: `shaders/optim.wgsl` and `optim_multi.wgsl` (the update rules of
//! `lib/optim_rules.wgsl`), global-norm clipping (`clip.wgsl`, `optim_clip.wgsl`), EWC
//! (`ewc_fisher.wgsl`, `ewc_penalty.wgsl`), A-GEM (`agem_project.wgsl`) and dynamic loss
//! scaling (`loss_scale.wgsl`).
//!
//! The per-workgroup reductions (`sumsq`, `dots`) run the shaders' fixed 256-wide tree, so
//! their partial sums — and the norms and dot products `finalize` forms from them — are the
//! same bits as on the GPU; the element-wise rules use the shaders' f32 operation order.

use crate::cpu::{Call, Kernel};
use crate::error::{Error, Result};

mod norms;
mod rules;
mod state;

/// `WG` of `lib/common.wgsl`.
const WG: usize = 256;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    rules::lookup(shader, entry)
        .or_else(|| norms::lookup(shader, entry))
        .or_else(|| state::lookup(shader, entry))
}

/// A kernel's refusal of inputs the shader would read out of bounds.
fn bad(call: &Call<'_>, detail: impl Into<String>) -> Error {
    call.bug(detail)
}

/// A segment table (`lib/optim_segments.wgsl`): rows (first workgroup, offset, len, bits).
struct Segs<'a> {
    rows: &'a [u32],
    count: usize,
}

impl<'a> Segs<'a> {
    fn new(call: &Call<'_>, rows: &'a [u32], count: u32) -> Result<Self> {
        let count = count as usize;
        if rows.len() < 4 * count.max(1) {
            return Err(bad(
                call,
                format!("segment table has {} words for {count} rows", rows.len()),
            ));
        }
        Ok(Segs { rows, count })
    }

    /// `segment_slot`'s row of workgroup `grp` (the same binary search).
    fn row(&self, grp: u32) -> [u32; 4] {
        let (mut lo, mut hi) = (0usize, self.count);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.rows[4 * mid] <= grp {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let r = &self.rows[4 * lo..4 * lo + 4];
        [r[0], r[1], r[2], r[3]]
    }

    /// The elements the slots of workgroups `0 .. groups` cover, as runs `(start, end,
    /// scale)` of the flat buffer — what `group` visits, a segment at a time. Core's tables
    /// are sorted by first workgroup and by offset, with disjoint segments; a table that is
    /// not is refused (the GPU would update overlapping elements in an unordered race).
    fn runs(&self, call: &Call<'_>, groups: u32, len: usize) -> Result<Vec<(usize, usize, f32)>> {
        let mut runs = Vec::with_capacity(self.count);
        let mut last_end = 0usize;
        for r in 0..self.count {
            let [first, offset, n, bits] = self.row_at(r);
            let next = if r + 1 < self.count {
                let next = self.rows[4 * (r + 1)];
                if next < first {
                    return Err(bad(call, "segment table not sorted by first workgroup"));
                }
                next
            } else {
                u32::MAX
            };
            let hi = next.min(groups);
            if hi <= first {
                continue;
            }
            let covered = ((hi - first) as usize).saturating_mul(WG).min(n as usize);
            if covered == 0 {
                continue;
            }
            let start = offset as usize;
            let end = start + covered;
            if end > len {
                return Err(bad(
                    call,
                    format!(
                        "segment element {} outside the {len}-element buffer",
                        end - 1
                    ),
                ));
            }
            if start < last_end {
                return Err(bad(call, "segments overlap or are not in offset order"));
            }
            last_end = end;
            runs.push((start, end, f32::from_bits(bits)));
        }
        Ok(runs)
    }

    /// Row `r` of the table.
    fn row_at(&self, r: usize) -> [u32; 4] {
        let x = &self.rows[4 * r..4 * r + 4];
        [x[0], x[1], x[2], x[3]]
    }

    /// Calls `f(lid, element, scale)` for the invocations of workgroup `grp` whose slot is
    /// ok, and `skip(lid)` for the others (an element outside `len` elements is an error).
    fn group(
        &self,
        call: &Call<'_>,
        grp: u32,
        len: usize,
        mut f: impl FnMut(usize, usize, f32),
    ) -> Result<()> {
        let [first, offset, n, bits] = self.row(grp);
        let base = (grp.wrapping_sub(first) as usize).wrapping_mul(WG);
        for lid in 0..WG {
            let at = base.wrapping_add(lid);
            if at < n as usize {
                let i = offset as usize + at;
                if i >= len {
                    return Err(bad(
                        call,
                        format!("segment element {i} outside the {len}-element buffer"),
                    ));
                }
                f(lid, i, f32::from_bits(bits));
            }
        }
        Ok(())
    }
}

/// The shaders' workgroup tree sum of `red` (WG values): `red[l] += red[l + k]` for
/// k = WG/2, …, 1.
fn tree(red: &mut [f32; WG]) -> f32 {
    let mut k = WG / 2;
    while k > 0 {
        for l in 0..k {
            red[l] += red[l + k];
        }
        k >>= 1;
    }
    red[0]
}
