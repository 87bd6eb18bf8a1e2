//! Optimizer kernels against the f64 CPU implementation over several steps, and global-norm
//! clipping. Each step starts the reference from the GPU's own f32 state, so errors do not
//! compound and the tolerance stays that of one step: the update is a handful of rounded
//! f32 operations, |err| ≤ 2⁻²³·(|w| + |w'| + 16·|w' − w|).

use accrete::kernels::clip::{self, GlobalNormClip};
use accrete::kernels::optim::{reference, update_into, Penalty, Rule};
use accrete::Tensor;
use accrete_tests::*;

fn rules() -> Vec<Rule> {
    vec![
        Rule::Sgd,
        Rule::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        Rule::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        Rule::Adagrad { eps: 1e-10 },
        Rule::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
        },
        Rule::ADAM,
        Rule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        },
    ]
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn every_rule_tracks_the_cpu_over_several_steps() {
    let n = 517;
    for (ri, rule) in rules().iter().enumerate() {
        for (pi, pen) in [Penalty::default(), Penalty { l1: 1e-3, l2: 1e-2 }]
            .iter()
            .enumerate()
        {
            let mut r = rng(500 + ri as u64 * 10 + pi as u64);
            let w0 = uniform(&mut r, n, -1.0, 1.0);
            let w = upload(&[n], &w0);
            let state: Vec<Tensor> = (0..rule.state_count())
                .map(|_| Tensor::zeros(gpu(), &[n]).unwrap())
                .collect();
            let lr = 0.01f32;
            for step in 1..=5u64 {
                let g = uniform(&mut r, n, -1.0, 1.0);
                let (w_before, s_before) = (read(&w), state.iter().map(read).collect::<Vec<_>>());
                let tg = upload(&[n], &g);
                let refs: Vec<&Tensor> = state.iter().collect();
                let d = update_into(rule, lr, *pen, step, &w, &tg, &refs).unwrap();
                gpu().run(&[&d]).unwrap();

                let mut w_ref = f64s(&w_before);
                let mut s_ref: Vec<Vec<f64>> = s_before.iter().map(|s| f64s(s)).collect();
                reference::update(
                    rule,
                    lr as f64,
                    *pen,
                    step,
                    &mut w_ref,
                    &f64s(&g),
                    &mut s_ref,
                );
                let what = format!("{} {pen:?} step {step}", rule.name());
                assert_close(&format!("{what} weights"), &read(&w), &w_ref, |i| {
                    EPS * (w_ref[i].abs()
                        + (w_before[i] as f64).abs()
                        + 16.0 * (w_ref[i] - w_before[i] as f64).abs())
                        + SUBNORMAL
                });
                // A state update sums a few terms (the old state and g or g²): its rounding is
                // relative to the terms' magnitudes, not to the (possibly cancelled) result.
                for (k, s) in state.iter().enumerate() {
                    assert_close(&format!("{what} state {k}"), &read(s), &s_ref[k], |i| {
                        let ge = g[i].abs() as f64 + (pen.l2 * w_before[i].abs() + pen.l1) as f64;
                        4.0 * EPS
                            * (s_ref[k][i].abs() + (s_before[k][i] as f64).abs() + ge + ge * ge)
                            + SUBNORMAL
                    });
                }
            }
        }
    }
}

#[test]
fn invalid_hyper_parameters_are_refused() {
    let w = upload(&[3], &[0.0; 3]);
    let g = upload(&[3], &[0.0; 3]);
    let bad = Rule::Adam {
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
    };
    let s = [
        Tensor::zeros(gpu(), &[3]).unwrap(),
        Tensor::zeros(gpu(), &[3]).unwrap(),
    ];
    let err = update_into(&bad, 0.1, Penalty::default(), 1, &w, &g, &[&s[0], &s[1]]).unwrap_err();
    assert!(err.to_string().contains("adam beta1"), "{err}");
    let err = update_into(&Rule::ADAM, 0.1, Penalty::default(), 1, &w, &g, &[&s[0]]).unwrap_err();
    assert!(err.to_string().contains("needs 2 state tensors"), "{err}");
    let err = update_into(&Rule::Sgd, 0.1, Penalty::default(), 0, &w, &g, &[]).unwrap_err();
    assert!(err.to_string().contains("steps count from 1"), "{err}");
}

#[test]
fn global_norm_clipping() {
    for (case, max_norm) in [(0u64, 1.0f32), (1, 1e3)] {
        let sizes = [1usize, 255, 256, 257, 1000, 0, 70_001];
        let mut r = rng(900 + case);
        let host: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| uniform(&mut r, n, -0.1, 0.1))
            .collect();
        let grads: Vec<Tensor> = host
            .iter()
            .zip(&sizes)
            .map(|(h, &n)| upload(&[n], h))
            .collect();
        let refs: Vec<&Tensor> = grads.iter().collect();
        let plan = GlobalNormClip::new(gpu(), &refs, max_norm).unwrap();
        gpu().run(&plan.all()).unwrap();
        let mut want: Vec<Vec<f64>> = host.iter().map(|h| f64s(h)).collect();
        let (norm, scale) = clip::reference::clip(&mut want, max_norm as f64);
        let total: usize = sizes.iter().sum();
        let res = read(&plan.result);
        assert_close("norm", &res[..1], &[norm], |_| {
            (total as f64 + 4.0) * EPS * norm
        });
        assert_close("scale", &res[1..], &[scale], |_| {
            (total as f64 + 8.0) * EPS * scale
        });
        for (k, g) in grads.iter().enumerate() {
            assert_close(&format!("clipped grad {k}"), &read(g), &want[k], |i| {
                (total as f64 + 8.0) * EPS * want[k][i].abs()
            });
        }
        assert_eq!(
            scale < 1.0,
            case == 0,
            "case {case} should {}clip",
            if case == 0 { "" } else { "not " }
        );
    }
}

#[test]
fn clipping_is_deterministic() {
    let x = uniform(&mut rng(3), 100_000, -1.0, 1.0);
    let norms: Vec<u32> = (0..2)
        .map(|_| {
            let g = upload(&[x.len()], &x);
            let plan = GlobalNormClip::new(gpu(), &[&g], 0.5).unwrap();
            gpu().run(&plan.all()).unwrap();
            read(&plan.result)[0].to_bits()
        })
        .collect();
    assert_eq!(norms[0], norms[1]);
}
