//! The learning-rate plan: the rate of every step, built once per chunk from the whole
//! schedule — the base rate, the schedule, the step range of the chunk and of the run, and
//! the per-layer multipliers. The trainer fills each epoch's GPU schedule table from it
//! (times the dynamic multiplier of reduce-on-plateau and divergence recovery), and logs
//! the rates of that same table, so the logged `lr` is the rate the kernels used.
//!
//! How a rate travels: `optimizer.lr` and `optimizer.schedule` (TOML or JSON) →
//! [`OptimizerSpec`] → [`LrPlan::new`] at the start of each chunk → [`LrPlan::rate`] per
//! step into the epoch's table (`train::epoch`, one `[lr, bias corrections…]` row per step,
//! `kernels::optim::schedule_row`) → a GPU buffer → the update kernel reads row
//! `counter[0]` of it (`hyper_scaled` in `shaders/lib/optim_rules.wgsl`, called by
//! `optim_multi.wgsl`) and multiplies by the segment's `layer_lr` factor
//! ([`LrPlan::layer_scale`]).
//!
//! What "the end of training" means for `cosine` when data arrives in chunks:
//! `total_steps` when the user sets it; else, with `cycle = "run"` (the default), the run's
//! planned steps where the caller knows them (the CLI sums every chunk's steps × epochs);
//! where nobody knows (the library or the browser, chunks arriving one by one) and with
//! `cycle = "chunk"`, each chunk is one cycle starting again at the base rate. `step` and
//! `exponential` count global epochs, so they keep decaying across chunks;
//! `reduce_on_plateau` acts through the dynamic multiplier.

use super::{CosineCycle, OptimizerSpec, Schedule};
use crate::error::Result;

/// The steps of the chunk a plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Global step (0-based) of the chunk's first step.
    pub start: u64,
    /// Steps the chunk will take: epochs × steps per epoch.
    pub steps: u64,
}

/// The learning rate of every step of a chunk. See the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct LrPlan {
    base: f32,
    schedule: Schedule,
    chunk: ChunkSpan,
    run_steps: Option<u64>,
    layer_scales: Vec<f32>,
}

impl LrPlan {
    /// The plan for a chunk of `optimizer`'s model of `layers` layers; `run_steps` is the
    /// run's planned total of steps where the caller knows it.
    pub fn new(
        optimizer: &OptimizerSpec,
        layers: usize,
        chunk: ChunkSpan,
        run_steps: Option<u64>,
    ) -> Result<LrPlan> {
        let layer_scales = (0..layers)
            .map(|i| optimizer.lr_scale(i, layers))
            .collect::<Result<_>>()?;
        Ok(LrPlan {
            base: optimizer.lr,
            schedule: optimizer.schedule.clone(),
            chunk,
            run_steps,
            layer_scales,
        })
    }

    /// The chunk this plan is for.
    pub fn chunk(&self) -> ChunkSpan {
        self.chunk
    }

    /// The `layer_lr` multiplier of layer `layer` (1 where none is set).
    pub fn layer_scale(&self, layer: usize) -> f32 {
        self.layer_scales.get(layer).copied().unwrap_or(1.0)
    }

    /// The first and one-past-last step of the cosine cycle holding `step`.
    fn cosine_cycle(&self, warmup: u64, total: u64, cycle: CosineCycle) -> (u64, u64) {
        let run_end = match (total, self.run_steps) {
            (t, _) if t > 0 => Some(t),
            (_, Some(r)) if r > 0 => Some(r),
            _ => None,
        };
        match (cycle, run_end) {
            (CosineCycle::Run, Some(end)) => (warmup, end),
            _ => {
                let start = self.chunk.start.max(warmup);
                (start, self.chunk.start + self.chunk.steps)
            }
        }
    }

