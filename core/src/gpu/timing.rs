//! GPU-side timing with timestamp queries (when the adapter has TIMESTAMP_QUERY), falling
//! back to the host clock around a submit-and-wait.

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
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| {
                gpu.inner
                    .device
                    .create_query_set(&wgpu::QuerySetDescriptor {
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

    /// Which clock [`GpuTimer::time`] uses on this device.
    pub fn source(&self) -> TimeSource {
        if self.queries.is_some() {
            TimeSource::Timestamp
        } else {
            TimeSource::Wall
        }
    }

    /// Seconds the GPU spends running `dispatches` `reps` times in one compute pass.
    pub async fn time(&self, dispatches: &[&Dispatch], reps: usize) -> Result<f64> {
        let inner = &self.gpu.inner;
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
