//! Mixed-precision training: the GEMMs of the forward and backward passes (dense layers,
//! convolutions, both gradients) round their operands to f16 and accumulate in f32 — the
//! numerics of tensor cores with f32 accumulation — while weights, optimizer state,
//! activations, the loss and the update stay f32 ("master weights"). Dynamic loss scaling
//! keeps small gradients above f16's underflow: ∂L/∂logits is multiplied by S, gradients are
//! divided by S before clipping and the update, a step whose gradients overflowed f16 is
//! skipped and halves S, and S doubles after `growth_interval` clean steps. Everything runs
//! on the GPU inside the recorded steps (shaders/loss_scale.wgsl); the scaler's state
//! travels in checkpoints, so resume stays exact.
//!
//! Needs the device feature `SHADER_F16`.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::matmul::Precision;
use serde::{Deserialize, Deserializer, Serialize};

/// Settings of mixed-precision training (`train.mixed_precision`): in TOML/JSON either
/// `true` (these defaults) or a table such as `{ init_scale = 1024, growth_interval = 500 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct MixedPrecision {
    /// The initial loss scale S, a power of two in [2⁻²⁴, 2²⁴] (default 65536 = 2¹⁶, as
    /// PyTorch's GradScaler).
    #[serde(default = "default_init_scale")]
    pub init_scale: f32,
    /// Clean steps after which S doubles (default 2000, as PyTorch's GradScaler).
    #[serde(default = "default_growth_interval")]
    pub growth_interval: u32,
}

fn default_init_scale() -> f32 {
    crate::defaults::LOSS_SCALE_INIT
}

fn default_growth_interval() -> u32 {
    crate::defaults::LOSS_SCALE_GROWTH_INTERVAL
}

impl Default for MixedPrecision {
    fn default() -> Self {
        MixedPrecision {
            init_scale: default_init_scale(),
            growth_interval: default_growth_interval(),
        }
    }
}

/// S is multiplied by this after `growth_interval` clean steps.
pub const GROWTH: f32 = 2.0;
/// S is multiplied by this after a step whose gradients overflowed.
pub const BACKOFF: f32 = 0.5;

impl MixedPrecision {
    /// Checks the settings and that `gpu` can compute in f16.
    pub fn validate(&self, gpu: &Gpu) -> Result<()> {
        self.check_settings()?;
        Precision::F16.check_features(
            gpu.features(),
            &gpu.summary().name,
            "train.mixed_precision".into(),
            "remove train.mixed_precision to train in f32",
        )?;
        Ok(())
    }

    /// Checks the settings alone (no device needed).
    pub fn check_settings(&self) -> Result<()> {
        let s = self.init_scale;
        let pow2 = s.is_finite() && s > 0.0 && s.log2().fract() == 0.0;
        if !pow2 || !(5.960_464_5e-8..=16_777_216.0).contains(&s) {
            return Err(Error::invalid(
                "train.mixed_precision.init_scale",
                format!(
                    "{s} must be a power of two between 2^-24 and 2^24 (e.g. 65536), so that \
                     scaling and unscaling are exact"
                ),
            ));
        }
        if self.growth_interval == 0 {
            return Err(Error::invalid(
                "train.mixed_precision.growth_interval",
                "must be ≥ 1 (steps without overflow before the loss scale doubles)",
            ));
        }
        Ok(())
    }
}

/// The loss scaler's state at a step boundary (saved in checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossScaleState {
    /// The current loss scale S.
    pub scale: f32,
    /// Clean steps since S last changed.
    pub good_steps: u32,
    /// Steps skipped because their gradients overflowed, since training began.
    pub skipped_steps: u32,
}

impl LossScaleState {
    pub(crate) fn initial(spec: &MixedPrecision) -> Self {
        LossScaleState {
            scale: spec.init_scale,
            good_steps: 0,
            skipped_steps: 0,
        }
    }

    pub(crate) fn from_words(w: &[u32]) -> Self {
        LossScaleState {
            scale: f32::from_bits(w[0]),
            good_steps: w[1],
            skipped_steps: w[2],
        }
    }
}

/// `train.mixed_precision`: `true` / `false` or a settings table.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<MixedPrecision>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<MixedPrecision>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("true, false or a table { init_scale, growth_interval }")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
            Ok(v.then(MixedPrecision::default))
        }
        fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(
            self,
            d: D2,
        ) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            MixedPrecision::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(V)
}
