//! Class-incremental Fashion-MNIST: five chunks of two classes each (0-1, 2-3, …, 8-9), as
//! in the reference setup (MLP 784-400-400-10 ReLU, Adam 1e-3, batch 128, two epochs per
//! chunk, one ten-way head), under each continual-learning strategy named:
//!
//! - `naive`: plain fine-tuning;
//! - `ewc`: `ewc = { weight = 100 }` (the per-sample empirical Fisher of 1,000 samples);
//! - `lwf`: `lwf = { weight = 1, temperature = 2 }`;
//! - `replay`: a 2,000-sample reservoir, 128 replayed per batch;
//! - `der`, `derpp`: the same buffer with DER's α = 0.1 (and DER++'s β = 0.5);
//! - `agem`: A-GEM with a 2,000-sample memory, 256 per reference gradient;
//! - `joint`: one chunk of all the data for two epochs (the upper bound).
//!
//! Prints one JSON line per chunk (accuracy over all ten classes and per task seen) and a
//! summary per strategy: final accuracy, and from the accuracy matrix the average accuracy,
//! backward transfer and forgetting.
//!
//! cargo run --release -p accrete --example class_incremental [-- TRAIN_LIMIT TEST_LIMIT [STRATEGIES [SEED]]]
//! e.g. `-- 20000 10000 naive,ewc,lwf,replay,derpp,agem,joint` (default `naive,replay`).
//! A strategy's numbers can be given after its name: `ewc:λ`, `lwf:weight:T`, `der:α`,
//! `derpp:α:β` (e.g. `derpp:0.3:1`).

use accrete::data::idx::{load_dir, Split};
use accrete::data::split::{increments, SplitBy};
use accrete::data::Dataset;
use accrete::metrics::AccuracyMatrix;
use accrete::nn::presets::mlp;
use accrete::optim::OptimizerSpec;
use accrete::train::{AgemSpec, EwcSpec, GpuDataset, LwfSpec, RehearsalSpec, TrainSpec, Trainer};
use accrete::Gpu;

fn configure(t: &mut Trainer, strategy: &str) -> Result<(), accrete::Error> {
    let der = |alpha: f32, beta: Option<f32>| RehearsalSpec {
        logit_weight: Some(alpha),
        label_weight: beta,
        ..RehearsalSpec::new(2000, 128)
    };
    // `name:p1:p2` overrides the strategy's numbers (e.g. `derpp:0.3:1`, `ewc:1000`).
    let mut parts = strategy.split(':');
    let name = parts.next().unwrap_or_default();
    let nums: Vec<f32> = parts
        .map(|p| {
            p.parse().unwrap_or_else(|_| {
                eprintln!("strategy {strategy:?}: {p:?} is not a number");
                std::process::exit(2)
            })
        })
        .collect();
    let arg = |i: usize, d: f32| nums.get(i).copied().unwrap_or(d);
    match name {
        "naive" | "joint" => Ok(()),
        "ewc" => t.enable_ewc(EwcSpec {
            weight: arg(0, EwcSpec::default().weight),
            ..EwcSpec::default()
        }),
        "lwf" => t.enable_lwf(LwfSpec {
            weight: arg(0, LwfSpec::default().weight),
            temperature: arg(1, LwfSpec::default().temperature),
        }),
        "replay" => t.enable_rehearsal(RehearsalSpec::new(2000, 128)),
        "der" => t.enable_rehearsal(der(arg(0, 0.1), None)),
        "derpp" => t.enable_rehearsal(der(arg(0, 0.1), Some(arg(1, 0.5)))),
        "agem" => t.enable_agem(AgemSpec {
            size: 2000,
            per_batch: 256,
        }),
        other => {
            eprintln!("unknown strategy {other:?}; use naive, ewc, lwf, replay, der, derpp, agem or joint");
            std::process::exit(2)
        }
    }
}

fn main() -> Result<(), accrete::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (train_limit, test_limit) = (num(0, 60_000), num(1, 10_000));
    let seed = num(3, 0) as u64;
    let strategies: Vec<String> = args
        .get(2)
        .map_or("naive,replay", |s| s.as_str())
        .split(',')
        .map(String::from)
        .collect();
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let train = load_dir(dir, Split::Train)?
        .take(train_limit)
        .reshaped(&[784])?;
    let test = load_dir(dir, Split::Test)?
        .take(test_limit)
        .reshaped(&[784])?;
    let gpu = pollster::block_on(Gpu::new())?;
    let chunks = increments(&train, 5, SplitBy::Class, 0, true)?;
    let task_test: Vec<GpuDataset> = (0..5u32)
        .map(|k| {
            let idx: Vec<usize> = (0..test.len())
                .filter(|&i| test.labels[i] / 2 == k)
                .collect();
            GpuDataset::upload(&gpu, &test.select(&idx))
        })
        .collect::<Result<_, _>>()?;
    let test_all = GpuDataset::upload(&gpu, &test)?;
    let mut summary = Vec::new();
    for strategy in &strategies {
        let ts = TrainSpec {
            batch_size: 128,
            epochs: 2,
            ..Default::default()
        };
        let mut t = Trainer::new(
            &gpu,
            mlp(784, &[400, 400], 10),
            OptimizerSpec::adam(1e-3),
            ts,
            seed,
        )?;
        configure(&mut t, strategy)?;
        let start = std::time::Instant::now();
        let joint: Vec<Dataset> = vec![train.clone()];
        let stream = if strategy.starts_with("joint") {
            &joint
        } else {
            &chunks
        };
        let mut rows = Vec::new();
        for (c, chunk) in stream.iter().enumerate() {
            let stats = pollster::block_on(t.fit_chunk(chunk))?;
            let all = pollster::block_on(t.evaluate(&test_all, 1000))?;
            let seen = if strategy == "joint" { 5 } else { c + 1 };
            let mut row = Vec::new();
            for d in &task_test[..seen] {
                row.push(pollster::block_on(t.evaluate(d, 1000))?.accuracy);
            }
            println!(
                "{{\"strategy\":\"{strategy}\",\"chunk\":{c},\"train_loss\":{:.4},\"seconds\":{:.1},\"test_accuracy_all\":{:.4},\"task_accuracy\":{:?}}}",
                stats.last().map_or(f64::NAN, |s| s.loss),
                stats.iter().map(|s| s.seconds).sum::<f64>(),
                all.accuracy,
                row.iter().map(|a| (a * 1e4).round() / 1e4).collect::<Vec<_>>()
            );
            rows.push(row);
            if c == stream.len() - 1 {
                let m = (strategy != "joint")
                    .then(|| AccuracyMatrix::new(rows.clone()))
                    .transpose()?;
                summary.push((
                    strategy.clone(),
                    all.accuracy,
                    m,
                    start.elapsed().as_secs_f64(),
                ));
                // Each strategy's summary as soon as it is known (runs are long on a CPU).
                print_summary(summary.last().expect("pushed"));
            }
        }
    }
    Ok(())
}

type Summary = (String, f64, Option<AccuracyMatrix>, f64);

fn print_summary((strategy, acc, m, secs): &Summary) {
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.4}"));
    {
        println!(
            "{{\"summary\":true,\"strategy\":\"{strategy}\",\"test_accuracy_all\":{acc:.4},\"average_accuracy\":{},\"bwt\":{},\"forgetting\":{},\"seconds\":{secs:.1}}}",
            opt(m.as_ref().and_then(|m| m.average_accuracy())),
            opt(m.as_ref().and_then(|m| m.backward_transfer())),
            opt(m.as_ref().and_then(|m| m.forgetting())),
        );
    }
}
