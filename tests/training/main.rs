//! Training tests: end-to-end learning, incremental chunks and rehearsal, distillation, early stopping, regression and mixed precision.

mod distill;
mod e2e;
mod early_stop;
mod incremental;
mod mixed_precision;
mod regression;
mod schedules;
