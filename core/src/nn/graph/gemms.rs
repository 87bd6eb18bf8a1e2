//! The GEMMs of a graph, for the autotuning pass: the matmul problems that
//! [`Graph::build`](super::Graph::build) launches through matmul's automatic choice
//! ([`gemm_problems`]), and the pass that tunes them before the graph is built
//! ([`tune_gemms`]).

use super::{conv_geom, ConvAlgo, GradPlan};
use crate::kernels::matmul::{tune_problems, MatmulProblem, Precision};
use crate::nn::{LayerSpec, Model};

/// The GEMMs that `Graph::build(model, batch, train, _, _, conv, precision)` launches through
/// matmul's automatic choice (`choose`), in launch order: per dense layer, and per
/// convolution when `conv` is [`ConvAlgo::Im2col`], the forward `X·Wᵀ` (X [rows, inner], W
/// [cols, inner]; rows = B, or B·OH·OW of the im2col matrix), the weight gradient `dZᵀ·X` when
/// the layer is trainable and the input gradient `dZ·W` when computed. Implicit-GEMM
/// convolutions use no matmul, and at [`Precision::F16`] every GEMM names its variant
/// (`Variant::heuristic_f16`), so there is nothing to tune then.
pub fn gemm_problems(
    model: &Model,
    batch: usize,
    train: bool,
    conv: ConvAlgo,
    precision: Precision,
) -> Vec<MatmulProblem> {
    if precision != Precision::F32 {
        return Vec::new();
    }
    let plan = GradPlan::new(model, train);
    let gemm = |m, k, n, trans_a, trans_b| MatmulProblem {
        m,
        k,
        n,
        trans_a,
        trans_b,
    };
    let mut problems = Vec::new();
    for (i, layer) in model.spec.layers.iter().enumerate() {
        let input = &model.shapes[i].input;
        let (rows, inner, cols, trainable) = match layer {
            LayerSpec::Dense {
                units, trainable, ..
            } => match layer.share() {
                // A shared weight (graph/dense.rs): x·W (transposed) or x·Wᵀ forward, the
                // weight's gradient when its owner is trainable, dZ·Wᵀ or dZ·W.
                Some(s) => {
                    let (inner, cols) = (input[0], *units);
                    let t = s.transpose;
                    problems.push(gemm(batch, inner, cols, false, !t));
                    if plan.output_grad(i) && model.spec.layers[s.layer].trainable() {
                        problems.push(if t {
                            gemm(inner, batch, cols, true, false)
                        } else {
                            gemm(cols, batch, inner, true, false)
                        });
                    }
                    if plan.input_grad(i) {
                        problems.push(gemm(batch, cols, inner, false, t));
                    }
                    continue;
                }
                None => (batch, input[0], *units, *trainable),
            },
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                trainable,
                ..
            } if conv == ConvAlgo::Im2col => {
                let g = conv_geom(batch, input, *kernel, *stride, *padding);
                (g.rows(), g.patch(), *filters, *trainable)
            }
            _ => continue,
        };
        problems.push(gemm(rows, inner, cols, false, true));
        if plan.output_grad(i) && trainable {
            problems.push(gemm(cols, rows, inner, true, false));
        }
        if plan.input_grad(i) {
            problems.push(gemm(rows, cols, inner, false, false));
        }
    }
    problems
}

/// The autotuning pass for the graph `Graph::build` would build with these arguments: when
/// autotuning is on (`Gpu::autotune_mode`), times the matmul candidates for each class of
/// [`gemm_problems`] not tuned yet ([`tune_problems`]), so that the graph's launches use the
/// tuned variants. Off (the default), it does nothing. Tuning only changes speed, so a failure
/// becomes an autotuning warning (`Gpu::take_autotune_warnings`) and the launches of classes
/// not tuned use the heuristic.
pub async fn tune_gemms(
    model: &Model,
    batch: usize,
    train: bool,
    conv: ConvAlgo,
    precision: Precision,
) {
    let gpu = model.gpu();
    if !gpu.autotune_mode().is_on() {
        return;
    }
    let problems = gemm_problems(model, batch, train, conv, precision);
    if let Err(e) = tune_problems(gpu, &problems).await {
        gpu.autotune_warning(format!(
            "autotuning the GEMMs of the batch-{batch} graph failed ({e}); classes not tuned \
             use the heuristic"
        ));
    }
}
