//! Adapter discovery and device creation.
//!
//! Preference order: discrete > integrated > virtual > CPU > other, unless
//! `ACCRETE_ADAPTER=<substring>` picks one by name (case-insensitive). `WGPU_BACKEND`
//! (e.g. `vulkan`, `metal`, `dx12`) restricts the backends searched.

use super::{pool::BufferPool, Gpu, GpuInner, Hw, WgpuDevice};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How to pick an adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name; `None` picks by device type.
    pub adapter: Option<String>,
    /// Backends to search; `None` means all compiled-in backends.
    pub backends: Option<wgpu::Backends>,
    /// Optional features not to enable even where the adapter has them (`SHADER_F16`,
    /// `SUBGROUP`, `TIMESTAMP_QUERY`…): to run, or test, the paths taken on devices without.
    pub disable_features: wgpu::Features,
    /// Without `adapter`: open the adapter at this position (modulo their number) among the
    /// best-ranked adapters of the best device type, instead of the first: an MPI rank's
    /// node-local rank, so the ranks of a node spread over its GPUs. `None`: the first.
    pub position: Option<usize>,
    /// Which backend to open (`ACCRETE_BACKEND`): a GPU adapter, the CPU backend, or the
    /// better of the two ([`BackendChoice::Auto`]).
    pub backend: BackendChoice,
}

/// Which backend a device opens on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU adapter when there is one, else the CPU backend: a software adapter
    /// (lavapipe, SwiftShader, WARP) runs WGSL far slower than the CPU backend runs Rust.
    #[default]
    Auto,
    /// A WebGPU adapter (software ones included), chosen as `ACCRETE_ADAPTER` says.
    Gpu,
    /// The CPU backend ([`crate::cpu`]).
    Cpu,
}

impl BackendChoice {
    /// Parses `auto`, `gpu` or `cpu` (case-insensitive), naming the valid values otherwise.
    pub fn parse(text: &str, source: &str) -> Result<BackendChoice> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(BackendChoice::Auto),
            "gpu" | "webgpu" => Ok(BackendChoice::Gpu),
            "cpu" => Ok(BackendChoice::Cpu),
            other => Err(Error::invalid(
                source.to_string(),
                format!("unknown backend {other:?}; use auto, gpu or cpu"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Cpu => "cpu",
        }
    }
}

/// Whether an adapter is a hardware GPU, which `auto` prefers to the CPU backend: a software
/// adapter reports device type `Cpu` (lavapipe, WARP) or, in a browser, which gives no device
/// type, is known by name (SwiftShader, lavapipe/llvmpipe, Microsoft Basic Render Driver).
pub fn is_hardware(adapter: &AdapterSummary) -> bool {
    const SOFTWARE: [&str; 5] = [
        "swiftshader",
        "llvmpipe",
        "lavapipe",
        "basic render",
        "warp",
    ];
    let name = adapter.name.to_lowercase();
    adapter.device_type != "Cpu" && !SOFTWARE.iter().any(|s| name.contains(s))
}

impl GpuOptions {
    /// Reads `ACCRETE_ADAPTER`, `WGPU_BACKEND` and `ACCRETE_BACKEND` (all optional; an
    /// `ACCRETE_BACKEND` that is not auto, gpu or cpu is refused when a device is opened).
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            GpuOptions {
                adapter: std::env::var("ACCRETE_ADAPTER")
                    .ok()
                    .filter(|s| !s.is_empty()),
                backends: wgpu::Backends::from_env(),
                disable_features: wgpu::Features::empty(),
                position: None,
                backend: BackendChoice::default(),
            }
        }
        #[cfg(target_arch = "wasm32")]
        GpuOptions::default()
    }

    /// The backend to open: `backend` unless it is `Auto` and `ACCRETE_BACKEND` says
    /// otherwise (natively).
    pub fn backend(&self) -> Result<BackendChoice> {
        #[cfg(not(target_arch = "wasm32"))]
        if self.backend == BackendChoice::Auto {
            if let Ok(v) = std::env::var("ACCRETE_BACKEND") {
                return BackendChoice::parse(&v, "ACCRETE_BACKEND");
            }
        }
        Ok(self.backend)
    }
}

/// What a user needs to know about an adapter, ready to print as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    /// Features that matter to accrete (SHADER_F16, SUBGROUP, TIMESTAMP_QUERY, ...).
    pub features: Vec<String>,
}

