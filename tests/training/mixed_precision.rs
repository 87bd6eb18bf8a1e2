//! Mixed-precision training (`train.mixed_precision`): f16 GEMM operands with f32 sums, f32
//! master weights and dynamic loss scaling on the GPU.
//!
//! - the loss-scaling kernels against exact host arithmetic (S is a power of two, so scaling
//!   and unscaling are exact), poisoned and unlisted elements untouched;
//! - the optimizer rules leave weights and state bit-for-bit alone on a flagged step;
//! - a step whose gradients overflow f16 is skipped and halves S; clean steps grow it;
//! - without loss scaling a tiny gradient underflows f16 and the weights do not move; with
//!   it the update matches f32's;
//! - MLP and CNN train to f32's losses within f16's rounding, while differing from f32 in
//!   the bits (so the f16 path really ran); same seed ⇒ same bits; checkpoints resume
//!   exactly, the scaler's state included;
//! - clear errors for bad settings.

use accrete::data::Dataset;
use accrete::kernels::loss_scale;
use accrete::kernels::optim::{
    schedule_row, update_multi_scheduled_into, update_scheduled_into, Penalty, Segment,
};
use accrete::kernels::step;
use accrete::kernels::Activation;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::Checkpoint;
use accrete::train::{
    ChunkOptions, GpuDataset, LossKind, LossScaleState, MixedPrecision, NoObserver, TrainSpec,
    Trainer,
};
use accrete::{Dispatch, Gpu, Tensor};
use accrete_tests::*;

/// The f16 path needs SHADER_F16; lavapipe has it. Elsewhere the tests say why they skip.
fn f16_gpu() -> Option<&'static Gpu> {
    let g = gpu();
    if g.features()
        .contains(accrete::kernels::matmul::Variant::F16_64X64.required_features())
    {
        Some(g)
    } else {
        eprintln!("skipped: adapter {} lacks SHADER_F16", g.summary().name);
        None
    }
}

fn run(d: accrete::Result<Dispatch>) {
    gpu().run(&[&d.unwrap()]).unwrap();
}

#[test]
fn scale_and_unscale_are_exact_and_flag_non_finite_gradients() {
    let g = gpu();
    let x = uniform(&mut rng(1), 1000, -3.0, 3.0);
    let s = 1024.0f32;
    let scaler = loss_scale::scaler(g, s, 0, 0).unwrap();
    let t = upload(&[1000], &x);
    run(loss_scale::scale_into(&t, &scaler));
    let got = read(&t);
    for (i, (&a, &b)) in got.iter().zip(&x).enumerate() {
        assert_eq!(a.to_bits(), (b * s).to_bits(), "scale at {i}");
    }
    // Unscale two segments of a 1300-element buffer; the gap and the tail stay poisoned.
    let grads = poisoned(&[1300]);
    let mut host = vec![f32::NAN; 1300];
    let vals = uniform(&mut rng(2), 1300, -5000.0, 5000.0);
    let segs = [
        Segment {
            offset: 0,
            len: 300,
            lr_scale: 1.0,
        },
        Segment {
            offset: 512,
            len: 700,
            lr_scale: 1.0,
        },
    ];
    for sg in &segs {
        host[sg.offset..sg.offset + sg.len].copy_from_slice(&vals[sg.offset..sg.offset + sg.len]);
    }
    grads.write_f32(&host).unwrap();
    let counter = step::counter(g, 0).unwrap();
    let d = loss_scale::unscale_into(&grads, &segs, &scaler, &counter)
        .unwrap()
        .unwrap();
    g.run(&[&d]).unwrap();
    let got = read(&grads);
    for i in 0..1300 {
        let listed = segs
            .iter()
            .any(|sg| (sg.offset..sg.offset + sg.len).contains(&i));
        if listed {
            assert_eq!(got[i].to_bits(), (host[i] / s).to_bits(), "unscale at {i}");
        } else {
            assert!(
                got[i].is_nan(),
                "unlisted element {i} was written: {}",
                got[i]
            );
        }
    }
    // NaN poison in the gap is unlisted: no flag.
    assert_eq!(read_u32(&counter)[2], 0, "flag set by unlisted elements");
    // One infinite listed gradient flags the step; so does a NaN.
    for bad in [f32::INFINITY, f32::NAN] {
        host[700] = bad;
        grads.write_f32(&host).unwrap();
        counter.write_u32(&[0, 0, 0, 0]).unwrap();
        g.run(&[&d]).unwrap();
        assert_eq!(read_u32(&counter)[2], 1, "{bad} not flagged");
    }
    // No listed segment: no dispatch.
    assert!(loss_scale::unscale_into(&grads, &[], &scaler, &counter)
        .unwrap()
        .is_none());
}

