//! A checkpoint's model as an ONNX inference graph (opset 13, IR version 7), encoded with
//! [`super::protobuf`] field by field as `onnx.proto` numbers them.
//!
//! The graph has one input, `input` [batch, …model.input] (float; `batch` is a dynamic
//! dimension), holding the features as accrete's readers produce them (IDX pixels already
//! scaled to [0, 1]), and one output, `logits` [batch, outputs] — or `probabilities`, with
//! a final `Softmax` when asked. Layers map one to one: dense → `Gemm` (transB = 1: the
//! weight stays in PyTorch's [units, in] layout), conv2d → `Conv`, maxpool2d → `MaxPool`,
//! avgpool2d → `AveragePool`, flatten → `Flatten`, activations → `Relu`, `LeakyRelu`
//! (α 0.01), `Elu` (α 1), `Sigmoid`, `Tanh`, and GELU's tanh form spelled out in
//! `Mul`/`Add`/`Tanh` (opset 13 has no `Gelu`); dropout is the identity at inference and
//! leaves no node.
//!
//! The stored standardisation becomes the graph's first two nodes, `Sub` (the means) and
//! `Div` (the standard deviations), shaped like one sample so they broadcast over the
//! batch. It is not folded into the first layer's weights: that would change rounding
//! (W/σ and b − W·μ/σ lose bits where σ is small), and under a convolution with zero
//! padding it would not even be the same function (the padding would stand for −μ/σ).

use super::protobuf::Message;
use crate::checkpoint::NamedTensor;
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::kernels::Activation;
use crate::nn::spec::{LayerSpec, ModelSpec};
use crate::train::{Checkpoint, LossKind};

/// The operator set the graph is written for, and the IR version that goes with it.
pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;
/// The graph's input and output names.
pub const INPUT: &str = "input";
pub const LOGITS: &str = "logits";
pub const PROBABILITIES: &str = "probabilities";
/// The name of the dynamic batch dimension.
pub const BATCH: &str = "batch";

// onnx.proto's enum values.
const FLOAT: i64 = 1; // TensorProto.DataType.FLOAT
const ATTR_FLOAT: i64 = 1; // AttributeProto.AttributeType
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

/// An exported model.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    /// The serialised `ModelProto`.
    pub bytes: Vec<u8>,
    /// The op type of every node, in order.
    pub ops: Vec<&'static str>,
    /// The output's name ([`LOGITS`] or [`PROBABILITIES`]).
    pub output: &'static str,
    /// Whether the graph starts with the standardisation.
    pub standardized: bool,
}

struct Node {
    op: &'static str,
    inputs: Vec<String>,
    output: String,
    attrs: Vec<Message>,
}

#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    inits: Vec<Message>,
    init_names: Vec<String>,
}

fn attr(name: &str, kind: i64) -> Message {
    let mut a = Message::new();
    a.string(1, name).int64(20, kind);
    a
}

fn attr_int(name: &str, v: i64) -> Message {
    let mut a = attr(name, ATTR_INT);
    a.int64(3, v);
    a
}

fn attr_float(name: &str, v: f32) -> Message {
    let mut a = attr(name, ATTR_FLOAT);
    a.float(2, v);
    a
}

fn attr_ints(name: &str, v: &[usize]) -> Message {
    let mut a = attr(name, ATTR_INTS);
    for &x in v {
        a.int64(8, x as i64); // repeated int64 ints = 8 (proto2: unpacked)
    }
    a
}

