//! `accrete bench train`: epoch time, samples/s and accuracy for the reference MLP and CNN
//! on Fashion-MNIST, one JSON line per epoch.

use crate::Failure;
use accrete::data::idx::{load_dir, Split};
use accrete::nn::graph::ConvAlgo;
use accrete::nn::presets;
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, StepKernels, TrainSpec, Trainer};
use accrete::Gpu;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "Examples:
  accrete bench train --model mlp --batch 128 --epochs 1
  accrete bench train --model cnn --batch 128,1024 --train-limit 2000 --test-limit 1000
  accrete bench train --model mlp --epochs 10 --eval-every 1     accuracy per epoch
  accrete bench train --model cnn --update per-tensor --conv im2col   the older kernels";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelChoice {
    /// 784-512-256-10, ReLU
    Mlp,
    /// conv32-pool-conv64-pool-fc128-fc10
    Cnn,
}

/// How the optimizer update is launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateChoice {
    /// One dispatch updates every parameter (bit-identical to per-tensor)
    Multi,
    /// One dispatch per parameter tensor
    PerTensor,
}

/// How convolutions are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvChoice {
    /// Implicit GEMM, no im2col buffer
    Implicit,
    /// im2col + matmul + permute (+ col2im backward)
    Im2col,
}

#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    /// Which reference model.
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelChoice,
    /// Batch sizes to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "128")]
    pub batch: Vec<usize>,
    /// Epochs per batch size.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Use only the first N training samples (default: all 60000).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test samples (default: all 10000).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Evaluate on the test set every N epochs (0 = only after the last).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// Folder with the IDX files.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data_dir: PathBuf,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Batch size of the test-set evaluation.
    #[arg(long, default_value_t = 1000)]
    pub eval_batch: usize,
    /// Optimizer update kernels.
    #[arg(long, value_enum, default_value = "multi")]
    pub update: UpdateChoice,
    /// Convolution kernels (cnn).
    #[arg(long, value_enum, default_value = "implicit")]
    pub conv: ConvChoice,
}

#[derive(Serialize)]
struct Line<'a> {
    bench: &'static str,
    model: ModelChoice,
    batch: usize,
    epoch: usize,
    train_samples: usize,
    seconds: f64,
    samples_per_sec: f64,
    /// Host time per training step (microseconds): recording the step's dispatches into
    /// compute passes and finishing the command buffers (`Recorder::pass` +
    /// `submit_timed`); not the queue submission (lavapipe blocks there while an earlier
    /// submission runs), not GPU time, not the per-epoch setup.
    host_us_per_step: f64,
    /// Dispatches per training step (each sets one pipeline and one bind group; the bind
    /// groups are built once per epoch, none per step).
    dispatches_per_step: usize,
    update: UpdateChoice,
    conv: ConvChoice,
    train_loss: f64,
    train_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_accuracy: Option<f64>,
    adapter: &'a str,
}

pub fn run(args: &TrainBenchArgs) -> Result<(), Failure> {
    let gpu = pollster::block_on(Gpu::new())?;
    let spec = match args.model {
        ModelChoice::Mlp => presets::fashion_mlp(),
        ModelChoice::Cnn => presets::fashion_cnn(),
    };
    let mut train = load_dir(&args.data_dir, Split::Train)?;
    let mut test = load_dir(&args.data_dir, Split::Test)?;
    if let Some(n) = args.train_limit {
        train = train.take(n);
    }
    if let Some(n) = args.test_limit {
        test = test.take(n);
    }
    train = train.reshaped(&spec.input)?;
    test = test.reshaped(&spec.input)?;
    let train_gpu = GpuDataset::upload(&gpu, &train)?;
    let test_gpu = GpuDataset::upload(&gpu, &test)?;
    let adapter = gpu.summary().name.clone();
    let mut out = std::io::stdout().lock();
    for &batch in &args.batch {
        let ts = TrainSpec {
            batch_size: batch,
            epochs: args.epochs,
            ..Default::default()
        };
        let mut t = Trainer::new(
            &gpu,
            spec.clone(),
            OptimizerSpec::adam(args.lr),
            ts,
            args.seed,
        )?;
        t.set_step_kernels(StepKernels {
            multi_tensor_update: args.update == UpdateChoice::Multi,
            conv: match args.conv {
                ConvChoice::Implicit => ConvAlgo::Implicit,
                ConvChoice::Im2col => ConvAlgo::Im2col,
            },
        });
        for epoch in 1..=args.epochs {
            let s = pollster::block_on(t.fit_epoch(&train_gpu))?;
            let eval_now =
                epoch == args.epochs || (args.eval_every > 0 && epoch % args.eval_every == 0);
            let e = if eval_now {
                Some(pollster::block_on(t.evaluate(&test_gpu, args.eval_batch))?)
            } else {
                None
            };
            let line = Line {
                bench: "train",
                model: args.model,
                batch,
                epoch,
                train_samples: s.samples,
                seconds: s.seconds,
                samples_per_sec: s.samples_per_second(),
                host_us_per_step: 1e6 * s.host_seconds / s.samples.div_ceil(batch).max(1) as f64,
                dispatches_per_step: t.dispatches_per_step(),
                update: args.update,
                conv: args.conv,
                train_loss: s.loss,
                train_accuracy: s.accuracy,
                test_loss: e.map(|e| e.loss),
                test_accuracy: e.map(|e| e.accuracy),
                adapter: &adapter,
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string(&line).expect("serialisable")
            )?;
            out.flush()?;
        }
    }
    Ok(())
}