/// The names of `features` ("SHADER_F16, SUBGROUP"), for messages.
pub fn feature_names(features: wgpu::Features) -> String {
    let mut names: Vec<&str> = INTERESTING_FEATURES
        .iter()
        .filter(|(f, _)| features.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    let known = INTERESTING_FEATURES
        .iter()
        .fold(wgpu::Features::empty(), |acc, (f, _)| acc | *f);
    let other = features - known;
    let other_text = format!("{other:?}");
    if !other.is_empty() {
        names.push(&other_text);
    }
    names.join(", ")
}

const INTERESTING_FEATURES: &[(wgpu::Features, &str)] = &[
    (wgpu::Features::SHADER_F16, "SHADER_F16"),
    (wgpu::Features::SUBGROUP, "SUBGROUP"),
    (
        wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
        "EXPERIMENTAL_COOPERATIVE_MATRIX",
    ),
    (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY"),
    (
        wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        "TIMESTAMP_QUERY_INSIDE_ENCODERS",
    ),
    (
        wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        "TIMESTAMP_QUERY_INSIDE_PASSES",
    ),
];

impl AdapterSummary {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features();
        AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            features: INTERESTING_FEATURES
                .iter()
                .filter(|(f, _)| features.contains(*f))
                .map(|(_, n)| n.to_string())
                .collect(),
        }
    }
}

const NO_ADAPTER_HINT: &str = "Without a GPU use the CPU backend (--backend auto or cpu; \
backend: \"auto\" in JS), or install a software Vulkan driver to run the WGSL kernels: \
`apt-get install -y mesa-vulkan-drivers libvulkan1`. In a browser, use one with WebGPU enabled \
(Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).";

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn instance(options: &GpuOptions) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    if let Some(b) = options.backends {
        desc.backends = b;
    }
    wgpu::Instance::new(desc)
}

/// Lists every adapter the instance can see, best first.
pub async fn list_adapters(options: &GpuOptions) -> Vec<AdapterSummary> {
    candidates(options)
        .await
        .iter()
        .map(AdapterSummary::of)
        .collect()
}

async fn candidates(options: &GpuOptions) -> Vec<wgpu::Adapter> {
    let instance = instance(options);
    #[cfg(not(target_arch = "wasm32"))]
    let mut adapters = {
        let backends = options.backends.unwrap_or(wgpu::Backends::all());
        instance.enumerate_adapters(backends).await
    };
    #[cfg(target_arch = "wasm32")]
    let mut adapters: Vec<wgpu::Adapter> = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .into_iter()
        .collect();
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    adapters
}

/// Which adapter [`crate::Gpu::new`] opens, and why: the rule of adapter selection, shared
/// by device creation and `accrete devices`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// The best-ranked adapter (no `ACCRETE_ADAPTER`): index 0 of the list, best first.
    Best(usize),
    /// The first adapter whose name contains `ACCRETE_ADAPTER` (case-insensitive).
    Matched(usize, String),
    /// `ACCRETE_ADAPTER` matches no adapter: opening a device fails.
    NoMatch(String),
    /// No adapter at all.
    None,
}

impl AdapterChoice {
    /// The index of the chosen adapter in the list, if one is chosen.
    pub fn index(&self) -> Option<usize> {
        match self {
            AdapterChoice::Best(i) | AdapterChoice::Matched(i, _) => Some(*i),
            AdapterChoice::NoMatch(_) | AdapterChoice::None => None,
        }
    }
}

/// Chooses among `adapters` (best first, as [`list_adapters`] gives them): the first whose
/// name contains `wanted` (case-insensitive), else the best.
pub fn choose_adapter(adapters: &[AdapterSummary], wanted: Option<&str>) -> AdapterChoice {
    match wanted {
        _ if adapters.is_empty() => AdapterChoice::None,
        None => AdapterChoice::Best(0),
        Some(w) => {
            let needle = w.to_lowercase();
            match adapters
                .iter()
                .position(|a| a.name.to_lowercase().contains(&needle))
            {
                Some(i) => AdapterChoice::Matched(i, w.to_string()),
                None => AdapterChoice::NoMatch(w.to_string()),
            }
        }
    }
}

/// Which device [`crate::Gpu::with_options`] opens: an adapter (as [`choose_adapter`] picks
/// it), or the CPU backend, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Adapter(AdapterChoice),
    Cpu(String),
}

