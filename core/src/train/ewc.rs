//! Elastic Weight Consolidation (Kirkpatrick et al. 2017) and online EWC (Schwarz et al.
//! 2018): at the end of every chunk the diagonal Fisher information of the model is
//! estimated on the GPU, and later chunks train with the quadratic penalty
//! `(λ/2)·Σ_i F_i (θ_i − θ*_i)²` towards the parameters θ* the chunk ended with.
//!
//! The Fisher is the **per-sample empirical Fisher**: `F_new = mean_s (∇θ log p(y_s | x_s))²`
//! over `samples` samples of the chunk (evenly spaced through it), each sample's gradient
//! from its own backward pass (batch 1) with its own label, squared and summed on the GPU
//! (shaders/ewc_fisher.wgsl) — not the square of batch-mean gradients, which
//! underestimates F by about the batch size and makes the penalty barely act (Avalanche's
//! EWC estimates it that way). Across chunks `F ← decay·F_old + F_new`: `decay = 1` sums the
//! chunks' Fishers with one anchor at the latest parameters (the usual multi-task
//! approximation), `decay < 1` is online EWC. Dropout, if the model has it, is active in
//! these passes as in training.
//!
//! The penalty's gradient `λ·F·(θ − θ*)` is added to every arena's gradients inside the
//! recorded step, after mixed precision's unscaling and before clipping
//! (shaders/ewc_penalty.wgsl). F and θ* are state: checkpoints carry them as
//! `ewc.fisher.{parameter}` and `ewc.anchor.{parameter}`.

use super::{GpuDataset, LossKind, Trainer};
use crate::checkpoint::NamedTensor;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Tensor};
use crate::kernels::ewc::{fisher_accumulate_into, fisher_finish_into, penalty_into};
use crate::kernels::gather::gather_pair_stepped_into;
use crate::kernels::loss::{softmax_xent_into, GradScale};
use crate::kernels::step;
use crate::nn::Graph;
use serde::{Deserialize, Serialize};

/// Prefix of the checkpoint tensors holding the Fisher and the anchor.
pub(crate) const EWC_PREFIX: &str = "ewc.";
/// Per-sample steps recorded into one command buffer.
const FISHER_STEPS_PER_SUBMIT: usize = 256;

fn weight() -> f32 {
    crate::defaults::EWC_WEIGHT
}
fn decay() -> f32 {
    crate::defaults::EWC_DECAY
}
fn samples() -> usize {
    crate::defaults::EWC_SAMPLES
}

/// `[incremental] ewc = { weight, decay, samples }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct EwcSpec {
    /// λ, the penalty's weight (default 100).
    #[serde(default = "weight")]
    pub weight: f32,
    /// How much of the earlier chunks' Fisher is kept at each chunk's end, in (0, 1]:
    /// 1 = EWC (the chunks' Fishers summed), below 1 = online EWC (default 1).
    #[serde(default = "decay")]
    pub decay: f32,
    /// Samples of each chunk whose gradients estimate its Fisher (all when the chunk is
    /// smaller) (default 1000).
    #[serde(default = "samples")]
    pub samples: usize,
}

impl Default for EwcSpec {
    fn default() -> Self {
        EwcSpec {
            weight: weight(),
            decay: decay(),
            samples: samples(),
        }
    }
}

impl EwcSpec {
    /// Refuses a negative or non-finite weight, a decay outside (0, 1] and no samples.
    pub fn validate(&self, key: &str) -> Result<()> {
        if !self.weight.is_finite() || self.weight < 0.0 {
            return Err(Error::invalid(
                format!("{key}.weight"),
                format!(
                    "{} must be a finite number ≥ 0 (the penalty's λ, e.g. 100)",
                    self.weight
                ),
            ));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(Error::invalid(
                format!("{key}.decay"),
                format!(
                    "{} must be in (0, 1] (1 = EWC, below 1 = online EWC, e.g. 0.9)",
                    self.decay
                ),
            ));
        }
        if self.samples == 0 {
            return Err(Error::invalid(
                format!("{key}.samples"),
                "must be at least 1 (samples per chunk estimating the Fisher, e.g. 1000)",
            ));
        }
        Ok(())
    }
}

