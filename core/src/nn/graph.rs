//! The forward and backward passes of a model for one batch size, as lists of dispatches
//! over preallocated tensors. Built once, recorded every step.
//!
//! Tensors: `acts[i]` is the output of layer i ([B, ...shape]); `grads[i]` is ∂L/∂acts[i]
//! (the loss writes `grads[L−1]`). Layer i's input is `input` for i = 0, else `acts[i−1]`.
//! Backward computes a layer's parameter gradients when it is trainable, and its input
//! gradient only when some trainable layer lies below it. A dense (or im2col convolution)
//! layer's bias gradient comes out of its f32 weight-gradient GEMM, whose virtual column of
//! ones sums dZ over the batch (`matmul_row_sums_into`): one dispatch for both.
//!
//! [`gemm_problems`] lists the GEMMs a graph launches through matmul's automatic choice, and
//! [`tune_gemms`] runs the autotuning pass on them; the trainer awaits it before it builds a
//! graph, so that the launches find their tuned variants.

use super::model::{Model, ParamKind};
use super::spec::LayerSpec;
use crate::error::Result;
use crate::gpu::{DType, Dispatch, Gpu, Tensor};
use crate::kernels::conv::{self, ConvGeom, ConvSpec};
use crate::kernels::matmul::{matmul_into, matmul_row_sums_into, MatmulSpec, Precision, Variant};
use crate::kernels::pool::{self, PoolGeom};
use crate::kernels::reduce::{cols_into, Reduce};
use crate::kernels::rng::{fill_stepped_into, Distribution, RngKey};
use crate::kernels::{activation, elementwise, permute, Activation};

mod dense;
mod gemms;
pub use gemms::{gemm_problems, tune_gemms};

/// Stream offset separating dropout masks from other uses of the seed.
const DROPOUT_STREAM: u32 = 0x2000;

/// How convolution layers are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgo {
    /// Implicit GEMM (kernels::conv::implicit_*): forward one dispatch with the bias and
    /// activation epilogue; backward two for dW/db and one for dx, the activation's backward
    /// fused in; no im2col buffers.
    #[default]
    Implicit,
    /// im2col into a [B·OH·OW, C·K·K] buffer, matmul, permute to NCHW, activation;
    /// backward through the same buffers and col2im (4 forward, up to 5 backward dispatches).
    Im2col,
}

/// Forward (and, when training, backward) dispatches for one batch size.
pub struct Graph {
    pub batch: usize,
    pub train: bool,
    /// The batch input, [B, ...model input].
    pub input: Tensor,
    pub acts: Vec<Tensor>,
    pub grads: Vec<Option<Tensor>>,
    pub forward: Vec<Dispatch>,
    pub backward: Vec<Dispatch>,
}

fn with_batch(b: usize, shape: &[usize]) -> Vec<usize> {
    let mut s = vec![b];
    s.extend_from_slice(shape);
    s
}

fn new(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
    Tensor::uninit(gpu, shape, DType::F32)
}

impl Graph {
    /// Builds the passes of `model` for batches of `batch`. `counter` is the GPU step counter
    /// (dropout masks are keyed by its global step); `seed` keys the dropout masks.
    pub fn new(
        model: &Model,
        batch: usize,
        train: bool,
        counter: &Tensor,
        seed: u64,
    ) -> Result<Graph> {
        Self::with_conv(model, batch, train, counter, seed, ConvAlgo::default())
    }

    /// [`Graph::new`] with convolutions computed by `conv`.
    pub fn with_conv(
        model: &Model,
        batch: usize,
        train: bool,
        counter: &Tensor,
        seed: u64,
        conv: ConvAlgo,
    ) -> Result<Graph> {
        Self::build(model, batch, train, counter, seed, conv, Precision::F32)
    }

