//! Evaluation at every chunk's end, for continual learning: the accuracy on an evaluation
//! set (the run's test data) and, for class-incremental runs, on each task seen so far,
//! with the accuracy matrix's summaries (average accuracy, backward transfer,
//! forgetting), recorded in the history as a [`ChunkEnd`] event. The matrix's earlier rows
//! come from the history itself, so a resumed run continues it exactly.

use super::history::{chunk_ends, ChunkEnd, Event};
use super::{GpuDataset, LossKind, Trainer};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics::{task_accuracies, AccuracyMatrix};
use std::ops::Range;

/// The data evaluated at every chunk's end.
pub(crate) struct TaskEval {
    data: GpuDataset,
    labels: Vec<u32>,
    /// The classes of each task (class-incremental runs), else `None`.
    groups: Option<Vec<Range<u32>>>,
    name: String,
}

impl Trainer {
    /// Sets (or clears, with `None`) the data evaluated at the end of every chunk of
    /// [`Trainer::fit_chunk_with`], named `name` ("test") in the history's `chunk_end`
    /// rows. With `groups` (the classes each chunk brings,
    /// [`crate::metrics::task_groups`]), after chunk `i` the tasks `0..=i` are evaluated
    /// too, giving row `i` of the accuracy matrix. Classification only.
    pub fn set_chunk_evaluation(
        &mut self,
        data: Option<&Dataset>,
        name: &str,
        groups: Option<Vec<Range<u32>>>,
    ) -> Result<()> {
        let Some(d) = data else {
            self.task_eval = None;
            return Ok(());
        };
        if d.is_empty() {
            return Err(Error::data(
                format!("{name} data"),
                "is empty: nothing to evaluate at the chunks' ends",
            ));
        }
        if self.train.loss != LossKind::SoftmaxCrossEntropy {
            return Err(Error::invalid(
                "chunk evaluation",
                "per-chunk accuracy needs a classifier (train.loss = \"softmax_cross_entropy\")",
            ));
        }
        let classes = self.model.spec.outputs()? as u32;
        if let Some(g) = groups.iter().flatten().find(|g| g.end > classes) {
            return Err(Error::invalid(
                "chunk evaluation",
                format!("task classes {g:?} go beyond the model's {classes} classes"),
            ));
        }
        let g = GpuDataset::upload(self.gpu(), d)?;
        self.check_data(&g)?;
        self.task_eval = Some(TaskEval {
            data: g,
            labels: d.labels.clone(),
            groups,
            name: name.to_string(),
        });
        Ok(())
    }

    /// At a chunk's end (before the cursor moves on): evaluates the chunk-evaluation data
    /// and appends the [`ChunkEnd`] event. Nothing without [`Trainer::set_chunk_evaluation`].
    pub(crate) async fn record_chunk_end(&mut self) -> Result<Option<ChunkEnd>> {
        let Some(te) = self.task_eval.take() else {
            return Ok(None);
        };
        let batch = self.inference_batch(te.data.len);
        let probs = self.predict(&te.data, batch).await;
        let end = probs.and_then(|p| self.chunk_end_of(&te, &p));
        self.task_eval = Some(te);
        let end = end?;
        self.history.push(Event::ChunkEnd(end.clone()));
        Ok(Some(end))
    }

    fn chunk_end_of(&self, te: &TaskEval, probs: &[f32]) -> Result<ChunkEnd> {
        let classes = self.model.spec.outputs()?;
        let chunk = self.cursor.chunk;
        let everything = std::iter::once(0..classes as u32).collect::<Vec<_>>();
        let all = task_accuracies(&te.labels, probs, classes, &everything)?[0];
        let mut end = ChunkEnd {
            chunk,
            epoch: self.epoch,
            step: self.step,
            data: te.name.clone(),
            samples: te.labels.len(),
            accuracy: all,
            task_accuracy: Vec::new(),
            average_accuracy: None,
            bwt: None,
            forgetting: None,
        };
        let Some(groups) = &te.groups else {
            return Ok(end);
        };
        let seen = (chunk as usize + 1).min(groups.len());
        end.task_accuracy = task_accuracies(&te.labels, probs, classes, &groups[..seen])?;
        // The matrix so far: the earlier chunk-end rows of this run (the last one of each
        // chunk), then this one.
        let mut rows: Vec<Vec<f64>> = Vec::new();
        for e in chunk_ends(&self.history) {
            let i = e.chunk as usize;
            if i < chunk as usize && !e.task_accuracy.is_empty() {
                rows.resize(rows.len().max(i + 1), Vec::new());
                rows[i] = e.task_accuracy;
            }
        }
        rows.push(end.task_accuracy.clone());
        // Rows missing (a history from before the evaluation was set) or past the task
        // count (more chunks than groups) leave the summaries out rather than guess.
        if let Ok(m) = AccuracyMatrix::new(rows) {
            end.average_accuracy = m.average_accuracy();
            end.bwt = m.backward_transfer();
            end.forgetting = m.forgetting();
        }
        Ok(end)
    }
}
