//! Training tests: end-to-end learning, incremental chunks and rehearsal (DER, DER++), distillation, LwF, EWC, early stopping, regression, mixed precision, tied layers, gradient accumulation and data parallelism.

mod accumulate;
mod agem;
mod backends;
mod der;
mod distill;
mod e2e;
mod early_stop;
mod ewc;
mod hyper;
mod incremental;
mod init;
mod lwf;
mod mixed_precision;
mod parallel;
mod recovery;
mod regression;
mod schedules;
mod tied;
