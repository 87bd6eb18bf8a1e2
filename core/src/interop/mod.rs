//! Formats other tools read: ONNX models ([`onnx`]) and TensorBoard event files
//! ([`tensorboard`]), both protocol buffers written by the small encoder in [`protobuf`].
//! Pure functions from accrete's values to bytes (no files), so the browser can use them
//! too; the CLI writes the files. (PyTorch state dicts are [`crate::nn::torch`].)

pub mod onnx;
pub mod protobuf;
pub mod tensorboard;
