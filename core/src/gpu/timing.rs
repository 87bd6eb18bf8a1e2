//! GPU-side timing with timestamp queries (when the adapter has TIMESTAMP_QUERY), falling
//! back to the host clock around a submit-and-wait: [`GpuTimer::time`] times a dispatch
//! list as a whole, [`GpuTimer::profile`] each dispatch of a list separately.

use super::{Dispatch, Gpu};
use crate::clock;
use crate::error::{Error, Result};

/// How a duration was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// GPU timestamps written at the start and end of the compute pass.
    Timestamp,
    /// Host wall clock around submit + wait (includes submission overhead).
    Wall,
}

/// Times sequences of dispatches on the GPU.
pub struct GpuTimer {
    gpu: Gpu,
    queries: Option<wgpu::QuerySet>,
}

impl GpuTimer {
    pub fn new(gpu: &Gpu) -> Self {
        let queries = gpu
            .inner
            .wgpu()
            .filter(|_| gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY))
            .map(|w| {
                w.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("accrete-timer"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                })
            });
        GpuTimer {
            gpu: gpu.clone(),
            queries,
        }
    }

    /// A timer that uses the host clock even where the device has timestamps (to compare
    /// the two, or to test the fallback).
    pub fn wall(gpu: &Gpu) -> Self {
        GpuTimer {
            gpu: gpu.clone(),
            queries: None,
        }
    }

    /// Which clock [`GpuTimer::time`] and [`GpuTimer::profile`] use on this device.
    pub fn source(&self) -> TimeSource {
        if self.queries.is_some() {
            TimeSource::Timestamp
        } else {
            TimeSource::Wall
        }
    }

    /// Seconds the GPU spends running `dispatches` `reps` times in one compute pass.
    pub async fn time(&self, dispatches: &[&Dispatch], reps: usize) -> Result<f64> {
        let Some(inner) = self.gpu.inner.wgpu() else {
            let start = clock::now_seconds();
            for _ in 0..reps {
                self.gpu.run(dispatches)?;
            }
            return Ok(clock::now_seconds() - start);
        };
        let mut enc = inner.device.create_command_encoder(&Default::default());
        let resolve = self.queries.as_ref().map(|_| {
            inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("accrete-timer-resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let start = clock::now_seconds();
        {
            let timestamp_writes =
                self.queries
                    .as_ref()
                    .map(|q| wgpu::ComputePassTimestampWrites {
                        query_set: q,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("accrete-timed"),
                timestamp_writes,
            });
            for _ in 0..reps {
                for d in dispatches {
                    d.record(&mut pass);
                }
            }
        }
        let Some((q, resolve)) = self.queries.as_ref().zip(resolve) else {
            inner.queue.submit([enc.finish()]);
            self.gpu.wait_idle()?;
            self.gpu.check()?;
            return Ok(clock::now_seconds() - start);
        };
        enc.resolve_query_set(q, 0..2, &resolve, 0);
        let staging = crate::gpu::Tensor::uninit(&self.gpu, &[4], crate::gpu::DType::U32)?;
        enc.copy_buffer_to_buffer(&resolve, 0, staging.buffer(), 0, 16);
        inner.queue.submit([enc.finish()]);
        let words = staging.read_u32().await?;
        let t0 = words[0] as u64 | (words[1] as u64) << 32;
        let t1 = words[2] as u64 | (words[3] as u64) << 32;
        if t1 < t0 {
            return Err(Error::Gpu {
                context: "timestamp query".into(),
                detail: format!("end timestamp {t1} before start {t0}"),
            });
        }
        let period_ns = inner.queue.get_timestamp_period() as f64;
        Ok((t1 - t0) as f64 * period_ns * 1e-9)
    }
}

/// Per-dispatch times of a dispatch list (see [`GpuTimer::profile`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchProfile {
    pub source: TimeSource,
    /// Mean seconds of each dispatch over the recordings, in list order.
    pub seconds: Vec<f64>,
    /// How many times the whole list was recorded.
    pub steps: usize,
}

impl GpuTimer {
    /// Mean seconds of each dispatch of `dispatches` over `steps` in-order recordings of the
    /// whole list (a training step's list advances its own counter, so each recording is the
    /// next step).
    ///
    /// With timestamps ([`TimeSource::Timestamp`]) every dispatch runs in a compute pass of
    /// its own with timestamps written at the pass's start and end (TIMESTAMP_QUERY is
    /// enough, no timestamps inside passes), all steps in one command buffer: the times
    /// exclude the host and the gaps between passes, and a pass boundary may add a barrier
    /// the one-pass step does not have. Without ([`TimeSource::Wall`]) each dispatch is
    /// submitted alone and waited for: host seconds that include submission and the wait,
    /// far more than the GPU time of a small kernel.
    pub async fn profile(&self, dispatches: &[&Dispatch], steps: usize) -> Result<DispatchProfile> {
        let n = dispatches.len();
        let mut sums = vec![0.0f64; n];
        let source = self.source();
        if n == 0 || steps == 0 {
            return Ok(DispatchProfile {
                source,
                seconds: sums,
                steps,
            });
        }
        let stamped = self.gpu.inner.wgpu().filter(|_| self.queries.is_some());
        if let Some(inner) = stamped {
            self.profile_stamped(inner, dispatches, steps, &mut sums)
                .await?;
        } else {
            for _ in 0..steps {
                for (d, sum) in dispatches.iter().zip(&mut sums) {
                    let t0 = clock::now_seconds();
                    self.gpu.run(&[d])?;
                    self.gpu.wait_idle()?;
                    *sum += clock::now_seconds() - t0;
                }
            }
            self.gpu.check()?;
        }
        Ok(DispatchProfile {
            source,
            seconds: sums.into_iter().map(|s| s / steps as f64).collect(),
            steps,
        })
    }

    /// The timestamp path of [`GpuTimer::profile`]: adds each dispatch's seconds, summed
    /// over `steps` recordings, into `sums`.
    async fn profile_stamped(
        &self,
        inner: &super::WgpuDevice,
        dispatches: &[&Dispatch],
        steps: usize,
        sums: &mut [f64],
    ) -> Result<()> {
        let n = dispatches.len();
        let queries = 2 * n as u32;
        if queries > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(Error::OverLimit {
                what: format!("timestamps around each of {n} dispatches"),
                needed: queries as u64,
                limit: wgpu::QUERY_SET_MAX_QUERIES as u64,
                limit_name: "QUERY_SET_MAX_QUERIES",
            });
        }
        // One query set per step (no query is written twice), each resolved into its
        // own aligned slice of one buffer.
        let stride = (queries as u64 * 8).next_multiple_of(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT);
        let resolve = inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("accrete-profile-resolve"),
            size: stride * steps as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = crate::gpu::Tensor::uninit(
            &self.gpu,
            &[(stride * steps as u64 / 4) as usize],
            crate::gpu::DType::U32,
        )?;
        let mut enc = inner.device.create_command_encoder(&Default::default());
        for s in 0..steps as u64 {
            let set = inner.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("accrete-profile"),
                ty: wgpu::QueryType::Timestamp,
                count: queries,
            });
            for (i, d) in dispatches.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("accrete-profiled"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                d.record(&mut pass);
            }
            enc.resolve_query_set(&set, 0..queries, &resolve, s * stride);
        }
        enc.copy_buffer_to_buffer(
            &resolve,
            0,
            staging.buffer(),
            staging.byte_offset(),
            stride * steps as u64,
        );
        inner.queue.submit([enc.finish()]);
        self.gpu.check_in("profiling dispatches")?;
        let words = staging.read_u32().await?;
        let period_ns = inner.queue.get_timestamp_period() as f64;
        let stamp = |w: usize| words[w] as u64 | (words[w + 1] as u64) << 32;
        for s in 0..steps {
            let base = s * stride as usize / 4;
            for (i, sum) in sums.iter_mut().enumerate() {
                let (t0, t1) = (stamp(base + 4 * i), stamp(base + 4 * i + 2));
                if t1 < t0 {
                    return Err(Error::Gpu {
                        context: "timestamp query".into(),
                        detail: format!(
                            "dispatch {i} ({}) of step {s} ended at {t1}, before its start {t0}",
                            dispatches[i].label()
                        ),
                    });
                }
                *sum += (t1 - t0) as f64 * period_ns * 1e-9;
            }
        }
        Ok(())
    }
}
