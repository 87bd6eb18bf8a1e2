//! Shared (tied) dense weights: a dense layer may compute with an earlier dense layer's
//! weight instead of one of its own (`share = { layer = 0, transpose = true }` in the TOML
//! model spec, `share: { layer: 0, transpose: true }` in the JS one), e.g. the tied decoder
//! of an autoencoder. The spec's checks live here; the graph's use is `graph/dense.rs`.

use super::spec::{LayerShapes, LayerSpec, ModelSpec};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A dense layer's tied weight: `share = { layer = 0, transpose = true }` makes the layer
/// compute `y = act(x·Wₗ + b)` (transposed: Wₗᵀ is [units, in], so `units` = layer l's input
/// and this layer's input = layer l's units; the tied decoder of an autoencoder), or
/// `y = act(x·Wₗᵀ + b)` without `transpose` (same shape as layer l's weight). There is one
/// tensor, `layers.{l}.weight`: the gradients of both uses are summed before the update,
/// checkpoints store it once, and it is trained when layer l is trainable (this layer's
/// `trainable` then governs its bias only). Layer l must be an earlier dense layer with a
/// weight of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Index of the layer that owns the weight.
    pub layer: usize,
    /// Use the owner's weight transposed.
    #[serde(default)]
    pub transpose: bool,
}