    /// [`Graph::with_conv`] with the GEMMs (dense and convolution layers, forward and both
    /// gradients) computed at `precision`: [`Precision::F16`] rounds their operands to f16
    /// and sums in f32 (mixed-precision training; needs `SHADER_F16`). Everything else —
    /// activations, pooling, the loss, bias gradients — stays f32.
    pub fn build(
        model: &Model,
        batch: usize,
        train: bool,
        counter: &Tensor,
        seed: u64,
        conv: ConvAlgo,
        precision: Precision,
    ) -> Result<Graph> {
        let gpu = model.gpu();
        // The kernel variant of an m×k · k×n GEMM: the default choice for f32.
        let variant = |m: usize, k: usize, n: usize| match precision {
            Precision::F32 => None,
            Precision::F16 => Some(Variant::heuristic_f16(m, k, n)),
        };
        let spec = &model.spec;
        let n = spec.layers.len();
        let input = new(gpu, &with_batch(batch, &spec.input))?;
        let plan = GradPlan::new(model, train);
        let mut acts: Vec<Tensor> = Vec::with_capacity(n);
        let mut grads: Vec<Option<Tensor>> = vec![None; n];
        let mut forward = Vec::new();
        // Gradient accumulations of shared weights, by owner layer (see `dense`).
        let mut tied: Vec<(usize, Dispatch)> = Vec::new();
        // Backward pieces per layer, assembled in reverse order at the end.
        let mut backward_by_layer: Vec<Vec<Dispatch>> = Vec::with_capacity(n);
        // Output gradients are allocated up front so layer i's backward can write grads[i−1].
        // Where layer i + 1 passes its gradient through unchanged (flatten, dropout at rate 0),
        // grads[i] is a view of grads[i + 1]: no copy dispatch.
        if train {
            for (i, sh) in model.shapes.iter().enumerate().rev() {
                if !plan.output_grad(i) {
                    continue;
                }
                let shape = with_batch(batch, &sh.output);
                grads[i] = Some(match grads.get(i + 1) {
                    Some(Some(up)) if passes_gradient_through(&spec.layers[i + 1]) => {
                        up.reshape(&shape)?
                    }
                    _ => new(gpu, &shape)?,
                });
            }
        }
        for (i, layer) in spec.layers.iter().enumerate() {
            let sh = &model.shapes[i];
            let x = if i == 0 {
                input.clone()
            } else {
                acts[i - 1].clone()
            };
            let out_shape = with_batch(batch, &sh.output);
            let dy = grads[i].clone();
            let dx = if plan.input_grad(i) {
                grads[i - 1].clone()
            } else {
                None
            };
            let mut bwd = Vec::new();
            let y = match layer {
                LayerSpec::Dense { .. } => dense::dense_layer(
                    model,
                    i,
                    batch,
                    precision,
                    &x,
                    dy.as_ref(),
                    dx.as_ref(),
                    dense::DenseOut {
                        forward: &mut forward,
                        backward: &mut bwd,
                        tied: &mut tied,
                    },
                )?,
                LayerSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    activation: act,
                    trainable,
                    ..
                } => {
                    let g = conv_geom(batch, &sh.input, *kernel, *stride, *padding);
                    let (f, s, patch) = (*filters, g.out_h() * g.out_w(), g.patch());
                    let w = &model
                        .param(i, ParamKind::Weight)
                        .expect("conv weight")
                        .value;
                    let b = &model.param(i, ParamKind::Bias).expect("conv bias").value;
                    if conv == ConvAlgo::Implicit {
                        let spec = ConvSpec {
                            geom: g,
                            filters: f,
                            activation: *act,
                            tiles: None,
                            precision,
                        };
                        let y = new(gpu, &out_shape)?;
                        // The pre-activation is kept only for a backward that needs it; for
                        // ReLU-like activations the backward reads act'(y) = act'(z).
                        let keep_z = dy.is_some()
                            && *act != Activation::Identity
                            && !derivative_from_output(*act);
                        let z_new = if keep_z {
                            Some(new(gpu, &out_shape)?)
                        } else {
                            None
                        };
                        forward.push(conv::implicit_forward_into(
                            &spec,
                            &x,
                            w,
                            Some(b),
                            z_new.as_ref(),
                            &y,
                        )?);
                        let z = match (&z_new, *act) {
                            (Some(z), _) => Some(z.clone()),
                            (None, Activation::Identity) => None,
                            (None, _) => Some(y.clone()),
                        };
                        if let Some(dy) = &dy {
                            if *trainable {
                                let gw = &model.param(i, ParamKind::Weight).expect("weight").grad;
                                let gb = &model.param(i, ParamKind::Bias).expect("bias").grad;
                                bwd.extend(
                                    conv::implicit_wgrad_into(&spec, &x, dy, z.as_ref(), gw, gb)?
                                        .dispatches,
                                );
                            }
                            if let Some(dx) = &dx {
                                bwd.push(conv::implicit_dgrad_into(&spec, dy, z.as_ref(), w, dx)?);
                            }
                        }
                        acts.push(y);
                        backward_by_layer.push(bwd);
                        continue;
                    }
                    let w2 = w.reshape(&[f, patch])?;
                    let cols = new(gpu, &[g.rows(), patch])?;
                    let zmat = new(gpu, &[g.rows(), f])?;
                    let y = new(gpu, &out_shape)?;
                    let z = if *act == Activation::Identity {
                        y.clone()
                    } else {
                        new(gpu, &out_shape)?
                    };
                    forward.push(conv::im2col_into(&x, &g, &cols)?);
                    forward.push(matmul_into(
                        &cols,
                        &w2,
                        Some(b),
                        &zmat,
                        &MatmulSpec {
                            trans_b: true,
                            variant: variant(g.rows(), patch, f),
                            ..Default::default()
                        },
                    )?);
                    forward.push(permute::swap_last_two_into(&zmat, batch, s, f, &z)?);
                    if *act != Activation::Identity {
                        forward.push(activation::forward_into(*act, &z, &y)?);
                    }
                    if let Some(dy) = &dy {
                        let dz = activation_backward(gpu, *act, &z, dy, &mut bwd)?;
                        let dzmat = new(gpu, &[g.rows(), f])?;
                        bwd.push(permute::swap_last_two_into(&dz, batch, f, s, &dzmat)?);
                        if *trainable {
                            let gw = model
                                .param(i, ParamKind::Weight)
                                .expect("weight")
                                .grad
                                .reshape(&[f, patch])?;
                            let gb = &model.param(i, ParamKind::Bias).expect("bias").grad;
                            bwd.extend(weight_and_bias_grad(
                                &dzmat,
                                &cols,
                                &gw,
                                gb,
                                &MatmulSpec {
                                    trans_a: true,
                                    variant: variant(f, g.rows(), patch),
                                    ..Default::default()
                                },
                            )?);
                        }
                        if let Some(dx) = &dx {
                            let dcols = new(gpu, &[g.rows(), patch])?;
                            bwd.push(matmul_into(
                                &dzmat,
                                &w2,
                                None,
                                &dcols,
                                &MatmulSpec {
                                    variant: variant(g.rows(), f, patch),
                                    ..Default::default()
                                },
                            )?);
                            bwd.push(conv::col2im_into(&dcols, &g, dx)?);
                        }
                    }
                    y
                }
                LayerSpec::Maxpool2d { size, stride } | LayerSpec::Avgpool2d { size, stride } => {
                    let g = PoolGeom {
                        batch,
                        channels: sh.input[0],
                        height: sh.input[1],
                        width: sh.input[2],
                        size: *size,
                        stride: stride.unwrap_or(*size),
                    };
                    let y = new(gpu, &out_shape)?;
                    if matches!(layer, LayerSpec::Maxpool2d { .. }) {
                        let arg = Tensor::uninit(gpu, &out_shape, DType::U32)?;
                        forward.push(pool::max_forward_into(&x, &g, &y, &arg)?);
                        if let (Some(dy), Some(dx)) = (&dy, &dx) {
                            bwd.push(pool::max_backward_into(dy, &arg, &g, dx)?);
                        }
                    } else {
                        forward.push(pool::avg_forward_into(&x, &g, &y)?);
                        if let (Some(dy), Some(dx)) = (&dy, &dx) {
                            bwd.push(pool::avg_backward_into(dy, &g, dx)?);
                        }
                    }
                    y
                }
                LayerSpec::Flatten {} => {
                    // A view forward; backward nothing: dx is a view of dy (see the
                    // gradient allocation above).
                    if let (Some(dy), Some(dx)) = (&dy, &dx) {
                        copy_unless_aliased(dy, dx, &mut bwd)?;
                    }
                    x.reshape(&out_shape)?
                }
                LayerSpec::Dropout { rate } => {
                    if !train || *rate == 0.0 {
                        if let (Some(dy), Some(dx)) = (&dy, &dx) {
                            copy_unless_aliased(dy, dx, &mut bwd)?;
                        }
                        x.clone()
                    } else {
                        let mask = new(gpu, &out_shape)?;
                        let key = RngKey {
                            seed,
                            stream: DROPOUT_STREAM + i as u32,
                            offset: 0,
                        };
                        forward.push(fill_stepped_into(
                            Distribution::DropoutMask { rate: *rate },
                            key,
                            counter,
                            &mask,
                        )?);
                        let y = new(gpu, &out_shape)?;
                        forward.push(elementwise::binary_into(
                            elementwise::BinaryOp::Mul,
                            &x,
                            &mask,
                            &y,
                        )?);
                        if let (Some(dy), Some(dx)) = (&dy, &dx) {
                            bwd.push(elementwise::binary_into(
                                elementwise::BinaryOp::Mul,
                                dy,
                                &mask,
                                dx,
                            )?);
                        }
                        y
                    }
                }
                LayerSpec::Activation { activation: act } => {
                    let y = new(gpu, &out_shape)?;
                    forward.push(activation::forward_into(*act, &x, &y)?);
                    if let (Some(dy), Some(dx)) = (&dy, &dx) {
                        bwd.push(activation::backward_into(*act, &x, dy, dx)?);
                    }
                    y
                }
            };
            acts.push(y);
            backward_by_layer.push(bwd);
        }
        // A shared weight's other uses add their contributions after its owner's gradient
        // GEMM, which overwrites the gradient (the owner's backward runs after theirs).
        for (owner, d) in tied {
            backward_by_layer[owner].push(d);
        }
        let backward = backward_by_layer.into_iter().rev().flatten().collect();
        Ok(Graph {
            batch,
            train,
            input,
            acts,
            grads,
            forward,
            backward,
        })
    }

    /// The model output for the batch, [B, outputs].
    pub fn output(&self) -> Result<Tensor> {
        let last = self.acts.last().expect("non-empty model");
        last.reshape(&[self.batch, last.len() / self.batch.max(1)])
    }

    /// ∂L/∂output, [B, outputs] (training graphs only).
    pub fn output_grad(&self) -> Option<Tensor> {
        let g = self.grads.last()?.as_ref()?;
        g.reshape(&[self.batch, g.len() / self.batch.max(1)]).ok()
    }
}

