//! `Tensor`: a device buffer with a shape and an element type (f32 or u32): a GPU storage
//! buffer, or host memory on the CPU backend. Layout is dense row-major (the last dimension
//! is contiguous), NCHW for images.

use super::{pool::BufferPool, Gpu};
use crate::cpu::HostBuffer;
use crate::error::{Error, Result};
use std::sync::{Arc, Weak};

/// Element type of a tensor. Both are 4 bytes wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

/// A dense row-major tensor in GPU memory. Cloning shares the buffer.
///
/// A tensor may be a *view* of part of another tensor's buffer ([`Tensor::view`]), starting
/// `offset` elements in; kernels bind exactly its range. Views let a model keep all its
/// parameters (and gradients, optimizer states) in one flat buffer each, so that one
/// dispatch can update them all while every layer still sees its own tensors.
#[derive(Clone)]
pub struct Tensor {
    gpu: Gpu,
    buf: Arc<Storage>,
    /// Start within the buffer, in elements (a multiple of [`Tensor::VIEW_ALIGN`]).
    offset: usize,
    shape: Vec<usize>,
    dtype: DType,
}

/// Where a tensor's elements live.
enum Storage {
    Wgpu(PooledBuffer),
    Host(HostBuffer),
}

struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Weak<BufferPool>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(b), Some(pool)) = (self.buffer.take(), self.pool.upgrade()) {
            pool.give(b);
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.dtype, self.shape)
    }
}

/// Buffers are at least 16 bytes and a multiple of 16, so that zero-element tensors exist
/// and sizes fall into few pool buckets.
fn buffer_bytes(elems: usize) -> u64 {
    ((elems as u64 * 4).max(16) + 15) & !15
}