/// The Fisher, the anchor and the accumulator, one of each per parameter arena.
pub(crate) struct EwcState {
    fisher: Vec<Tensor>,
    anchor: Vec<Tensor>,
    acc: Vec<Tensor>,
}

impl Trainer {
    /// Turns EWC on (or changes its settings, keeping the Fisher estimated so far): from the
    /// next chunk's end on, each chunk's Fisher is estimated and later chunks are penalised.
    /// Classification only (the Fisher of the labels' log-likelihood).
    pub fn enable_ewc(&mut self, spec: EwcSpec) -> Result<()> {
        spec.validate("incremental.ewc")?;
        if self.train.loss != LossKind::SoftmaxCrossEntropy {
            return Err(Error::invalid(
                "incremental.ewc",
                "EWC's Fisher is that of the labels' log-likelihood: it needs train.loss = \"softmax_cross_entropy\"",
            ));
        }
        if self.ewc.as_ref().map(|e| e.weight) != Some(spec.weight) {
            self.program = None;
        }
        self.ewc = Some(spec);
        Ok(())
    }

    /// The settings of EWC, when on.
    pub fn ewc(&self) -> Option<&EwcSpec> {
        self.ewc.as_ref()
    }

    /// The penalty-gradient dispatches of a training step (none before the first Fisher).
    pub(crate) fn ewc_penalty_dispatches(&self) -> Result<Vec<Dispatch>> {
        let (Some(spec), Some(st)) = (&self.ewc, &self.ewc_state) else {
            return Ok(Vec::new());
        };
        if spec.weight == 0.0 {
            return Ok(Vec::new());
        }
        self.model
            .arenas
            .iter()
            .zip(st.fisher.iter().zip(&st.anchor))
            .map(|(a, (f, th))| penalty_into(&a.values, f, th, &a.grads, spec.weight))
            .collect()
    }

    fn zeroed_ewc_state(&self) -> Result<EwcState> {
        let gpu = self.gpu();
        let zeros = || -> Result<Vec<Tensor>> {
            self.model
                .arenas
                .iter()
                .map(|a| Tensor::zeros(gpu, &[a.len]))
                .collect()
        };
        Ok(EwcState {
            fisher: zeros()?,
            anchor: zeros()?,
            acc: zeros()?,
        })
    }

