//! Averaged Gradient Episodic Memory (A-GEM, Chaudhry et al. 2019): a memory of earlier
//! chunks' samples (a reservoir of `size`, the same Algorithm R as rehearsal's, with its
//! own random stream), and in every step of a later chunk a reference gradient `g_ref` of
//! the mean cross-entropy on `per_batch` samples drawn from it (with replacement). When the
//! step's gradient `g` conflicts with it (`g·g_ref < 0`), the update uses the projection
//! `g − (g·g_ref / g_ref·g_ref)·g_ref`, which does not increase the memory loss to first
//! order. Unlike rehearsal, the memory samples never enter the training loss.
//!
//! All inside the recorded step program: the memory batch is gathered by a per-epoch index
//! buffer and the GPU step counter, its forward and backward run on a graph of `per_batch`
//! rows before the step's own, the arenas' gradients are copied to the reference, and
//! after the step's backward (and EWC's penalty, before clipping) shaders/agem_project.wgsl
//! takes the dot products (fixed-order reduction) and projects. No host work per step.
//! The memory is state: checkpoints carry it as `agem.{features,labels}`.

use super::program::{Phase, Steps};
use super::{GpuDataset, LossKind, RehearsalSpec, Reservoir, Trainer};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::{DType, Tensor};
use crate::kernels::agem::Projection;
use crate::kernels::elementwise::scale_into;
use crate::kernels::gather::gather_pair_stepped_into;
use crate::kernels::loss::{softmax_xent_into, GradScale};
use crate::kernels::rng::{words, RngKey};
use crate::nn::Graph;
use serde::{Deserialize, Serialize};

/// Random stream of the memory batches' draws.
const AGEM_STREAM: u32 = 0x7000;
/// Added to the seed for the memory's reservoir, so it draws apart from rehearsal's.
const AGEM_SEED_OFFSET: u64 = 0xa6e3;
/// Prefix of the checkpoint tensors holding the memory.
pub(crate) const AGEM_PREFIX: &str = "agem";

fn per_batch() -> usize {
    crate::defaults::AGEM_PER_BATCH
}

/// `[incremental] agem = { size, per_batch }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct AgemSpec {
    /// Samples of earlier chunks kept in the memory (a uniform sample of all seen).
    pub size: usize,
    /// Memory samples whose mean loss gives the reference gradient of every step, drawn with
    /// replacement (default 256).
    #[serde(default = "per_batch")]
    pub per_batch: usize,
}

impl AgemSpec {
    /// Refuses an empty memory or batch and a batch larger than the memory.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.size == 0 {
            return Err(Error::invalid(
                format!("{key}.size"),
                "must be at least 1 (samples kept from earlier chunks, e.g. 2000)",
            ));
        }
        if self.per_batch == 0 || self.per_batch > self.size {
            return Err(Error::invalid(
                format!("{key}.per_batch"),
                format!(
                    "{} must be between 1 and size = {} (memory samples per reference gradient, e.g. 256)",
                    self.per_batch, self.size
                ),
            ));
        }
        Ok(())
    }
}

/// The memory and its settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AgemMemory {
    pub spec: AgemSpec,
    pub memory: Reservoir,
}

/// The memory on the GPU for the current chunk and the epoch's memory-batch indices.
pub(crate) struct AgemRun {
    data: GpuDataset,
    idx: Option<Tensor>,
}

/// The memory-batch part of a step program.
pub(crate) struct AgemProgram {
    graph: Graph,
    labels: Tensor,
    /// The memory batch's forward, loss and backward, and the copy to the reference.
    steps: Steps,
    /// One reference gradient per parameter arena.
    refs: Vec<Tensor>,
    /// The dot products and the projection, once per update.
    projection: Projection,
}

