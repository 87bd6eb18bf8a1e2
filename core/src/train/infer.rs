//! Inference: loss and accuracy over a dataset, and class probabilities, batched like
//! training with dropout off; every batch of a pass is recorded into one submission.

use super::{GpuDataset, LossKind, Stats, Trainer};
use crate::clock;
use crate::defaults;
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Tensor};
use crate::kernels::elementwise::scale_into;
use crate::kernels::gather::gather_stepped_into;
use crate::kernels::softmax::softmax_into;
use crate::kernels::step;

impl Trainer {
    /// The batch size for evaluating or predicting `n` samples — the one inference-batch
    /// rule of accrete (validation, `evaluate`, `predict`, the CLI, the browser): up to
    /// [`defaults::INFERENCE_BATCH`] samples, halved until the widest activation fits the
    /// device ([`crate::nn::fitting_batch`]).
    pub fn inference_batch(&self, n: usize) -> usize {
        crate::nn::fitting_batch(
            &self.model.spec,
            n.clamp(1, defaults::INFERENCE_BATCH),
            self.gpu().max_binding_bytes(),
        )
    }

    /// Builds the evaluation program for `batch` if needed and uploads the in-order index
    /// buffer padded to whole batches; returns the number of steps and the index buffer.
    async fn eval_setup(&mut self, data: &GpuDataset, batch: usize) -> Result<(usize, Tensor)> {
        self.check_data(data)?;
        if batch == 0 {
            return Err(Error::invalid("evaluation batch", "must be at least 1"));
        }
        if self
            .eval_program
            .as_ref()
            .is_none_or(|p| p.graph.batch != batch)
        {
            self.tune_program(batch, false).await;
            self.eval_program = Some(self.build_program(batch, false)?);
        }
        let steps = data.len.div_ceil(batch);
        let idx = Tensor::from_u32(
            self.gpu(),
            &[steps * batch],
            &self.epoch_indices(data.len, batch, false),
        )?;
        Ok((steps, idx))
    }

    /// Mean loss and accuracy over `data` (dropout off), in batches of `batch`.
    pub async fn evaluate(&mut self, data: &GpuDataset, batch: usize) -> Result<Stats> {
        let start = clock::now_seconds();
        let gpu = self.gpu().clone();
        let (steps, idx) = self.eval_setup(data, batch).await?;
        let prog = self.eval_program.as_ref().expect("built by eval_setup");
        let mut list: Vec<Dispatch> = self
            .gather_steps(prog, data, &idx)?
            .into_iter()
            .chain(prog.steps.iter().cloned())
            .map(|(_, d)| d)
            .collect();
        list.push(step::advance_into(&self.counter)?);
        step::reset(&self.counter, self.step)?;
        self.metrics.write_f32(&[0.0; 4])?;
        let refs: Vec<&Dispatch> = list.iter().collect();
        let mut rec = gpu.recorder();
        rec.pass(&refs, steps);
        rec.submit()?;
        let m = self.metrics.read_f32().await?;
        let samples = m[2] as usize;
        Ok(Stats {
            loss: m[0] as f64 / samples.max(1) as f64,
            accuracy: self.accuracy_of(&m),
            samples,
            seconds: clock::now_seconds() - start,
            host_seconds: 0.0,
        })
    }

    /// Class probabilities (regression: the outputs) for every sample of `data`,
    /// [n, outputs] row-major, in batches of `batch`.
    pub async fn predict(&mut self, data: &GpuDataset, batch: usize) -> Result<Vec<f32>> {
        self.outputs_of(data, batch, false).await
    }

    /// The model's raw outputs (logits, before any softmax) for every sample of `data`,
    /// [n, outputs] row-major, in batches of `batch` (dropout off).
    pub async fn logits(&mut self, data: &GpuDataset, batch: usize) -> Result<Vec<f32>> {
        self.outputs_of(data, batch, true).await
    }

    /// [`Self::predict`] (`raw` false) or [`Self::logits`] (`raw` true).
    async fn outputs_of(&mut self, data: &GpuDataset, batch: usize, raw: bool) -> Result<Vec<f32>> {
        let gpu = self.gpu().clone();
        let (steps, idx) = self.eval_setup(data, batch).await?;
        let prog = self.eval_program.as_ref().expect("built by eval_setup");
        let classes = self.model.spec.outputs()?;
        let probs = Tensor::uninit(&gpu, &[batch, classes], DType::F32)?;
        let out = Tensor::uninit(&gpu, &[steps * batch, classes], DType::F32)?;
        let per = data.features.len() / data.len.max(1);
        let feats = data.features.reshape(&[data.len, per])?;
        let input = prog.graph.input.reshape(&[batch, per])?;
        let mut list = vec![gather_stepped_into(&feats, &idx, &self.counter, &input)?];
        list.extend(prog.graph.forward.iter().cloned());
        list.push(match self.train.loss {
            LossKind::SoftmaxCrossEntropy if !raw => softmax_into(&prog.graph.output()?, &probs)?,
            // Logits: copied as they are.
            LossKind::SoftmaxCrossEntropy => scale_into(1.0, &prog.graph.output()?, &probs)?,
            // Regression: the outputs themselves are the predictions.
            LossKind::Mse => scale_into(1.0, &prog.graph.output()?, &probs)?,
        });
        list.push(step::advance_into(&self.counter)?);
        step::reset(&self.counter, self.step)?;
        let refs: Vec<&Dispatch> = list.iter().collect();
        let mut rec = gpu.recorder();
        for s in 0..steps {
            rec.pass(&refs, 1);
            rec.copy(&probs, 0, &out, s * batch * classes, batch * classes)?;
        }
        rec.submit()?;
        let mut v = out.read_f32().await?;
        v.truncate(data.len * classes);
        Ok(v)
    }
}
