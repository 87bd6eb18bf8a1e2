//! The device handle of the CPU backend (see [`crate::cpu`]): no wgpu objects, host-sized
//! limits, no optional features.

use super::{adapter::AdapterSummary, autotune, Gpu, GpuInner, Hw};
use std::sync::Arc;

/// The CPU backend's adapter name, as `accrete devices` and `adapterInfo()` show it.
pub(crate) fn cpu_name() -> String {
    format!(
        "accrete CPU backend ({} thread{}, {})",
        crate::cpu::threads(),
        if crate::cpu::threads() == 1 { "" } else { "s" },
        crate::cpu::simd_name()
    )
}

/// The limits the CPU device reports. Buffers are host allocations (a failed allocation is an
/// error, not an abort), so the size limits are the tensor format's own: 2^32 − 1 elements
/// of 4 bytes. The workgroup-grid limit stays WebGPU's, so launchers compute the same grids on
/// both backends.
fn cpu_limits() -> wgpu::Limits {
    let bytes = (u32::MAX as u64) * 4;
    wgpu::Limits {
        max_buffer_size: bytes,
        max_storage_buffer_binding_size: bytes,
        max_storage_buffers_per_shader_stage: 16,
        max_compute_workgroup_storage_size: 32 << 10,
        max_compute_invocations_per_workgroup: 1024,
        max_compute_workgroup_size_x: 1024,
        max_compute_workgroup_size_y: 1024,
        max_compute_workgroups_per_dimension: 65535,
        ..wgpu::Limits::default()
    }
}

impl Gpu {
    /// The CPU backend: every kernel runs as Rust code on the host (see [`crate::cpu`]).
    pub fn cpu() -> Gpu {
        let limits = cpu_limits();
        let summary = AdapterSummary {
            name: cpu_name(),
            backend: "Cpu".into(),
            device_type: "Host".into(),
            driver: "accrete".into(),
            driver_info: env!("CARGO_PKG_VERSION").into(),
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            features: Vec::new(),
        };
        let autotune = autotune::Tuner::from_env(&autotune::adapter_key(&summary));
        Gpu {
            inner: Arc::new(GpuInner {
                hw: Hw::Cpu,
                summary,
                limits,
                features: wgpu::Features::empty(),
                uncaptured: Arc::default(),
                autotune,
            }),
        }
    }
}
