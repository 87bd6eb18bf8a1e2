//! The CPU backend: the same kernels, executed by Rust code on the host.
//!
//! # The seam
//!
//! Every operation accrete runs is a [`crate::gpu::Dispatch`]: an op kind (the WGSL shader and
//! entry point), its parameters (the uniform struct the launcher builds, plus the
//! compile-time constants it injects) and its tensors (the storage bindings, in binding
//! order). Launchers, the graph, the recorded step program, training sessions, checkpoints
//! and both front ends build those dispatches the same way on either backend; only the
//! device handle ([`crate::Gpu`]) differs:
//!
//! - on the WebGPU backend a dispatch holds a compiled pipeline and a bind group and is
//!   recorded into compute passes, exactly as before;
//! - on the CPU backend ([`crate::Gpu::cpu`]) a dispatch holds a [`Kernel`] — a Rust
//!   function found by shader and entry point in [`kernels::lookup`] — with the parameter
//!   bytes, the parsed constants and the bound tensors, whose storage is host memory
//!   ([`HostBuffer`]). Recorded passes and copies run in order when the recorder is
//!   submitted; uploads land at once (wgpu also applies queue writes before the next
//!   submission); read-backs return the host words.
//!
//! So there is no second copy of the training logic: a CPU kernel is the Rust twin of one
//! WGSL entry point, reading the same `Params` struct and writing the same outputs. The f64
//! references in `kernels/` test both.
//!
//! The CPU device has no optional WebGPU features (no `SHADER_F16`, so mixed precision is
//! refused with the same error as on a GPU without f16; no subgroups; no timestamp queries,
//! so timing uses the host clock).

pub(crate) mod kernels;
pub(crate) mod pool;
pub(crate) mod scratch;

use crate::error::{Error, Result};
use crate::gpu::Tensor;
use std::cell::{Cell, UnsafeCell};
use std::collections::HashMap;

/// A CPU kernel: the twin of one WGSL entry point.
pub(crate) type Kernel = fn(&Call<'_>) -> Result<()>;

/// Host memory behind a tensor on the CPU backend: 32-bit words (f32 or u32 bits).
///
/// Interior mutability without a lock: a buffer is only read or written by the thread that
/// runs the device's commands (uploads, kernels, copies and read-backs all happen in program
/// order on the caller's thread), and a kernel's mutable views are checked not to overlap
/// any other binding of the same dispatch (see [`Call`]).
pub(crate) struct HostBuffer {
    words: UnsafeCell<Box<[u32]>>,
}

// SAFETY: see the type's documentation — accesses are serialized by the command order, and
// the views a kernel takes are checked for overlap before any mutable one is handed out.
unsafe impl Sync for HostBuffer {}
unsafe impl Send for HostBuffer {}

impl HostBuffer {
    /// A zeroed buffer of `len` words, or why the host cannot allocate it.
    pub(crate) fn new(len: usize) -> std::result::Result<HostBuffer, String> {
        let mut words: Vec<u32> = Vec::new();
        words
            .try_reserve_exact(len)
            .map_err(|e| format!("host memory: {e}"))?;
        words.resize(len, 0);
        Ok(HostBuffer {
            words: UnsafeCell::new(words.into_boxed_slice()),
        })
    }

    pub(crate) fn len(&self) -> usize {
        // SAFETY: reading the length never races with a write of the contents' length
        // (the box is never replaced).
        unsafe { (&*self.words.get()).len() }
    }

    fn ptr(&self) -> *mut u32 {
        // SAFETY: the box lives as long as `self`.
        unsafe { (*self.words.get()).as_mut_ptr() }
    }

    /// Copies `src` in at word `at`.
    pub(crate) fn write(&self, at: usize, src: &[u32]) {
        assert!(at + src.len() <= self.len(), "host write in bounds");
        // SAFETY: in bounds (checked); no view of this buffer is alive outside a kernel call.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr().add(at), src.len()) }
    }

    /// Copies `len` words out from word `at`.
    pub(crate) fn read(&self, at: usize, len: usize) -> Vec<u32> {
        assert!(at + len <= self.len(), "host read in bounds");
        // SAFETY: in bounds (checked).
        unsafe { std::slice::from_raw_parts(self.ptr().add(at), len).to_vec() }
    }

    /// `dst[dst_at..][..count] = src[src_at..][..count]`; `src` and `dst` may be one buffer.
    pub(crate) fn copy(src: &HostBuffer, src_at: usize, dst: &HostBuffer, dst_at: usize, n: usize) {
        assert!(
            src_at + n <= src.len() && dst_at + n <= dst.len(),
            "host copy in bounds"
        );
        // SAFETY: both ranges are in bounds; `copy` handles overlap.
        unsafe { std::ptr::copy(src.ptr().add(src_at), dst.ptr().add(dst_at), n) }
    }
}

/// The compile-time constants a launcher injects (`const NAME: u32 = 4u;`,
/// `const NAME: bool = true;`), parsed once per dispatch.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Consts {
    values: HashMap<String, u32>,
}

