//! The step program: the dispatches of one training (or evaluation) step, each stored with
//! its [`Phase`], built once per batch size and recorded every step.
//!
//! One training step = gather the batch (by the epoch's index buffer and the GPU step
//! counter) → forward (and the teacher's forward when distilling) → loss → accumulate
//! metrics → (scale the loss gradient) → backward → (unscale) → (clip) → update → (update
//! the loss scale) → advance the counter.

use super::{mixed, update, GpuDataset, LossKind, Trainer};
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Tensor};
use crate::kernels::gather::gather_stepped_into;
use crate::kernels::loss::{distill_into, mse_masked_into, softmax_xent_into, GradScale};
use crate::kernels::matmul::Precision;
use crate::kernels::{loss_scale, metrics, step};
use crate::nn::Graph;

/// What a dispatch of a step does (for profiles and for splitting a step between devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Gathering the batch's inputs, labels and targets from the dataset.
    Gather,
    Forward,
    /// The teacher's forward pass (distillation).
    Teacher,
    Loss,
    /// Accumulating loss and accuracy for the epoch.
    Metrics,
    /// Mixed precision: scaling the loss gradient, unscaling the parameter gradients and
    /// updating the scale.
    LossScale,
    Backward,
    /// Global-norm gradient clipping.
    Clip,
    /// The optimizer update.
    Update,
    /// Advancing the GPU step counter.
    Advance,
}

impl Phase {
    /// The phase's name in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Gather => "gather",
            Phase::Forward => "forward",
            Phase::Teacher => "teacher",
            Phase::Loss => "loss",
            Phase::Metrics => "metrics",
            Phase::LossScale => "loss_scale",
            Phase::Backward => "backward",
            Phase::Clip => "clip",
            Phase::Update => "update",
            Phase::Advance => "advance",
        }
    }
}

/// A list of dispatches with their phases.
pub(crate) type Steps = Vec<(Phase, Dispatch)>;

fn tagged(
    phase: Phase,
    ds: impl IntoIterator<Item = Dispatch>,
) -> impl Iterator<Item = (Phase, Dispatch)> {
    ds.into_iter().map(move |d| (phase, d))
}

/// The step program for one batch size.
pub(crate) struct Program {
    pub graph: Graph,
    /// The teacher's forward pass on the same batch, when distilling.
    pub teacher: Option<Graph>,
    /// [B] labels of the current batch.
    pub labels: Tensor,
    /// [B, outputs] regression targets of the current batch (loss = mse).
    pub targets: Option<Tensor>,
    /// The fixed part of the step: forward through clipping (the gathers depend on the
    /// dataset and are added by [`Trainer::step_list`]).
    pub steps: Steps,
}

impl Trainer {
    /// The teacher's graph and its loss dispatch (distillation), or the plain loss.
    fn loss_steps(
        &self,
        graph: &Graph,
        batch: usize,
        train: bool,
        labels: &Tensor,
        steps: &mut Steps,
    ) -> Result<(Option<Graph>, Option<Tensor>)> {
        let gpu = self.gpu();
        let logits = graph.output()?;
        let dlogits = match graph.output_grad() {
            Some(g) => g,
            None => Tensor::uninit(gpu, logits.shape(), DType::F32)?,
        };
        let loss_rows = Tensor::uninit(gpu, &[batch], DType::F32)?;
        let mut targets = None;
        let teacher = match (&self.teacher, train) {
            (Some(_), true) if self.train.loss == LossKind::Mse => {
                return Err(Error::invalid(
                    "distillation",
                    "distilling needs train.loss = softmax_cross_entropy (soft targets are class probabilities)",
                ))
            }
            (Some((model, spec)), true) => {
                let tg = Graph::with_conv(
                    model,
                    batch,
                    false,
                    &self.counter,
                    self.seed,
                    self.kernels.conv,
                )?;
                steps.extend(tagged(Phase::Teacher, tg.forward.iter().cloned()));
                steps.push((
                    Phase::Loss,
                    distill_into(
                        &logits,
                        &tg.output()?,
                        labels,
                        &loss_rows,
                        &dlogits,
                        spec.alpha,
                        spec.temperature,
                    )?,
                ));
                Some(tg)
            }
            _ if self.train.loss == LossKind::Mse => {
                let t = Tensor::uninit(gpu, logits.shape(), DType::F32)?;
                steps.push((
                    Phase::Loss,
                    mse_masked_into(&logits, &t, labels, &loss_rows, &dlogits)?,
                ));
                targets = Some(t);
                None
            }
            _ => {
                steps.push((
                    Phase::Loss,
                    softmax_xent_into(
                        &logits,
                        labels,
                        &loss_rows,
                        &dlogits,
                        self.train.label_smoothing,
                        GradScale::MeanOverValid,
                    )?,
                ));
                None
            }
        };
        steps.push((
            Phase::Metrics,
            match self.train.loss {
                LossKind::Mse => metrics::regress_labelled_into(&loss_rows, labels, &self.metrics)?,
                LossKind::SoftmaxCrossEntropy => {
                    metrics::classify_into(&loss_rows, &logits, labels, &self.metrics)?
                }
            },
        ));
        if train {
            if let Some((_, scaler)) = &self.mixed {
                steps.push((Phase::LossScale, loss_scale::scale_into(&dlogits, scaler)?));
            }
        }
        Ok((teacher, targets))
    }

