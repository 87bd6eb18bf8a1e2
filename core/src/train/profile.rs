//! Per-kernel profiling support: one training step's dispatches with their phases, as an
//! epoch records them (`accrete bench train --profile` times each).

use super::{GpuDataset, Trainer};
use crate::error::Result;
use crate::gpu::{Dispatch, Tensor};
use crate::kernels::optim::schedule_row;
use crate::kernels::step;

impl Trainer {
    /// One training step's dispatches over `data`, as an epoch records them, each with its
    /// phase name (gather, forward, teacher, loss, metrics, loss_scale, backward, clip,
    /// update, advance: [`super::Phase`]). The list may be recorded `steps` times from now:
    /// its batches walk `data` in order (wrapping) at the base learning rate. Running it
    /// trains this trainer, so profile a throwaway one.
    pub async fn profile_step(
        &mut self,
        data: &GpuDataset,
        steps: usize,
    ) -> Result<Vec<(&'static str, Dispatch)>> {
        self.check_data(data)?;
        let b = self.train.batch_size;
        self.ensure_program(b).await?;
        // Micro-batches: `accumulate_steps` per step.
        let micro = steps.max(1) * self.train.accumulate_steps.max(1);
        let n = data.len.max(1);
        let idx: Vec<u32> = (0..micro * b).map(|i| (i % n) as u32).collect();
        let idx = Tensor::from_u32(self.gpu(), &[micro * b], &idx)?;
        let table: Vec<f32> = (0..micro as u64)
            .flat_map(|k| schedule_row(&self.rule, self.optimizer.lr, self.step + k + 1))
            .collect();
        let sched = Tensor::from_f32(self.gpu(), &[micro, 4], &table)?;
        step::reset(&self.counter, self.step)?;
        let list = self.step_list(data, &idx, &sched)?;
        self.step_dispatches = list.len();
        Ok(list.into_iter().map(|(p, d)| (p.name(), d)).collect())
    }
}
