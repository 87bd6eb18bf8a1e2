//! accrete: incremental neural-network training on the GPU through WGSL compute shaders,
//! natively (wgpu: Vulkan, Metal, DX12) and in the browser (WebGPU).
//!
//! Layers of the crate, bottom up: [`gpu`] (device, tensors, pipelines, read-back),
//! [`kernels`] (one launcher per WGSL file, each with an f64 CPU reference).

pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod data;
pub mod defaults;
pub mod error;
pub mod gpu;
pub mod input_file;
pub mod interop;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod report;
pub mod session;
pub mod train;

pub use error::{Error, Result};
pub use gpu::{
    list_adapters, AdapterSummary, BackendChoice, DType, Dispatch, Gpu, GpuOptions, Tensor,
};
