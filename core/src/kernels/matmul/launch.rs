//! The matmul launch: shape checks ([`dims`]), the compile-time constants and bindings of the
//! chosen variant, and the dispatch ([`matmul_into`], or [`matmul`] which allocates C).

use super::{choose, Kernel, MatmulSpec, Precision, Variant};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Shader, Tensor};
use crate::kernels::{consts, shader, Activation, ConstVal};

pub const SHADER: Shader = shader!("matmul", "activation_fns");
/// The vec4 / double-buffered / f16-tile kernels.
pub const SHADER_VEC4: Shader = shader!("matmul_vec4", "activation_fns");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) alpha: f32,
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
    launch(a, b, bias, c, None, spec)
}

/// `c = op(a)·op(b)` ([M, N]) and `row_sums[i] = Σ_k op(a)[i, k]` ([M]) in one dispatch: op(B)
/// gets a virtual column N of ones, and that column of the product goes to `row_sums`. A dense
/// layer's weight gradient `dZᵀ·X` gives its bias gradient `Σ_b dZ[b, :]` this way, with no
/// separate reduction (as the implicit convolution's weight gradient does with its patch + 1
/// columns). Each row sum is the chain `acc = fma(a_k, 1, acc)` for k = 0, 1, … from 0 — a
/// sequential sum, the same bits for every f32 variant — and `c` is bit-identical to
/// [`matmul_into`]'s. No bias or activation (`spec.activation` must be the identity), and f32
/// variants only: f16 tiles would round op(A) before summing it.
pub fn matmul_row_sums_into(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    row_sums: &Tensor,
    spec: &MatmulSpec,
) -> Result<Dispatch> {
    launch(a, b, None, c, Some(row_sums), spec)
}

fn launch(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    row_sums: Option<&Tensor>,
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
    if let Some(rs) = row_sums {
        if rs.len() != m {
            return Err(Error::shape(
                "matmul with row sums",
                format!("row sums must have {m} elements, got {:?}", rs.shape()),
            ));
        }
        let why = if spec.activation != Activation::Identity {
            Some("the row sums need the identity activation (no epilogue)".to_string())
        } else if variant.precision != Precision::F32 {
            Some(format!(
                "the row sums need an f32 variant ({} rounds operands to f16)",
                variant.name()
            ))
        } else if variant.kernel != Kernel::Tiled
            && gpu.limits().max_storage_buffers_per_shader_stage < 7
        {
            Some(format!(
                "the vec4 kernels with row sums bind 7 storage buffers; this device allows {}",
                gpu.limits().max_storage_buffers_per_shader_stage
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::invalid(
                format!("matmul variant {} with row sums", variant.name()),
                why,
            ));
        }
    }
    let tiles = variant.tiles;
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        alpha: spec.activation.alpha(),
    };
    let bias_bind = bias.map_or(Bind::Dummy, Bind::T);
    let ones = u32::from(row_sums.is_some());
    let groups = [
        (n as u32 + ones).div_ceil(tiles.bn),
        (m as u32).div_ceil(tiles.bm),
        1,
    ];
    let (vec_a, vec_b) = quad_loads(a, b, m, k, n, spec);
    let flags = Flags {
        trans_a: spec.trans_a,
        trans_b: spec.trans_b,
        has_bias: bias.is_some(),
        activation: spec.activation,
        vec_a,
        vec_b,
        row_sums: row_sums.is_some(),
    };
    let (shader, defs) = shader_defs(&variant, &flags);
    let rs = row_sums.map_or(Bind::Skip, Bind::T);
    if variant.kernel == Kernel::Tiled {
        return gpu.dispatch(
            &shader,
            &defs,
            "main",
            &params,
            &[Bind::T(a), Bind::T(b), bias_bind, Bind::T(c), rs],
            groups,
        );
    }
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
        &shader,
        &defs,
        "main",
        &params,
        &[a4, b4, bias_bind, Bind::T(c), a1, b1, rs],
        groups,
    )
}

/// The launch-time choices a matmul shader's constants encode besides the tiles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags {
    pub trans_a: bool,
    pub trans_b: bool,
    pub has_bias: bool,
    pub activation: Activation,
    /// Quad loads of A and B (vec4 kernels only).
    pub vec_a: bool,
    pub vec_b: bool,
    /// op(B)'s virtual column of ones, its output column bound as `row_sums`.
    pub row_sums: bool,
}

/// The shader of `variant` and its injected prefix for `flags`: the constants, the tile
/// types of the vec4 kernels, and the row-sum output — declared (binding 5 of the tiled
/// kernel, 7 of the vec4 ones) with `store_row_sum` writing it when `flags.row_sums`, else
/// `store_row_sum` does nothing and the binding does not exist.
pub(crate) fn shader_defs(variant: &Variant, flags: &Flags) -> (Shader, String) {
    let tiles = variant.tiles;
    let mut items = vec![
        ("BM", ConstVal::U(tiles.bm)),
        ("BN", ConstVal::U(tiles.bn)),
        ("BK", ConstVal::U(tiles.bk)),
        ("TM", ConstVal::U(tiles.tm)),
        ("TN", ConstVal::U(tiles.tn)),
        ("TRANS_A", ConstVal::B(flags.trans_a)),
        ("TRANS_B", ConstVal::B(flags.trans_b)),
        ("HAS_BIAS", ConstVal::B(flags.has_bias)),
        ("ACT", ConstVal::U(flags.activation.code())),
        ("ONES_COL", ConstVal::B(flags.row_sums)),
    ];
    let tiled = variant.kernel == Kernel::Tiled;
    let row_sums = if flags.row_sums {
        format!(
            "@group(0) @binding({}) var<storage, read_write> row_sums: array<f32>;\n\
             fn store_row_sum(r: u32, v: f32) {{ row_sums[r] = v; }}\n",
            if tiled { 5 } else { 7 }
        )
    } else {
        "fn store_row_sum(r: u32, v: f32) {}\n".to_string()
    };
    if tiled {
        return (SHADER, format!("{}{row_sums}", consts(&items)));
    }
    let stages = if variant.kernel == Kernel::Vec4DoubleBuffered {
        2
    } else {
        1
    };
    items.extend([
        ("STAGES", ConstVal::U(stages)),
        ("VEC_A", ConstVal::B(flags.vec_a)),
        ("VEC_B", ConstVal::B(flags.vec_b)),
    ]);
    // `enable` must precede every declaration, so it leads the injected prefix.
    let (enable, elem) = match variant.precision {
        Precision::F32 => ("", "f32"),
        Precision::F16 => ("enable f16;\n", "f16"),
    };
    let defs = format!(
        "{enable}{}alias TILE_S = {elem};\nalias TILE_V = vec4<{elem}>;\n{row_sums}",
        consts(&items)
    );
    (SHADER_VEC4, defs)
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
