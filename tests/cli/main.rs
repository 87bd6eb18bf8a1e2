//! CLI tests: the accrete binary end to end (train, resume, eval, predict, report, devices, bench, export: ONNX and TensorBoard checked by onnxruntime and TensorBoard's reader) and its errors.

mod backends;
mod commands;
mod continual;
mod formats;
mod hostile;
mod interop;
