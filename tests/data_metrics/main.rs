//! Data and metrics tests: readers, splits and preprocessing; confusion matrices, P/R/F1, ROC-AUC; the checkpoint read back by numpy.

mod data;
mod formats;
mod fuzz;
mod interop_python;
mod metrics;
