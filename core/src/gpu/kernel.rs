//! Pipelines and dispatches.
//!
//! Every WGSL kernel follows one binding convention: `@group(0) @binding(0)` is a uniform
//! struct of sizes and scalars, and bindings 1.. are the storage buffers in the order the
//! launcher passes them. Compile-time choices (tile sizes, activation, transposes) are
//! injected as `const` declarations placed before the shader source, so each variant is a
//! separate pipeline compiled once per device and cached by name + constants + entry point.
//!
//! A [`Dispatch`] owns its pipeline, bind group and workgroup count, so a training step can
//! be recorded any number of times without rebuilding anything on the host.

use super::{Gpu, Tensor};
use crate::error::{Error, Result};
use std::sync::Arc;

/// A WGSL source file plus the function libraries it needs prepended.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Sources concatenated before `source` (shared helper functions).
    pub libs: &'static [&'static str],
}

impl Shader {
    /// The WGSL module compiled for this shader with `consts` injected: the constants, then
    /// each library in order, then the source (WGSL has no `#include`).
    pub(crate) fn module_source(&self, consts: &str) -> String {
        let mut src = String::with_capacity(consts.len() + self.source.len() + 1024);
        src.push_str(consts);
        src.push('\n');
        for lib in self.libs {
            src.push_str(lib);
            src.push('\n');
        }
        src.push_str(self.source);
        src
    }
}

/// A ready-to-record kernel launch: an op (shader and entry point), its parameters and its
/// tensors — a pipeline and bind group on a WebGPU device, a Rust kernel on the CPU backend
/// (see [`crate::cpu`]).
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub(crate) label: String,
    exec: Exec,
    workgroups: [u32; 3],
    /// The bound tensors, kept alive so their buffers cannot return to the pool (and be
    /// handed to another tensor) while this dispatch may still be recorded.
    _bound: Vec<Tensor>,
}

#[derive(Clone, Debug)]
enum Exec {
    Wgpu {
        pipeline: Arc<wgpu::ComputePipeline>,
        bind_group: wgpu::BindGroup,
    },
    Host(Arc<crate::cpu::HostDispatch>),
}

impl Dispatch {
    /// Records this dispatch into an open compute pass (WebGPU devices; a CPU dispatch never
    /// meets a wgpu pass, since the CPU device has no wgpu objects to make one with).
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        let Exec::Wgpu {
            pipeline,
            bind_group,
        } = &self.exec
        else {
            return;
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        let [x, y, z] = self.workgroups;
        if x > 0 && y > 0 && z > 0 {
            pass.dispatch_workgroups(x, y, z);
        }
    }

    /// Runs this dispatch on the host (CPU backend); an error on a WebGPU dispatch.
    pub(crate) fn run_host(&self) -> Result<()> {
        match &self.exec {
            Exec::Host(h) => h.run(),
            Exec::Wgpu { .. } => Err(super::tensor::mixed_devices("a CPU recording")),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }
}

/// A storage binding: a tensor, or the device's dummy buffer for an absent optional input.
pub(crate) enum Bind<'a> {
    T(&'a Tensor),
    Dummy,
    /// A binding number the entry point does not use (auto layouts omit it).
    Skip,
}

impl Gpu {
    /// The pipeline for `shader` with `consts` prepended, entry point `entry` (cached).
    pub(crate) fn pipeline(
        &self,
        shader: &Shader,
        consts: &str,
        entry: &str,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let w = self
            .inner
            .wgpu()
            .ok_or_else(|| super::tensor::mixed_devices("compiling a kernel"))?;
        let key = format!("{}|{}|{}", shader.name, entry, consts);
        if let Some(p) = w.pipelines.lock().expect("pipeline cache").get(&key) {
            return Ok(p.clone());
        }
        let src = shader.module_source(consts);
        let dev = &w.device;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&key),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.check_in(&format!("compiling kernel {}::{entry}", shader.name))?;
        let p = Arc::new(pipeline);
        w.pipelines
            .lock()
            .expect("pipeline cache")
            .insert(key, p.clone());
        Ok(p)
    }

