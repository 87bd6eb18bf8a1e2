//! `accrete bench train`: epoch time, samples/s and accuracy for the reference MLP and CNN
//! on Fashion-MNIST, one JSON line per epoch; with `--profile`, the GPU time of each kind of
//! dispatch in a training step instead.

mod parallel;

use crate::Failure;
use accrete::data::idx::{load_dir, Split};
use accrete::gpu::{GpuTimer, TimeSource};
use accrete::nn::graph::ConvAlgo;
use accrete::nn::presets;
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, StepKernels, TrainSpec, Trainer};
use accrete::{Dispatch, Gpu};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "Examples:
  accrete bench train --model mlp --batch 128 --epochs 1
  accrete bench train --model cnn --batch 128,1024 --train-limit 2000 --test-limit 1000
  accrete bench train --model mlp --epochs 10 --eval-every 1     accuracy per epoch
  accrete bench train --model cnn --update per-tensor --conv im2col   the older kernels
  accrete bench train --model cnn --batch 128,1024 --profile   GPU time per kernel of a step
  accrete bench train --devices 2 --sync-every 1,16 --train-limit 4096   data parallel vs 1 device
  mpirun -np 2 accrete bench train --mpi --train-limit 4096             one replica per MPI rank

--profile prints, per batch size, one JSON line per kind of dispatch in a training step
(\"bench\": \"train_kernels\"; a kind is a phase and a kernel, e.g. \"backward matmul::main\")
with its count per step, mean microseconds per step and share of the step, then one summary
line (\"bench\": \"train_step\") comparing the sum with the whole step timed in one compute
pass. Each dispatch runs in a compute pass of its own with GPU timestamps at its start and
end (\"source\": \"timestamp\"); without TIMESTAMP_QUERY, or with --timing wall, each
dispatch is submitted alone and waited for (\"source\": \"wall\": host time, including the
submission, far above the GPU time of small kernels). The profile runs on a throwaway
trainer and does not train the epochs.";

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
    /// Time each dispatch of a training step instead of training epochs.
    #[arg(long)]
    pub profile: bool,
    /// Steps timed by --profile (after 2 warm-up steps), per dispatch and as a whole.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub profile_steps: u64,
    /// Clock of --profile: GPU timestamps when the adapter has them, or the host clock.
    #[arg(long, value_enum, default_value = "auto")]
    pub timing: TimingChoice,
    /// Mixed precision (train.mixed_precision = true): f16 GEMM operands with f32 sums,
    /// f32 master weights, dynamic loss scaling. Needs SHADER_F16.
    #[arg(long)]
    pub mixed_precision: bool,
    /// Data-parallel replicas, each its own device ([parallel] backend = "local"); N > 1
    /// compares N replicas with one device in the same run.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// With --devices: steps between synchronisations (1 = all-reduce of the gradients
    /// every step; K = local SGD), comma-separated to compare several.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub sync_every: Vec<u64>,
    /// One replica per MPI rank (run under `mpirun -np N`; the build with `--features
    /// mpi`): rank 0 prints one line per epoch with the job's samples/s and communication
    /// share; compare `-np 1` with `-np 2`.
    #[arg(long)]
    pub mpi: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimingChoice {
    /// Timestamps when the adapter has TIMESTAMP_QUERY, else the host clock
    Auto,
    /// The host clock around one-dispatch submissions
    Wall,
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
    mixed_precision: bool,
    train_loss: f64,
    train_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_accuracy: Option<f64>,
    adapter: &'a str,
}

pub fn run(args: &TrainBenchArgs) -> Result<(), Failure> {
    let max = accrete::config::MAX_LOCAL_DEVICES;
    if args.devices == 0 || args.devices > max {
        return Err(bad_arg(
            "--devices",
            format!("{} is outside 1..={max}", args.devices),
        ));
    }
    if args.mpi {
        if args.devices > 1 || args.profile || args.mixed_precision {
            return Err(bad_arg(
                "--mpi",
                "cannot be combined with --devices, --profile or --mixed-precision",
            ));
        }
        return parallel::run_mpi(args);
    }
    if args.devices > 1 {
        if args.profile || args.mixed_precision {
            return Err(bad_arg(
                "--devices",
                "cannot be combined with --profile or --mixed-precision",
            ));
        }
        if args.sync_every.contains(&0) {
            return Err(bad_arg("--sync-every", "must be at least 1"));
        }
        return parallel::run(args);
    }
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
    if args.profile {
        for &batch in &args.batch {
            profile(&gpu, args, &spec, &train_gpu, batch, &adapter, &mut out)?;
        }
        return Ok(());
    }
    for &batch in &args.batch {
        let ts = TrainSpec {
            batch_size: batch,
            epochs: args.epochs,
            mixed_precision: args.mixed_precision.then(Default::default),
            ..Default::default()
        };
        let mut t = Trainer::new(
            &gpu,
            spec.clone(),
            OptimizerSpec::adam(args.lr),
            ts,
            args.seed,
        )?;
        t.set_step_kernels(step_kernels(args));
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
                mixed_precision: args.mixed_precision,
                train_loss: s.loss,
                train_accuracy: s.accuracy,
                test_loss: e.map(|e| e.loss),
                test_accuracy: e.map(|e| e.accuracy),
                adapter: &adapter,
            };
            write_line(&mut out, &line)?;
        }
    }
    Ok(())
}

fn step_kernels(args: &TrainBenchArgs) -> StepKernels {
    StepKernels {
        multi_tensor_update: args.update == UpdateChoice::Multi,
        conv: match args.conv {
            ConvChoice::Implicit => ConvAlgo::Implicit,
            ConvChoice::Im2col => ConvAlgo::Im2col,
        },
    }
}

/// One kind of dispatch in a training step: a phase and a kernel.
#[derive(Serialize)]
struct KernelLine<'a> {
    bench: &'static str,
    model: ModelChoice,
    batch: usize,
    /// "phase kernel", e.g. "forward matmul::main".
    name: String,
    phase: &'a str,
    /// The kernel: shader file and entry point.
    kernel: &'a str,
    /// Dispatches of this kind per step.
    count: usize,
    /// Mean microseconds per step spent in this kind (all its dispatches).
    mean_us: f64,
    us_per_dispatch: f64,
    /// Fraction of the sum over all dispatches of the step.
    share: f64,
    /// Positions in the step's dispatch list, with each dispatch's mean microseconds and
    /// workgroup grid (telling layers apart).
    positions: Vec<usize>,
    dispatch_us: Vec<f64>,
    workgroups: Vec<[u32; 3]>,
    source: TimeSource,
    steps: usize,
    update: UpdateChoice,
    conv: ConvChoice,
    mixed_precision: bool,
    adapter: &'a str,
}

