//! Session tests: checkpoints and exact resume, stops, rollbacks and transfer learning.

mod checkpoint;
mod session;
mod torch_weights;