impl Consts {
    /// Parses the `const` declarations of a WGSL prefix; other lines (`enable`, `alias`,
    /// helper functions) are ignored.
    pub(crate) fn parse(prefix: &str) -> Consts {
        let mut values = HashMap::new();
        for decl in prefix.split(';') {
            let decl = decl.trim();
            let Some(rest) = decl.strip_prefix("const ") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once(':') else {
                continue;
            };
            let Some((_, value)) = rest.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let v = match value {
                "true" => Some(1),
                "false" => Some(0),
                _ => value.trim_end_matches('u').parse::<u32>().ok(),
            };
            if let Some(v) = v {
                values.insert(name.trim().to_string(), v);
            }
        }
        Consts { values }
    }

    /// A `u32` constant; a kernel asking for one its launcher does not inject is a bug,
    /// reported as an error naming both.
    pub(crate) fn u32(&self, name: &str) -> Result<u32> {
        self.values.get(name).copied().ok_or_else(|| Error::Gpu {
            context: "a CPU kernel".into(),
            detail: format!("constant {name} was not injected by the launcher"),
        })
    }

    /// A `bool` constant.
    pub(crate) fn bool(&self, name: &str) -> Result<bool> {
        Ok(self.u32(name)? != 0)
    }
}

/// A storage binding of a CPU dispatch.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    T(Tensor),
    /// The device's dummy buffer (an absent optional input): an empty slice.
    Dummy,
    /// A binding the entry point does not use.
    Skip,
}

/// Everything a CPU dispatch needs besides its kernel (kept alive while it may be recorded).
#[derive(Debug)]
pub(crate) struct HostDispatch {
    pub(crate) kernel: Kernel,
    pub(crate) params: Vec<u8>,
    pub(crate) consts: Consts,
    pub(crate) slots: Vec<Slot>,
    pub(crate) label: String,
}

impl HostDispatch {
    /// Runs the kernel once.
    pub(crate) fn run(&self) -> Result<()> {
        let call = Call {
            params: &self.params,
            consts: &self.consts,
            slots: &self.slots,
            label: &self.label,
            borrows: (0..self.slots.len())
                .map(|_| Cell::new(Borrow::None))
                .collect(),
        };
        (self.kernel)(&call)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Borrow {
    None,
    Shared,
    Mut,
}

/// One execution of a CPU kernel: its parameters, constants and bindings.
///
/// Bindings are numbered as in the WGSL (`@binding(1)` is the first storage buffer; binding 0
/// is the uniform, read with [`Call::params`]). A kernel takes each binding once, shared
/// ([`Call::f32`], [`Call::u32`]) or mutable ([`Call::f32_mut`], [`Call::u32_mut`]); a mutable
/// binding must not overlap any other binding of the dispatch (views of one arena are
/// disjoint), which is checked, so the slices never alias.
pub(crate) struct Call<'a> {
    params: &'a [u8],
    pub(crate) consts: &'a Consts,
    slots: &'a [Slot],
    pub(crate) label: &'a str,
    borrows: Vec<Cell<Borrow>>,
}

impl<'a> Call<'a> {
    /// The uniform parameters as the launcher's `Params` struct.
    pub(crate) fn params<P: bytemuck::Pod>(&self) -> Result<P> {
        if self.params.len() != std::mem::size_of::<P>() {
            return Err(self.bug(format!(
                "parameters are {} bytes, the kernel reads {}",
                self.params.len(),
                std::mem::size_of::<P>()
            )));
        }
        Ok(bytemuck::pod_read_unaligned(self.params))
    }

    /// Whether binding `b` is a real tensor (not absent, dummy or skipped).
    pub(crate) fn has(&self, b: usize) -> bool {
        matches!(self.slots.get(b.wrapping_sub(1)), Some(Slot::T(_)))
    }

    /// An error of this kernel (a binding or parameter it cannot use: a launcher bug or a
    /// bad recorded program), naming the kernel.
    pub(crate) fn bug(&self, detail: impl Into<String>) -> Error {
        Error::Gpu {
            context: format!("CPU kernel {}", self.label),
            detail: detail.into(),
        }
    }

    /// Refuses a binding `what` of `have` elements where the parameters say `want`.
    pub(crate) fn need(&self, what: &str, have: usize, want: usize) -> Result<()> {
        if have < want {
            return Err(self.bug(format!(
                "{what} has {have} elements, the kernel needs {want}"
            )));
        }
        Ok(())
    }

    /// (buffer, start word, length) of binding `b`; the dummy is an empty range.
    fn range(&self, b: usize, want: Borrow) -> Result<Option<(&'a HostBuffer, usize, usize)>> {
        let i = b.wrapping_sub(1);
        let slot = self
            .slots
            .get(i)
            .ok_or_else(|| self.bug(format!("binding {b} is not bound")))?;
        let cell = &self.borrows[i];
        match (cell.get(), want) {
            (Borrow::None, _) | (Borrow::Shared, Borrow::Shared) => cell.set(want),
            _ => return Err(self.bug(format!("binding {b} taken twice, once mutably"))),
        }
        let t = match slot {
            Slot::T(t) => t,
            Slot::Dummy => return Ok(None),
            Slot::Skip => return Err(self.bug(format!("binding {b} is skipped"))),
        };
        let host = t
            .host()
            .ok_or_else(|| self.bug(format!("binding {b} is not a host tensor")))?;
        let (start, len) = (t.offset(), t.len());
        if want == Borrow::Mut {
            for (j, other) in self.slots.iter().enumerate() {
                let Slot::T(o) = other else { continue };
                if j == i || !o.shares_buffer(t) {
                    continue;
                }
                let (os, ol) = (o.offset(), o.len());
                if os < start + len && start < os + ol {
                    return Err(self.bug(format!(
                        "binding {b} is written and overlaps binding {}",
                        j + 1
                    )));
                }
            }
        }
        Ok(Some((host, start, len)))
    }

