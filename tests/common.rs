//! Shared helpers for the cross-crate tests: one GPU per test binary, seeded random inputs,
//! NaN-poisoned outputs, and comparisons against f64 references with derived tolerances.

use accrete::data::Dataset;
use accrete::kernels::Activation;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::train::Trainer;
use accrete::{DType, Gpu, Tensor};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

pub mod spirals;

/// f32 machine epsilon, 2⁻²³ (twice the unit roundoff).
pub const EPS: f64 = 1.0 / 8_388_608.0;

/// WGSL lets implementations flush subnormal results to zero (lavapipe does), so any
/// expected value below the smallest normal f32 may come back as 0.
pub const SUBNORMAL: f64 = f32::MIN_POSITIVE as f64;

/// The test GPU (lavapipe in CI). Panics with the install hint if there is none.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match pollster::block_on(Gpu::new()) {
        Ok(g) => g,
        Err(e) => panic!("the kernel tests need a GPU adapter: {e}"),
    })
}

/// A seeded generator; each test picks its own seed so failures reproduce.
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// `n` values uniform in [lo, hi).
pub fn uniform(rng: &mut SmallRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// An f32 tensor filled with NaN, so that any element a kernel fails to write is caught.
pub fn poisoned(shape: &[usize]) -> Tensor {
    Tensor::full(gpu(), shape, f32::NAN).expect("allocate poisoned tensor")
}

/// A u32 tensor filled with 0xDEADBEEF.
pub fn poisoned_u32(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_u32(gpu(), shape, &vec![0xDEAD_BEEF; n]).expect("allocate poisoned tensor")
}

pub fn upload(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(gpu(), shape, data).expect("upload")
}

pub fn read(t: &Tensor) -> Vec<f32> {
    assert_eq!(t.dtype(), DType::F32);
    pollster::block_on(t.read_f32()).expect("read back")
}

pub fn read_u32(t: &Tensor) -> Vec<u32> {
    pollster::block_on(t.read_u32()).expect("read back")
}

/// Asserts |got[i] − want[i]| ≤ tol[i] for every i, and that nothing is NaN unless the
/// reference is. Reports the worst offender with its index.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: expected NaN, got {g}");
            continue;
        }
        let err = (g as f64 - w).abs();
        let t = tol(i);
        if err.is_nan() || err > t {
            let ratio = if err.is_nan() { f64::INFINITY } else { err / t };
            if worst.is_none_or(|(_, r)| ratio > r) {
                worst = Some((i, ratio));
            }
        }
    }
    if let Some((i, ratio)) = worst {
        panic!(
            "{what}[{i}]: got {} want {} (|err| = {:e}, tolerance {:e}, {ratio:.2}× over)",
            got[i],
            want[i],
            (got[i] as f64 - want[i]).abs(),
            tol(i)
        );
    }
}

/// Sizes that stress edge handling: 1, primes, tile sizes ± 1.
pub const AWKWARD: [usize; 8] = [1, 2, 7, 13, 31, 33, 64, 97];

/// Error bounds (forward, derivative) at x, derived from WGSL's exp accuracy
/// (3 + 2|x| ULP; tanh is treated the same with |x| clamped to 15 as in the shader) and
/// each formula's sensitivity to that primitive, plus the final roundings.
pub fn act_tol(act: Activation, x: f64) -> (f64, f64) {
    let y = act.forward_f64(x).abs();
    let g = act.grad_f64(x).abs();
    let ulps = |a: f64| (4.0 + 2.0 * a.abs().min(15.0)) * EPS;
    match act {
        Activation::Identity | Activation::Relu | Activation::LeakyRelu => {
            (0.5 * EPS * y, 0.5 * EPS * g)
        }
        Activation::Elu => {
            let e = ulps(x) * x.min(0.0).exp();
            (e + EPS * y, e + EPS * g)
        }
        Activation::Sigmoid => {
            let s = act.forward_f64(x);
            let ds = (ulps(x) + 2.0 * EPS) * s;
            (
                ds,
                ds * (1.0 - 2.0 * s).abs() + 2.0 * EPS * g + ulps(x) * EPS,
            )
        }
        Activation::Tanh => {
            let dt = ulps(x);
            (dt, 2.0 * dt + EPS * g)
        }
        Activation::Gelu => {
            let (c, a) = (0.797_884_560_802_865_4, 0.044715);
            let u = c * (x + a * x * x * x);
            let du = c * (1.0 + 3.0 * a * x * x);
            let t = u.tanh();
            let dt = ulps(u) + 3.0 * EPS * u.abs() * (1.0 - t * t);
            (
                0.5 * x.abs() * dt + EPS * y,
                (0.5 + x.abs() * du) * dt + 4.0 * EPS * g,
            )
        }
    }
}

/// Three interleaved spiral arms, `per_class` points each, with a little noise.
pub fn spirals(per_class: usize, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let noise = uniform(&mut r, per_class * 3 * 2, -0.03, 0.03);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for c in 0..3 {
        for i in 0..per_class {
            let t = i as f32 / per_class as f32;
            let angle = t * 4.0 + c as f32 * 2.0 * std::f32::consts::PI / 3.0;
            let k = (c * per_class + i) * 2;
            x.push(t * angle.cos() + noise[k]);
            x.push(t * angle.sin() + noise[k + 1]);
            y.push(c as u32);
        }
    }
    Dataset::new(x, y, vec![2], 3).unwrap()
}

