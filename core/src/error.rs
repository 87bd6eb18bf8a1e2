//! The one error type of accrete. Every variant carries the context a user needs to act:
//! what was asked for, what the limit or expectation was, and (where it helps) what to do.

use std::fmt;

/// Result alias used throughout accrete.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in accrete. Front ends decide how to show it; the
/// `Display` text is already a complete sentence for a user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter could be found at all.
    #[error("no GPU adapter found ({detail}). {hint}")]
    NoAdapter { detail: String, hint: &'static str },

    /// `ACCRETE_ADAPTER` named an adapter that does not exist.
    #[error("no adapter matches ACCRETE_ADAPTER={wanted:?}; available adapters: {available}")]
    AdapterNotFound { wanted: String, available: String },

    /// The adapter refused to create a device.
    #[error("the adapter {adapter:?} refused to create a device: {detail}")]
    DeviceRequest { adapter: String, detail: String },

    /// A buffer or dispatch larger than the device allows.
    #[error("{what} needs {needed} but this device allows at most {limit} ({limit_name}); use smaller sizes or a device with larger limits")]
    OverLimit {
        what: String,
        needed: u64,
        limit: u64,
        limit_name: &'static str,
    },

    /// Operands whose shapes do not fit the operation.
    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },

    /// An argument outside its allowed range (a rate, a tile size, a hyper-parameter).
    #[error("{what}: {detail}")]
    InvalidArgument { what: String, detail: String },

    /// A validation or out-of-memory error reported by the GPU driver / wgpu.
    #[error("GPU error in {context}: {detail}")]
    Gpu { context: String, detail: String },

    /// A data file or buffer that cannot be used (bad magic, truncated, mismatched sizes).
    #[error("{source_name}: {detail}")]
    Data { source_name: String, detail: String },

    /// An input file or folder could not be read (missing, unreadable, not a regular file).
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },

    /// An output could not be written (disk full, permissions, a read-only folder).
    #[error("{path}: could not write: {detail}")]
    Write { path: String, detail: String },

    /// Training kept diverging after repeated rollbacks.
    #[error("training diverged and was rolled back {rollbacks} times: {detail}")]
    Diverged { rollbacks: usize, detail: String },

    /// Mapping a buffer for read-back failed (device lost, buffer destroyed).
    #[error("reading {what} back from the GPU failed: {detail}")]
    ReadBack { what: String, detail: String },
}

impl Error {
    /// Every value [`Error::code`] returns.
    pub const CODES: [&'static str; 12] = [
        "no_adapter",
        "adapter_not_found",
        "device_request",
        "over_limit",
        "shape",
        "invalid_argument",
        "gpu",
        "data",
        "io",
        "write",
        "diverged",
        "read_back",
    ];

    /// A stable, machine-readable name of the kind of error (the browser package's
    /// `error.code`): one of [`Error::CODES`].
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoAdapter { .. } => "no_adapter",
            Error::AdapterNotFound { .. } => "adapter_not_found",
            Error::DeviceRequest { .. } => "device_request",
            Error::OverLimit { .. } => "over_limit",
            Error::Shape { .. } => "shape",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::Gpu { .. } => "gpu",
            Error::Data { .. } => "data",
            Error::Io { .. } => "io",
            Error::Write { .. } => "write",
            Error::Diverged { .. } => "diverged",
            Error::ReadBack { .. } => "read_back",
        }
    }

    /// Whether the error is the caller's input — a file, a configuration, a checkpoint, an
    /// argument, a size over the device's limits — rather than a failure at run time (the
    /// device, writing output, training that diverged). The CLI exits with 2 for the first
    /// and 1 for the second.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::AdapterNotFound { .. }
            | Error::OverLimit { .. }
            | Error::Shape { .. }
            | Error::InvalidArgument { .. }
            | Error::Data { .. }
            | Error::Io { .. } => true,
            Error::NoAdapter { .. }
            | Error::DeviceRequest { .. }
            | Error::Gpu { .. }
            | Error::Write { .. }
            | Error::Diverged { .. }
            | Error::ReadBack { .. } => false,
        }
    }

    pub(crate) fn shape(op: &'static str, detail: impl fmt::Display) -> Self {
        Error::Shape {
            op,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn data(source_name: impl Into<String>, detail: impl fmt::Display) -> Self {
        Error::Data {
            source_name: source_name.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, detail: impl fmt::Display) -> Self {
        Error::InvalidArgument {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// `s` cut to at most `max` characters for an error message, with how much was left out
/// (a 500 KB cell must not become a 500 KB line).
pub fn clip(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}… ({} more characters)", total - max)
}

/// The first `max` items joined by ", ", then "… and N more": a readable list of however
/// many items (the columns of a 25,000-column table, say).
pub fn excerpt<T: fmt::Display>(items: &[T], max: usize) -> String {
    let shown: Vec<String> = items.iter().take(max).map(|i| i.to_string()).collect();
    let mut out = shown.join(", ");
    if items.len() > max {
        out.push_str(&format!(" … and {} more", items.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_texts_and_lists_are_cut_to_a_readable_length() {
        assert_eq!(super::clip("abc", 3), "abc");
        assert_eq!(super::clip("abcdef", 3), "abc… (3 more characters)");
        let items: Vec<usize> = (0..25_000).collect();
        assert_eq!(super::excerpt(&items, 3), "0, 1, 2 … and 24997 more");
        assert_eq!(super::excerpt(&items[..2], 3), "0, 1");
    }

    #[test]
    fn every_error_has_a_listed_unique_code() {
        use super::Error::*;
        let s = String::new;
        let all = [
            NoAdapter {
                detail: s(),
                hint: "",
            },
            AdapterNotFound {
                wanted: s(),
                available: s(),
            },
            DeviceRequest {
                adapter: s(),
                detail: s(),
            },
            OverLimit {
                what: s(),
                needed: 0,
                limit: 0,
                limit_name: "",
            },
            Shape {
                op: "",
                detail: s(),
            },
            InvalidArgument {
                what: s(),
                detail: s(),
            },
            Gpu {
                context: s(),
                detail: s(),
            },
            Data {
                source_name: s(),
                detail: s(),
            },
            Io {
                path: s(),
                detail: s(),
            },
            Write {
                path: s(),
                detail: s(),
            },
            Diverged {
                rollbacks: 0,
                detail: s(),
            },
            ReadBack {
                what: s(),
                detail: s(),
            },
        ];
        let codes: Vec<&str> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes, super::Error::CODES);
    }
}