#[test]
fn scale_update_backs_off_on_overflow_and_grows_after_the_interval() {
    let g = gpu();
    let scaler = loss_scale::scaler(g, 65536.0, 0, 0).unwrap();
    let counter = step::counter(g, 0).unwrap();
    let upd = loss_scale::update_into(&scaler, &counter, 2.0, 0.5, 3).unwrap();
    let state = || LossScaleState {
        scale: f32::from_bits(read_u32(&scaler)[0]),
        good_steps: read_u32(&scaler)[1],
        skipped_steps: read_u32(&scaler)[2],
    };
    // Overflow: halve, count the skip, clear the flag.
    counter.write_u32(&[5, 9, 1, 0]).unwrap();
    g.run(&[&upd]).unwrap();
    assert_eq!(
        state(),
        LossScaleState {
            scale: 32768.0,
            good_steps: 0,
            skipped_steps: 1
        }
    );
    assert_eq!(read_u32(&counter), vec![5, 9, 0, 0]);
    // Two clean steps count; the third doubles and restarts the count.
    for want in [(32768.0, 1), (32768.0, 2), (65536.0, 0)] {
        g.run(&[&upd]).unwrap();
        let s = state();
        assert_eq!((s.scale, s.good_steps), want);
    }
    // Bounded at 2^24 and 2^-24.
    scaler
        .write_u32(&[16_777_216f32.to_bits(), 2, 0, 0])
        .unwrap();
    g.run(&[&upd]).unwrap();
    assert_eq!(state().scale, 16_777_216.0);
    let tiny = 2f32.powi(-24);
    scaler.write_u32(&[tiny.to_bits(), 0, 0, 0]).unwrap();
    counter.write_u32(&[0, 0, 1, 0]).unwrap();
    g.run(&[&upd]).unwrap();
    assert_eq!(state().scale, tiny);
}

#[test]
fn a_flagged_step_leaves_weights_and_state_untouched() {
    let g = gpu();
    let n = 777;
    let w0 = uniform(&mut rng(3), n, -1.0, 1.0);
    let g0 = uniform(&mut rng(4), n, -1.0, 1.0);
    for rule in all_rules() {
        for multi in [false, true] {
            let w = upload(&[n], &w0);
            let gr = upload(&[n], &g0);
            let st: Vec<Tensor> = (0..rule.state_count())
                .map(|_| upload(&[n], &vec![0.25; n]))
                .collect();
            let st_refs: Vec<&Tensor> = st.iter().collect();
            let sched = upload(&[1, 4], &schedule_row(&rule, 0.1, 1));
            let counter = step::counter(g, 0).unwrap();
            let d = if multi {
                update_multi_scheduled_into(
                    &rule,
                    Penalty::default(),
                    &w,
                    &gr,
                    &st_refs,
                    &[Segment {
                        offset: 0,
                        len: n,
                        lr_scale: 1.0,
                    }],
                    &sched,
                    &counter,
                )
            } else {
                update_scheduled_into(
                    &rule,
                    Penalty::default(),
                    1.0,
                    &w,
                    &gr,
                    &st_refs,
                    &sched,
                    &counter,
                )
            }
            .unwrap();
            counter.write_u32(&[0, 0, 1, 0]).unwrap();
            g.run(&[&d]).unwrap();
            let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(read(&w)),
                bits(w0.clone()),
                "{rule:?} multi={multi}: w moved"
            );
            for s in &st {
                assert!(read(s).iter().all(|&v| v == 0.25), "{rule:?}: state moved");
            }
            // The same launch with the flag clear does update.
            counter.write_u32(&[0, 0, 0, 0]).unwrap();
            g.run(&[&d]).unwrap();
            assert_ne!(bits(read(&w)), bits(w0.clone()), "{rule:?}: no update");
        }
    }
}