    /// Builds a dispatch: binding 0 is `params` as a uniform, bindings 1.. are `storage`.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &self,
        shader: &Shader,
        consts: &str,
        entry: &str,
        params: &P,
        storage: &[Bind<'_>],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        if let Some(&too_big) = workgroups.iter().find(|&&w| w > max) {
            return Err(Error::OverLimit {
                what: format!("kernel {}::{entry}", shader.name),
                needed: too_big as u64,
                limit: max as u64,
                limit_name: "max_compute_workgroups_per_dimension",
            });
        }
        for b in storage {
            if let Bind::T(t) = b {
                if t.host().is_some() != self.is_cpu() {
                    return Err(super::tensor::mixed_devices("binding a kernel's tensors"));
                }
            }
        }
        let bound = storage
            .iter()
            .filter_map(|b| match b {
                Bind::T(t) => Some((*t).clone()),
                _ => None,
            })
            .collect();
        let Some(w) = self.inner.wgpu() else {
            let label = format!("{}::{entry}", shader.name);
            let kernel = crate::cpu::kernels::lookup(shader.name, entry)
                .ok_or_else(|| crate::cpu::missing(shader.name, entry))?;
            let slots = storage
                .iter()
                .map(|b| match b {
                    Bind::T(t) => crate::cpu::Slot::T((*t).clone()),
                    Bind::Dummy => crate::cpu::Slot::Dummy,
                    Bind::Skip => crate::cpu::Slot::Skip,
                })
                .collect();
            return Ok(Dispatch {
                label: label.clone(),
                exec: Exec::Host(Arc::new(crate::cpu::HostDispatch {
                    kernel,
                    params: bytemuck::bytes_of(params).to_vec(),
                    consts: crate::cpu::Consts::parse(consts),
                    slots,
                    label,
                })),
                workgroups,
                _bound: Vec::new(),
            });
        };
        let pipeline = self.pipeline(shader, consts, entry)?;
        let dev = &w.device;
        let uniform = wgpu::util::DeviceExt::create_buffer_init(
            dev,
            &wgpu::util::BufferInitDescriptor {
                label: Some("accrete-params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in storage.iter().enumerate() {
            let resource = match b {
                Bind::T(t) => t.binding(),
                Bind::Dummy => w.dummy.as_entire_binding(),
                Bind::Skip => continue,
            };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            });
        }
        let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.name),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.check_in(&format!("binding kernel {}::{entry}", shader.name))?;
        Ok(Dispatch {
            label: format!("{}::{entry}", shader.name),
            exec: Exec::Wgpu {
                pipeline,
                bind_group,
            },
            workgroups,
            _bound: bound,
        })
    }

    /// Records `dispatches` in order into one compute pass and submits them.
    /// wgpu inserts the barriers between dependent dispatches.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let Some(w) = self.inner.wgpu() else {
            return dispatches.iter().try_for_each(|d| d.run_host());
        };
        let mut enc = w.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        w.queue.submit([enc.finish()]);
        self.check()
    }

    /// Splits `groups` workgroups over x and y so that no dimension exceeds the device limit.
    /// Shaders recover the linear index as `wid.x + wid.y * nwg.x` and skip indices past the end.
    pub(crate) fn grid(&self, groups: u64) -> Result<[u32; 3]> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension as u64;
        if groups == 0 {
            return Ok([0, 1, 1]);
        }
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::OverLimit {
                what: "a 1-D kernel launch".into(),
                needed: groups,
                limit: max * max,
                limit_name: "max_compute_workgroups_per_dimension squared",
            });
        }
        Ok([x as u32, y as u32, 1])
    }
}

/// Records compute passes and buffer copies into one command buffer, submitted at once.
/// On the CPU backend the recording is a list of commands run in order at submission.
pub struct Recorder {
    gpu: Gpu,
    rec: Rec,
}

enum Rec {
    Wgpu(wgpu::CommandEncoder),
    Host(Vec<HostCommand>),
}

enum HostCommand {
    Pass(Vec<Dispatch>, usize),
    Copy {
        src: Tensor,
        src_at: usize,
        dst: Tensor,
        dst_at: usize,
        count: usize,
    },
}

