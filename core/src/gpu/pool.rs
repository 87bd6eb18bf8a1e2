//! Buffer reuse. Tensors return their buffer here when dropped; a new tensor of the same
//! byte size takes a parked buffer instead of allocating. Reuse is safe because every later
//! use of a recycled buffer is queued after the work already submitted with it (wgpu orders
//! queue writes and submissions).

use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes kept parked at most; buffers dropped beyond this are freed.
const MAX_PARKED_BYTES: u64 = 512 << 20;

#[derive(Default)]
pub(crate) struct BufferPool {
    inner: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    by_size: HashMap<u64, Vec<wgpu::Buffer>>,
    bytes: u64,
    count: usize,
}

impl BufferPool {
    pub(crate) fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        let mut p = self.inner.lock().ok()?;
        let buf = p.by_size.get_mut(&size)?.pop()?;
        p.bytes -= size;
        p.count -= 1;
        Some(buf)
    }

    pub(crate) fn give(&self, buf: wgpu::Buffer) {
        let size = buf.size();
        if let Ok(mut p) = self.inner.lock() {
            if p.bytes + size <= MAX_PARKED_BYTES {
                p.bytes += size;
                p.count += 1;
                p.by_size.entry(size).or_default().push(buf);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map(|p| p.count).unwrap_or(0)
    }
}
