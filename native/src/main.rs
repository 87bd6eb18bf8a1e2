//! `accrete`: the command-line front end of accrete.
//!
//! This file only parses arguments and turns failures into an exit status; each
//! subcommand lives in its own module.

mod bench;
mod charts;
mod cv;
mod devices;
mod eval;
mod export;
mod mpi;
mod progress;
mod report;
mod run;
mod rundir;
mod tensorboard;
mod train_bench;

use clap::{Parser, Subcommand};
use std::io::{self, Write};
use std::process::ExitCode;

/// The environment variables every GPU command honours, for the `--help` texts.
macro_rules! environment_help {
    () => {
        "Environment:
  ACCRETE_ADAPTER=<substring>  use the first adapter whose name contains <substring>
                               (case-insensitive), e.g. ACCRETE_ADAPTER=llvmpipe
  WGPU_BACKEND=<list>          only search these backends, e.g. vulkan, metal, dx12
  ACCRETE_BACKEND=auto|gpu|cpu the same as --backend (the flag wins)
  ACCRETE_CPU_THREADS=<n>      threads of the CPU backend (default: all cores)"
    };
}
pub(crate) use environment_help;

const MAIN_EXAMPLES: &str = concat!(
    "Examples:
  accrete train --config run.toml --out runs/exp1  train incrementally; writes a run directory
  accrete resume runs/exp1                      continue a stopped or killed run exactly
  accrete cv --config run.toml --folds 5        k-fold cross-validation; JSON summary on stdout
  accrete eval runs/exp1/checkpoints/best.safetensors   loss, accuracy, per-class scores (JSON)
  accrete predict model.safetensors --input x.csv      class probabilities (CSV)
  accrete report runs/exp1                      charts and report.md in runs/exp1/report/
  accrete devices                               list GPU adapters; * marks the one accrete uses
  accrete devices --json                        the same, one JSON object per line
  accrete bench matmul --sizes 256,512 --reps 3 time the matmul kernels, one JSON line each
  accrete bench train --model cnn --profile     GPU time of each kernel of a training step
  ACCRETE_ADAPTER=llvmpipe accrete devices      mark the software Vulkan driver as the choice
  accrete --backend cpu train --config run.toml --out runs/cpu   train on the CPU backend

",
    environment_help!(),
    "

Output: results (JSON, CSV, summaries) on standard output; progress, status lines, warnings
and errors on standard error.

Exit status: 0 on success; 2 for bad input (a configuration, data file, checkpoint or
argument, or a size over the device's limits); 1 for a failure while running (no usable GPU
device, a device error, a file that could not be written, training that kept diverging);
130 when training was stopped by Ctrl-C, SIGTERM or SIGHUP (after a checkpoint; resume it)."
);

/// Neural-network training on the GPU through WGSL compute shaders.
#[derive(Parser, Debug)]
#[command(name = "accrete", version, after_help = MAIN_EXAMPLES)]
struct Cli {
    /// Where kernels run: auto (a hardware GPU if there is one, else the CPU backend; a
    /// software GPU such as lavapipe is slower than the CPU backend), gpu (any WebGPU adapter,
    /// software ones included) or cpu. Default: ACCRETE_BACKEND, else auto.
    #[arg(long, global = true, value_name = "auto|gpu|cpu")]
    backend: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model incrementally from a run configuration; writes a run directory.
    #[command(after_help = run::TRAIN_EXAMPLES)]
    Train(run::TrainArgs),
    /// Continue a run from its last checkpoint, exactly as if it had not stopped.
    #[command(after_help = run::RESUME_EXAMPLES)]
    Resume(run::ResumeArgs),
    /// k-fold cross-validation of a run configuration: one run per fold, a JSON summary.
    #[command(after_help = cv::EXAMPLES)]
    Cv(cv::CvArgs),
    /// Evaluate a checkpoint on labelled data: one JSON object with loss, accuracy, P/R/F1.
    #[command(after_help = eval::EVAL_EXAMPLES)]
    Eval(eval::EvalArgs),
    /// Class probabilities of a checkpoint's model for a CSV table or IDX images.
    #[command(after_help = eval::PREDICT_EXAMPLES)]
    Predict(eval::PredictArgs),
    /// Charts and report.md for a run directory (also written at the end of `train`).
    #[command(after_help = report::EXAMPLES)]
    Report(report::ReportArgs),
    /// List the GPU adapters, their limits and features, marking the one accrete would use.
    #[command(after_help = devices::EXAMPLES)]
    Devices(devices::DevicesArgs),
    /// Export a checkpoint: PyTorch weights (nn.Sequential names) or an ONNX inference graph.
    #[command(after_help = export::EXAMPLES)]
    Export(export::ExportArgs),
    /// Measure kernel speed and check the results against an f64 reference.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Time every matmul tile variant on square matrices; one JSON line per (variant, size).
    #[command(after_help = bench::EXAMPLES, long_about = bench::LONG_ABOUT)]
    Matmul(bench::MatmulArgs),
    /// Train the reference MLP or CNN on Fashion-MNIST: epoch time, samples/s, accuracy.
    #[command(after_help = train_bench::EXAMPLES)]
    Train(train_bench::TrainBenchArgs),
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The library reported a problem; its message is already a sentence for the user.
    Accrete(accrete::Error),
    /// Writing the output failed (a closed pipe, a full disk).
    Output(io::Error),
    /// Training was stopped by a signal after a checkpoint; the message says how to resume.
    Interrupted(String),
}

