//! Kernel launchers: one Rust module per WGSL file in `shaders/`, each with an f64 CPU
//! reference (`reference` submodule) that the tests compare against.
//!
//! Each launcher has two forms: `*_into(..., out) -> Dispatch` builds a reusable launch that
//! writes into tensors the caller owns (training steps record these many times), and a
//! plain form that allocates the output, runs it and returns the tensor.

pub mod activation;
pub mod agem;
#[cfg(test)]
mod catalog;
pub mod clip;
pub mod conv;
pub mod elementwise;
pub mod ewc;
pub mod gather;
pub mod loss;
pub mod loss_replay;
pub mod loss_scale;
pub mod matmul;
pub mod metrics;
pub mod optim;
pub mod permute;
pub mod pool;
pub mod reduce;
pub mod rng;
pub mod softmax;
pub mod step;

use crate::gpu::Shader;
use serde::{Deserialize, Serialize};

/// `shader!("entry", "lib", …)`: the [`Shader`] whose source is the entry shader
/// `shaders/entry.wgsl` and whose libraries are `shaders/lib/lib.wgsl`, …, in the order given
/// (the order `Gpu::pipeline` prepends them), all from the crate `accrete_shaders`. The
/// names are looked up at compile time: an unknown one fails the build.
/// The entry shader's header lists the same libraries (checked by `kernels::catalog`'s tests).
macro_rules! shader {
    ($name:literal $(, $lib:literal)*) => {
        crate::gpu::Shader {
            name: $name,
            source: match accrete_shaders::entry($name) {
                Some(source) => source,
                None => panic!(concat!("no entry shader shaders/", $name, ".wgsl")),
            },
            libs: &[$(match accrete_shaders::library($lib) {
                Some(source) => source,
                None => panic!(concat!("no library shaders/lib/", $lib, ".wgsl")),
            }),*],
        }
    };
}
pub(crate) use shader;

/// Every shader, for tools that validate or list them.
pub fn all_shaders() -> Vec<Shader> {
    vec![
        matmul::SHADER,
        matmul::SHADER_VEC4,
        elementwise::BINARY,
        elementwise::AXPY,
        activation::SHADER,
        softmax::SHADER,
        reduce::SHADER,
        reduce::ARGMAX,
        reduce::SUBGROUP,
        loss::XENT,
        loss::MSE,
        loss::DISTILL,
        loss_replay::SHADER,
        ewc::FISHER,
        ewc::PENALTY,
        agem::SHADER,
        loss_scale::SHADER,
        optim::SHADER,
        optim::MULTI,
        optim::CLIP,
        clip::SHADER,
        rng::SHADER,
        gather::SHADER,
        conv::SHADER,
        conv::FORWARD,
        conv::WGRAD,
        conv::DGRAD,
        permute::SHADER,
        pool::SHADER,
        step::SHADER,
        metrics::SHADER,
    ]
}

/// Elementwise activation functions (shared by the matmul epilogue and activation layers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    /// Slope 0.01 for x < 0 (PyTorch's default).
    LeakyRelu,
    /// α = 1 (PyTorch's default).
    Elu,
    /// tanh approximation, as PyTorch's `gelu(approximate="tanh")`.
    Gelu,
    Sigmoid,
    Tanh,
}

impl Activation {
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];

    /// The code the WGSL `act_forward` / `act_grad` switch on.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The activation's parameter (slope or α); 0 where unused.
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu => 0.01,
            Activation::Elu => 1.0,
            _ => 0.0,
        }
    }

    /// f(x) in f64 (the CPU reference).
    pub fn forward_f64(self, x: f64) -> f64 {
        let a = self.alpha() as f64;
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Activation::Gelu => {
                let u = GELU_C * (x + GELU_A * x * x * x);
                0.5 * x * (1.0 + u.tanh())
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
        }
    }

    /// f'(x) in f64 (the CPU reference).
    pub fn grad_f64(self, x: f64) -> f64 {
        let a = self.alpha() as f64;
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if x > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            Activation::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    a * x.exp()
                }
            }
            Activation::Gelu => {
                let u = GELU_C * (x + GELU_A * x * x * x);
                let t = u.tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
            }
            Activation::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s)
            }
            Activation::Tanh => 1.0 - x.tanh().powi(2),
        }
    }
}

const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_A: f64 = 0.044715;

/// WGSL `const` declarations for injected compile-time choices.
pub(crate) fn consts(items: &[(&str, ConstVal)]) -> String {
    let mut s = String::new();
    for (name, v) in items {
        match v {
            ConstVal::U(x) => s.push_str(&format!("const {name}: u32 = {x}u;\n")),
            ConstVal::B(x) => s.push_str(&format!("const {name}: bool = {x};\n")),
        }
    }
    s
}

pub(crate) enum ConstVal {
    U(u32),
    B(bool),
}

/// Workgroups for a 1-D launch of `n` threads at the common workgroup size 256.
pub(crate) fn groups_1d(n: usize) -> u64 {
    (n as u64).div_ceil(256)
}