/// The whole step: the per-dispatch sum next to the step timed in one compute pass.
#[derive(Serialize)]
struct StepLine<'a> {
    bench: &'static str,
    model: ModelChoice,
    batch: usize,
    dispatches_per_step: usize,
    kinds: usize,
    /// Sum of the per-dispatch means (microseconds).
    sum_us: f64,
    /// The whole step recorded `steps` times in one compute pass, per step (microseconds).
    step_us: f64,
    /// How `step_us` was measured.
    step_source: TimeSource,
    /// How the per-dispatch times were measured.
    source: TimeSource,
    method: &'static str,
    steps: usize,
    update: UpdateChoice,
    conv: ConvChoice,
    mixed_precision: bool,
    adapter: &'a str,
}

const WARMUP_STEPS: usize = 2;

/// Times each dispatch of one training step at `batch` on a throwaway trainer.
fn profile(
    gpu: &Gpu,
    args: &TrainBenchArgs,
    spec: &accrete::nn::ModelSpec,
    data: &GpuDataset,
    batch: usize,
    adapter: &str,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let ts = TrainSpec {
        batch_size: batch,
        epochs: args.epochs,
        mixed_precision: args.mixed_precision.then(Default::default),
        ..Default::default()
    };
    let mut t = Trainer::new(
        gpu,
        spec.clone(),
        OptimizerSpec::adam(args.lr),
        ts,
        args.seed,
    )?;
    t.set_step_kernels(step_kernels(args));
    let steps = args.profile_steps as usize;
    // Warm-up, per-dispatch timing and whole-step timing each advance the step counter.
    let list = pollster::block_on(t.profile_step(data, WARMUP_STEPS + 2 * steps))?;
    let refs: Vec<&Dispatch> = list.iter().map(|(_, d)| d).collect();
    let timer = match args.timing {
        TimingChoice::Auto => GpuTimer::new(gpu),
        TimingChoice::Wall => GpuTimer::wall(gpu),
    };
    let mut rec = gpu.recorder();
    rec.pass(&refs, WARMUP_STEPS);
    rec.submit()?;
    gpu.wait_idle()?;
    let prof = pollster::block_on(timer.profile(&refs, steps))?;
    let whole = GpuTimer::new(gpu);
    let step_s = pollster::block_on(whole.time(&refs, steps))? / steps as f64;

    // Kinds in order of first appearance.
    let mut kinds: Vec<(&str, &str, Vec<usize>)> = Vec::new();
    for (i, (phase, d)) in list.iter().enumerate() {
        match kinds
            .iter_mut()
            .find(|(p, k, _)| p == phase && *k == d.label())
        {
            Some((_, _, at)) => at.push(i),
            None => kinds.push((phase, d.label(), vec![i])),
        }
    }
    let us: Vec<f64> = prof.seconds.iter().map(|s| s * 1e6).collect();
    let sum_us: f64 = us.iter().sum();
    for (phase, kernel, at) in &kinds {
        let mean_us: f64 = at.iter().map(|&i| us[i]).sum();
        let line = KernelLine {
            bench: "train_kernels",
            model: args.model,
            batch,
            name: format!("{phase} {kernel}"),
            phase,
            kernel,
            count: at.len(),
            mean_us: round(mean_us, 3),
            us_per_dispatch: round(mean_us / at.len() as f64, 3),
            share: round(mean_us / sum_us.max(1e-12), 5),
            positions: at.clone(),
            dispatch_us: at.iter().map(|&i| round(us[i], 3)).collect(),
            workgroups: at.iter().map(|&i| list[i].1.workgroups()).collect(),
            source: prof.source,
            steps,
            update: args.update,
            conv: args.conv,
            mixed_precision: args.mixed_precision,
            adapter,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&line).expect("serialisable")
        )?;
    }
    let line = StepLine {
        bench: "train_step",
        model: args.model,
        batch,
        dispatches_per_step: t.dispatches_per_step(),
        kinds: kinds.len(),
        sum_us: round(sum_us, 3),
        step_us: round(step_s * 1e6, 3),
        step_source: whole.source(),
        source: prof.source,
        method: match prof.source {
            TimeSource::Timestamp => {
                "one compute pass per dispatch, timestamps at its start and end"
            }
            TimeSource::Wall => "one submission per dispatch, host clock around submit and wait",
        },
        steps,
        update: args.update,
        conv: args.conv,
        mixed_precision: args.mixed_precision,
        adapter,
    };
    write_line(out, &line)?;
    Ok(())
}

/// `x` rounded to `digits` decimals (keeps the JSON lines short).
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Bad command-line input (exit 2): `what` and what is wrong with it.
/// One JSON line of a bench's output, flushed at once (a reader follows it live).
pub(crate) fn write_line(
    out: &mut impl std::io::Write,
    line: &impl serde::Serialize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}",
        serde_json::to_string(line).expect("serialisable")
    )?;
    out.flush()
}

pub(crate) fn bad_arg(what: &str, detail: impl std::fmt::Display) -> Failure {
    Failure::Accrete(accrete::Error::InvalidArgument {
        what: what.into(),
        detail: detail.to_string(),
    })
}