impl Trainer {
    /// Turns A-GEM on (or changes its settings, keeping the memory's samples up to the new
    /// size). Classification only; not with gradient accumulation, mixed precision or
    /// data parallelism.
    pub fn enable_agem(&mut self, spec: AgemSpec) -> Result<()> {
        spec.validate("incremental.agem")?;
        let refuse = |what: &str| {
            Err(Error::invalid(
                "incremental.agem",
                format!("A-GEM {what}; turn one of them off"),
            ))
        };
        if self.train.loss != LossKind::SoftmaxCrossEntropy {
            return refuse("projects the labels' cross-entropy gradient: it needs train.loss = \"softmax_cross_entropy\"");
        }
        if self.train.accumulate_steps > 1 {
            return refuse("takes one reference gradient per update and cannot be combined with train.accumulate_steps > 1");
        }
        if self.mixed.is_some() {
            return refuse("cannot be combined with train.mixed_precision (the reference gradient is not loss-scaled)");
        }
        let memory = match self.agem.take() {
            Some(mut m) => {
                m.memory.spec = RehearsalSpec::new(spec.size, spec.per_batch);
                if let Some(d) = m.memory.data.as_mut().filter(|d| d.len() > spec.size) {
                    *d = d.select(&(0..spec.size).collect::<Vec<_>>());
                }
                m.memory
            }
            None => Reservoir::new(RehearsalSpec::new(spec.size, spec.per_batch)),
        };
        self.agem = Some(AgemMemory { spec, memory });
        self.program = None;
        Ok(())
    }

    /// The settings of A-GEM, when on.
    pub fn agem(&self) -> Option<&AgemSpec> {
        self.agem.as_ref().map(|m| &m.spec)
    }

    /// A-GEM's memory (empty before the first chunk's end).
    pub fn agem_memory(&self) -> Option<&Reservoir> {
        self.agem.as_ref().map(|m| &m.memory)
    }

    /// The projection's result tensor [g·g_ref, g_ref·g_ref, coef, 0] of the built step
    /// program (after a step: that step's), when A-GEM is active in it.
    pub fn agem_result(&self) -> Option<&Tensor> {
        Some(&self.program.as_ref()?.agem.as_ref()?.projection.result)
    }

    /// The reference gradient of the built step program's last step, one tensor per
    /// parameter arena, when A-GEM is active in it.
    pub fn agem_reference(&self) -> Option<&[Tensor]> {
        Some(&self.program.as_ref()?.agem.as_ref()?.refs)
    }

    /// At a chunk's start: uploads the memory (A-GEM acts once it holds samples) and
    /// rebuilds the step program when that changes. Outside A-GEM (`chunk = false`: a
    /// plain epoch) it is inactive.
    pub(crate) fn agem_chunk_start(&mut self, chunk: bool) -> Result<()> {
        let memory = self
            .agem
            .as_ref()
            .filter(|_| chunk)
            .and_then(|m| m.memory.data.as_ref())
            .filter(|d| !d.is_empty());
        let was = self.agem_run.is_some();
        self.agem_run = match memory {
            Some(d) => Some(AgemRun {
                data: GpuDataset::upload(self.gpu(), d)?,
                idx: None,
            }),
            None => None,
        };
        if was || self.agem_run.is_some() {
            self.program = None;
        }
        Ok(())
    }

    /// At an epoch's start: the memory-batch indices of its `steps` steps, drawn with
    /// replacement from the epoch's own random stream.
    pub(crate) fn agem_epoch(&mut self, steps: usize) -> Result<()> {
        let (Some(m), Some(run)) = (&self.agem, &self.agem_run) else {
            return Ok(());
        };
        let per = m.spec.per_batch;
        let len = run.data.len as u64;
        let key = RngKey {
            seed: self.seed,
            stream: AGEM_STREAM,
            offset: self.epoch as u32,
        };
        let idx: Vec<u32> = (0..steps * per)
            .map(|j| ((words(key, j as u32)[0] as u64 * len) >> 32) as u32)
            .collect();
        let t = Tensor::from_u32(self.gpu(), &[idx.len().max(1)], &idx)?;
        self.agem_run.as_mut().expect("checked").idx = Some(t);
        Ok(())
    }