/// A `TensorProto` of f32 values (raw little-endian data).
fn tensor(name: &str, dims: &[usize], data: &[f32]) -> Message {
    let mut t = Message::new();
    for &d in dims {
        t.int64(1, d as i64);
    }
    t.int64(2, FLOAT).string(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// A `ValueInfoProto` of a float tensor [batch, dims…].
fn value_info(name: &str, dims: &[usize]) -> Message {
    let mut shape = Message::new();
    let mut batch = Message::new();
    batch.string(2, BATCH);
    shape.message(1, &batch);
    for &d in dims {
        let mut dim = Message::new();
        dim.int64(1, d as i64);
        shape.message(1, &dim);
    }
    let mut tt = Message::new();
    tt.int64(1, FLOAT).message(2, &shape);
    let mut ty = Message::new();
    ty.message(1, &tt);
    let mut v = Message::new();
    v.string(1, name).message(2, &ty);
    v
}

impl Graph {
    /// Adds a node reading `inputs`; returns its output's name.
    fn node<S: AsRef<str>>(
        &mut self,
        op: &'static str,
        inputs: &[S],
        attrs: Vec<Message>,
    ) -> String {
        let output = format!("{}_{}", op.to_ascii_lowercase(), self.nodes.len());
        self.nodes.push(Node {
            op,
            inputs: inputs.iter().map(|s| s.as_ref().to_string()).collect(),
            output: output.clone(),
            attrs,
        });
        output
    }

    fn init(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        if !self.init_names.iter().any(|n| n == name) {
            self.inits.push(tensor(name, dims, data));
            self.init_names.push(name.to_string());
        }
        name.to_string()
    }

    fn activation(&mut self, a: Activation, x: String) -> String {
        match a {
            Activation::Identity => x,
            Activation::Relu => self.node("Relu", &[&x], vec![]),
            Activation::LeakyRelu => self.node("LeakyRelu", &[&x], vec![attr_float("alpha", 0.01)]),
            Activation::Elu => self.node("Elu", &[&x], vec![attr_float("alpha", 1.0)]),
            Activation::Sigmoid => self.node("Sigmoid", &[&x], vec![]),
            Activation::Tanh => self.node("Tanh", &[&x], vec![]),
            Activation::Gelu => {
                // ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as shaders/lib/activation_fns.wgsl.
                let a = self.init("gelu_a", &[], &[0.044715]);
                let c = self.init("gelu_c", &[], &[0.797_884_6]);
                let half = self.init("half", &[], &[0.5]);
                let one = self.init("one", &[], &[1.0]);
                let x2 = self.node("Mul", &[&x, &x], vec![]);
                let x3 = self.node("Mul", &[&x2, &x], vec![]);
                let ax3 = self.node("Mul", &[&x3, &a], vec![]);
                let inner = self.node("Add", &[&x, &ax3], vec![]);
                let scaled = self.node("Mul", &[&inner, &c], vec![]);
                let t = self.node("Tanh", &[&scaled], vec![]);
                let t1 = self.node("Add", &[&t, &one], vec![]);
                let hx = self.node("Mul", &[&x, &half], vec![]);
                self.node("Mul", &[&hx, &t1], vec![])
            }
        }
    }
}

/// The parameter `layers.{i}.{kind}` of `tensors`, checked against its expected shape.
fn param<'a>(
    tensors: &'a [NamedTensor],
    i: usize,
    kind: &str,
    shape: &[usize],
    source: &str,
) -> Result<&'a NamedTensor> {
    let name = format!("layers.{i}.{kind}");
    let t = tensors.iter().find(|t| t.name == name).ok_or_else(|| {
        Error::data(
            source,
            format!("has no tensor {name} (layer {i}'s {kind}); the checkpoint is incomplete and cannot be exported: use a checkpoint written by `accrete train`"),
        )
    })?;
    if t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
        return Err(Error::data(
            source,
            format!(
                "tensor {name} has shape {:?} but the model's layer {i} needs {shape:?}; the checkpoint does not match its own model and cannot be exported",
                t.shape
            ),
        ));
    }
    Ok(t)
}

