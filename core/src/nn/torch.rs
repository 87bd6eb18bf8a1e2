//! accrete's layers as PyTorch's `nn.Sequential` names them. accrete folds a dense or conv
//! layer's activation into the layer; PyTorch counts it as a module of its own, as it does
//! flatten, pooling, dropout and standalone activations. So for
//! `dense(32, tanh), dense(2)` accrete's `layers.0.*`, `layers.1.*` are PyTorch's `0.*`
//! (`Linear`), `2.*` (`Linear`; `1` is the `Tanh`).

use super::spec::{LayerSpec, ModelSpec};
use crate::checkpoint::NamedTensor;
use crate::error::Result;
use crate::kernels::Activation;

/// The `nn.Sequential` index of each accrete layer's first module (its parameters' prefix).
pub fn module_indices(spec: &ModelSpec) -> Vec<usize> {
    let mut next = 0;
    spec.layers
        .iter()
        .map(|l| {
            let at = next;
            next += match l {
                LayerSpec::Dense { activation, .. } | LayerSpec::Conv2d { activation, .. }
                    if *activation != Activation::Identity =>
                {
                    2
                }
                LayerSpec::Activation {
                    activation: Activation::Identity,
                } => 0,
                _ => 1,
            };
            at
        })
        .collect()
}

/// PyTorch's name for the accrete parameter `layers.{i}.{weight|bias}` (None for others).
pub fn torch_name(spec: &ModelSpec, accrete_name: &str) -> Option<String> {
    let rest = accrete_name.strip_prefix("layers.")?;
    let (i, kind) = rest.split_once('.')?;
    let i: usize = i.parse().ok()?;
    Some(format!("{}.{kind}", module_indices(spec).get(i)?))
}

