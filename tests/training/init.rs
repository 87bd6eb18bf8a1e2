//! Initialisation and learning: the playground's two interleaved spirals (the generator of
//! web/demo/lib/datasets.js, ported) must be learned by a 2-32-32-2 tanh MLP with the default
//! initialisation (PyTorch's), Adam 0.01, batch 32, judged on held-out points.

use accrete::kernels::Activation;
use accrete_tests::spirals::spiral_accuracy;

#[test]
fn tanh_spirals_learn_with_the_default_init() {
    // 100 epochs of 800 points (2 500 steps), as in the measurement.
    let acc = spiral_accuracy(Activation::Tanh, None, 1, 100);
    eprintln!("tanh spirals, default init: held-out accuracy {acc:.3}");
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}
