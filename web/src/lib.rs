//! Browser front end of accrete: a thin wasm-bindgen layer over the `accrete` library,
//! running on WebGPU. Build it with `bash web/build.sh`; the ES module lands in `web/pkg/`.
//!
//! ```js
//! import init, { adapterInfo, version } from "./pkg/accrete_web.js";
//! await init();
//! console.log(version(), await adapterInfo());
//! ```

use wasm_bindgen::prelude::*;

/// The version of this crate (and of the accrete workspace), e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Opens the preferred GPU adapter and resolves to a plain object describing it
/// (name, backend, device type, driver, limits, features).
///
/// Rejects with an `Error` whose message says what to do when WebGPU is unavailable
/// (no `navigator.gpu`, or no adapter) or the device cannot be created.
#[wasm_bindgen(js_name = adapterInfo)]
pub async fn adapter_info() -> Result<JsValue, JsError> {
    install_panic_hook();
    if let Some(problem) = webgpu_problem() {
        return Err(JsError::new(problem));
    }
    let gpu = accrete::Gpu::new()
        .await
        .map_err(|e| JsError::new(&format!("could not open a WebGPU device: {e}")))?;
    to_js(gpu.summary())
}

/// Converts any serialisable value to a plain JS object (through JSON, which keeps the
/// dependency list short; the values here are small).
fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| {
        JsError::new(&format!(
            "JSON.parse failed: {}",
            e.as_string().unwrap_or_else(|| format!("{e:?}"))
        ))
    })
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
fn install_panic_hook() {
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