impl Tensor {
    /// A tensor whose contents are unspecified (a recycled buffer may hold old values).
    /// Kernels that overwrite every element use this for their outputs.
    pub fn uninit(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let elems = checked_elems(shape)?;
        let size = buffer_bytes(elems);
        gpu.check_buffer_size(&format!("a tensor of shape {shape:?}"), size)?;
        let Some(w) = gpu.inner.wgpu() else {
            let host = HostBuffer::new(size as usize / 4).map_err(|detail| Error::OverLimit {
                what: format!("a tensor of shape {shape:?} ({detail})"),
                needed: size,
                limit: 0,
                limit_name: "host memory available",
            })?;
            return Ok(Tensor {
                gpu: gpu.clone(),
                buf: Arc::new(Storage::Host(host)),
                offset: 0,
                shape: shape.to_vec(),
                dtype,
            });
        };
        let buffer = match w.pool.take(size) {
            Some(b) => b,
            None => w.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("accrete-tensor"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        Ok(Tensor {
            gpu: gpu.clone(),
            buf: Arc::new(Storage::Wgpu(PooledBuffer {
                buffer: Some(buffer),
                pool: Arc::downgrade(&w.pool),
            })),
            offset: 0,
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// An f32 tensor filled with `value`.
    pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
        let n = checked_elems(shape)?;
        Self::from_f32(gpu, shape, &vec![value; n])
    }

    /// An f32 tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        Self::full(gpu, shape, 0.0)
    }

    /// Uploads `data` (row-major, `shape.product()` elements).
    pub fn from_f32(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let t = Self::uninit(gpu, shape, DType::F32)?;
        t.write(bytemuck::cast_slice(data), data.len())?;
        Ok(t)
    }

    /// Uploads u32 data (labels, indices).
    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        let t = Self::uninit(gpu, shape, DType::U32)?;
        t.write(bytemuck::cast_slice(data), data.len())?;
        Ok(t)
    }

    /// Overwrites the whole tensor with f32 values.
    pub fn write_f32(&self, data: &[f32]) -> Result<()> {
        self.expect_dtype("write_f32", DType::F32)?;
        self.write(bytemuck::cast_slice(data), data.len())
    }

    /// Overwrites the whole tensor with u32 values.
    pub fn write_u32(&self, data: &[u32]) -> Result<()> {
        self.expect_dtype("write_u32", DType::U32)?;
        self.write(bytemuck::cast_slice(data), data.len())
    }

    fn write(&self, bytes: &[u8], elems: usize) -> Result<()> {
        if elems != self.len() {
            return Err(Error::shape(
                "tensor upload",
                format!(
                    "{elems} values given for shape {:?} ({} elements)",
                    self.shape,
                    self.len()
                ),
            ));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        match (&*self.buf, self.gpu.inner.wgpu()) {
            (Storage::Host(h), _) => h.write(self.offset, &bytemuck::pod_collect_to_vec(bytes)),
            (Storage::Wgpu(_), Some(w)) => {
                w.queue
                    .write_buffer(self.buffer(), self.byte_offset(), bytes)
            }
            (Storage::Wgpu(_), None) => return Err(mixed_devices("tensor upload")),
        }
        Ok(())
    }

    /// Reads the tensor back as f32 (async: the browser cannot block on the GPU).
    pub async fn read_f32(&self) -> Result<Vec<f32>> {
        self.expect_dtype("read_f32", DType::F32)?;
        let bytes = self.read_bytes().await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads the tensor back as u32.
    pub async fn read_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype("read_u32", DType::U32)?;
        let bytes = self.read_bytes().await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Raw little-endian bytes of the tensor's elements.
    pub async fn read_bytes(&self) -> Result<Vec<u8>> {
        let size = self.len() as u64 * 4;
        if size == 0 {
            return Ok(Vec::new());
        }
        let w = match (&*self.buf, self.gpu.inner.wgpu()) {
            (Storage::Host(h), _) => {
                let words = h.read(self.offset, self.len());
                crate::cpu::yield_now().await;
                return Ok(bytemuck::cast_slice(&words).to_vec());
            }
            (Storage::Wgpu(_), Some(w)) => w,
            (Storage::Wgpu(_), None) => return Err(mixed_devices("tensor read-back")),
        };
        let dev = &w.device;
        let staging = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("accrete-readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = dev.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(self.buffer(), self.byte_offset(), &staging, 0, size);
        w.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.gpu.wait_idle()?;
        let what = format!("a tensor of shape {:?}", self.shape);
        rx.await
            .map_err(|_| Error::ReadBack {
                what: what.clone(),
                detail: "the device dropped the request (device lost?)".into(),
            })?
            .map_err(|e| Error::ReadBack {
                what,
                detail: e.to_string(),
            })?;
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| Error::ReadBack {
                what: format!("a tensor of shape {:?}", self.shape),
                detail: e.to_string(),
            })?
            .to_vec();
        staging.unmap();
        self.gpu.check()?;
        Ok(bytes)
    }

    /// The same buffer seen with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = checked_elems(shape)?;
        if n != self.len() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} as {shape:?}", self.shape),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Elements every view offset is a multiple of: 64 f32 = 256 bytes, the largest
    /// `min_storage_buffer_offset_alignment` WebGPU and Vulkan allow, so any view can be
    /// bound on any device.
    pub const VIEW_ALIGN: usize = 64;

    /// A view of `shape` starting `offset` elements into this tensor, sharing its buffer
    /// (writes through either are seen by both). `offset` must be a multiple of
    /// [`Tensor::VIEW_ALIGN`] and the view must lie inside this tensor.
    pub fn view(&self, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let n = checked_elems(shape)?;
        if !offset.is_multiple_of(Self::VIEW_ALIGN) || offset + n > self.len() {
            return Err(Error::shape(
                "view",
                format!(
                    "{shape:?} at element {offset} does not fit in {:?} at a multiple of {}",
                    self.shape,
                    Self::VIEW_ALIGN
                ),
            ));
        }
        Ok(Tensor {
            offset: self.offset + offset,
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Whether `self` and `other` live in the same GPU buffer (views of one tensor).
    pub fn shares_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// Start of the tensor within its buffer, in elements (0 unless a view).
    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Interprets the tensor as a matrix: (product of leading dims, last dim).
    pub fn as_matrix(&self) -> (usize, usize) {
        match self.shape.split_last() {
            None => (1, 1),
            Some((last, lead)) => (lead.iter().product(), *last),
        }
    }

    /// The wgpu buffer. Only called on tensors of a WebGPU device (every caller first
    /// checks the device, or holds a tensor it made on one).
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        match &*self.buf {
            Storage::Wgpu(p) => p.buffer.as_ref().expect("buffer present until drop"),
            Storage::Host(_) => unreachable!("a host tensor has no wgpu buffer"),
        }
    }

    /// The host memory of a tensor of the CPU backend.
    pub(crate) fn host(&self) -> Option<&HostBuffer> {
        match &*self.buf {
            Storage::Host(h) => Some(h),
            Storage::Wgpu(_) => None,
        }
    }

    /// Start of the tensor within its buffer, in bytes.
    pub(crate) fn byte_offset(&self) -> u64 {
        self.offset as u64 * 4
    }

    /// The storage binding of this tensor: the whole buffer when it starts at 0, else its
    /// range (at least 4 bytes). On WebGPU always its range: the browser refuses a dispatch
    /// whose writable bindings overlap, and a whole-buffer binding of the first view of an
    /// arena (e.g. a conv weight gradient) overlaps the next view (its bias gradient).
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        if self.offset == 0 && cfg!(not(target_arch = "wasm32")) {
            // Kernels index by explicit sizes (no arrayLength), so the rest of a view's
            // buffer past its end is never touched.
            return self.buffer().as_entire_binding();
        }
        let room = self.buffer().size() - self.byte_offset();
        let size = (self.len() as u64 * 4).clamp(4, room);
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer(),
            offset: self.byte_offset(),
            size: std::num::NonZeroU64::new(size),
        })
    }

    pub(crate) fn expect_dtype(&self, op: &'static str, want: DType) -> Result<()> {
        if self.dtype != want {
            return Err(Error::shape(
                op,
                format!(
                    "expected a {want:?} tensor, got {:?} {:?}",
                    self.dtype, self.shape
                ),
            ));
        }
        Ok(())
    }
}

/// The error for a tensor used on a device other than its own backend's.
pub(crate) fn mixed_devices(op: &str) -> Error {
    Error::invalid(
        op,
        "a tensor of the CPU backend was used with a GPU device, or the other way round; \
         keep each model's tensors on the device that made them",
    )
}

fn checked_elems(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= (u32::MAX as usize))
        .ok_or_else(|| {
            Error::invalid(
                "tensor shape",
                format!("{shape:?} has more than 2^32-1 elements"),
            )
        })
}