fn mixed(init_scale: f32, growth_interval: u32) -> Option<MixedPrecision> {
    Some(MixedPrecision {
        init_scale,
        growth_interval,
    })
}

fn trainer(
    spec: ModelSpec,
    opt: OptimizerSpec,
    batch: usize,
    epochs: usize,
    mp: Option<MixedPrecision>,
) -> Trainer {
    let ts = TrainSpec {
        batch_size: batch,
        epochs,
        mixed_precision: mp,
        ..Default::default()
    };
    Trainer::new(gpu(), spec, opt, ts, 11).unwrap()
}

fn weights(t: &Trainer) -> Vec<Vec<f32>> {
    t.model
        .params
        .iter()
        .map(|p| pollster::block_on(p.value.read_f32()).unwrap())
        .collect()
}

#[test]
fn an_overflowing_step_is_skipped_and_halves_the_scale() {
    if f16_gpu().is_none() {
        return;
    }
    let data = spirals(40, 5); // 120 samples, one batch
                               // S = 2^24 puts ∂L/∂logits (≈ 1/120) × S ≈ 1.4e5 past f16's 65504: every GEMM of the
                               // backward overflows.
    let mut t = trainer(
        accrete::nn::presets::mlp(2, &[16], 3),
        OptimizerSpec::adam(0.01),
        120,
        1,
        mixed(16_777_216.0, 2000),
    );
    let before = weights(&t);
    pollster::block_on(t.fit_chunk(&data)).unwrap();
    assert_eq!(
        weights(&t),
        before,
        "the overflowed step changed the weights"
    );
    let st = pollster::block_on(t.loss_scale()).unwrap().unwrap();
    assert_eq!(
        st,
        LossScaleState {
            scale: 8_388_608.0,
            good_steps: 0,
            skipped_steps: 1
        }
    );
    // At 2^23 the gradients fit (|p − y| < 0.93 for every element): training proceeds and
    // the clean steps are counted.
    t.train.epochs = 12;
    pollster::block_on(t.fit_chunk(&data)).unwrap();
    let st = pollster::block_on(t.loss_scale()).unwrap().unwrap();
    assert_eq!(
        st,
        LossScaleState {
            scale: 8_388_608.0,
            good_steps: 12,
            skipped_steps: 1
        }
    );
    assert_ne!(weights(&t), before, "training never resumed");
}