/// A problem with an input file or value, named by `source` (a path, "training data").
pub fn data_failure(source: impl Into<String>, detail: impl std::fmt::Display) -> Failure {
    Failure::Accrete(accrete::Error::Data {
        source_name: source.into(),
        detail: detail.to_string(),
    })
}

impl From<accrete::Error> for Failure {
    fn from(e: accrete::Error) -> Self {
        Failure::Accrete(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(b) = &cli.backend {
        match accrete::BackendChoice::parse(b, "--backend") {
            // Every device the CLI opens reads it (GpuOptions::from_env), MPI ranks included.
            Ok(choice) => std::env::set_var("ACCRETE_BACKEND", choice.name()),
            Err(e) => return ExitCode::from(report(&e.to_string(), 2)),
        }
    }
    let result = match cli.command {
        Command::Train(args) => run::train(&args),
        Command::Resume(args) => run::resume(&args),
        Command::Cv(args) => cv::run(&args),
        Command::Eval(args) => eval::eval(&args),
        Command::Predict(args) => eval::predict_cmd(&args),
        Command::Report(args) => report::run(&args),
        Command::Devices(args) => devices::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Bench {
            which: BenchCommand::Matmul(args),
        } => bench::run_matmul(&args),
        Command::Bench {
            which: BenchCommand::Train(args),
        } => train_bench::run(&args),
    };
    let code = match result {
        Ok(()) => 0,
        // The reader went away (`accrete bench matmul | head -1`): nothing left to say.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(Failure::Output(e)) => report(&format!("could not write the output: {e}"), 1),
        Err(Failure::Accrete(e)) => report(&e.to_string(), if e.is_bad_input() { 2 } else { 1 }),
        Err(Failure::Interrupted(message)) => {
            if !message.is_empty() {
                let _ = writeln!(io::stderr(), "{message}");
            }
            130
        }
    };
    // Under mpirun: finalise, or abort every rank on a failure.
    mpi::finish(code);
    ExitCode::from(code)
}

fn report(message: &str, code: u8) -> u8 {
    // One line, whatever the message holds.
    let message = message.trim().replace('\n', "; ");
    let _ = writeln!(io::stderr(), "error: {message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_arguments_parse() {
        let cli = Cli::try_parse_from([
            "accrete",
            "bench",
            "matmul",
            "--sizes",
            "512,256",
            "--variants",
            "small16x16",
            "--reps",
            "3",
        ])
        .unwrap();
        let Command::Bench {
            which: BenchCommand::Matmul(args),
        } = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.sizes, [512, 256]);
        assert_eq!(args.variants, ["small16x16"]);
        assert_eq!(args.reps, 3);
        assert_eq!(args.max_seconds, 20.0);
    }

    #[test]
    fn bench_defaults_and_rejections() {
        let cli = Cli::try_parse_from(["accrete", "bench", "matmul"]).unwrap();
        let Command::Bench {
            which: BenchCommand::Matmul(args),
        } = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.sizes, [256, 512, 1024, 2048, 4096]);
        assert!(args.variants.is_empty());
        for bad in [
            &["--variants", "huge"][..],
            &["--sizes", "0"],
            &["--reps", "0"],
            &["--max-seconds", "-1"],
        ] {
            let argv = ["accrete", "bench", "matmul"].iter().chain(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bench_train_profile_arguments_parse() {
        let cli = Cli::try_parse_from([
            "accrete",
            "bench",
            "train",
            "--model",
            "cnn",
            "--batch",
            "128,1024",
            "--profile",
            "--profile-steps",
            "3",
            "--timing",
            "wall",
        ])
        .unwrap();
        let Command::Bench {
            which: BenchCommand::Train(args),
        } = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert!(args.profile);
        assert_eq!(args.batch, [128, 1024]);
        assert_eq!(args.profile_steps, 3);
        assert_eq!(args.timing, train_bench::TimingChoice::Wall);
        let cli = Cli::try_parse_from(["accrete", "bench", "train"]).unwrap();
        let Command::Bench {
            which: BenchCommand::Train(args),
        } = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert!(!args.profile);
        assert_eq!(
            (args.profile_steps, args.timing),
            (20, train_bench::TimingChoice::Auto)
        );
        for bad in [&["--profile-steps", "0"][..], &["--timing", "gpu"]] {
            let argv = ["accrete", "bench", "train"].iter().chain(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn run_commands_parse() {
        let cli =
            Cli::try_parse_from(["accrete", "train", "--config", "r.toml", "--quiet"]).unwrap();
        let Command::Train(t) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(t.config.as_deref(), Some(std::path::Path::new("r.toml")));
        assert!(t.quiet && t.out.is_none());
        let cli = Cli::try_parse_from([
            "accrete",
            "eval",
            "c.safetensors",
            "--split",
            "train",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Eval(e) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!((e.split, e.limit), (eval::SplitChoice::Train, Some(5)));
        for bad in [
            &["eval", "c.safetensors", "--limit", "0"][..],
            &["eval", "c.safetensors", "--split", "valid"],
            &["eval", "c.safetensors", "--csv", "x.csv", "--data-dir", "d"],
            &["predict", "c.safetensors"],
            &["resume"],
            &["report", "r", "--checkpoint", "first"],
        ] {
            let argv = ["accrete"].iter().chain(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }
}