impl Gpu {
    /// Starts recording a command buffer.
    pub fn recorder(&self) -> Recorder {
        let rec = match self.inner.wgpu() {
            Some(w) => Rec::Wgpu(w.device.create_command_encoder(&Default::default())),
            None => Rec::Host(Vec::new()),
        };
        Recorder {
            gpu: self.clone(),
            rec,
        }
    }
}

impl Recorder {
    /// One compute pass running `dispatches` in order, `reps` times over.
    pub fn pass(&mut self, dispatches: &[&Dispatch], reps: usize) {
        let encoder = match &mut self.rec {
            Rec::Wgpu(e) => e,
            Rec::Host(cmds) => {
                let list = dispatches.iter().map(|d| (*d).clone()).collect();
                cmds.push(HostCommand::Pass(list, reps));
                return;
            }
        };
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for _ in 0..reps {
            for d in dispatches {
                d.record(&mut pass);
            }
        }
    }

    /// Copies `count` elements from `src[src_at..]` to `dst[dst_at..]`.
    pub fn copy(
        &mut self,
        src: &Tensor,
        src_at: usize,
        dst: &Tensor,
        dst_at: usize,
        count: usize,
    ) -> Result<()> {
        if src_at + count > src.len() || dst_at + count > dst.len() {
            return Err(Error::shape(
                "copy",
                format!(
                    "{count} elements from {src_at} of {:?} to {dst_at} of {:?} run past the end",
                    src.shape(),
                    dst.shape()
                ),
            ));
        }
        if src.host().is_some() != self.gpu.is_cpu() || dst.host().is_some() != self.gpu.is_cpu() {
            return Err(super::tensor::mixed_devices("copy"));
        }
        let encoder = match &mut self.rec {
            Rec::Wgpu(e) => e,
            Rec::Host(cmds) => {
                cmds.push(HostCommand::Copy {
                    src: src.clone(),
                    src_at,
                    dst: dst.clone(),
                    dst_at,
                    count,
                });
                return Ok(());
            }
        };
        if count > 0 {
            encoder.copy_buffer_to_buffer(
                src.buffer(),
                src.byte_offset() + src_at as u64 * 4,
                dst.buffer(),
                dst.byte_offset() + dst_at as u64 * 4,
                count as u64 * 4,
            );
        }
        Ok(())
    }

    /// Submits everything recorded.
    pub fn submit(self) -> Result<()> {
        self.submit_timed().map(|_| ())
    }

    /// Submits everything recorded; returns the host seconds spent finishing the command
    /// buffer (where wgpu validates and encodes the recorded passes). The queue submission
    /// itself is not counted: a driver may block in it until earlier work completes (lavapipe
    /// does when a submission is still running), which is GPU time, not host cost.
    ///
    /// On the CPU backend the commands run here, in order, and the encoding time is 0.
    pub fn submit_timed(self) -> Result<f64> {
        let encoder = match self.rec {
            Rec::Wgpu(e) => e,
            Rec::Host(cmds) => {
                for c in cmds {
                    match c {
                        HostCommand::Pass(list, reps) => {
                            for _ in 0..reps {
                                list.iter().try_for_each(|d| d.run_host())?;
                            }
                        }
                        HostCommand::Copy {
                            src,
                            src_at,
                            dst,
                            dst_at,
                            count,
                        } => {
                            if let (Some(s), Some(d)) = (src.host(), dst.host()) {
                                crate::cpu::HostBuffer::copy(
                                    s,
                                    src.offset() + src_at,
                                    d,
                                    dst.offset() + dst_at,
                                    count,
                                );
                            }
                        }
                    }
                }
                return Ok(0.0);
            }
        };
        let w = self
            .gpu
            .inner
            .wgpu()
            .ok_or_else(|| super::tensor::mixed_devices("submit"))?;
        let t0 = crate::clock::now_seconds();
        let buffer = encoder.finish();
        let encode = crate::clock::now_seconds() - t0;
        w.queue.submit([buffer]);
        self.gpu.check()?;
        Ok(encode)
    }
}