/// Which gradients a graph's backward computes (none unless training): ∂L/∂(output) of layer
/// i for the last layer and wherever a trainable layer lies at or below i, and layer i's input
/// gradient when a trainable layer lies below it.
struct GradPlan {
    train: bool,
    layers: usize,
    lowest_trainable: Option<usize>,
}

impl GradPlan {
    fn new(model: &Model, train: bool) -> GradPlan {
        let layers = &model.spec.layers;
        GradPlan {
            train,
            layers: layers.len(),
            lowest_trainable: layers.iter().position(|l| l.trainable()),
        }
    }

    /// Whether ∂L/∂acts[i] exists.
    fn output_grad(&self, i: usize) -> bool {
        self.train && (i + 1 == self.layers || self.lowest_trainable.is_some_and(|t| t <= i))
    }

    /// Whether layer i computes its input gradient (∂L/∂acts[i − 1]).
    fn input_grad(&self, i: usize) -> bool {
        self.train && self.lowest_trainable.is_some_and(|t| t < i)
    }
}

/// The geometry of a convolution layer over inputs of `shape` [C, H, W] in batches of `batch`.
fn conv_geom(
    batch: usize,
    shape: &[usize],
    kernel: usize,
    stride: usize,
    padding: usize,
) -> ConvGeom {
    ConvGeom {
        batch,
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        kernel,
        stride,
        padding,
    }
}

