//! Class-incremental Fashion-MNIST: five chunks of two classes each, with and without
//! rehearsal, as in the reference setup (MLP 784-400-400-10, Adam 1e-3, batch 128, two
//! epochs per chunk, one ten-way head; rehearsal: a 2,000-sample reservoir replayed at 128
//! samples per batch). Prints one JSON line per chunk and a summary.
//!
//! cargo run --release -p accrete --example class_incremental [-- TRAIN_LIMIT TEST_LIMIT]

use accrete::data::idx::{load_dir, Split};
use accrete::data::split::{increments, SplitBy};
use accrete::nn::presets::mlp;
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, RehearsalSpec, TrainSpec, Trainer};
use accrete::Gpu;

fn main() -> Result<(), accrete::Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (train_limit, test_limit) = (
        args.first().copied().unwrap_or(60_000),
        args.get(1).copied().unwrap_or(10_000),
    );
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let train = load_dir(dir, Split::Train)?
        .take(train_limit)
        .reshaped(&[784])?;
    let test = load_dir(dir, Split::Test)?
        .take(test_limit)
        .reshaped(&[784])?;
    let gpu = pollster::block_on(Gpu::new())?;
    let chunks = increments(&train, 5, SplitBy::Class, 0, true)?;
    let first_classes: Vec<usize> = (0..test.len()).filter(|&i| test.labels[i] < 2).collect();
    let test_first = GpuDataset::upload(&gpu, &test.select(&first_classes))?;
    let test_all = GpuDataset::upload(&gpu, &test)?;
    let mut summary = Vec::new();
    for rehearse in [false, true] {
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
            0,
        )?;
        if rehearse {
            t.enable_rehearsal(RehearsalSpec::new(2000, 128))?;
        }
        for (c, chunk) in chunks.iter().enumerate() {
            let stats = pollster::block_on(t.fit_chunk(chunk))?;
            let all = pollster::block_on(t.evaluate(&test_all, 1000))?;
            let first = pollster::block_on(t.evaluate(&test_first, 1000))?;
            println!(
                "{{\"rehearsal\":{rehearse},\"chunk\":{c},\"train_loss\":{:.4},\"seconds\":{:.1},\"test_accuracy_all\":{:.4},\"test_accuracy_first_chunk\":{:.4}}}",
                stats.last().map_or(f64::NAN, |s| s.loss),
                stats.iter().map(|s| s.seconds).sum::<f64>(),
                all.accuracy,
                first.accuracy
            );
            if c == chunks.len() - 1 {
                summary.push((rehearse, all.accuracy, first.accuracy));
            }
        }
    }
    for (rehearse, all, first) in summary {
        println!("{{\"summary\":true,\"rehearsal\":{rehearse},\"test_accuracy_all\":{all:.4},\"test_accuracy_first_chunk\":{first:.4}}}");
    }
    Ok(())
}
