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