/// Refuses a [`Share`] that names itself, a later or missing layer, a layer without a
/// dense weight of its own, or a weight of another shape than this layer needs.
pub(crate) fn check(spec: &ModelSpec, shapes: &[LayerShapes]) -> Result<()> {
    for (i, layer) in spec.layers.iter().enumerate() {
        let Some(share) = layer.share() else {
            continue;
        };
        let l = share.layer;
        let bad = |d: String| Err(Error::invalid(format!("layer {i} (dense) share"), d));
        if l == i {
            return bad(format!(
                "layer {i} cannot share its own weight; name an earlier dense layer"
            ));
        }
        if l >= spec.layers.len() {
            return bad(format!(
                "there is no layer {l} (the model has {} layers); name an earlier dense layer",
                spec.layers.len()
            ));
        }
        if l > i {
            return bad(format!(
                "layer {l} comes after layer {i}; a layer can only share the weight of an earlier layer (swap the roles)"
            ));
        }
        let owner = &spec.layers[l];
        if !matches!(owner, LayerSpec::Dense { .. }) {
            return bad(format!(
                "layer {l} ({}) has no dense weight; only a dense layer's weight can be shared",
                owner.kind()
            ));
        }
        if let Some(deeper) = owner.share() {
            return bad(format!(
                "layer {l} itself uses layer {}'s weight; share layer {} directly",
                deeper.layer, deeper.layer
            ));
        }
        if let LayerSpec::Dense { init: Some(_), .. } = layer {
            return bad(
                "a layer that shares a weight has none to initialise; remove its init (bias_init still applies)"
                    .into(),
            );
        }
        let (Some(mine), Some(theirs)) = (&shapes[i].weight, &shapes[l].weight) else {
            continue;
        };
        let flipped = vec![theirs[1], theirs[0]];
        let wanted = if share.transpose { &flipped } else { theirs };
        if mine != wanted {
            let hint = match (share.transpose, mine == theirs, *mine == flipped) {
                (true, true, _) => {
                    " (the shapes agree untransposed: set transpose = false)".to_string()
                }
                (false, _, true) => " (they agree transposed: set transpose = true)".to_string(),
                _ => format!(
                    "; this layer needs input {} and units = {}",
                    wanted[1], wanted[0]
                ),
            };
            return bad(format!(
                "layer {l}'s weight is {theirs:?}{}, but this layer's weight [units, input] is {mine:?}{hint}",
                if share.transpose {
                    format!(", transposed {flipped:?}")
                } else {
                    String::new()
                }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::nn::ModelSpec;

    /// A model of 6 inputs with `layers` (JSON).
    fn spec(layers: &str) -> crate::error::Result<ModelSpec> {
        ModelSpec::from_json(&format!(r#"{{"input":[6],"layers":[{layers}]}}"#))
    }

    fn refused(layers: &str, want: &[&str]) {
        let e = spec(layers).unwrap_err().to_string();
        for w in want {
            assert!(e.contains(w), "{layers}: {e:?} lacks {w:?}");
        }
    }

    #[test]
    fn tied_layers_parse_and_count_the_weight_once() {
        let s = spec(
            r#"{"type":"dense","units":4,"activation":"tanh"},
               {"type":"dense","units":6,"share":{"layer":0,"transpose":true}},
               {"type":"dense","units":6,"share":{"layer":0}}"#,
        );
        // Layer 2 gets [B, 6] and has 6 units: its weight would be [6, 6], not layer 0's
        // [4, 6].
        let e = s.unwrap_err().to_string();
        assert!(
            e.contains("layer 2 (dense) share") && e.contains("[4, 6]"),
            "{e}"
        );
        let s = spec(
            r#"{"type":"dense","units":4,"activation":"tanh"},
               {"type":"dense","units":6,"share":{"layer":0,"transpose":true}},
               {"type":"dense","units":4,"activation":"relu"},
               {"type":"dense","units":6,"share":{"layer":1}}"#,
        );
        let e = s.unwrap_err().to_string();
        assert!(e.contains("itself uses layer 0's weight"), "{e}");
        let s = spec(
            r#"{"type":"dense","units":4,"activation":"tanh"},
               {"type":"dense","units":6,"share":{"layer":0,"transpose":true}}"#,
        )
        .unwrap();
        // 4·6 + 4 + 6: the weight once, both biases.
        assert_eq!(s.parameter_count().unwrap(), 34);
        assert_eq!(
            s.layers[1].share().map(|s| (s.layer, s.transpose)),
            Some((0, true))
        );
        // The spec round-trips through JSON with the share, and without one unchanged.
        let back = ModelSpec::from_json(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(
            !serde_json::to_string(&spec(r#"{"type":"dense","units":2}"#).unwrap())
                .unwrap()
                .contains("share")
        );
    }

    #[test]
    fn bad_shares_are_refused_with_what_to_change() {
        let d4 = r#"{"type":"dense","units":4}"#;
        // Wrong shape: layer 0 is [4, 6]; [units 3, input 4] fits neither way.
        refused(
            &format!(r#"{d4},{{"type":"dense","units":3,"share":{{"layer":0,"transpose":true}}}}"#),
            &[
                "layer 1 (dense) share",
                "[4, 6]",
                "transposed [6, 4]",
                "[3, 4]",
                "units = 6",
            ],
        );
        // Transpose mismatch, both ways.
        refused(
            &format!(r#"{d4},{{"type":"dense","units":6,"share":{{"layer":0}}}}"#),
            &["set transpose = true"],
        );
        let square = r#"{"type":"dense","units":6}"#;
        assert!(spec(&format!(
            r#"{square},{{"type":"dense","units":6,"share":{{"layer":0,"transpose":true}}}}"#
        ))
        .is_ok());
        refused(
            &format!(
                r#"{d4},{{"type":"dense","units":6}},{{"type":"dense","units":4,"share":{{"layer":0,"transpose":true}}}}"#
            ),
            &["set transpose = false"],
        );
        // Itself, a later layer, a missing layer.
        refused(
            r#"{"type":"dense","units":6,"share":{"layer":0}}"#,
            &["cannot share its own weight"],
        );
        refused(
            &format!(r#"{{"type":"dense","units":4,"share":{{"layer":1}}}},{d4}"#),
            &["layer 1 comes after layer 0", "earlier"],
        );
        refused(
            &format!(r#"{d4},{{"type":"dense","units":6,"share":{{"layer":7}}}}"#),
            &["there is no layer 7"],
        );
        // A layer without a dense weight.
        let conv = r#"{"input":[1,4,4],"layers":[{"type":"conv2d","filters":2,"kernel":3},
            {"type":"flatten"},{"type":"dense","units":2,"share":{"layer":0}}]}"#;
        let e = ModelSpec::from_json(conv).unwrap_err().to_string();
        assert!(e.contains("layer 0 (conv2d) has no dense weight"), "{e}");
        refused(
            &format!(
                r#"{d4},{{"type":"activation","activation":"relu"}},{{"type":"dense","units":4,"share":{{"layer":1}}}}"#
            ),
            &["layer 1 (activation) has no dense weight"],
        );
        // An init for a weight the layer does not own; unknown keys in the share.
        refused(
            &format!(
                r#"{d4},{{"type":"dense","units":6,"init":"zeros","share":{{"layer":0,"transpose":true}}}}"#
            ),
            &["remove its init"],
        );
        refused(
            &format!(
                r#"{d4},{{"type":"dense","units":6,"share":{{"layer":0,"transposed":true}}}}"#
            ),
            &["transposed"],
        );
    }
}