/// Exports `spec` with the parameters among `tensors` (`layers.{i}.weight|bias`, PyTorch
/// layout), the standardisation `standardizer` as the first nodes, and a final softmax
/// when `softmax`. `source` names the checkpoint in errors.
pub fn export(
    spec: &ModelSpec,
    tensors: &[NamedTensor],
    standardizer: Option<&Standardizer>,
    softmax: bool,
    source: &str,
) -> Result<OnnxModel> {
    let shapes = spec
        .shapes()
        .map_err(|e| Error::data(source, format!("its model cannot be built ({e})")))?;
    let mut g = Graph::default();
    let mut x = INPUT.to_string();
    if let Some(st) = standardizer {
        st.check()?;
        if st.features() != spec.input_len() {
            return Err(Error::data(
                source,
                format!(
                    "its standardizer has {} features but the model's input {:?} has {}; the checkpoint is inconsistent and cannot be exported",
                    st.features(),
                    spec.input,
                    spec.input_len()
                ),
            ));
        }
        let mean = g.init("standardize.mean", &spec.input, &st.mean);
        let std = g.init("standardize.std", &spec.input, &st.std);
        x = g.node("Sub", &[&x, &mean], vec![]);
        x = g.node("Div", &[&x, &std], vec![]);
    }
    for (i, (layer, sh)) in spec.layers.iter().zip(&shapes).enumerate() {
        x = match layer {
            LayerSpec::Dense { activation, .. } | LayerSpec::Conv2d { activation, .. } => {
                let (ws, bs) = (
                    sh.weight.as_deref().unwrap_or(&[]),
                    sh.bias.as_deref().unwrap_or(&[]),
                );
                let w = param(tensors, i, "weight", ws, source)?;
                let b = param(tensors, i, "bias", bs, source)?;
                let w = g.init(&w.name, ws, &w.data);
                let b = g.init(&b.name, bs, &b.data);
                let y = match layer {
                    LayerSpec::Conv2d {
                        kernel,
                        stride,
                        padding,
                        ..
                    } => g.node(
                        "Conv",
                        &[&x, &w, &b],
                        vec![
                            attr_ints("kernel_shape", &[*kernel, *kernel]),
                            attr_ints("strides", &[*stride, *stride]),
                            attr_ints("pads", &[*padding; 4]),
                        ],
                    ),
                    _ => g.node("Gemm", &[&x, &w, &b], vec![attr_int("transB", 1)]),
                };
                g.activation(*activation, y)
            }
            LayerSpec::Maxpool2d { size, stride } | LayerSpec::Avgpool2d { size, stride } => {
                let s = stride.unwrap_or(*size);
                let op = if matches!(layer, LayerSpec::Maxpool2d { .. }) {
                    "MaxPool"
                } else {
                    "AveragePool"
                };
                g.node(
                    op,
                    &[&x],
                    vec![
                        attr_ints("kernel_shape", &[*size, *size]),
                        attr_ints("strides", &[s, s]),
                    ],
                )
            }
            LayerSpec::Flatten { .. } => g.node("Flatten", &[&x], vec![attr_int("axis", 1)]),
            LayerSpec::Dropout { .. } => x,
            LayerSpec::Activation { activation } => g.activation(*activation, x),
        };
    }
    let out_shape = spec.output_shape()?;
    if out_shape.len() > 1 {
        // accrete's outputs are each sample's values in order: [batch, C·H·W].
        x = g.node("Flatten", &[&x], vec![attr_int("axis", 1)]);
    }
    if softmax {
        x = g.node("Softmax", &[&x], vec![attr_int("axis", 1)]);
    }
    if x == INPUT {
        g.node("Identity", &[&x], vec![]);
    }
    let output = if softmax { PROBABILITIES } else { LOGITS };
    if let Some(last) = g.nodes.last_mut() {
        last.output = output.to_string();
    }
    let mut graph = Message::new();
    for (k, n) in g.nodes.iter().enumerate() {
        let mut m = Message::new();
        for i in &n.inputs {
            m.string(1, i);
        }
        m.string(2, &n.output)
            .string(3, &format!("{}_{k}", n.op))
            .string(4, n.op);
        for a in &n.attrs {
            m.message(5, a);
        }
        graph.message(1, &m);
    }
    graph.string(2, "accrete");
    for t in &g.inits {
        graph.message(5, t);
    }
    graph.string(
        10,
        "input: features as accrete's readers produce them (IDX pixels scaled to [0, 1]); standardisation, if stored, is the first Sub/Div",
    );
    graph.message(11, &value_info(INPUT, &spec.input));
    graph.message(12, &value_info(output, &[out_shape.iter().product()]));
    let mut opset = Message::new();
    opset.int64(2, OPSET);
    let mut model = Message::new();
    model
        .int64(1, IR_VERSION)
        .string(2, "accrete")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, &graph)
        .message(8, &opset);
    Ok(OnnxModel {
        bytes: model.into_bytes(),
        ops: g.nodes.iter().map(|n| n.op).collect(),
        output,
        standardized: standardizer.is_some(),
    })
}

/// Exports a checkpoint's model with its stored standardisation ([`export`]). A softmax is
/// refused for a regression model, whose outputs are the predictions.
pub fn from_checkpoint(ckpt: &Checkpoint, softmax: bool, source: &str) -> Result<OnnxModel> {
    if softmax && ckpt.meta.train.loss == LossKind::Mse {
        return Err(Error::invalid(
            "softmax",
            "the model is a regression model (train.loss = \"mse\"): its outputs are the predictions, a softmax would change them; export without it",
        ));
    }
    let standardizer = ckpt
        .meta
        .preprocessing
        .as_ref()
        .map(Standardizer::from_json)
        .transpose()
        .map_err(|e| Error::data(source, e))?;
    export(
        &ckpt.meta.model,
        &ckpt.tensors,
        standardizer.as_ref(),
        softmax,
        source,
    )
}

#[cfg(test)]
mod tests;
