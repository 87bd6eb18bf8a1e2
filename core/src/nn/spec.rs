//! The model description shared by the CLI config, the JS API and checkpoints.
//!
//! ```toml
//! [model]
//! input = [1, 28, 28]
//! layers = [
//!   { type = "conv2d", filters = 32, kernel = 3, padding = 1, activation = "relu" },
//!   { type = "maxpool2d", size = 2 },
//!   { type = "flatten" },
//!   { type = "dense", units = 10 },
//! ]
//! ```
//! Shapes exclude the batch dimension and are NCHW for images; flatten uses C, H, W order
//! (PyTorch's), so weights move between the two without reshuffling.

use super::init::{BiasInit, Init};
use super::share::Share;
use crate::error::{Error, Result};
use crate::kernels::Activation;
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// A sequential model: an input shape and a stack of layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Shape of one sample: `[features]` or `[channels, height, width]`.
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
    /// Default weight initialisation of fresh layers ([`Init`]; `torch` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
    /// Default bias initialisation (unset: as the weight scheme says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_init: Option<BiasInit>,
}

/// One layer. `trainable = false` freezes a layer's parameters (its input gradient still
/// flows when a trainable layer lies below it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected: y = act(x·Wᵀ + b), W [units, in] (PyTorch's layout).
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        trainable: bool,
        /// This layer's weight initialisation (unset: the model's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<Init>,
        /// This layer's bias initialisation (unset: the model's, else the scheme's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_init: Option<BiasInit>,
        /// Use an earlier dense layer's weight instead of one of its own ([`Share`]); the
        /// bias stays this layer's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<Share>,
    },
    /// 2-D convolution: W [filters, in_channels, kernel, kernel], zero padding.
    Conv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        trainable: bool,
        /// This layer's weight initialisation (unset: the model's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<Init>,
        /// This layer's bias initialisation (unset: the model's, else the scheme's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_init: Option<BiasInit>,
    },
    /// Max pooling over `size`×`size` windows; `stride` defaults to `size`.
    Maxpool2d {
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Average pooling over `size`×`size` windows; `stride` defaults to `size`.
    Avgpool2d {
        size: usize,
        #[serde(default)]
        stride: Option<usize>,
    },
    /// [C, H, W] → [C·H·W]. (A struct variant so that unknown keys beside its tag are
    /// refused like everywhere else.)
    Flatten {},
    /// Inverted dropout: zero with probability `rate` while training, identity in evaluation.
    Dropout { rate: f32 },
    /// A standalone activation.
    Activation { activation: Activation },
}

impl LayerSpec {
    /// A trainable dense layer with the model's initialisation.
    pub fn dense(units: usize, activation: Activation) -> LayerSpec {
        LayerSpec::Dense {
            units,
            activation,
            trainable: true,
            init: None,
            bias_init: None,
            share: None,
        }
    }

    /// The dense layer's tied weight, if it uses another layer's ([`Share`]).
    pub fn share(&self) -> Option<Share> {
        match self {
            LayerSpec::Dense { share, .. } => *share,
            _ => None,
        }
    }

    /// A trainable convolution with the model's initialisation.
    pub fn conv2d(
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        activation: Activation,
    ) -> LayerSpec {
        LayerSpec::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            activation,
            trainable: true,
            init: None,
            bias_init: None,
        }
    }

    /// The name used in messages and in the config's `type` key.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::Maxpool2d { .. } => "maxpool2d",
            LayerSpec::Avgpool2d { .. } => "avgpool2d",
            LayerSpec::Flatten {} => "flatten",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Activation { .. } => "activation",
        }
    }

    /// Whether the layer has parameters.
    pub fn has_params(&self) -> bool {
        matches!(self, LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. })
    }

    /// Whether its parameters are updated (false for frozen and parameter-free layers).
    pub fn trainable(&self) -> bool {
        match self {
            LayerSpec::Dense { trainable, .. } | LayerSpec::Conv2d { trainable, .. } => *trainable,
            _ => false,
        }
    }

    /// Freezes (`false`) or unfreezes a layer with parameters; no effect on other layers.
    pub fn set_trainable(&mut self, on: bool) {
        if let LayerSpec::Dense { trainable, .. } | LayerSpec::Conv2d { trainable, .. } = self {
            *trainable = on;
        }
    }
}

/// Per-layer shapes worked out from the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerShapes {
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    /// Weight and bias shapes (PyTorch layout) for layers with parameters. For a layer that
    /// shares another's weight ([`Share`]) this is the weight as the layer uses it; the
    /// tensor itself is the owner's.
    pub weight: Option<Vec<usize>>,
    pub bias: Option<Vec<usize>>,
}

impl ModelSpec {
    /// A model with the default initialisation.
    pub fn new(input: Vec<usize>, layers: Vec<LayerSpec>) -> ModelSpec {
        ModelSpec {
            input,
            layers,
            init: None,
            bias_init: None,
        }
    }