/// A ReLU regression net whose forward is exact in f16 and f32 alike (inputs multiples of
/// 1/2, weights and biases multiples of 1/8), with targets 2⁻²² from its outputs: ∂L/∂y =
/// 2·2⁻²²/64 = 2⁻²⁷ per row, below half of f16's smallest subnormal (2⁻²⁴), so without loss
/// scaling the last layer's weight gradient rounds to exactly zero in the f16 GEMM. With
/// S = 2¹⁶ the scaled 2⁻¹¹ is an f16 value, every product is exact and the gradient equals
/// f32's bit for bit.
#[test]
fn loss_scaling_keeps_tiny_gradients_from_underflowing() {
    if f16_gpu().is_none() {
        return;
    }
    let spec = ModelSpec {
        input: vec![4],
        layers: vec![
            LayerSpec::Dense {
                units: 8,
                activation: Activation::Relu,
                trainable: true,
                init: None,
                bias_init: None,
                share: None,
            },
            LayerSpec::Dense {
                units: 1,
                activation: Activation::Identity,
                trainable: true,
                init: None,
                bias_init: None,
                share: None,
            },
        ],
        init: None,
        bias_init: None,
    };
    let mut r = rng(7);
    let mut dyadic = |n: usize, lo: i32, hi: i32, den: f32| -> Vec<f32> {
        (0..n)
            .map(|_| rand::Rng::random_range(&mut r, lo..=hi) as f32 / den)
            .collect()
    };
    let x = dyadic(64 * 4, -2, 2, 2.0);
    let params: Vec<Vec<f32>> = [32, 8, 8, 1]
        .iter()
        .map(|&n| dyadic(n, -8, 8, 8.0))
        .collect();
    let make = |mp: Option<MixedPrecision>| {
        let ts = TrainSpec {
            batch_size: 64,
            epochs: 1,
            loss: LossKind::Mse,
            mixed_precision: mp,
            ..Default::default()
        };
        let opt = OptimizerSpec::new(accrete::optim::OptimKind::Sgd, 1e-3);
        let t = Trainer::new(gpu(), spec.clone(), opt, ts, 3).unwrap();
        for (p, v) in t.model.params.iter().zip(&params) {
            t.model.load(&p.name, p.value.shape(), v).unwrap();
        }
        t
    };
    let mut probe = make(None);
    let xs = Dataset::regression(x.clone(), vec![0.0; 64], vec![4], 1).unwrap();
    let out =
        pollster::block_on(probe.predict(&GpuDataset::upload(gpu(), &xs).unwrap(), 64)).unwrap();
    let mut probe16 = make(mixed(1.0, 2000));
    let out16 =
        pollster::block_on(probe16.predict(&GpuDataset::upload(gpu(), &xs).unwrap(), 64)).unwrap();
    assert_eq!(out, out16, "the forward is not exact in f16");
    let targets: Vec<f32> = out.iter().map(|&y| y - 2f32.powi(-22)).collect();
    let data = Dataset::regression(x, targets, vec![4], 1).unwrap();
    // The last layer's (unscaled) weight gradient of the one step.
    let grad = |mp: Option<MixedPrecision>| {
        let mut t = make(mp);
        pollster::block_on(t.fit_chunk(&data)).unwrap();
        pollster::block_on(t.model.params[2].grad.read_f32()).unwrap()
    };
    let f32_grad = grad(None);
    assert!(
        f32_grad.iter().any(|&g| g != 0.0),
        "f32 produced no gradient"
    );
    let unscaled = grad(mixed(1.0, 2000));
    assert!(
        unscaled.iter().all(|&g| g == 0.0),
        "unscaled f16 gradients did not underflow: {unscaled:?}"
    );
    let scaled = grad(mixed(65536.0, 2000));
    assert_eq!(scaled, f32_grad, "scaled f16 gradient differs from f32's");
}

fn loss_curve(t: &mut Trainer, data: &Dataset) -> Vec<f64> {
    pollster::block_on(t.fit_chunk(data))
        .unwrap()
        .iter()
        .map(|s| s.loss)
        .collect()
}