/// Whether the layer's input gradient equals its output gradient (so they can share a
/// buffer): flatten, and dropout at rate 0 (training graphs only have gradients).
fn passes_gradient_through(layer: &LayerSpec) -> bool {
    matches!(layer, LayerSpec::Flatten {})
        || matches!(layer, LayerSpec::Dropout { rate } if *rate == 0.0)
}

/// dx = dy, as a copy unless dx is already a view of dy.
/// The weight gradient `dZᵀ·X` (`spec` has `trans_a`) and the bias gradient `Σ_rows dZ`:
/// one GEMM whose virtual column of ones yields the bias gradient (`matmul_row_sums_into`)
/// for f32 GEMMs; at f16 (which would round dZ before summing it) the GEMM and a column sum.
fn weight_and_bias_grad(
    dz: &Tensor,
    x: &Tensor,
    gw: &Tensor,
    gb: &Tensor,
    spec: &MatmulSpec,
) -> Result<Vec<Dispatch>> {
    if spec.variant.is_none_or(|v| v.precision == Precision::F32) {
        return Ok(vec![matmul_row_sums_into(dz, x, gw, gb, spec)?]);
    }
    Ok(vec![
        matmul_into(dz, x, None, gw, spec)?,
        cols_into(Reduce::Sum, dz, gb)?,
    ])
}

fn copy_unless_aliased(dy: &Tensor, dx: &Tensor, bwd: &mut Vec<Dispatch>) -> Result<()> {
    if !(dx.shares_buffer(dy) && dx.offset() == dy.offset()) {
        bwd.push(elementwise::scale_into(1.0, dy, dx)?);
    }
    Ok(())
}

/// Activations whose derivative is the same function of the output as of the input
/// (f'(z) depends only on z > 0, and f(z) > 0 ⇔ z > 0): the backward can read y instead of
/// a stored pre-activation, so the forward fuses the activation and keeps no z. The
/// gradients are bit-identical either way.
fn derivative_from_output(act: Activation) -> bool {
    matches!(act, Activation::Relu | Activation::LeakyRelu)
}

/// dz = dy ⊙ f'(z), or dy itself for the identity.
fn activation_backward(
    gpu: &Gpu,
    act: Activation,
    z: &Tensor,
    dy: &Tensor,
    bwd: &mut Vec<Dispatch>,
) -> Result<Tensor> {
    if act == Activation::Identity {
        return Ok(dy.clone());
    }
    let dz = new(gpu, z.shape())?;
    bwd.push(activation::backward_into(act, z, dy, &dz)?);
    Ok(dz)
}
