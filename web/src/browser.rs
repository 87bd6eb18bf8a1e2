//! The browser environment: the devices shared by every trainer of the page (WebGPU, and the
//! CPU backend in wasm), which one `auto` takes, why WebGPU may be unavailable here, the
//! adapter's description, and panics sent to the console.

use crate::args::{camel_keys, to_js};
use crate::errors::{self, error};
use accrete::gpu::{choose_device, DeviceChoice};
use accrete::{AdapterSummary, BackendChoice, Gpu, GpuOptions};
use js_sys::Reflect;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Opens the device `options.backend` chooses (`"auto"`, the default: a hardware WebGPU
/// adapter, else the CPU backend — SwiftShader and other software adapters are slower than
/// it; `"gpu"`: WebGPU whatever the adapter; `"cpu"`) and resolves to a plain object
/// describing it (name, backend — `"Cpu"` for the CPU backend —, deviceType, driver,
/// driverInfo, limits, features; camelCase keys): what `Trainer.create(spec, options)` runs on.
///
/// With `backend: "gpu"`, rejects with an `Error` whose message says what to do when WebGPU is
/// unavailable (no `navigator.gpu`, or no adapter) or the device cannot be created.
///
/// wgpu leaves the name and driver empty on WebGPU; they are filled from the browser's own
/// `GPUAdapter.info` (vendor, architecture, device, description), also given as `browser`.
#[wasm_bindgen(js_name = adapterInfo, unchecked_return_type = "AdapterInfo")]
pub async fn adapter_info(
    #[wasm_bindgen(unchecked_optional_param_type = "DeviceOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let gpu = shared_device(backend_arg(&options, "adapterInfo")?).await?;
    if gpu.is_cpu() {
        return to_js(&camel_keys(
            serde_json::to_value(gpu.summary()).map_err(|e| error("internal", &e.to_string()))?,
        ));
    }
    let mut out =
        serde_json::to_value(gpu.summary()).map_err(|e| error("internal", &e.to_string()))?;
    if let Some(info) = browser_adapter_info().await {
        let field = |k: &str| {
            info.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let (vendor, arch, device, description) = (
            field("vendor"),
            field("architecture"),
            field("device"),
            field("description"),
        );
        let join = |parts: &[&String]| {
            parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if out["name"].as_str().is_none_or(str::is_empty) {
            let name = if description.is_empty() {
                join(&[&vendor, &arch, &device])
            } else {
                description.clone()
            };
            out["name"] = name.into();
        }
        if out["driver"].as_str().is_none_or(str::is_empty) {
            out["driver"] = join(&[&vendor, &arch]).into();
        }
        out["browser"] = info;
    }
    to_js(&camel_keys(out))
}

/// The browser's description of its preferred adapter (`GPUAdapter.info`), if it gives one.
async fn browser_adapter_info() -> Option<serde_json::Value> {
    let get = |o: &JsValue, k: &str| {
        Reflect::get(o, &k.into())
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let navigator = get(&js_sys::global().into(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request = get(&gpu, "requestAdapter")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise = request
        .call0(&gpu)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
    let mut out = serde_json::Map::new();
    for k in ["vendor", "architecture", "device", "description"] {
        if let Some(v) = get(&info, k).and_then(|v| v.as_string()) {
            out.insert(k.into(), v.into());
        }
    }
    if let Some(b) = get(&info, "isFallbackAdapter").and_then(|v| v.as_bool()) {
        out.insert("isFallbackAdapter".into(), b.into());
    }
    Some(out.into())
}

thread_local! {
    /// One device for every trainer of the page (opening one per trainer costs time and
    /// memory, and tensors of different trainers never meet).
    static GPU: RefCell<Option<Gpu>> = const { RefCell::new(None) };
    /// The CPU backend, likewise one per page.
    static CPU: RefCell<Option<Gpu>> = const { RefCell::new(None) };
}

/// `options.backend` of `Trainer.create` / `Trainer.load` / `adapterInfo`: `"auto"` (also
/// when `options` or the key is absent), `"gpu"` or `"cpu"`.
pub(crate) fn backend_arg(options: &JsValue, op: &str) -> Result<BackendChoice, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(BackendChoice::Auto);
    }
    if !options.is_object() {
        return Err(error(
            errors::INVALID,
            &format!("{op}: options must be an object like {{ backend: \"cpu\" }}"),
        ));
    }
    let v = Reflect::get(options, &"backend".into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() {
        return Ok(BackendChoice::Auto);
    }
    let text = v.as_string().ok_or_else(|| {
        error(
            errors::INVALID,
            &format!("{op}: options.backend must be \"auto\", \"gpu\" or \"cpu\""),
        )
    })?;
    BackendChoice::parse(&text, &format!("{op}: options.backend"))
        .map_err(|e| error(errors::INVALID, &e.to_string()))
}

/// The page's device for `choice`. `auto` follows core's rule ([`choose_device`]) on the
/// browser's adapter: the CPU backend where there is no WebGPU, no adapter, a software one
/// (SwiftShader), or a WebGPU device that cannot be created.
pub(crate) async fn shared_device(choice: BackendChoice) -> Result<Gpu, JsValue> {
    install_panic_hook();
    match choice {
        BackendChoice::Cpu => return Ok(cpu_device()),
        BackendChoice::Gpu => return shared_gpu().await,
        BackendChoice::Auto => {}
    }
    if webgpu_problem().is_some() {
        return Ok(cpu_device());
    }
    let summary = browser_summary().await;
    let pick = summary.map(|s| choose_device(&[s], &GpuOptions::default()));
    match pick {
        Some(Ok(DeviceChoice::Adapter(_))) => match shared_gpu().await {
            Ok(g) => Ok(g),
            Err(_) => Ok(cpu_device()),
        },
        _ => Ok(cpu_device()),
    }
}

fn cpu_device() -> Gpu {
    CPU.with(|c| c.borrow_mut().get_or_insert_with(Gpu::cpu).clone())
}

/// The browser's adapter as core's rule sees it: its name from `GPUAdapter.info` (where
/// SwiftShader says what it is), a software device type where the browser calls it a
/// fallback adapter. `None` when the browser gives no adapter.
async fn browser_summary() -> Option<AdapterSummary> {
    let info = browser_adapter_info().await?;
    let field = |k: &str| {
        info.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let name = [
        field("vendor"),
        field("architecture"),
        field("device"),
        field("description"),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let fallback = info.get("isFallbackAdapter").and_then(|v| v.as_bool()) == Some(true);
    Some(AdapterSummary {
        name,
        backend: "BrowserWebGpu".into(),
        device_type: if fallback { "Cpu" } else { "Other" }.into(),
        driver: String::new(),
        driver_info: String::new(),
        max_buffer_size: 0,
        max_storage_buffer_binding_size: 0,
        max_compute_workgroup_storage_size: 0,
        max_compute_invocations_per_workgroup: 0,
        max_compute_workgroups_per_dimension: 0,
        features: Vec::new(),
    })
}

pub(crate) async fn shared_gpu() -> Result<Gpu, JsValue> {
    install_panic_hook();
    if let Some(problem) = webgpu_problem() {
        return Err(error(errors::NO_WEBGPU, problem));
    }
    if let Some(gpu) = GPU.with(|g| g.borrow().clone()) {
        return Ok(gpu);
    }
    let options = GpuOptions {
        backend: BackendChoice::Gpu,
        ..GpuOptions::from_env()
    };
    let gpu = Gpu::with_options(options)
        .await
        .map_err(|e| errors::core_with(e, |m| format!("could not open a WebGPU device: {m}")))?;
    GPU.with(|g| *g.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

const NO_WEBGPU: &str = "WebGPU is not available here (navigator.gpu is missing). Use a browser \
    with WebGPU enabled (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows, or Chromium with \
    --enable-unsafe-webgpu) and serve the page over https or from localhost.";

const NOT_WINDOW_OR_WORKER: &str = "WebGPU can only be used in a browser, from a page's main \
    thread or a dedicated worker (this global scope is neither a Window nor a worker).";

/// Why WebGPU cannot be used from this global scope, if it cannot. wgpu itself panics (an
/// opaque `unreachable` in wasm) when the global is neither a `Window` nor a worker scope.
fn webgpu_problem() -> Option<&'static str> {
    let global: JsValue = js_sys::global().into();
    let has = |target: &JsValue, key: &str| {
        js_sys::Reflect::get(target, &JsValue::from_str(key))
            .map(|v| !v.is_undefined() && !v.is_null())
            .unwrap_or(false)
    };
    if !has(&global, "Window") && !has(&global, "WorkerGlobalScope") {
        return Some(NOT_WINDOW_OR_WORKER);
    }
    let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator"))
        .unwrap_or(JsValue::UNDEFINED);
    if navigator.is_undefined() || navigator.is_null() || !has(&navigator, "gpu") {
        return Some(NO_WEBGPU);
    }
    None
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Sends Rust panics to `console.error` (wasm aborts with a bare `unreachable` otherwise).
pub(crate) fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                console_error(&format!("accrete-web: {info}"))
            }));
        });
    }
}