    /// Binding `b` as f32 values, read-only.
    pub(crate) fn f32(&self, b: usize) -> Result<&'a [f32]> {
        Ok(match self.range(b, Borrow::Shared)? {
            // SAFETY: in bounds (a tensor lies inside its buffer); no mutable view of this
            // range exists (mutable views are checked against every other binding, and this
            // binding is not taken mutably); u32 and f32 share size and alignment.
            Some((h, s, n)) => unsafe {
                std::slice::from_raw_parts(h.ptr().add(s) as *const f32, n)
            },
            None => &[],
        })
    }

    /// Binding `b` as f32 values, writable.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn f32_mut(&self, b: usize) -> Result<&'a mut [f32]> {
        Ok(match self.range(b, Borrow::Mut)? {
            // SAFETY: as in `f32`, and no other view overlaps this range (checked).
            Some((h, s, n)) => unsafe {
                std::slice::from_raw_parts_mut(h.ptr().add(s) as *mut f32, n)
            },
            None => &mut [],
        })
    }

    /// Binding `b` as u32 values, read-only.
    pub(crate) fn u32(&self, b: usize) -> Result<&'a [u32]> {
        Ok(match self.range(b, Borrow::Shared)? {
            // SAFETY: as in `f32`.
            Some((h, s, n)) => unsafe { std::slice::from_raw_parts(h.ptr().add(s), n) },
            None => &[],
        })
    }

    /// Binding `b` as u32 values, writable.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn u32_mut(&self, b: usize) -> Result<&'a mut [u32]> {
        Ok(match self.range(b, Borrow::Mut)? {
            // SAFETY: as in `f32_mut`.
            Some((h, s, n)) => unsafe { std::slice::from_raw_parts_mut(h.ptr().add(s), n) },
            None => &mut [],
        })
    }
}

/// Threads CPU kernels split their work over (natively `ACCRETE_CPU_THREADS`, else the
/// machine's parallelism; 1 in the browser). Work is split in a fixed partition by output
/// rows, so results do not depend on the thread count.
pub(crate) fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *N.get_or_init(|| {
            std::env::var("ACCRETE_CPU_THREADS")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }
    #[cfg(target_arch = "wasm32")]
    1
}

/// The SIMD instruction set the CPU kernels are compiled for or detect at run time (the
/// GEMM's micro-kernel: "AVX-512", "AVX2+FMA", "NEON", "wasm simd128", …).
pub(crate) fn simd_name() -> &'static str {
    kernels::simd_name()
}

/// In the browser, lets the page's event loop run (repaint, input, the page's other calls)
/// before a read-back of the CPU backend returns: kernels run on the page's thread, and a
/// chunk that never yielded would freeze the tab until it ended. A `setTimeout(0)` task, so
/// rendering gets its turn, not just microtasks. Natively nothing.
pub(crate) async fn yield_now() {
    #[cfg(target_arch = "wasm32")]
    {
        let promise = js_sys::Promise::new(&mut |resolve: js_sys::Function, _reject| {
            let global = js_sys::global();
            let set_timeout = js_sys::Reflect::get(&global, &js_sys::JsString::from("setTimeout"))
                .ok()
                .filter(|f| f.is_function())
                .map(js_sys::Function::from);
            let scheduled = set_timeout
                .map(|f| {
                    f.call2(&global, &resolve, &js_sys::Number::from(0.0))
                        .is_ok()
                })
                .unwrap_or(false);
            if !scheduled {
                let _ = resolve.call0(&global);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// The error for a kernel the CPU backend does not have.
pub(crate) fn missing(shader: &str, entry: &str) -> Error {
    Error::InvalidArgument {
        what: "the CPU backend".into(),
        detail: format!(
            "kernel {shader}::{entry} has no CPU implementation; run this model on a GPU \
             (--backend gpu or ACCRETE_BACKEND=gpu)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consts_parse_the_launchers_prefix() {
        let c = Consts::parse(
            "enable f16;\nconst BM: u32 = 64u;\nconst TRANS_A: bool = true;\n\
             const HAS_BIAS: bool = false;\nalias TILE_S = f32;\nfn store_row_sum(r: u32, v: f32) {}\n",
        );
        assert_eq!(c.u32("BM").unwrap(), 64);
        assert!(c.bool("TRANS_A").unwrap());
        assert!(!c.bool("HAS_BIAS").unwrap());
        assert!(c.u32("TILE_S").is_err());
        assert!(c.u32("ACT").is_err());
    }
}