    /// Builds the step program for batches of `batch` rows: a training step (`train`) or an
    /// evaluation step (dropout off, no backward or update).
    pub(crate) fn build_program(&self, batch: usize, train: bool) -> Result<Program> {
        let gpu = self.gpu();
        let graph = Graph::build(
            &self.model,
            batch,
            train,
            &self.counter,
            self.seed,
            self.kernels.conv,
            self.precision(),
        )?;
        let labels = Tensor::uninit(gpu, &[batch], DType::U32)?;
        let mut steps: Steps = tagged(Phase::Forward, graph.forward.iter().cloned()).collect();
        let (teacher, targets) = self.loss_steps(&graph, batch, train, &labels, &mut steps)?;
        if train {
            steps.extend(tagged(Phase::Backward, graph.backward.iter().cloned()));
            if let Some((_, scaler)) = &self.mixed {
                steps.extend(tagged(
                    Phase::LossScale,
                    update::unscale_dispatches(&self.model, scaler, &self.counter)?,
                ));
            }
            steps.extend(tagged(
                Phase::Clip,
                update::clip_dispatches(&self.model, &self.optimizer, &self.kernels)?,
            ));
        }
        Ok(Program {
            graph,
            teacher,
            labels,
            targets,
            steps,
        })
    }

    /// The gathers of one step of `prog` over `data` by the index buffer `idx`.
    pub(crate) fn gather_steps(
        &self,
        prog: &Program,
        data: &GpuDataset,
        idx: &Tensor,
    ) -> Result<Steps> {
        let b = prog.graph.batch;
        let per = data.features.len() / data.len.max(1);
        let feats = data.features.reshape(&[data.len, per])?;
        let mut out = vec![(
            Phase::Gather,
            gather_stepped_into(
                &feats,
                idx,
                &self.counter,
                &prog.graph.input.reshape(&[b, per])?,
            )?,
        )];
        if let Some(tg) = &prog.teacher {
            let t_input = tg.input.reshape(&[b, per])?;
            out.push((
                Phase::Gather,
                gather_stepped_into(&feats, idx, &self.counter, &t_input)?,
            ));
        }
        out.push((
            Phase::Gather,
            gather_stepped_into(&data.labels, idx, &self.counter, &prog.labels)?,
        ));
        if let (Some(t), Some(src)) = (&prog.targets, &data.targets) {
            out.push((
                Phase::Gather,
                gather_stepped_into(src, idx, &self.counter, t)?,
            ));
        }
        Ok(out)
    }

    /// The dispatches of one training step over `data`: gathers, the program's fixed part,
    /// updates (reading the learning rate from row `counter[0]` of `sched`), the loss-scale
    /// update and the counter advance.
    pub(crate) fn step_list(
        &self,
        data: &GpuDataset,
        idx: &Tensor,
        sched: &Tensor,
    ) -> Result<Steps> {
        let prog = self
            .program
            .as_ref()
            .ok_or_else(|| Error::invalid("training step", "the step program is not built yet"))?;
        let mut list = self.gather_steps(prog, data, idx)?;
        list.extend(prog.steps.iter().cloned());
        list.extend(tagged(
            Phase::Update,
            update::update_dispatches(
                &self.model,
                &self.optimizer,
                &self.rule,
                &self.kernels,
                &self.layer_scales()?,
                sched,
                &self.counter,
            )?,
        ));
        if let Some((mp, scaler)) = &self.mixed {
            list.push((
                Phase::LossScale,
                loss_scale::update_into(
                    scaler,
                    &self.counter,
                    mixed::GROWTH,
                    mixed::BACKOFF,
                    mp.growth_interval,
                )?,
            ));
        }
        list.push((Phase::Advance, step::advance_into(&self.counter)?));
        Ok(list)
    }

    /// The autotuning pass for the `batch` program, awaited before [`Self::build_program`]:
    /// the GEMMs of the model's graph and of a teacher's forward (nothing unless autotuning
    /// is on; see [`crate::nn::graph::tune_gemms`]).
    pub(crate) async fn tune_program(&self, batch: usize, train: bool) {
        let conv = self.kernels.conv;
        crate::nn::graph::tune_gemms(&self.model, batch, train, conv, self.precision()).await;
        if let (Some((teacher, _)), true) = (&self.teacher, train) {
            crate::nn::graph::tune_gemms(teacher, batch, false, conv, Precision::F32).await;
        }
    }

    /// Makes sure the training program is built (tuned first) for batches of `rows`.
    pub(crate) async fn ensure_program(&mut self, rows: usize) -> Result<()> {
        if self.program.as_ref().is_none_or(|p| p.graph.batch != rows) {
            self.tune_program(rows, true).await;
            self.program = Some(self.build_program(rows, true)?);
        }
        Ok(())
    }
}