/// Small random images with a learnable rule (label = brightest quadrant), for conv models.
pub fn quadrant_images(n: usize, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let x = uniform(&mut r, n * 64, 0.0, 1.0);
    let labels = (0..n)
        .map(|i| {
            let img = &x[i * 64..(i + 1) * 64];
            let q = |qy: usize, qx: usize| -> f32 {
                (0..4)
                    .flat_map(|y| (0..4).map(move |xx| (y, xx)))
                    .map(|(y, xx)| img[(qy * 4 + y) * 8 + qx * 4 + xx])
                    .sum()
            };
            let sums = [q(0, 0), q(0, 1), q(1, 0), q(1, 1)];
            (0..4).max_by(|&a, &b| sums[a].total_cmp(&sums[b])).unwrap() as u32
        })
        .collect();
    Dataset::new(x, labels, vec![1, 8, 8], 4).unwrap()
}

pub fn small_cnn() -> ModelSpec {
    ModelSpec {
        input: vec![1, 8, 8],
        layers: vec![
            LayerSpec::Conv2d {
                filters: 4,
                kernel: 3,
                stride: 1,
                padding: 1,
                activation: Activation::Relu,
                trainable: true,
                init: None,
                bias_init: None,
            },
            LayerSpec::Maxpool2d {
                size: 2,
                stride: None,
            },
            LayerSpec::Flatten {},
            LayerSpec::Dense {
                units: 16,
                activation: Activation::Relu,
                trainable: true,
                init: None,
                bias_init: None,
                share: None,
            },
            LayerSpec::Dropout { rate: 0.25 },
            LayerSpec::Dense {
                units: 4,
                activation: Activation::Identity,
                trainable: true,
                init: None,
                bias_init: None,
                share: None,
            },
        ],
        init: None,
        bias_init: None,
    }
}

/// Every parameter and optimizer-state bit of a trainer, in a fixed order.
pub async fn weight_bytes(t: &Trainer) -> Vec<u32> {
    let mut out = Vec::new();
    for p in &t.model.params {
        out.extend(
            p.value
                .read_f32()
                .await
                .unwrap()
                .iter()
                .map(|v| v.to_bits()),
        );
        for s in &p.state {
            out.extend(s.read_f32().await.unwrap().iter().map(|v| v.to_bits()));
        }
    }
    out
}

/// A plain safetensors file (no metadata) holding f32 tensors, for handing data to Python.
pub fn plain_safetensors(tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, shape, data)) in tensors.iter().enumerate() {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let end = offset + data.len() * 4;
        header += &format!(
            "{}\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            if i > 0 { "," } else { "" },
            shape.join(",")
        );
        offset = end;
    }
    header.push('}');
    let mut head = header.into_bytes();
    while head.len() % 8 != 0 {
        head.push(b' ');
    }
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    for (_, _, data) in tensors {
        for v in *data {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// Every optimizer rule, with the settings the kernel tests use.
pub fn all_rules() -> Vec<accrete::kernels::optim::Rule> {
    use accrete::kernels::optim::Rule;
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

/// Asserts that two checkpoints hold the same tensors, in the same order, bit for bit.
pub fn assert_same_tensors(a: &accrete::train::Checkpoint, b: &accrete::train::Checkpoint) {
    let names = |c: &accrete::train::Checkpoint| {
        c.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b));
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        assert!(
            bits(&x.data) == bits(&y.data),
            "{} differs after resuming",
            x.name
        );
    }
}

/// [`assert_same_tensors`], and the counters and the history's length equal (the
/// history's samples/s are timings, so its rows may differ).
pub fn assert_same_state(a: &accrete::train::Checkpoint, b: &accrete::train::Checkpoint) {
    assert_same_tensors(a, b);
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor),
        (b.meta.step, b.meta.epoch, &b.meta.cursor)
    );
    assert_eq!(a.meta.history.len(), b.meta.history.len());
}

/// An observer keeping every checkpoint it is given, round-tripped through bytes.
pub struct KeepCheckpoints(pub Vec<accrete::train::Checkpoint>);

impl accrete::train::Observer for KeepCheckpoints {
    fn checkpoint(&mut self, c: &accrete::train::Checkpoint) -> accrete::Result<()> {
        let bytes = c.to_bytes()?;
        self.0
            .push(accrete::train::Checkpoint::from_bytes(&bytes, "kept")?);
        Ok(())
    }
}

/// The history as the JSON objects it is saved as (one per event, with its `event` tag).
pub trait HistoryJson {
    fn history_json(&self) -> Vec<serde_json::Value>;
}

impl HistoryJson for Trainer {
    fn history_json(&self) -> Vec<serde_json::Value> {
        self.history
            .iter()
            .map(|e| serde_json::to_value(e).expect("an event serialises"))
            .collect()
    }
}
