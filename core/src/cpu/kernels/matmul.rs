//! `shaders/matmul.wgsl` and `shaders/matmul_vec4.wgsl`: `C = act(op(A) · op(B) + bias)`,
//! optionally with the row sums `Σ_k op(A)[i, k]` (the ONES_COL column). Both entry points
//! compute the same thing; only their bindings differ. The tiles the launcher chose do not
//! matter here: the product is [`gemm::sgemm`].

pub(crate) mod gemm;

use crate::cpu::{Call, Kernel};
use crate::error::Result;
use crate::kernels::matmul::Params;
use gemm::View;

// The fused epilogue applies the activation layer's own functions.
use super::elementwise::act_forward_slice;

pub(super) fn lookup(shader: &str, entry: &str) -> Option<Kernel> {
    match (shader, entry) {
        ("matmul", "main") => Some(tiled),
        ("matmul_vec4", "main") => Some(vec4),
        _ => None,
    }
}

/// Where one entry point keeps its operands.
struct Binds {
    a: usize,
    b: usize,
    bias: usize,
    c: usize,
    row_sums: usize,
}

fn tiled(call: &Call<'_>) -> Result<()> {
    let binds = Binds {
        a: 1,
        b: 2,
        bias: 3,
        c: 4,
        row_sums: 5,
    };
    run(call, &binds)
}

fn vec4(call: &Call<'_>) -> Result<()> {
    // A is bound as quads (1) or scalars (5), B as quads (2) or scalars (6): same values.
    let binds = Binds {
        a: if call.has(1) { 1 } else { 5 },
        b: if call.has(2) { 2 } else { 6 },
        bias: 3,
        c: 4,
        row_sums: 7,
    };
    run(call, &binds)
}

fn run(call: &Call<'_>, binds: &Binds) -> Result<()> {
    let p: Params = call.params()?;
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let trans_a = call.consts.bool("TRANS_A")?;
    let trans_b = call.consts.bool("TRANS_B")?;
    let has_bias = call.consts.bool("HAS_BIAS")?;
    let act = call.consts.u32("ACT")?;
    let ones_col = call.consts.bool("ONES_COL")?;
    let a = call.f32(binds.a)?;
    let b = call.f32(binds.b)?;
    let bias = if has_bias { call.f32(binds.bias)? } else { &[] };
    let c = call.f32_mut(binds.c)?;
    let short = |what: &str, have: usize, need: usize| {
        call.bug(format!(
            "{what} has {have} elements, an {m}x{k}x{n} product needs {need}"
        ))
    };
    if a.len() < m * k {
        return Err(short("A", a.len(), m * k));
    }
    if b.len() < k * n {
        return Err(short("B", b.len(), k * n));
    }
    if c.len() < m * n {
        return Err(short("C", c.len(), m * n));
    }
    if has_bias && bias.len() < n {
        return Err(short("bias", bias.len(), n));
    }
    let av = if trans_a {
        View {
            data: a,
            rs: 1,
            cs: m,
        }
    } else {
        View {
            data: a,
            rs: k,
            cs: 1,
        }
    };
    let bv = if trans_b {
        View {
            data: b,
            rs: 1,
            cs: k,
        }
    } else {
        View {
            data: b,
            rs: n,
            cs: 1,
        }
    };
    // The bias and activation run on each finished row segment, on the thread that
    // computed it (same bits as a pass after the product).
    let epilogue = |_i: usize, j0: usize, row: &mut [f32]| {
        if has_bias {
            for (v, b) in row.iter_mut().zip(&bias[j0..]) {
                *v += *b;
            }
        }
        act_forward_slice(act, row, p.alpha);
    };
    let post: Option<gemm::Post<'_>> = (has_bias || act != 0).then_some(&epilogue);
    gemm::sgemm_post(m, n, k, av, bv, c, crate::cpu::threads(), post);
    if ones_col {
        let rs = call.f32_mut(binds.row_sums)?;
        if rs.len() < m {
            return Err(short("row sums", rs.len(), m));
        }
        for (i, out) in rs[..m].iter_mut().enumerate() {
            let mut s = 0.0f32;
            for q in 0..k {
                s += av.data[i * av.rs + q * av.cs];
            }
            *out = s;
        }
    }
    Ok(())
}
