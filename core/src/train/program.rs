//! The step program: the dispatches of one training (or evaluation) step, each stored with
//! its [`Phase`], built once per batch size and recorded every step.
//!
//! One training step = (A-GEM: the memory batch's gather, forward, loss and backward, copied
//! to the reference gradient →) gather the batch (by the epoch's index buffer and the GPU step
//! counter; with DER also the replayed rows' stored logits) → forward (and the teacher's
//! forward when distilling) → loss (DER's replay loss with rehearsal weights) → accumulate
//! metrics (one dispatch with the loss for a cross-entropy over at most
//! `XENT_METRICS_MAX_CLASSES` classes) → (scale the loss gradient) → backward → (unscale) → (EWC penalty) → (A-GEM's projection) → (clip) → update → (update
//! the loss scale) → advance the counter.
//!
//! Gradient accumulation (`train.accumulate_steps = k > 1`): the step program holds k
//! micro-steps, each gather → forward → loss → metrics → backward → (unscale) → accumulate
//! → advance, then (the EWC penalty,) clipping and the update once. The GPU counter counts micro-batches
//! (`counter[0]` selects the micro-batch of the index buffer, `counter[1]` keys dropout), so
//! the gathers and dropout need no change; the schedule table repeats each update's row k
//! times and the update reads the last micro-step's. Accumulation: micro-step 0 copies the
//! arena's gradients into an accumulator `a = g₀`, the middle ones add `a += gⱼ`, the last
//! adds and writes the mean back, `g = (a + g_{k−1}) · (1/k)` — summed in micro-batch order,
//! so the result is deterministic. Nothing of an accumulation is visible between recorded
//! steps: checkpoints fall on update boundaries only.

