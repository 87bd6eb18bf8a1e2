//! The states a rollback restarts from (see the module documentation of `recovery`):
//! the best-validation state, annealed candidates and a population of candidates.

use super::{RecoverySpec, Strategy};
use crate::checkpoint::NamedTensor;
use crate::error::Result;
use crate::kernels::rng::{words, RngKey};
use crate::train::observe::EpochOutcome;
use crate::train::state::is_training_state;
use crate::train::{Checkpoint, ChunkOptions, GpuDataset, NoObserver, Trainer};

/// Prefix of the tensors holding the run's best-validation state (`best`, `population`).
pub(crate) const RECOVERY_BEST_PREFIX: &str = "recovery.best.";

/// Stream offset separating recovery's noise and coin flips from other uses of the seed.
const RECOVERY_STREAM: u32 = 0x6000;

/// The layer a parameter or optimizer-state tensor belongs to (`layers.{i}.…`).
fn layer_of(name: &str) -> Option<usize> {
    let n = name.strip_prefix("optimizer.").unwrap_or(name);
    n.strip_prefix("layers.")?.split('.').next()?.parse().ok()
}

/// A standard normal draw from two Philox words (Box–Muller, in f64).
fn gauss(w: [u32; 4]) -> f64 {
    let u1 = (w[0] as f64 + 0.5) / 4294967296.0;
    let u2 = (w[1] as f64 + 0.5) / 4294967296.0;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Trainer {
    fn draw_key(&mut self) -> RngKey {
        let offset = self.recovery_memory.state.draws as u32;
        self.recovery_memory.state.draws += 1;
        RngKey {
            seed: self.seed,
            stream: RECOVERY_STREAM,
            offset,
        }
    }

    /// `tensors` with Gaussian noise of `scale` × each weight tensor's RMS added to the
    /// model's parameters (optimizer state untouched); one Philox draw per tensor.
    fn perturbed(&mut self, tensors: &[NamedTensor], scale: f64) -> Vec<NamedTensor> {
        let mut out = tensors.to_vec();
        for t in out.iter_mut().filter(|t| !is_training_state(&t.name)) {
            let key = self.draw_key();
            let n = t.data.len().max(1) as f64;
            let rms = (t.data.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n).sqrt();
            let sd = scale * rms;
            for (i, v) in t.data.iter_mut().enumerate() {
                *v = (*v as f64 + sd * gauss(words(key, i as u32))) as f32;
            }
        }
        out
    }

    /// Each layer's tensors (parameters and their optimizer state) from `a` or `b` by a
    /// Philox coin flip per layer.
    fn crossed(&mut self, a: &[NamedTensor], b: &[NamedTensor]) -> Vec<NamedTensor> {
        let key = self.draw_key();
        a.iter()
            .map(|t| {
                let from_b = layer_of(&t.name).is_some_and(|l| words(key, l as u32)[0] & 1 == 1);
                match b.iter().find(|x| x.name == t.name) {
                    Some(x) if from_b => x.clone(),
                    _ => t.clone(),
                }
            })
            .collect()
    }

    /// The loss a candidate is judged by: on the validation set, else on `data`.
    async fn score(&mut self, data: &GpuDataset) -> Result<f64> {
        let stats = match self.validation.take() {
            Some(val) => {
                let batch = self.inference_batch(val.len);
                let s = self.evaluate(&val, batch).await;
                self.validation = Some(val);
                s?
            }
            None => {
                let batch = self.inference_batch(data.len);
                self.evaluate(data, batch).await?
            }
        };
        Ok(if stats.loss.is_finite() {
            stats.loss
        } else {
            f64::INFINITY
        })
    }

    /// After a rollback to `snapshot` (restored): puts the strategy's state in place.
    /// Returns what it did (for the history) and the extra optimizer steps it took.
    pub(super) async fn restart_state(
        &mut self,
        policy: &RecoverySpec,
        snapshot: &Checkpoint,
        rollbacks: usize,
        data: &GpuDataset,
        rows: usize,
    ) -> Result<(Option<String>, u64)> {
        let base: Vec<NamedTensor> = snapshot
            .tensors
            .iter()
            .filter(|t| {
                self.model.params.iter().any(|p| p.name == t.name)
                    || t.name.starts_with("optimizer.")
            })
            .cloned()
            .collect();
        match policy.strategy {
            Strategy::LastGood => Ok((None, 0)),
            Strategy::Best => match self.recovery_memory.best.clone() {
                Some(best) => {
                    self.load_parameter_tensors(&best, "recovery's best state")?;
                    let loss = self.recovery_memory.state.best_val_loss.unwrap_or(f64::NAN);
                    Ok((
                        Some(format!("the best-validation state (val loss {loss:.4})")),
                        0,
                    ))
                }
                None => Ok((
                    Some("no validated state yet: the last good state".into()),
                    0,
                )),
            },
            Strategy::Anneal => {
                let reference = self.score(data).await?;
                let tries = policy.max_rollbacks.max(1);
                for j in 0..tries {
                    let k = (rollbacks - 1 + j) as i32;
                    let cool = policy.cooling.powi(k);
                    let (sigma, temp) = (policy.noise as f64 * cool, policy.temperature * cool);
                    let candidate = self.perturbed(&base, sigma);
                    self.load_parameter_tensors(&candidate, "recovery")?;
                    let loss = self.score(data).await?;
                    let u = (words(self.draw_key(), 0)[0] as f64 + 0.5) / 4294967296.0;
                    let p = (-(loss - reference) / temp).exp();
                    if loss < reference || u < p {
                        return Ok((
                            Some(format!(
                                "annealed candidate {} accepted (noise {sigma:.3e}, temperature {temp:.3e}): loss {loss:.4} vs last good {reference:.4}",
                                j + 1
                            )),
                            0,
                        ));
                    }
                }
                self.load_parameter_tensors(&base, "recovery")?;
                Ok((
                    Some(format!(
                        "no annealed candidate of {tries} accepted: the last good state"
                    )),
                    0,
                ))
            }
            Strategy::Population => {
                // The bar a candidate must clear: the last good state's own score, within
                // the divergence test's factor. Under a lasting cause (a rate still too high
                // after this rollback's cut) every candidate may diverge in its trial; none
                // is then taken, and the next rollback cuts the rate again.
                let reference = self.score(data).await?;
                let bar = policy.spike_factor * reference;
                let best = self.recovery_memory.best.clone();
                let lr_state = self.lr_state.clone();
                let trial = policy.trial_steps;
                let mut idx = self.epoch_indices(data.len, rows, true);
                idx.truncate((trial as usize * rows).min(idx.len()));
                let mut winner: Option<(f64, usize, Vec<NamedTensor>)> = None;
                for i in 0..policy.population {
                    let candidate = match (&best, i % 2) {
                        (Some(b), 1) => self.crossed(&base, b),
                        _ => self.perturbed(&base, policy.noise as f64),
                    };
                    self.load_parameter_tensors(&candidate, "recovery")?;
                    self.cursor.step_in_epoch = 0;
                    self.cursor.metrics = None;
                    let trained = self
                        .run_epoch(
                            data,
                            rows,
                            idx.clone(),
                            &ChunkOptions::default(),
                            &mut NoObserver,
                        )
                        .await?;
                    let EpochOutcome::Done(_) = trained else {
                        unreachable!("NoObserver never stops")
                    };
                    let loss = self.score(data).await?;
                    if loss <= bar && winner.as_ref().is_none_or(|w| loss < w.0) {
                        winner = Some((loss, i, self.parameter_tensors().await?));
                    }
                    // Back to the epoch's start (counters, scaler) for the next candidate.
                    self.restore(snapshot)?;
                    self.lr_state = lr_state.clone();
                }
                let steps = policy.population as u64 * (idx.len() / rows) as u64;
                let Some((loss, i, tensors)) = winner else {
                    self.load_parameter_tensors(&base, "recovery")?;
                    return Ok((
                        Some(format!(
                            "no candidate of {} scored within {} × the last good loss {reference:.4} after {} trial steps: the last good state",
                            policy.population,
                            policy.spike_factor,
                            idx.len() / rows
                        )),
                        steps,
                    ));
                };
                self.load_parameter_tensors(&tensors, "recovery")?;
                Ok((
                    Some(format!(
                        "candidate {} of {} ({}) after {} trial steps: loss {loss:.4} (last good {reference:.4})",
                        i + 1,
                        policy.population,
                        if best.is_some() && i % 2 == 1 {
                            "crossover"
                        } else {
                            "mutation"
                        },
                        idx.len() / rows
                    )),
                    steps,
                ))
            }
        }
    }
}