/// The model's parameters among `tensors` (a checkpoint's), renamed to PyTorch's names;
/// optimizer and other state left out. Sorted by name.
///
/// A shared weight (checkpoints hold it once, as `layers.{owner}.weight`) is listed under
/// the sharing layer's name too, as `model.state_dict()` lists a tied parameter under every
/// module that holds it: the same values, transposed for `transpose = true` (what
/// [`module_source`]'s `TransposedLinear` reports as its `weight`). A file cannot alias two
/// names, so the second is a copy.
pub fn state_dict(spec: &ModelSpec, tensors: &[NamedTensor]) -> Vec<NamedTensor> {
    let mut out: Vec<NamedTensor> = tensors
        .iter()
        .filter_map(|t| {
            Some(NamedTensor {
                name: torch_name(spec, &t.name)?,
                ..t.clone()
            })
        })
        .collect();
    for (j, layer) in spec.layers.iter().enumerate() {
        let Some(share) = layer.share() else {
            continue;
        };
        let owner = format!("layers.{}.weight", share.layer);
        let (Some(w), Some(name)) = (
            tensors.iter().find(|t| t.name == owner),
            torch_name(spec, &format!("layers.{j}.weight")),
        ) else {
            continue;
        };
        let tied = match (share.transpose, &w.shape[..]) {
            (true, &[rows, cols]) => NamedTensor {
                name,
                shape: vec![cols, rows],
                // Row c of the transpose is column c of W [rows, cols].
                data: (0..cols * rows)
                    .map(|k| w.data[(k % rows) * cols + k / rows])
                    .collect(),
            },
            _ => NamedTensor { name, ..w.clone() },
        };
        out.push(tied);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The Python class a transposed tie becomes (see [`module_source`]).
const TRANSPOSED_LINEAR: &str = r#"

class TransposedLinear(nn.Module):
    """y = x @ W + b, W the weight of another nn.Linear: accrete's dense layer with
    share = { layer = ..., transpose = true }. One Parameter, trained through both uses.
    state_dict() lists it under this module's name too, as "weight": a transposed view of
    the same storage. load_state_dict() takes that entry as a check (it must equal the
    transpose of the source's weight, loaded first) and loads nothing from it; with
    strict=True a missing entry is a missing key, as for any parameter."""

    def __init__(self, source, out_features):
        super().__init__()
        self.source = [source]  # a list, so that the source is not registered twice
        self.bias = nn.Parameter(torch.zeros(out_features))

    @property
    def weight(self):
        return self.source[0].weight.t()

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self.weight if keep_vars else self.weight.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        w = state_dict.pop(prefix + "weight", None)
        mine = self.weight.detach()
        if w is None:
            missing_keys.append(prefix + "weight")
        elif w.shape != mine.shape or not torch.equal(w.to(mine), mine):
            error_msgs.append(f"{prefix}weight must equal the transpose of the weight it is tied to")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
"#;

/// The lines after `model = nn.Sequential(...)` that tie shared weights: an untransposed
/// share assigns the owner's Parameter (both names then hold the one tensor), a transposed
/// one replaces the sharing layer's Linear by a `TransposedLinear` of the owner.
fn tie_lines(spec: &ModelSpec) -> Result<Vec<String>> {
    let shapes = spec.shapes()?;
    let at = module_indices(spec);
    Ok(spec
        .layers
        .iter()
        .enumerate()
        .filter_map(|(j, l)| {
            let s = l.share()?;
            let (mj, mi) = (at[j], at[s.layer]);
            Some(if s.transpose {
                format!(
                    "model[{mj}] = TransposedLinear(model[{mi}], {})  # tied: layers.{j} uses layers.{}'s weight transposed",
                    shapes[j].output[0], s.layer
                )
            } else {
                format!(
                    "model[{mj}].weight = model[{mi}].weight  # tied: layers.{j} uses layers.{}'s weight",
                    s.layer
                )
            })
        })
        .collect())
}

fn torch_activation(a: Activation) -> &'static str {
    match a {
        Activation::Identity => "nn.Identity()",
        Activation::Relu => "nn.ReLU()",
        Activation::LeakyRelu => "nn.LeakyReLU(0.01)",
        Activation::Elu => "nn.ELU()",
        Activation::Gelu => "nn.GELU(approximate=\"tanh\")",
        Activation::Sigmoid => "nn.Sigmoid()",
        Activation::Tanh => "nn.Tanh()",
    }
}

/// Python source that builds the equivalent `nn.Sequential` as `model`.
pub fn module_source(spec: &ModelSpec) -> Result<String> {
    let shapes = spec.shapes()?;
    let mut mods = Vec::new();
    for (l, sh) in spec.layers.iter().zip(&shapes) {
        match l {
            LayerSpec::Dense { activation, .. } => {
                mods.push(format!("nn.Linear({}, {})", sh.input[0], sh.output[0]));
                if *activation != Activation::Identity {
                    mods.push(torch_activation(*activation).into());
                }
            }
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                activation,
                ..
            } => {
                mods.push(format!(
                    "nn.Conv2d({}, {filters}, {kernel}, stride={stride}, padding={padding})",
                    sh.input[0]
                ));
                if *activation != Activation::Identity {
                    mods.push(torch_activation(*activation).into());
                }
            }
            LayerSpec::Maxpool2d { size, stride } => mods.push(format!(
                "nn.MaxPool2d({size}, stride={})",
                stride.unwrap_or(*size)
            )),
            LayerSpec::Avgpool2d { size, stride } => mods.push(format!(
                "nn.AvgPool2d({size}, stride={})",
                stride.unwrap_or(*size)
            )),
            LayerSpec::Flatten {} => mods.push("nn.Flatten()".into()),
            LayerSpec::Dropout { rate } => mods.push(format!("nn.Dropout({rate})")),
            LayerSpec::Activation { activation } => {
                if *activation != Activation::Identity {
                    mods.push(torch_activation(*activation).into())
                }
            }
        }
    }
    let body: Vec<String> = mods.iter().map(|m| format!("    {m},")).collect();
    let transposed = spec
        .layers
        .iter()
        .any(|l| l.share().is_some_and(|s| s.transpose));
    let (imports, class) = if transposed {
        ("import torch\nimport torch.nn as nn\n", TRANSPOSED_LINEAR)
    } else {
        ("import torch.nn as nn\n", "")
    };
    let ties: String = tie_lines(spec)?.iter().map(|t| format!("{t}\n")).collect();
    Ok(format!(
        "# input shape per sample: {:?}; outputs are logits (softmax for probabilities)\n{imports}{class}\nmodel = nn.Sequential(\n{}\n)\n{ties}",
        spec.input,
        body.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_flatten_pool_dropout_count_as_modules() {
        let spec: ModelSpec = serde_json::from_str(
            r#"{"input":[1,8,8],"layers":[
                {"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},
                {"type":"maxpool2d","size":2},
                {"type":"conv2d","filters":4,"kernel":3},
                {"type":"flatten"},
                {"type":"dropout","rate":0.5},
                {"type":"dense","units":8,"activation":"tanh"},
                {"type":"activation","activation":"sigmoid"},
                {"type":"dense","units":3}]}"#,
        )
        .unwrap();
        // Conv2d ReLU MaxPool2d Conv2d Flatten Dropout Linear Tanh Sigmoid Linear
        assert_eq!(module_indices(&spec), vec![0, 2, 3, 4, 5, 6, 8, 9]);
        assert_eq!(
            torch_name(&spec, "layers.5.weight").as_deref(),
            Some("6.weight")
        );
        assert_eq!(
            torch_name(&spec, "layers.7.bias").as_deref(),
            Some("9.bias")
        );
        assert_eq!(torch_name(&spec, "optimizer.m.0"), None);
        let py = module_source(&spec).unwrap();
        let want = "    nn.Conv2d(1, 4, 3, stride=1, padding=0),\n    nn.ReLU(),\n    nn.MaxPool2d(2, stride=2),\n    nn.Conv2d(4, 4, 3, stride=1, padding=0),\n    nn.Flatten(),\n    nn.Dropout(0.5),\n    nn.Linear(4, 8),\n    nn.Tanh(),\n    nn.Sigmoid(),\n    nn.Linear(8, 3),\n";
        assert!(py.contains(want), "{py}");
    }

    #[test]
    fn tied_weights_are_listed_under_both_names_and_tied_in_the_source() {
        let spec = ModelSpec::from_json(
            r#"{"input":[3],"layers":[
                {"type":"dense","units":2,"activation":"relu"},
                {"type":"dense","units":3,"share":{"layer":0,"transpose":true}},
                {"type":"dense","units":2,"share":{"layer":0}}]}"#,
        )
        .unwrap();
        let t = |name: &str, shape: Vec<usize>, data: Vec<f32>| NamedTensor {
            name: name.into(),
            shape,
            data,
        };
        // W0 [2, 3] = [[1, 2, 3], [4, 5, 6]]: the transposed copy is [[1, 4], [2, 5], [3, 6]].
        let tensors = vec![
            t(
                "layers.0.weight",
                vec![2, 3],
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            ),
            t("layers.0.bias", vec![2], vec![0.0; 2]),
            t("layers.1.bias", vec![3], vec![0.0; 3]),
            t("layers.2.bias", vec![2], vec![0.0; 2]),
            t(
                "optimizer.layers.0.weight.exp_avg",
                vec![2, 3],
                vec![0.0; 6],
            ),
        ];
        let sd = state_dict(&spec, &tensors);
        let names: Vec<&str> = sd.iter().map(|t| t.name.as_str()).collect();
        // Linear ReLU Linear Linear
        assert_eq!(
            names,
            ["0.bias", "0.weight", "2.bias", "2.weight", "3.bias", "3.weight"]
        );
        let get = |n: &str| sd.iter().find(|t| t.name == n).unwrap();
        assert_eq!(get("2.weight").shape, vec![3, 2]);
        assert_eq!(get("2.weight").data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(
            get("3.weight"),
            &NamedTensor {
                name: "3.weight".into(),
                ..tensors[0].clone()
            }
        );
        let py = module_source(&spec).unwrap();
        assert!(
            py.contains("import torch\n") && py.contains("class TransposedLinear(nn.Module):"),
            "{py}"
        );
        assert!(py.contains("    nn.Linear(2, 3),\n"), "{py}");
        assert!(
            py.ends_with(")\nmodel[2] = TransposedLinear(model[0], 3)  # tied: layers.1 uses layers.0's weight transposed\nmodel[3].weight = model[0].weight  # tied: layers.2 uses layers.0's weight\n"),
            "{py}"
        );
        // Without shares, the source is as before: no class, no torch import.
        let plain =
            ModelSpec::from_json(r#"{"input":[3],"layers":[{"type":"dense","units":2}]}"#).unwrap();
        let py = module_source(&plain).unwrap();
        assert!(
            !py.contains("TransposedLinear") && !py.contains("import torch\n"),
            "{py}"
        );
    }
}