/// The models learn with mixed precision as with f32: per-epoch losses within a relative
/// 3e-2 (f16's 11-bit operands, compounded over the epochs), final accuracy as high, and the
/// bits differ (the f16 kernels ran).
#[test]
fn mlp_and_cnn_train_like_f32() {
    if f16_gpu().is_none() {
        return;
    }
    let cases: Vec<(&str, ModelSpec, Dataset, usize, usize)> = vec![
        (
            "mlp",
            accrete::nn::presets::mlp(2, &[64, 64], 3),
            spirals(100, 21),
            60,
            25,
        ),
        ("cnn", small_cnn(), quadrant_images(240, 22), 40, 6),
    ];
    for (name, spec, data, batch, epochs) in cases {
        let mut a = trainer(spec.clone(), OptimizerSpec::adam(0.01), batch, epochs, None);
        let mut b = trainer(
            spec,
            OptimizerSpec::adam(0.01),
            batch,
            epochs,
            mixed(65536.0, 2000),
        );
        let la = loss_curve(&mut a, &data);
        let lb = loss_curve(&mut b, &data);
        eprintln!("{name}: f32 {la:?}\n{name}: mixed {lb:?}");
        for (e, (x, y)) in la.iter().zip(&lb).enumerate() {
            assert!(
                (x - y).abs() <= 3e-2 * x.abs().max(0.05),
                "{name} epoch {e}: f32 loss {x} vs mixed {y}"
            );
        }
        assert_ne!(
            la.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            lb.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{name}: mixed precision gave f32's exact losses (f16 path not taken?)"
        );
        assert!(la.last() < la.first(), "{name}: f32 did not learn");
        let d = GpuDataset::upload(gpu(), &data).unwrap();
        let ea = pollster::block_on(a.evaluate(&d, 64)).unwrap();
        let eb = pollster::block_on(b.evaluate(&d, 64)).unwrap();
        eprintln!("{name}: accuracy f32 {} mixed {}", ea.accuracy, eb.accuracy);
        assert!(
            eb.accuracy >= ea.accuracy - 0.03,
            "{name}: mixed accuracy {} vs f32 {}",
            eb.accuracy,
            ea.accuracy
        );
        let st = pollster::block_on(b.loss_scale()).unwrap().unwrap();
        assert_eq!(st.skipped_steps, 0, "{name}: {st:?}");
    }
}

#[test]
fn same_seed_same_bits_and_exact_resume_with_the_scaler() {
    if f16_gpu().is_none() {
        return;
    }
    let data = spirals(30, 31);
    // growth_interval 4 with S = 2^20: the scale both backs off and grows inside the run, so
    // the resumed run must carry the scaler's state to match.
    let make = || {
        trainer(
            accrete::nn::presets::mlp(2, &[32], 3),
            OptimizerSpec::adam(0.02),
            18,
            4,
            mixed(1_048_576.0, 4),
        )
    };
    let opts = ChunkOptions {
        report_every_steps: None,
        checkpoint_every_steps: Some(7),
        ..ChunkOptions::default()
    };
    let mut a = make();
    let mut keep = KeepCheckpoints(Vec::new());
    pollster::block_on(a.fit_chunk_with(&data, &opts, &mut keep)).unwrap();
    let want = pollster::block_on(weight_bytes(&a));
    let want_scale = pollster::block_on(a.loss_scale()).unwrap();
    eprintln!("final scaler {want_scale:?}");
    let mut b = make();
    pollster::block_on(b.fit_chunk_with(&data, &opts, &mut NoObserver)).unwrap();
    assert_eq!(
        pollster::block_on(weight_bytes(&b)),
        want,
        "same seed, other bits"
    );
    assert!(keep.0.len() >= 2);
    let c = &keep.0[1];
    let saved = c
        .meta
        .loss_scale
        .clone()
        .expect("scaler state in the checkpoint");
    assert!(
        saved.skipped_steps >= 1,
        "no overflow before the checkpoint: {saved:?}"
    );
    let mut r = Trainer::from_checkpoint(gpu(), c).unwrap();
    assert_eq!(pollster::block_on(r.loss_scale()).unwrap(), Some(saved));
    pollster::block_on(r.fit_chunk_with(&data, &opts, &mut NoObserver)).unwrap();
    assert_eq!(pollster::block_on(weight_bytes(&r)), want, "resume differs");
    assert_eq!(pollster::block_on(r.loss_scale()).unwrap(), want_scale);
}

