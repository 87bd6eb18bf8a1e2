//! Kernel tests: every WGSL kernel against its f64 CPU reference (poisoned outputs, awkward sizes), gradient checks by finite differences, the GPU runtime and matmul autotuning. One test binary, so wgpu is linked once.

mod agem;
mod autotune;
mod conv_pool;
mod cpu_twins;
mod elementwise;
mod ewc;
mod gradcheck;
mod loss_metrics;
mod loss_scale;
mod matmul;
mod matmul_row_sums;
mod optim;
mod reduce_loss;
mod reduce_subgroup;
mod replay_loss;
mod rng_gather;
mod runtime;
