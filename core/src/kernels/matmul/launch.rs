//! The matmul launch: shape checks ([`dims`]), the compile-time constants and bindings of the
//! chosen variant, and the dispatch ([`matmul_into`], or [`matmul`] which allocates C).

use super::{choose, Kernel, MatmulSpec, Precision};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Shader, Tensor};
use crate::kernels::{consts, shader, ConstVal};

pub const SHADER: Shader = shader!("matmul", "activation_fns");
/// The vec4 / double-buffered / f16-tile kernels.
pub const SHADER_VEC4: Shader = shader!("matmul_vec4", "activation_fns");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
}

/// (M, K, N) of `op(A)·op(B)`, checking that the inner dimensions agree.
pub fn dims(a: &Tensor, b: &Tensor, spec: &MatmulSpec) -> Result<(usize, usize, usize)> {
    let two = |t: &Tensor, name: &str| -> Result<(usize, usize)> {
        match t.shape() {
            [r, c] => Ok((*r, *c)),
            s => Err(Error::shape(
                "matmul",
                format!("{name} must be 2-D, got {s:?}"),
            )),
        }
    };
    let (ar, ac) = two(a, "A")?;
    let (br, bc) = two(b, "B")?;
    let (m, k) = if spec.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if spec.trans_b { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner dimensions differ: op(A) is [{m}, {k}] and op(B) is [{kb}, {n}] (A {:?}{}, B {:?}{})",
                a.shape(),
                if spec.trans_a { "ᵀ" } else { "" },
                b.shape(),
                if spec.trans_b { "ᵀ" } else { "" },
            ),
        ));
    }
    Ok((m, k, n))
}

/// Builds `c = act(op(a)·op(b) + bias)` writing every element of `c` ([M, N]).
pub fn matmul_into(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
) -> Result<Dispatch> {
    let gpu = a.gpu();
    let (m, k, n) = dims(a, b, spec)?;
    if c.shape() != [m, n] {
        return Err(Error::shape(
            "matmul",
            format!("output must be [{m}, {n}], got {:?}", c.shape()),
        ));
    }
    if let Some(bias) = bias {
        if bias.len() != n {
            return Err(Error::shape(
                "matmul",
                format!("bias must have {n} elements, got {:?}", bias.shape()),
            ));
        }
    }
    let variant = choose(a, b, spec)?;
    variant.validate(gpu)?;
    let tiles = variant.tiles;
    let mut items = vec![
        ("BM", ConstVal::U(tiles.bm)),
        ("BN", ConstVal::U(tiles.bn)),
        ("BK", ConstVal::U(tiles.bk)),
        ("TM", ConstVal::U(tiles.tm)),
        ("TN", ConstVal::U(tiles.tn)),
        ("TRANS_A", ConstVal::B(spec.trans_a)),
        ("TRANS_B", ConstVal::B(spec.trans_b)),
        ("HAS_BIAS", ConstVal::B(bias.is_some())),
        ("ACT", ConstVal::U(spec.activation.code())),
    ];
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        alpha: spec.activation.alpha(),
    };
    let bias = bias.map_or(Bind::Dummy, Bind::T);
    let groups = [
        (n as u32).div_ceil(tiles.bn),
        (m as u32).div_ceil(tiles.bm),
        1,
    ];
    if variant.kernel == Kernel::Tiled {
        return gpu.dispatch(
            &SHADER,
            &consts(&items),
            "main",
            &params,
            &[Bind::T(a), Bind::T(b), bias, Bind::T(c)],
            groups,
        );
    }
    let (vec_a, vec_b) = quad_loads(a, b, m, k, n, spec);
    let stages = if variant.kernel == Kernel::Vec4DoubleBuffered {
        2
    } else {
        1
    };
    items.extend([
        ("STAGES", ConstVal::U(stages)),
        ("VEC_A", ConstVal::B(vec_a)),
        ("VEC_B", ConstVal::B(vec_b)),
    ]);
    // `enable` must precede every declaration, so it leads the injected prefix.
    let (enable, elem) = match variant.precision {
        Precision::F32 => ("", "f32"),
        Precision::F16 => ("enable f16;\n", "f16"),
    };
    let defs = format!(
        "{enable}{}alias TILE_S = {elem};\nalias TILE_V = vec4<{elem}>;\n",
        consts(&items)
    );
    // Each operand is read either as quads or as scalars; the other binding is the dummy.
    let (a4, a1) = if vec_a {
        (Bind::T(a), Bind::Dummy)
    } else {
        (Bind::Dummy, Bind::T(a))
    };
    let (b4, b1) = if vec_b {
        (Bind::T(b), Bind::Dummy)
    } else {
        (Bind::Dummy, Bind::T(b))
    };
    gpu.dispatch(
        &SHADER_VEC4,
        &defs,
        "main",
        &params,
        &[a4, b4, bias, Bind::T(c), a1, b1],
        groups,
    )
}

/// Whether A and B can be loaded as aligned quads: the stored matrix's contiguous dimension
/// is a multiple of 4 (K for A, M for Aᵀ; N for B, K for Bᵀ) and it is not empty.
fn quad_loads(
    a: &Tensor,
    b: &Tensor,
    m: usize,
    k: usize,
    n: usize,
    spec: &MatmulSpec,
) -> (bool, bool) {
    let row_a = if spec.trans_a { m } else { k };
    let row_b = if spec.trans_b { k } else { n };
    (
        row_a.is_multiple_of(4) && !a.is_empty(),
        row_b.is_multiple_of(4) && !b.is_empty(),
    )
}

/// Allocates C and computes `act(op(a)·op(b) + bias)`.
pub fn matmul(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, spec: &MatmulSpec) -> Result<Tensor> {
    let (m, _, n) = dims(a, b, spec)?;
    let c = Tensor::uninit(a.gpu(), &[m, n], crate::gpu::DType::F32)?;
    let d = matmul_into(a, b, bias, &c, spec)?;
    a.gpu().run(&[&d])?;
    Ok(c)
}