#[test]
fn bad_settings_are_clear_errors() {
    let spec = accrete::nn::presets::mlp(2, &[4], 3);
    for (mp, needle) in [
        (mixed(1000.0, 10), "power of two"),
        (mixed(2f32.powi(30), 10), "power of two"),
        (mixed(0.0, 10), "power of two"),
        (mixed(1024.0, 0), "growth_interval"),
    ] {
        let ts = TrainSpec {
            mixed_precision: mp,
            ..Default::default()
        };
        let e = Trainer::new(
            gpu(),
            spec.clone(),
            OptimizerSpec::new(accrete::optim::OptimKind::Sgd, 0.1),
            ts,
            1,
        )
        .err()
        .expect("accepted bad settings")
        .to_string();
        assert!(e.contains(needle) && e.contains("mixed_precision"), "{e}");
    }
    // TOML/JSON forms.
    let t: TrainSpec = serde_json::from_str(r#"{"mixed_precision": true}"#).unwrap();
    assert_eq!(t.mixed_precision, Some(MixedPrecision::default()));
    let t: TrainSpec = serde_json::from_str(r#"{"mixed_precision": false}"#).unwrap();
    assert_eq!(t.mixed_precision, None);
    let t: TrainSpec =
        serde_json::from_str(r#"{"mixed_precision": {"growth_interval": 50}}"#).unwrap();
    assert_eq!(t.mixed_precision, mixed(65536.0, 50));
    let e = serde_json::from_str::<TrainSpec>(r#"{"mixed_precision": {"init_scal": 2}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("init_scal"), "{e}");
    let e = serde_json::from_str::<TrainSpec>(r#"{"mixed_precision": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("true, false or a table"), "{e}");
}

/// A mixed-precision checkpoint on a device without SHADER_F16: resuming it is refused with
/// the reason, evaluating it (`Trainer::for_inference`, what `accrete eval` uses) runs in f32
/// and gives nearly the training device's numbers.
#[test]
fn a_mixed_checkpoint_evaluates_in_f32_where_f16_is_missing() {
    if f16_gpu().is_none() {
        return;
    }
    let data = spirals(60, 41);
    let mut t = trainer(
        accrete::nn::presets::mlp(2, &[32, 32], 3),
        OptimizerSpec::adam(0.02),
        30,
        15,
        mixed(65536.0, 2000),
    );
    pollster::block_on(t.fit_chunk(&data)).unwrap();
    let d = GpuDataset::upload(gpu(), &data).unwrap();
    let want = pollster::block_on(t.evaluate(&d, 64)).unwrap();
    let ckpt = Checkpoint::from_bytes(
        &pollster::block_on(t.checkpoint())
            .unwrap()
            .to_bytes()
            .unwrap(),
        "mixed",
    )
    .unwrap();
    let no_f16 = pollster::block_on(Gpu::with_options(accrete::GpuOptions {
        disable_features: accrete::kernels::matmul::Precision::F16.required_features(),
        ..accrete::GpuOptions::from_env()
    }))
    .unwrap();
    assert!(!no_f16
        .features()
        .contains(accrete::kernels::matmul::Precision::F16.required_features()));
    let e = Trainer::from_checkpoint(&no_f16, &ckpt)
        .err()
        .expect("resumed mixed precision without f16")
        .to_string();
    assert!(
        e.contains("train.mixed_precision") && e.contains("SHADER_F16"),
        "{e}"
    );
    let mut f32_eval = Trainer::for_inference(&no_f16, &ckpt).unwrap();
    assert_eq!(f32_eval.train.mixed_precision, None);
    let got =
        pollster::block_on(f32_eval.evaluate(&GpuDataset::upload(&no_f16, &data).unwrap(), 64))
            .unwrap();
    assert!(
        (got.loss - want.loss).abs() <= 1e-2 * want.loss.max(0.05)
            && (got.accuracy - want.accuracy).abs() <= 0.02,
        "f32 evaluation {got:?} vs mixed {want:?}"
    );
    // On the f16 device for_inference keeps mixed precision: the very same numbers.
    let mut same = Trainer::for_inference(gpu(), &ckpt).unwrap();
    let again = pollster::block_on(same.evaluate(&d, 64)).unwrap();
    assert_eq!((again.loss, again.accuracy), (want.loss, want.accuracy));
}