use super::{mixed, update, GpuDataset, LossKind, Trainer};
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Tensor};
use crate::kernels::gather::{gather_pair_stepped_into, gather_stepped_into};
use crate::kernels::loss::{
    distill_into, mse_masked_into, softmax_xent_into, softmax_xent_metrics_into, GradScale,
    XENT_METRICS_MAX_CLASSES,
};
use crate::kernels::loss_replay::replay_loss_into;
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
    /// EWC's penalty gradient added to the parameter gradients.
    Penalty,
    /// A-GEM's reference gradient: a memory batch's gather, forward, loss and backward.
    Reference,
    /// A-GEM's projection of the gradient (dot products, then g − (g·g_ref/g_ref·g_ref)·g_ref).
    Projection,
    /// Global-norm gradient clipping.
    Clip,
    /// The optimizer update.
    Update,
    /// Gradient accumulation: summing micro-batch gradients (`train.accumulate_steps`).
    Accumulate,
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
            Phase::Penalty => "penalty",
            Phase::Reference => "reference",
            Phase::Projection => "projection",
            Phase::Clip => "clip",
            Phase::Update => "update",
            Phase::Accumulate => "accumulate",
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
    /// [B, outputs] stored logits of the current batch's replayed rows (DER).
    pub stored: Option<Tensor>,
    /// The fixed part of a (micro-)step: forward through the gradients' unscaling (the
    /// gathers depend on the dataset and are added by [`Trainer::step_list`]).
    pub steps: Steps,
    /// Global-norm clipping, once per optimizer update (empty without `clip_norm`).
    pub clip: Steps,
    /// One gradient accumulator per parameter arena (`train.accumulate_steps > 1` only).
    pub accum: Vec<Tensor>,
    /// A-GEM's memory batch and projection, once its memory holds samples (`agem`).
    pub agem: Option<super::agem::AgemProgram>,
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
    ) -> Result<(Option<Graph>, Option<Tensor>, Option<Tensor>)> {
        let gpu = self.gpu();
        let logits = graph.output()?;
        let dlogits = match graph.output_grad() {
            Some(g) => g,
            None => Tensor::uninit(gpu, logits.shape(), DType::F32)?,
        };
        let loss_rows = Tensor::uninit(gpu, &[batch], DType::F32)?;
        let mut targets = None;
        let mut stored = None;
        let mut fused_metrics = false;
        let teacher = match (&self.teacher, train) {
            (None, true) if self.replay_loss.is_some() => {
                // DER / DER++: the replayed rows' stored logits, gathered beside the batch.
                let l = self.replay_loss.expect("matched");
                let s = Tensor::zeros(gpu, logits.shape())?;
                steps.push((
                    Phase::Loss,
                    replay_loss_into(
                        &logits, &s, labels, &loss_rows, &dlogits, l.fresh, l.alpha, l.beta,
                    )?,
                ));
                if l.logits {
                    stored = Some(s);
                }
                None
            }
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
            _ if logits.as_matrix().1 <= XENT_METRICS_MAX_CLASSES => {
                // Few classes: the loss and the epoch metrics in one dispatch.
                steps.push((
                    Phase::Loss,
                    softmax_xent_metrics_into(
                        &logits,
                        labels,
                        &loss_rows,
                        &dlogits,
                        self.train.label_smoothing,
                        GradScale::MeanOverValid,
                        &self.metrics,
                    )?,
                ));
                fused_metrics = true;
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
        if !fused_metrics {
            steps.push((
                Phase::Metrics,
                match self.train.loss {
                    LossKind::Mse => {
                        metrics::regress_labelled_into(&loss_rows, labels, &self.metrics)?
                    }
                    LossKind::SoftmaxCrossEntropy => {
                        metrics::classify_into(&loss_rows, &logits, labels, &self.metrics)?
                    }
                },
            ));
        }
        if train {
            if let Some((_, scaler)) = &self.mixed {
                steps.push((Phase::LossScale, loss_scale::scale_into(&dlogits, scaler)?));
            }
        }
        Ok((teacher, targets, stored))
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
        let (teacher, targets, stored) =
            self.loss_steps(&graph, batch, train, &labels, &mut steps)?;
        let mut clip = Steps::new();
        let mut accum = Vec::new();
        let mut agem = None;
        if train {
            steps.extend(tagged(Phase::Backward, graph.backward.iter().cloned()));
            if let Some((_, scaler)) = &self.mixed {
                steps.extend(tagged(
                    Phase::LossScale,
                    update::unscale_dispatches(&self.model, scaler, &self.counter)?,
                ));
            }
            // Once per optimizer update, after accumulation (and after the replicas'
            // gradient reduction): the EWC penalty's gradient, then clipping.
            clip.extend(tagged(Phase::Penalty, self.ewc_penalty_dispatches()?));
            agem = self.build_agem_program()?;
            clip.extend(Self::agem_projection_steps(agem.as_ref()));
            clip.extend(tagged(
                Phase::Clip,
                update::clip_dispatches(&self.model, &self.optimizer, &self.kernels)?,
            ));
            if self.train.accumulate_steps > 1 {
                for a in &self.model.arenas {
                    accum.push(Tensor::zeros(gpu, &[a.grads.len()])?);
                }
            }
        }
        Ok(Program {
            graph,
            teacher,
            labels,
            targets,
            stored,
            steps,
            clip,
            accum,
            agem,
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
        // The features and the labels in one dispatch.
        let mut out = vec![(
            Phase::Gather,
            gather_pair_stepped_into(
                (&feats, &prog.graph.input.reshape(&[b, per])?),
                (&data.labels, &prog.labels),
                idx,
                &self.counter,
            )?,
        )];
        if let Some(tg) = &prog.teacher {
            let t_input = tg.input.reshape(&[b, per])?;
            out.push((
                Phase::Gather,
                gather_stepped_into(&feats, idx, &self.counter, &t_input)?,
            ));
        }
        if let Some(s) = &prog.stored {
            let src = data.logits.as_ref().ok_or_else(|| {
                Error::invalid(
                    "training step",
                    "the step replays stored logits (DER) but the data carries none",
                )
            })?;
            out.push((
                Phase::Gather,
                gather_stepped_into(src, idx, &self.counter, s)?,
            ));
        }
        if let (Some(t), Some(src)) = (&prog.targets, &data.targets) {
            out.push((
                Phase::Gather,
                gather_stepped_into(src, idx, &self.counter, t)?,
            ));
        }
        Ok(out)
    }

    /// The dispatches of one training step over `data`: per micro-batch the gathers, the
    /// program's fixed part and (accumulating) the gradient sum; then clipping, the updates
    /// (reading the learning rate from row `counter[0]` of `sched`), the loss-scale update
    /// and the counter advance.
    pub(crate) fn step_list(
        &self,
        data: &GpuDataset,
        idx: &Tensor,
        sched: &Tensor,
    ) -> Result<Steps> {
        let mut list = self.gradient_steps(data, idx)?;
        list.extend(self.update_steps(sched)?);
        Ok(list)
    }

    /// The first part of [`Self::step_list`]: every micro-step through the (accumulated)
    /// gradients, ending before clipping. Data parallelism reduces the gradients here.
    pub(crate) fn gradient_steps(&self, data: &GpuDataset, idx: &Tensor) -> Result<Steps> {
        let prog = self.built_program()?;
        let gathers = self.gather_steps(prog, data, idx)?;
        let k = self.train.accumulate_steps.max(1);
        let mut list = self.agem_reference_steps(prog.agem.as_ref())?;
        for j in 0..k {
            list.extend(gathers.iter().cloned());
            list.extend(prog.steps.iter().cloned());
            if k > 1 {
                list.extend(tagged(
                    Phase::Accumulate,
                    update::accumulate_dispatches(&self.model, &prog.accum, j, k)?,
                ));
            }
            if j + 1 < k {
                list.push((Phase::Advance, step::advance_into(&self.counter)?));
            }
        }
        Ok(list)
    }

    /// The second part of [`Self::step_list`]: clipping, the updates, the loss-scale update
    /// and the counter advance.
    pub(crate) fn update_steps(&self, sched: &Tensor) -> Result<Steps> {
        let prog = self.built_program()?;
        let mut list = prog.clip.clone();
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

    fn built_program(&self) -> Result<&Program> {
        self.program
            .as_ref()
            .ok_or_else(|| Error::invalid("training step", "the step program is not built yet"))
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