    /// At a chunk's end: estimates the chunk's Fisher from per-sample gradients, folds it
    /// into the running one and anchors the penalty at the current parameters. All on the
    /// GPU; nothing is read back.
    pub(crate) async fn ewc_chunk_end(&mut self, chunk: &Dataset) -> Result<()> {
        let Some(spec) = self.ewc.clone() else {
            return Ok(());
        };
        let len = chunk.len();
        let n = spec.samples.min(len);
        if n == 0 {
            return Ok(());
        }
        // Evenly spaced through the chunk (a class-sorted chunk is covered evenly).
        let picks: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        let gpu = self.gpu().clone();
        let data = GpuDataset::upload(&gpu, &chunk.select(&picks))?;
        let graph = Graph::build(
            &self.model,
            1,
            true,
            &self.counter,
            self.seed,
            self.kernels.conv,
            self.precision(),
        )?;
        let labels = Tensor::uninit(&gpu, &[1], DType::U32)?;
        let loss = Tensor::uninit(&gpu, &[1], DType::F32)?;
        let logits = graph.output()?;
        let dlogits = graph.output_grad().ok_or_else(|| {
            Error::invalid(
                "incremental.ewc",
                "the model's graph has no output gradient",
            )
        })?;
        let per = data.features.len() / n;
        let idx = Tensor::from_u32(&gpu, &[n], &(0..n as u32).collect::<Vec<_>>())?;
        let mut list = vec![gather_pair_stepped_into(
            (
                &data.features.reshape(&[n, per])?,
                &graph.input.reshape(&[1, per])?,
            ),
            (&data.labels, &labels),
            &idx,
            &self.counter,
        )?];
        list.extend(graph.forward.iter().cloned());
        // ∇ of −log p(y | x) for the one sample: the gradient scale is 1.
        list.push(softmax_xent_into(
            &logits,
            &labels,
            &loss,
            &dlogits,
            0.0,
            GradScale::Fixed(1.0),
        )?);
        list.extend(graph.backward.iter().cloned());
        let st = match self.ewc_state.take() {
            Some(s) => s,
            None => self.zeroed_ewc_state()?,
        };
        for (a, acc) in self.model.arenas.iter().zip(&st.acc) {
            list.push(fisher_accumulate_into(&a.grads, acc)?);
        }
        list.push(step::advance_into(&self.counter)?);
        step::reset(&self.counter, self.step)?;
        let refs: Vec<&Dispatch> = list.iter().collect();
        let mut done = 0;
        while done < n {
            let k = FISHER_STEPS_PER_SUBMIT.min(n - done);
            let mut rec = gpu.recorder();
            rec.pass(&refs, k);
            rec.submit()?;
            done += k;
        }
        let finish: Vec<Dispatch> = self
            .model
            .arenas
            .iter()
            .zip(st.fisher.iter().zip(st.anchor.iter().zip(&st.acc)))
            .map(|(a, (f, (th, acc)))| {
                fisher_finish_into(&a.values, acc, f, th, spec.decay, 1.0 / n as f32)
            })
            .collect::<Result<_>>()?;
        gpu.run(&finish.iter().collect::<Vec<_>>())?;
        self.ewc_state = Some(st);
        self.program = None;
        Ok(())
    }

    /// The Fisher and the anchor as checkpoint tensors, per parameter (read back).
    pub(crate) async fn ewc_tensors(&self, out: &mut Vec<NamedTensor>) -> Result<()> {
        let (Some(_), Some(st)) = (&self.ewc, &self.ewc_state) else {
            return Ok(());
        };
        for (kind, set) in [("fisher", &st.fisher), ("anchor", &st.anchor)] {
            let mut arenas = Vec::new();
            for t in set {
                arenas.push(t.read_f32().await?);
            }
            for p in &self.model.params {
                let n = p.value.len();
                out.push(NamedTensor {
                    name: format!("{EWC_PREFIX}{kind}.{}", p.name),
                    shape: p.value.shape().to_vec(),
                    data: arenas[p.arena][p.offset..p.offset + n].to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Restores EWC from a checkpoint: its settings and, after a chunk's end, the Fisher
    /// and the anchor (both or neither).
    pub(crate) fn restore_ewc(
        &mut self,
        spec: Option<&EwcSpec>,
        tensors: &[NamedTensor],
    ) -> Result<()> {
        let Some(spec) = spec else {
            return Ok(());
        };
        self.enable_ewc(spec.clone())?;
        if !tensors.iter().any(|t| t.name.starts_with(EWC_PREFIX)) {
            return Ok(());
        }
        let st = self.zeroed_ewc_state()?;
        for (kind, set) in [("fisher", &st.fisher), ("anchor", &st.anchor)] {
            let mut arenas: Vec<Vec<f32>> =
                self.model.arenas.iter().map(|a| vec![0.0; a.len]).collect();
            for p in &self.model.params {
                let name = format!("{EWC_PREFIX}{kind}.{}", p.name);
                let t = tensors.iter().find(|t| t.name == name).ok_or_else(|| {
                    Error::data("checkpoint", format!("EWC's tensor {name} is missing"))
                })?;
                if t.shape != p.value.shape() {
                    return Err(Error::data(
                        "checkpoint",
                        format!("{name} is {:?}, expected {:?}", t.shape, p.value.shape()),
                    ));
                }
                arenas[p.arena][p.offset..p.offset + t.data.len()].copy_from_slice(&t.data);
            }
            for (dst, v) in set.iter().zip(&arenas) {
                dst.write_f32(v)?;
            }
        }
        self.ewc_state = Some(st);
        self.program = None;
        Ok(())
    }
}
