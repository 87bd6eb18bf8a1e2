//! The CPU twins of the WGSL entry points, one module per shader family (as in `shaders/`).
//! [`lookup`] finds the kernel of a shader's entry point; each module's own `lookup` lists
//! the entry points it implements.

use super::Kernel;

mod conv;
mod elementwise;
mod loss;
mod matmul;
mod optim;
mod step;

/// The CPU kernel of `shader::entry`, if the CPU backend has one.
pub(crate) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    step::lookup(shader, entry)
        .or_else(|| matmul::lookup(shader, entry))
        .or_else(|| conv::lookup(shader, entry))
        .or_else(|| elementwise::lookup(shader, entry))
        .or_else(|| loss::lookup(shader, entry))
        .or_else(|| optim::lookup(shader, entry))
}

/// The instruction set of the GEMM's micro-kernel on this CPU.
pub(crate) fn simd_name() -> &'static str {
    matmul::gemm::simd_name()
}