    /// The rate of 0-based global step `step`, in 0-based global epoch `epoch`, times
    /// `scale` (the dynamic multiplier: reduce-on-plateau cuts, recovery's lowering).
    pub fn rate(&self, step: u64, epoch: u64, scale: f32) -> f32 {
        let base = self.base as f64;
        let lr = match self.schedule {
            Schedule::Constant {} | Schedule::ReduceOnPlateau { .. } => base,
            Schedule::Step { step_epochs, gamma } => {
                base * (gamma as f64).powi((epoch / step_epochs.max(1) as u64) as i32)
            }
            Schedule::Exponential { gamma } => base * (gamma as f64).powi(epoch as i32),
            Schedule::Cosine {
                warmup_steps,
                total_steps,
                min_lr,
                cycle,
            } => {
                if step < warmup_steps {
                    base * (step + 1) as f64 / warmup_steps as f64
                } else {
                    let (start, end) = self.cosine_cycle(warmup_steps, total_steps, cycle);
                    let span = end.saturating_sub(start).max(1);
                    let p = (step.saturating_sub(start) as f64 / span as f64).min(1.0);
                    min_lr as f64
                        + (base - min_lr as f64) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                }
            }
        };
        let lr = lr * scale as f64;
        if let Schedule::ReduceOnPlateau { min_lr, .. } = self.schedule {
            return lr.max(min_lr as f64) as f32;
        }
        lr as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(schedule: Schedule, chunk: ChunkSpan, run: Option<u64>) -> LrPlan {
        let mut o = OptimizerSpec::adam(0.1);
        o.schedule = schedule;
        LrPlan::new(&o, 2, chunk, run).unwrap()
    }

    fn cosine(warmup_steps: u64, total_steps: u64, cycle: CosineCycle) -> Schedule {
        Schedule::Cosine {
            warmup_steps,
            total_steps,
            min_lr: 0.0,
            cycle,
        }
    }

    /// The base rate as the plan computes with it (an f32 widened to f64).
    const BASE: f64 = 0.1f32 as f64;

    /// cos-decay from BASE to 0 at fraction `p` of the cycle.
    fn decay(p: f64) -> f32 {
        (BASE * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())) as f32
    }

    #[test]
    fn cosine_spans_the_run_when_it_is_known_and_each_chunk_otherwise() {
        // Chunk 2 of 3, 10 steps each: steps 10..20 of a 30-step run.
        let c2 = ChunkSpan {
            start: 10,
            steps: 10,
        };
        let run = plan(cosine(0, 0, CosineCycle::Run), c2, Some(30));
        for s in 10..20 {
            assert_eq!(run.rate(s, 1, 1.0), decay(s as f64 / 30.0), "step {s}");
        }
        // No run length known: the chunk is the cycle, starting again at the base rate.
        let per_chunk = plan(cosine(0, 0, CosineCycle::Run), c2, None);
        assert_eq!(per_chunk.rate(10, 1, 1.0), 0.1);
        let sgdr = plan(cosine(0, 0, CosineCycle::Chunk), c2, Some(30));
        for s in 10..20 {
            let want = decay((s - 10) as f64 / 10.0);
            assert_eq!(sgdr.rate(s, 1, 1.0), want);
            assert_eq!(per_chunk.rate(s, 1, 1.0), want);
        }
        // Warm-up happens once, at the run's start; total_steps wins over the run length.
        let warm = plan(
            cosine(4, 40, CosineCycle::Run),
            ChunkSpan {
                start: 0,
                steps: 10,
            },
            Some(30),
        );
        assert_eq!(warm.rate(0, 0, 1.0), (BASE / 4.0) as f32);
        assert_eq!(warm.rate(3, 0, 1.0), 0.1);
        assert_eq!(warm.rate(4, 0, 1.0), 0.1);
        assert_eq!(warm.rate(22, 2, 1.0), decay(18.0 / 36.0));
        assert_eq!(warm.rate(60, 5, 1.0), 0.0, "past the cycle: min_lr");
    }

    #[test]
    fn epoch_schedules_count_global_epochs_and_the_scale_multiplies() {
        let c = ChunkSpan { start: 0, steps: 5 };
        let step = plan(
            Schedule::Step {
                step_epochs: 2,
                gamma: 0.5,
            },
            c,
            None,
        );
        assert_eq!(step.rate(0, 0, 1.0), 0.1);
        assert_eq!(step.rate(0, 3, 1.0), 0.05);
        assert_eq!(step.rate(0, 4, 0.5), 0.0125);
        let exp = plan(Schedule::Exponential { gamma: 0.9 }, c, None);
        assert_eq!(exp.rate(7, 2, 1.0), (BASE * (0.9f32 as f64).powi(2)) as f32);
        let plateau = plan(
            Schedule::ReduceOnPlateau {
                factor: 0.5,
                patience: 1,
                min_lr: 0.02,
                threshold: 0.0,
            },
            c,
            None,
        );
        assert_eq!(plateau.rate(0, 0, 0.25), 0.025);
        assert_eq!(plateau.rate(0, 0, 0.125), 0.02, "floored at min_lr");
    }
}