/// The device rule, shared by device creation and `accrete devices`: `cpu` takes the CPU
/// backend; `gpu` an adapter; `auto` an adapter when it is a hardware GPU or named by
/// `ACCRETE_ADAPTER`, else (a software adapter, or none) the CPU backend.
pub fn choose_device(adapters: &[AdapterSummary], options: &GpuOptions) -> Result<DeviceChoice> {
    Ok(choose_device_with(
        adapters,
        options.adapter.as_deref(),
        options.backend()?,
    ))
}

/// [`choose_device`] with the backend and the wanted adapter name given (no environment).
pub fn choose_device_with(
    adapters: &[AdapterSummary],
    wanted: Option<&str>,
    backend: BackendChoice,
) -> DeviceChoice {
    let adapter = choose_adapter(adapters, wanted);
    match backend {
        BackendChoice::Cpu => DeviceChoice::Cpu("the CPU backend was asked for".into()),
        BackendChoice::Gpu => DeviceChoice::Adapter(adapter),
        BackendChoice::Auto => match adapter {
            AdapterChoice::None => DeviceChoice::Cpu("there is no GPU adapter".into()),
            AdapterChoice::Best(i) if !is_hardware(&adapters[i]) => DeviceChoice::Cpu(format!(
                "the best adapter, {}, is a software one (slower than the CPU backend; \
                 ACCRETE_BACKEND=gpu or ACCRETE_ADAPTER picks it)",
                adapters[i].name
            )),
            other => DeviceChoice::Adapter(other),
        },
    }
}

/// The device `options` choose: `None` for the CPU backend, else the adapter to open (one
/// enumeration of the adapters serves both decisions).
pub(super) async fn select(options: &GpuOptions) -> Result<Option<wgpu::Adapter>> {
    let backend = options.backend()?;
    if backend == BackendChoice::Cpu {
        return Ok(None);
    }
    let mut adapters = candidates(options).await;
    let summaries: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::of).collect();
    let wanted = options.adapter.as_deref();
    if let DeviceChoice::Cpu(_) = choose_device_with(&summaries, wanted, backend) {
        return Ok(None);
    }
    let chosen = match choose_adapter(&summaries, wanted) {
        AdapterChoice::Best(0) if options.position.is_some() => {
            let best = &summaries[0].device_type;
            let same = summaries
                .iter()
                .take_while(|a| &a.device_type == best)
                .count();
            Ok(adapters.swap_remove(options.position.unwrap_or(0) % same))
        }
        AdapterChoice::Best(i) | AdapterChoice::Matched(i, _) => Ok(adapters.swap_remove(i)),
        AdapterChoice::NoMatch(wanted) => Err(Error::AdapterNotFound {
            wanted,
            available: summaries
                .iter()
                .map(|a| format!("{} ({})", a.name, a.backend))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        AdapterChoice::None => Err(Error::NoAdapter {
            detail: match options.backends {
                Some(b) => format!("searched backends {b:?} from WGPU_BACKEND"),
                None => "searched all backends".to_string(),
            },
            hint: NO_ADAPTER_HINT,
        }),
    };
    chosen.map(Some)
}

/// Creates the device with the adapter's own limits and the optional features accrete uses.
pub(super) async fn open(adapter: wgpu::Adapter, disable: wgpu::Features) -> Result<Gpu> {
    let summary = AdapterSummary::of(&adapter);
    let wanted = wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP;
    let features = adapter.features() & (wanted - disable);
    let limits = adapter.limits();
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("accrete"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| Error::DeviceRequest {
            adapter: summary.name.clone(),
            detail: e.to_string(),
        })?;
    let uncaptured: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = uncaptured.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        if let Ok(mut v) = sink.lock() {
            v.push(e.to_string());
        }
    }));
    let dummy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("accrete-dummy"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let autotune = super::autotune::Tuner::from_env(&super::autotune::adapter_key(&summary));
    Ok(Gpu {
        inner: Arc::new(GpuInner {
            hw: Hw::Wgpu(WgpuDevice {
                device,
                queue,
                pipelines: Mutex::new(HashMap::new()),
                pool: Arc::new(BufferPool::default()),
                dummy,
            }),
            summary,
            limits,
            features,
            uncaptured,
            autotune,
        }),
    })
}