    /// Parses a spec from JSON.
    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let spec: ModelSpec =
            serde_json::from_str(text).map_err(|e| Error::invalid("model spec", e))?;
        spec.shapes()?;
        Ok(spec)
    }

    /// Infers every layer's input/output/parameter shapes, refusing impossible stacks with a
    /// message that names the layer and says what to change.
    pub fn shapes(&self) -> Result<Vec<LayerShapes>> {
        if self.input.is_empty()
            || self.input.contains(&0)
            || self.input.len() == 2
            || self.input.len() > 3
        {
            return Err(Error::invalid(
                "model input",
                format!(
                    "{:?} must be [features] or [channels, height, width] with positive sizes",
                    self.input
                ),
            ));
        }
        if self.layers.is_empty() {
            return Err(Error::invalid("model layers", "the model has no layers"));
        }
        let mut cur = self.input.clone();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let bad = |d: String| Err(Error::invalid(format!("layer {i} ({})", layer.kind()), d));
            let (next, weight, bias) = match layer {
                LayerSpec::Dense { units, .. } => {
                    if cur.len() != 1 {
                        return bad(format!(
                            "needs a flat input but gets {cur:?}; add {{ type = \"flatten\" }} before it"
                        ));
                    }
                    if *units == 0 {
                        return bad("units must be positive".into());
                    }
                    (vec![*units], Some(vec![*units, cur[0]]), Some(vec![*units]))
                }
                LayerSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let [c, h, w] = cur[..] else {
                        return bad(format!(
                            "needs a [channels, height, width] input but gets {cur:?}"
                        ));
                    };
                    if *filters == 0 || *kernel == 0 || *stride == 0 {
                        return bad("filters, kernel and stride must be positive".into());
                    }
                    if *kernel > h + 2 * padding || *kernel > w + 2 * padding {
                        return bad(format!("kernel {kernel} is larger than the padded input {h}×{w} (padding {padding})"));
                    }
                    let oh = (h + 2 * padding - kernel) / stride + 1;
                    let ow = (w + 2 * padding - kernel) / stride + 1;
                    (
                        vec![*filters, oh, ow],
                        Some(vec![*filters, c, *kernel, *kernel]),
                        Some(vec![*filters]),
                    )
                }
                LayerSpec::Maxpool2d { size, stride } | LayerSpec::Avgpool2d { size, stride } => {
                    let [c, h, w] = cur[..] else {
                        return bad(format!(
                            "needs a [channels, height, width] input but gets {cur:?}"
                        ));
                    };
                    let s = stride.unwrap_or(*size);
                    if *size == 0 || s == 0 || *size > h || *size > w {
                        return bad(format!(
                            "window {size} (stride {s}) does not fit the input {h}×{w}"
                        ));
                    }
                    (vec![c, (h - size) / s + 1, (w - size) / s + 1], None, None)
                }
                LayerSpec::Flatten {} => (vec![cur.iter().product()], None, None),
                LayerSpec::Dropout { rate } => {
                    if !(0.0..1.0).contains(rate) {
                        return bad(format!("rate {rate} must be in [0, 1)"));
                    }
                    (cur.clone(), None, None)
                }
                LayerSpec::Activation { .. } => (cur.clone(), None, None),
            };
            out.push(LayerShapes {
                input: cur.clone(),
                output: next.clone(),
                weight,
                bias,
            });
            cur = next;
        }
        super::share::check(self, &out)?;
        Ok(out)
    }

    /// Freezes the layers at `indices` (they must have parameters).
    pub fn freeze(&mut self, indices: &[usize]) -> Result<()> {
        for &i in indices {
            let n = self.layers.len();
            let layer = self.layers.get_mut(i).ok_or_else(|| {
                Error::invalid(
                    format!("freeze layer {i}"),
                    format!("the model has {n} layers (0..{})", n.saturating_sub(1)),
                )
            })?;
            if !layer.has_params() {
                return Err(Error::invalid(
                    format!("freeze layer {i}"),
                    format!("a {} layer has no parameters to freeze", layer.kind()),
                ));
            }
            layer.set_trainable(false);
        }
        Ok(())
    }

    /// Output shape of the whole model (per sample).
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        Ok(self.shapes()?.last().expect("non-empty").output.clone())
    }

    /// Number of outputs per sample (classes for a classifier).
    pub fn outputs(&self) -> Result<usize> {
        Ok(self.output_shape()?.iter().product())
    }

    /// Features per input sample.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Total number of parameters (a shared weight counted once).
    pub fn parameter_count(&self) -> Result<usize> {
        Ok(self
            .shapes()?
            .iter()
            .zip(&self.layers)
            .flat_map(|(s, l)| {
                let own_weight = s.weight.as_ref().filter(|_| l.share().is_none());
                [own_weight, s.bias.as_ref()]
            })
            .flatten()
            .map(|shape| shape.iter().product::<usize>())
            .sum())
    }
}
