//! Optimizer kernels against the f64 CPU implementation over several steps, and global-norm
//! clipping. Each step starts the reference from the GPU's own f32 state, so errors do not
//! compound and the tolerance stays that of one step: the update is a handful of rounded
//! f32 operations, |err| ≤ 2⁻²³·(|w| + |w'| + 16·|w' − w|).
//!
//! The multi-tensor update and clipping (one dispatch over a flat buffer and a segment
//! table) must give the same bits as the per-tensor launches, for every rule.

use accrete::kernels::clip::{self, GlobalNormClip};
use accrete::kernels::optim::{
    reference, schedule_row, update_into, update_multi_scheduled_into, update_scheduled_into,
    MultiClip, Penalty, Rule, Segment,
};
use accrete::kernels::step;
use accrete::{Dispatch, Tensor};
use accrete_tests::*;

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn every_rule_tracks_the_cpu_over_several_steps() {
    // 70,001 elements: the CPU backend shares an update this size out to its threads, in
    // pieces with a short last one.
    for n in [517, 70_001] {
        every_rule_tracks_the_cpu_at(n);
    }
}

fn every_rule_tracks_the_cpu_at(n: usize) {
    for (ri, rule) in all_rules().iter().enumerate() {
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
                // The step's direction sums terms (Nesterov's u = g + β·(β·s + g)) that can
                // cancel: their rounding is relative to the terms, times lr, not to the step.
                assert_close(&format!("{what} weights"), &read(&w), &w_ref, |i| {
                    let ge = g[i].abs() as f64 + (pen.l2 * w_before[i].abs() + pen.l1) as f64;
                    let terms: f64 = ge + s_before.iter().map(|s| s[i].abs() as f64).sum::<f64>();
                    EPS * (w_ref[i].abs()
                        + (w_before[i] as f64).abs()
                        + 16.0 * (w_ref[i] - w_before[i] as f64).abs()
                        + 4.0 * lr as f64 * terms)
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

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Tensor sizes of the multi-tensor tests: 1, around the 256-thread workgroup, odd sizes.
const SIZES: [usize; 7] = [1, 63, 255, 256, 257, 700, 3001];
/// Per-tensor lr multipliers; tensor 2 is frozen (left out of the segment table).
const SCALES: [f32; 7] = [1.0, 0.5, 1.0, 2.0, 0.0, 1.0, 0.25];
const FROZEN: usize = 2;

/// The multi-tensor path (views of flat buffers, one update dispatch, MultiClip) against the
/// per-tensor path (separate buffers, one dispatch per tensor, GlobalNormClip): identical
/// bits of weights, states, clipped gradients and norm after every step, for every rule,
/// with and without penalties and clipping, with per-tensor lr multipliers, a frozen tensor
/// (untouched) and zero gaps between tensors (untouched). Unpenalised, the multi-tensor
/// weights also track the f64 reference.
#[test]
fn multi_tensor_update_is_bit_identical_to_per_tensor() {
    // Layout in the flat buffers: offsets aligned to Tensor::VIEW_ALIGN.
    let mut offsets = Vec::new();
    let mut end = 0usize;
    for &n in &SIZES {
        let at = end.next_multiple_of(Tensor::VIEW_ALIGN);
        offsets.push(at);
        end = at + n;
    }
    let flat_len = end + 5; // a tail gap too
    let segments: Vec<Segment> = (0..SIZES.len())
        .filter(|&k| k != FROZEN)
        .map(|k| Segment {
            offset: offsets[k],
            len: SIZES[k],
            lr_scale: SCALES[k],
        })
        .collect();
    let lrs = [0.01f32, 0.02, 0.005];
    for (ri, rule) in all_rules().iter().enumerate() {
        for (ci, (pen, clip)) in [
            (Penalty::default(), None),
            (Penalty { l1: 1e-3, l2: 1e-2 }, Some(0.5f32)),
        ]
        .into_iter()
        .enumerate()
        {
            let what = format!("{} case {ci}", rule.name());
            let mut r = rng(7000 + ri as u64 * 10 + ci as u64);
            let w0: Vec<Vec<f32>> = SIZES
                .iter()
                .map(|&n| uniform(&mut r, n, -1.0, 1.0))
                .collect();
            let mut flat0 = vec![0.0f32; flat_len];
            for (k, w) in w0.iter().enumerate() {
                flat0[offsets[k]..offsets[k] + w.len()].copy_from_slice(w);
            }
            // Per-tensor path: separate buffers.
            let sep_w: Vec<Tensor> = w0.iter().map(|w| upload(&[w.len()], w)).collect();
            let sep_g: Vec<Tensor> = SIZES.iter().map(|&n| upload(&[n], &vec![0.0; n])).collect();
            let sep_s: Vec<Vec<Tensor>> = SIZES
                .iter()
                .map(|&n| {
                    (0..rule.state_count())
                        .map(|_| Tensor::zeros(gpu(), &[n]).unwrap())
                        .collect()
                })
                .collect();
            // Multi-tensor path: flat buffers and views of them.
            let flat_w = upload(&[flat_len], &flat0);
            let flat_g = Tensor::zeros(gpu(), &[flat_len]).unwrap();
            let flat_s: Vec<Tensor> = (0..rule.state_count())
                .map(|_| Tensor::zeros(gpu(), &[flat_len]).unwrap())
                .collect();
            let view = |t: &Tensor, k: usize| t.view(offsets[k], &[SIZES[k]]).unwrap();

            let table: Vec<f32> = lrs
                .iter()
                .enumerate()
                .flat_map(|(t, &lr)| schedule_row(rule, lr, t as u64 + 1))
                .collect();
            let sched = upload(&[lrs.len(), 4], &table);
            let counter = step::counter(gpu(), 0).unwrap();

            let mut per: Vec<Dispatch> = Vec::new();
            let trainable: Vec<usize> = (0..SIZES.len()).filter(|&k| k != FROZEN).collect();
            let clip_old = clip.map(|m| {
                let gs: Vec<&Tensor> = trainable.iter().map(|&k| &sep_g[k]).collect();
                GlobalNormClip::new(gpu(), &gs, m).unwrap()
            });
            if let Some(c) = &clip_old {
                per.extend(c.dispatches.iter().cloned());
            }
            for &k in &trainable {
                let st: Vec<&Tensor> = sep_s[k].iter().collect();
                per.push(
                    update_scheduled_into(
                        rule, pen, SCALES[k], &sep_w[k], &sep_g[k], &st, &sched, &counter,
                    )
                    .unwrap(),
                );
            }
            let mut multi: Vec<Dispatch> = Vec::new();
            let clip_new =
                clip.map(|m| MultiClip::new(gpu(), &[(&flat_g, &segments[..])], m).unwrap());
            if let Some(c) = &clip_new {
                multi.extend(c.dispatches.iter().cloned());
            }
            let st: Vec<&Tensor> = flat_s.iter().collect();
            multi.push(
                update_multi_scheduled_into(
                    rule, pen, &flat_w, &flat_g, &st, &segments, &sched, &counter,
                )
                .unwrap(),
            );
            assert_eq!(multi.len(), if clip.is_some() { 4 } else { 1 });

            for (t, &lr) in lrs.iter().enumerate() {
                let grads: Vec<Vec<f32>> = SIZES
                    .iter()
                    .map(|&n| uniform(&mut r, n, -1.0, 1.0))
                    .collect();
                let mut gflat = vec![0.0f32; flat_len];
                for (k, g) in grads.iter().enumerate() {
                    sep_g[k].write_f32(g).unwrap();
                    gflat[offsets[k]..offsets[k] + g.len()].copy_from_slice(g);
                }
                flat_g.write_f32(&gflat).unwrap();
                let before: Vec<Vec<f32>> = (0..SIZES.len()).map(|k| read(&sep_w[k])).collect();
                let s_before: Vec<Vec<Vec<f32>>> = sep_s
                    .iter()
                    .map(|ss| ss.iter().map(read).collect())
                    .collect();
                counter.write_u32(&[t as u32, t as u32, 0, 0]).unwrap();
                gpu().run(&per.iter().collect::<Vec<_>>()).unwrap();
                gpu().run(&multi.iter().collect::<Vec<_>>()).unwrap();
                let step = format!("{what} step {}", t + 1);
                if let (Some(a), Some(b)) = (&clip_old, &clip_new) {
                    assert_eq!(
                        bits(&read(&a.result)),
                        bits(&read(&b.result)),
                        "{step}: norm"
                    );
                }
                for k in 0..SIZES.len() {
                    assert_eq!(
                        bits(&read(&sep_w[k])),
                        bits(&read(&view(&flat_w, k))),
                        "{step}: weights of tensor {k}"
                    );
                    assert_eq!(
                        bits(&read(&sep_g[k])),
                        bits(&read(&view(&flat_g, k))),
                        "{step}: gradient of tensor {k}"
                    );
                    for (s, fs) in sep_s[k].iter().zip(&flat_s) {
                        assert_eq!(
                            bits(&read(s)),
                            bits(&read(&view(fs, k))),
                            "{step}: state of tensor {k}"
                        );
                    }
                }
                // Frozen tensor and gaps untouched.
                assert_eq!(bits(&read(&view(&flat_w, FROZEN))), bits(&w0[FROZEN]));
                let all = read(&flat_w);
                for (i, v) in all.iter().enumerate() {
                    let inside =
                        (0..SIZES.len()).any(|k| i >= offsets[k] && i < offsets[k] + SIZES[k]);
                    if !inside {
                        assert_eq!(v.to_bits(), 0, "{step}: gap element {i} was written");
                    }
                }
                // The multi-tensor weights against the f64 reference (from the f32 state
                // before the step), in the unpenalised, unclipped case where the one-step
                // tolerance applies (with penalties, every_rule_tracks_the_cpu_over_several_steps
                // checks the per-tensor path, which is bit-identical).
                if clip.is_some() {
                    continue;
                }
                for &k in &trainable {
                    let got = read(&view(&flat_w, k));
                    let g_used = read(&view(&flat_g, k));
                    let mut w_ref = f64s(&before[k]);
                    let mut s_ref: Vec<Vec<f64>> = s_before[k].iter().map(|s| f64s(s)).collect();
                    let lr_k = (lr * SCALES[k]) as f64;
                    reference::update(
                        rule,
                        lr_k,
                        pen,
                        t as u64 + 1,
                        &mut w_ref,
                        &f64s(&g_used),
                        &mut s_ref,
                    );
                    let b = &before[k];
                    assert_close(&format!("{step} tensor {k} vs f64"), &got, &w_ref, |i| {
                        EPS * (w_ref[i].abs()
                            + (b[i] as f64).abs()
                            + 16.0 * (w_ref[i] - b[i] as f64).abs())
                            + SUBNORMAL
                    });
                }
            }
        }
    }
}

#[test]
fn multi_tensor_segments_are_checked() {
    let w = Tensor::zeros(gpu(), &[300]).unwrap();
    let g = Tensor::zeros(gpu(), &[300]).unwrap();
    let sched = upload(&[1, 4], &schedule_row(&Rule::Sgd, 0.1, 1));
    let counter = step::counter(gpu(), 0).unwrap();
    let seg = |offset, len, lr_scale| Segment {
        offset,
        len,
        lr_scale,
    };
    for (segs, msg) in [
        (
            vec![seg(0, 100, 1.0), seg(64, 10, 1.0)],
            "ascending, disjoint",
        ),
        (vec![seg(256, 100, 1.0)], "inside the 300-element buffer"),
        (vec![seg(0, 10, f32::NAN)], "lr_scale"),
    ] {
        let err = update_multi_scheduled_into(
            &Rule::Sgd,
            Penalty::default(),
            &w,
            &g,
            &[],
            &segs,
            &sched,
            &counter,
        )
        .unwrap_err();
        assert!(err.to_string().contains(msg), "{err}");
    }
    assert!(w.view(3, &[10]).is_err(), "views must be aligned");
    assert!(w.view(256, &[64]).is_err(), "views must fit");
}

/// Whole training runs: the trainer's multi-tensor step (one update dispatch, MultiClip)
/// against its per-tensor step, for every optimizer, with a frozen layer, a per-layer lr
/// multiplier, L1/L2 penalties and clipping: identical weight and state bytes.
#[test]
fn trainer_multi_tensor_step_matches_per_tensor_bytes() {
    use accrete::nn::presets;
    use accrete::optim::{OptimKind, OptimizerSpec};
    use accrete::train::{GpuDataset, StepKernels, TrainSpec, Trainer};
    let data = GpuDataset::upload(gpu(), &spirals(16, 5)).unwrap();
    for kind in [
        OptimKind::Sgd,
        OptimKind::Momentum,
        OptimKind::Nesterov,
        OptimKind::Adagrad,
        OptimKind::Rmsprop,
        OptimKind::Adam,
        OptimKind::Adamw,
    ] {
        let mut spec = presets::mlp(2, &[24, 12], 3);
        spec.freeze(&[1]).unwrap();
        let mut opt = OptimizerSpec::new(kind, 0.05);
        opt.l1 = 1e-4;
        opt.l2 = 1e-3;
        opt.clip_norm = Some(0.3);
        opt.layer_lr.insert("2".into(), 0.5);
        let ts = TrainSpec {
            batch_size: 16,
            ..Default::default()
        };
        let run = |multi: bool| {
            let mut t = Trainer::new(gpu(), spec.clone(), opt.clone(), ts.clone(), 3).unwrap();
            t.set_step_kernels(StepKernels {
                multi_tensor_update: multi,
                ..Default::default()
            });
            for _ in 0..2 {
                pollster::block_on(t.fit_epoch(&data)).unwrap();
            }
            (
                pollster::block_on(weight_bytes(&t)),
                t.dispatches_per_step(),
            )
        };
        let ((multi, n_multi), (per, n_per)) = (run(true), run(false));
        // 4 trainable tensors: per tensor 2·4 + 1 clip and 4 updates; multi 3 and 1.
        assert_eq!(n_per - n_multi, 9, "{kind:?}: dispatches per step");
        assert!(
            multi == per,
            "{kind:?}: weights differ between the two paths"
        );
    }
}
