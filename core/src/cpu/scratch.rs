//! Reused scratch buffers for the CPU kernels: a kernel that needs a few hundred kilobytes
//! per image (im2col columns, dz) takes them from its thread's spares instead of the
//! allocator, which for blocks that size maps fresh pages every time (a page fault and a
//! clear per 4 KiB, more than the arithmetic of a small convolution).

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Spares kept per thread, and the largest kept (16 MiB).
const KEEP: usize = 8;
const KEEP_LEN: usize = 1 << 22;

thread_local! {
    static SPARE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A zero-filled `f32` buffer that goes back to its thread's spares when dropped.
pub(crate) struct Scratch(Vec<f32>);

impl Scratch {
    /// `n` zeros.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn zeroed(n: usize) -> Scratch {
        let mut v = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        v.clear();
        v.resize(n, 0.0);
        Scratch(v)
    }
}

impl Scratch {
    /// `n` values left from earlier use (or zeros): for a buffer the caller overwrites
    /// whole, which then costs no clearing pass.
    pub(crate) fn overwritten(n: usize) -> Scratch {
        let mut v = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        v.truncate(n);
        v.resize(n, 0.0);
        Scratch(v)
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() <= KEEP_LEN {
            // (Ignored during thread teardown, when the spares are already gone.)
            let _ = SPARE.try_with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < KEEP {
                    s.push(v);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_buffer_comes_back_zeroed_and_sized() {
        {
            let mut a = Scratch::zeroed(1000);
            a.iter_mut().for_each(|v| *v = f32::NAN);
        }
        let b = Scratch::zeroed(700);
        assert_eq!(b.len(), 700);
        assert!(b.iter().all(|&v| v == 0.0));
        let c = Scratch::zeroed(5000);
        assert!(c.iter().all(|&v| v == 0.0));
        drop((b, c));
        assert_eq!(Scratch::overwritten(300).len(), 300);
        assert_eq!(Scratch::overwritten(9000).len(), 9000);
    }
}
