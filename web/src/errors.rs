//! Every rejection and throw of the package: an `Error` named `"AccreteError"` whose `code`
//! says what kind of failure it is (the `ErrorCode` union of the TypeScript declarations)
//! and whose message says what was wrong and what to do.

use wasm_bindgen::prelude::*;

/// The `name` of every error the package raises.
pub(crate) const NAME: &str = "AccreteError";

/// Codes of the browser layer, beside [`accrete::Error::code`]'s.
pub(crate) const BUSY: &str = "busy";
pub(crate) const DISPOSED: &str = "disposed";
pub(crate) const NO_WEBGPU: &str = "no_webgpu";
pub(crate) const INVALID: &str = "invalid_argument";

/// An `Error` with `name` = "AccreteError", `code` and `message`.
pub(crate) fn error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name(NAME);
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

/// A bad JavaScript argument.
pub(crate) fn invalid(message: &str) -> JsValue {
    error(INVALID, message)
}

/// An error of the accrete library, with its code.
pub(crate) fn core(e: accrete::Error) -> JsValue {
    error(e.code(), &e.to_string())
}

/// As [`core`], the message rewritten by `f`.
pub(crate) fn core_with(e: accrete::Error, f: impl FnOnce(String) -> String) -> JsValue {
    error(e.code(), &f(e.to_string()))
}
