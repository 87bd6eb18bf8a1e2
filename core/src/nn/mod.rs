//! Layers and models: the spec ([`ModelSpec`]), GPU parameters ([`Model`]) and the
//! recorded forward/backward passes ([`Graph`]).

pub mod fit;
pub mod graph;
pub mod init;
pub mod model;
pub mod presets;
pub mod reference;
pub mod share;
pub mod spec;
pub mod torch;

pub use fit::{check_fits, fitting_batch};
pub use graph::Graph;
pub use init::{BiasInit, Init};
pub use model::{Model, Param, ParamKind};
pub use share::Share;
pub use spec::{LayerShapes, LayerSpec, ModelSpec};