    /// The memory-batch part of the training program (None while A-GEM is inactive).
    pub(crate) fn build_agem_program(&self) -> Result<Option<AgemProgram>> {
        let (Some(m), Some(_)) = (&self.agem, &self.agem_run) else {
            return Ok(None);
        };
        let gpu = self.gpu();
        let per = m.spec.per_batch;
        let graph = Graph::build(
            &self.model,
            per,
            true,
            &self.counter,
            self.seed,
            self.kernels.conv,
            self.precision(),
        )?;
        let labels = Tensor::uninit(gpu, &[per], DType::U32)?;
        let logits = graph.output()?;
        let dlogits = graph.output_grad().ok_or_else(|| {
            Error::invalid(
                "incremental.agem",
                "the model's graph has no output gradient",
            )
        })?;
        let loss_rows = Tensor::uninit(gpu, &[per], DType::F32)?;
        let mut steps: Steps = graph
            .forward
            .iter()
            .cloned()
            .map(|d| (Phase::Reference, d))
            .collect();
        steps.push((
            Phase::Reference,
            softmax_xent_into(
                &logits,
                &labels,
                &loss_rows,
                &dlogits,
                0.0,
                GradScale::MeanOverValid,
            )?,
        ));
        steps.extend(
            graph
                .backward
                .iter()
                .cloned()
                .map(|d| (Phase::Reference, d)),
        );
        let mut refs = Vec::new();
        for a in &self.model.arenas {
            let r = Tensor::zeros(gpu, &[a.grads.len()])?;
            steps.push((Phase::Reference, scale_into(1.0, &a.grads, &r)?));
            refs.push(r);
        }
        let grads: Vec<&Tensor> = self.model.arenas.iter().map(|a| &a.grads).collect();
        let projection = Projection::new(gpu, &grads, &refs.iter().collect::<Vec<_>>())?;
        Ok(Some(AgemProgram {
            graph,
            labels,
            steps,
            refs,
            projection,
        }))
    }

    /// The memory batch's gather and the program's reference-gradient steps, first in every
    /// training step (none while A-GEM is inactive).
    pub(crate) fn agem_reference_steps(&self, prog: Option<&AgemProgram>) -> Result<Steps> {
        let (Some(p), Some(run)) = (prog, &self.agem_run) else {
            return Ok(Steps::new());
        };
        let idx = run.idx.as_ref().ok_or_else(|| {
            Error::invalid("training step", "A-GEM's memory indices are not drawn yet")
        })?;
        let d = &run.data;
        let b = p.graph.batch;
        let per = d.features.len() / d.len.max(1);
        let mut out = vec![(
            Phase::Reference,
            gather_pair_stepped_into(
                (
                    &d.features.reshape(&[d.len, per])?,
                    &p.graph.input.reshape(&[b, per])?,
                ),
                (&d.labels, &p.labels),
                idx,
                &self.counter,
            )?,
        )];
        out.extend(p.steps.iter().cloned());
        Ok(out)
    }

    /// The projection's dispatches, once per update after EWC's penalty and before clipping.
    pub(crate) fn agem_projection_steps(prog: Option<&AgemProgram>) -> Steps {
        prog.map(|p| {
            p.projection
                .dispatches
                .iter()
                .cloned()
                .map(|d| (Phase::Projection, d))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Restores the memory from a checkpoint (A-GEM enabled first).
    pub(crate) fn restore_agem_memory(&mut self, memory: Reservoir) {
        if let Some(m) = &mut self.agem {
            m.memory = memory;
        }
    }

    /// At a chunk's end: offers the chunk to the memory.
    pub(crate) fn agem_chunk_end(&mut self, chunk: &Dataset) {
        let seed = self.seed.wrapping_add(AGEM_SEED_OFFSET);
        if let Some(m) = &mut self.agem {
            m.memory.offer(chunk, seed);
        }
    }
}
