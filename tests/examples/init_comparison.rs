//! The comparison behind the default initialisation: held-out accuracy on the playground's
//! spirals per scheme, activation and seed (2-32-32-2 MLP, Adam 0.01, batch 32, 100 epochs
//! of 800 points). `cargo run --release -p accrete-tests --example init_comparison`; slow on
//! lavapipe (45 runs), so it is a driver, not a test. The test that holds the default to
//! its promise is `tanh_spirals_learn_with_the_default_init` (tests/training/init.rs).

use accrete::kernels::Activation;
use accrete::nn::Init;
use accrete_tests::spirals::spiral_accuracy;

fn main() {
    for act in [Activation::Tanh, Activation::Sigmoid, Activation::Elu] {
        for init in [
            Init::Torch,
            Init::Auto,
            Init::XavierNormal,
            Init::HeNormal,
            Init::LecunNormal,
        ] {
            let accs: Vec<String> = (1..=3)
                .map(|s| format!("{:.3}", spiral_accuracy(act, Some(init), s, 100)))
                .collect();
            println!("{act:?} {init:?}: {}", accs.join(" "));
        }
    }
}
