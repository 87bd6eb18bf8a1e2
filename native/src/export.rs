//! `accrete export`: a checkpoint's weights for other frameworks.
//! `--format pytorch` writes the model's parameters only, named as the equivalent
//! `torch.nn.Sequential` names them (accrete's activations counted as modules:
//! [`accrete::nn::torch`]), as a plain safetensors file that
//! `model.load_state_dict(safetensors.torch.load_file(FILE), strict=True)` accepts, and
//! prints (or writes to `--module-out`) the Python that builds `model`. A shared (tied)
//! weight is listed under both modules' names and tied in that Python (README, "Shared
//! (tied) layers").
//! `--format onnx` writes an ONNX inference graph (opset 13; [`accrete::interop::onnx`]):
//! input `input` [batch, …], output `logits` (or `probabilities` with `--softmax`), the
//! stored standardisation as its first Sub/Div nodes.

use crate::Failure;
use accrete::checkpoint::{foreign, write_atomic};
use accrete::train::Checkpoint;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "Examples:
  accrete export runs/001/checkpoints/last.safetensors --format pytorch --out model.safetensors
  accrete export last.safetensors --format pytorch --out sd.safetensors --module-out model.py
  accrete export last.safetensors --format onnx --out model.onnx --softmax";

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// A PyTorch state dict (safetensors, nn.Sequential names, weights only).
    Pytorch,
    /// An ONNX inference graph (opset 13, dynamic batch, standardisation included).
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by `accrete train`.
    pub checkpoint: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write the Python that builds the nn.Sequential here instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub module_out: Option<PathBuf>,
    /// ONNX: end the graph with a softmax, so it outputs class probabilities (as `accrete
    /// predict` prints) instead of logits.
    #[arg(long)]
    pub softmax: bool,
}

pub fn run(args: &ExportArgs) -> Result<(), Failure> {
    let option_error = |flag: &str, format: &str| {
        Err(Failure::Accrete(accrete::Error::InvalidArgument {
            what: flag.into(),
            detail: format!("applies to --format {format} only; leave it out"),
        }))
    };
    match args.format {
        Format::Pytorch if args.softmax => return option_error("--softmax", "onnx"),
        Format::Onnx if args.module_out.is_some() => {
            return option_error("--module-out", "pytorch")
        }
        _ => {}
    }
    let ckpt = Checkpoint::read_file(&args.checkpoint)?;
    match args.format {
        Format::Onnx => {
            let source = args.checkpoint.display().to_string();
            let m = accrete::interop::onnx::from_checkpoint(&ckpt, args.softmax, &source)?;
            write_atomic(&args.out, &m.bytes)?;
            eprintln!(
                "wrote {} ({} nodes: {}; input {:?} [batch, {}], output {:?}{})",
                args.out.display(),
                m.ops.len(),
                m.ops.join(" "),
                accrete::interop::onnx::INPUT,
                ckpt.meta
                    .model
                    .input
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                m.output,
                if m.standardized {
                    "; standardisation as the first Sub/Div"
                } else {
                    ""
                }
            );
        }
        Format::Pytorch => {
            let spec = &ckpt.meta.model;
            let sd = accrete::nn::torch::state_dict(spec, &ckpt.tensors);
            write_atomic(&args.out, &foreign::encode(&sd))?;
            let py = accrete::nn::torch::module_source(spec)?;
            match &args.module_out {
                Some(p) => write_atomic(p, py.as_bytes())?,
                None => std::io::stdout().write_all(py.as_bytes())?,
            }
            eprintln!(
                "wrote {} tensors to {} (load with safetensors.torch.load_file, strict=True)",
                sd.len(),
                args.out.display()
            );
        }
    }
    Ok(())
}
