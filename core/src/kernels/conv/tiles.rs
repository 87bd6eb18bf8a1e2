//! Workgroup tiles of the implicit-GEMM convolution kernels: the named shapes, the default
//! for a device and GEMM width, and the checks a device's limits impose.

use super::Precision;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Workgroup tile of the implicit-GEMM kernels: `bm` × `bn` outputs, depth step `bk`,
/// `tm` × `tn` outputs per thread. (Rows are output positions for the forward and input
/// gradient, filters for the weight gradient.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl ConvTiles {
    /// 64×64 tile, 4×4 per thread, 256 threads: discrete GPUs.
    pub const LARGE: ConvTiles = ConvTiles {
        bm: 64,
        bn: 64,
        bk: 8,
        tm: 4,
        tn: 4,
    };
    /// 128×32 tile, 8×2 per thread, 256 threads: GPUs, when the GEMM has ≤ 32 columns
    /// (few filters forward, few channels for the input gradient), where a 64-wide tile
    /// would compute half zeros.
    pub const TALL: ConvTiles = ConvTiles {
        bm: 128,
        bn: 32,
        bk: 8,
        tm: 8,
        tn: 2,
    };
    /// 32×32 tile, 4×4 per thread, 64 threads: cheaper barriers for CPU adapters.
    pub const MEDIUM: ConvTiles = ConvTiles {
        bm: 32,
        bn: 32,
        bk: 8,
        tm: 4,
        tn: 4,
    };

    /// The default for a device and a GEMM of `columns` columns: small workgroups on CPU
    /// adapters; on GPUs large tiles, tall ones for ≤ 32 columns.
    pub fn for_device(gpu: &Gpu, columns: usize) -> ConvTiles {
        if gpu.is_cpu() || gpu.summary().device_type == "Cpu" {
            ConvTiles::MEDIUM
        } else if columns <= 32 {
            ConvTiles::TALL
        } else {
            ConvTiles::LARGE
        }
    }

    fn threads(&self) -> u32 {
        (self.bm / self.tm.max(1)) * (self.bn / self.tn.max(1))
    }

    /// Bytes of workgroup memory the GEMM tiles take at `precision` (2 per element for f16).
    pub fn shared_bytes(&self, precision: Precision) -> u32 {
        let elem = match precision {
            Precision::F32 => 4,
            Precision::F16 => 2,
        };
        elem * self.bk * (self.bm + self.bn)
    }

    /// Checks divisibility (each thread loads fixed rows: threads must be a multiple of `bm`
    /// and of `bk`) and the device's workgroup limits, with tiles of `precision`.
    pub fn validate(&self, gpu: &Gpu, precision: Precision) -> Result<()> {
        let bad = |d: String| Err(Error::invalid(format!("convolution tiles {self:?}"), d));
        if [self.bm, self.bn, self.bk, self.tm, self.tn].contains(&0) {
            return bad("every tile size must be positive".into());
        }
        if !self.bm.is_multiple_of(self.tm) || !self.bn.is_multiple_of(self.tn) {
            return bad("bm must be a multiple of tm and bn of tn".into());
        }
        let t = self.threads();
        if !t.is_multiple_of(self.bm) || !t.is_multiple_of(self.bk) {
            return bad(format!("{t} threads must be a multiple of bm and of bk"));
        }
        let lim = gpu.limits();
        let (tx, ty) = (self.bm / self.tm, self.bn / self.tn);
        if t > lim.max_compute_invocations_per_workgroup
            || tx.max(ty)
                > lim
                    .max_compute_workgroup_size_x
                    .min(lim.max_compute_workgroup_size_y)
        {
            return bad(format!(
                "{t} threads per workgroup exceed the device limits"
            ));
        }
        let shared = self.shared_bytes(precision);
        if shared > lim.max_compute_workgroup_storage_size {
            return bad(format!(
                "{shared} bytes of workgroup memory exceed the device limit of {}",
                lim.max_compute_workgroup_storage_size
            ));
        }
        Ok(())
    }
}
