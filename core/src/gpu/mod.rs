//! GPU runtime: adapter and device acquisition, the device handle shared by every tensor,
//! the buffer pool and the pipeline cache. Nothing above this module creates wgpu objects
//! directly; kernels go through [`Gpu::dispatch`] and tensors through [`Tensor`].

mod adapter;
mod autotune;
mod host;
mod kernel;
mod pool;
mod tensor;
mod timing;

pub use adapter::{
    choose_adapter, choose_device, choose_device_with, feature_names, is_hardware, list_adapters,
    AdapterChoice, AdapterSummary, BackendChoice, DeviceChoice, GpuOptions,
};
pub use autotune::{
    cache_path_from_env, default_cache_path, AutotuneCache, AutotuneMode, TunedEntry,
    AUTOTUNE_CACHE_VERSION,
};
pub(crate) use kernel::Bind;
pub use kernel::{Dispatch, Recorder, Shader};
pub use tensor::{DType, Tensor};
pub use timing::{DispatchProfile, GpuTimer, TimeSource};

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A connection to one GPU device: cheap to clone (an `Arc` inside), shared by all tensors.
#[derive(Clone)]
pub struct Gpu {
    pub(crate) inner: Arc<GpuInner>,
}

pub(crate) struct GpuInner {
    /// The wgpu device, or nothing on the CPU backend.
    pub(crate) hw: Hw,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    /// Validation errors wgpu reported outside an error scope, drained by [`Gpu::check`].
    pub(crate) uncaptured: Arc<Mutex<Vec<String>>>,
    /// Autotuned kernel choices for this adapter (see [`AutotuneMode`]).
    pub(crate) autotune: autotune::Tuner,
}

/// What executes a device's commands.
pub(crate) enum Hw {
    /// A WebGPU device (wgpu: Vulkan, Metal, DX12, the browser's WebGPU).
    Wgpu(WgpuDevice),
    /// The host CPU (see [`crate::cpu`]).
    Cpu,
}

/// The wgpu objects of a WebGPU device.
pub(crate) struct WgpuDevice {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    /// Compiled pipelines keyed by shader name + injected constants + entry point:
    /// each WGSL module variant is compiled once per device.
    pub(crate) pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    pub(crate) pool: Arc<pool::BufferPool>,
    /// A 16-byte buffer bound where a kernel's optional input (e.g. bias) is absent.
    pub(crate) dummy: wgpu::Buffer,
}

impl GpuInner {
    /// The wgpu device, or `None` on the CPU backend.
    pub(crate) fn wgpu(&self) -> Option<&WgpuDevice> {
        match &self.hw {
            Hw::Wgpu(w) => Some(w),
            Hw::Cpu => None,
        }
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.summary.name)
            .field("backend", &self.inner.summary.backend)
            .finish()
    }
}

impl Gpu {
    /// Opens the preferred adapter: discrete > integrated > virtual > CPU, honouring
    /// `ACCRETE_ADAPTER=<substring>` and `WGPU_BACKEND=<vulkan,metal,dx12,...>`.
    pub async fn new() -> Result<Gpu> {
        Self::with_options(GpuOptions::from_env()).await
    }

    /// Opens the device `options` choose: the CPU backend, or an adapter with a device of
    /// the adapter's real limits. `auto` (the default) takes a hardware GPU where there is one
    /// (or the adapter `ACCRETE_ADAPTER` names), else the CPU backend.
    pub async fn with_options(options: GpuOptions) -> Result<Gpu> {
        match adapter::select(&options).await? {
            None => Ok(Gpu::cpu()),
            Some(adapter) => adapter::open(adapter, options.disable_features).await,
        }
    }

    /// Adapter name, backend, type, limits and the features accrete cares about.
    pub fn summary(&self) -> &AdapterSummary {
        &self.inner.summary
    }

    /// The limits the device was created with (the adapter's own, not WebGPU's defaults).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Features enabled on the device.
    pub fn features(&self) -> wgpu::Features {
        self.inner.features
    }

    /// Largest buffer a single kernel can bind, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.inner
            .limits
            .max_storage_buffer_binding_size
            .min(self.inner.limits.max_buffer_size)
    }

    /// Refuses a buffer of `bytes` if any kernel could not bind it.
    pub(crate) fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.max_binding_bytes();
        if bytes > limit {
            return Err(Error::OverLimit {
                what: what.to_string(),
                needed: bytes,
                limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// Reports the first GPU validation error wgpu raised outside an error scope, if any.
    pub fn check(&self) -> Result<()> {
        self.check_in("an earlier GPU command")
    }

    /// Like [`Gpu::check`], naming what was being done.
    pub(crate) fn check_in(&self, context: &str) -> Result<()> {
        let mut errs = self.inner.uncaptured.lock().expect("error list poisoned");
        if errs.is_empty() {
            return Ok(());
        }
        let detail = errs.join("; ");
        errs.clear();
        Err(Error::Gpu {
            context: context.to_string(),
            detail,
        })
    }

    /// Waits (natively) until all submitted work has finished. In the browser this is a no-op:
    /// completion is observed through async read-back instead. On the CPU backend work is
    /// finished when its submission returns.
    pub fn wait_idle(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(w) = self.inner.wgpu() {
            w.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu {
                    context: "waiting for the device".into(),
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Number of buffers currently parked in the reuse pool (for tests and diagnostics; the
    /// CPU backend frees host buffers at once and parks none).
    pub fn pooled_buffers(&self) -> usize {
        self.inner.wgpu().map_or(0, |w| w.pool.len())
    }

    /// Whether this device is the CPU backend (see [`crate::cpu`]).
    pub fn is_cpu(&self) -> bool {
        matches!(self.inner.hw, Hw::Cpu)
    }
}
