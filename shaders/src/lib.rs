//! The WGSL sources of accrete's GPU kernels, as `&'static str` constants.
//!
//! Two kinds of file:
//! - **entry shaders** (`shaders/*.wgsl`, the constants at the crate root): each declares its
//!   bindings and `@compute` entry points. Binding 0 is always a uniform struct of sizes and
//!   scalars, bindings 1.. are storage buffers (the convention of `accrete::gpu`).
//! - **libraries** (`shaders/lib/*.wgsl`, the constants in [`lib`]): helper functions,
//!   constants and shared structs, never compiled alone.
//!
//! WGSL has no `#include`: a launcher assembles the module text itself, as
//!
//! ```text
//! injected constants (`const BM: u32 = 64u;` …, `enable f16;` first where needed)
//! + each library the entry shader needs, in order
//! + the entry shader
//! ```
//!
//! The libraries an entry shader needs are listed on the `// Libraries prepended by the
//! launcher` line of its header comment, and the constants it expects under `Injected`. The
//! crate `accrete` (`accrete::kernels`) is that launcher; these constants only carry the text.
//!
//! [`ENTRIES`] and [`LIBRARIES`] list every file with its name (the file stem), and
//! [`entry`] / [`library`] look one up by name, also in `const` context.

/// A WGSL file: its name (the file stem, e.g. `"matmul"`) and its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wgsl {
    pub name: &'static str,
    pub source: &'static str,
}

/// A-GEM's gradient projection: the dot products and the projection (`agem_project.wgsl`).
pub const AGEM_PROJECT: &str = include_str!("../agem_project.wgsl");
/// Activation layers, forward and backward (`activation.wgsl`).
pub const ACTIVATION: &str = include_str!("../activation.wgsl");
/// Index of the largest element of each row (`argmax.wgsl`).
pub const ARGMAX: &str = include_str!("../argmax.wgsl");
/// Scaled updates `y = αx + y` and `y = αx` (`axpy.wgsl`).
pub const AXPY: &str = include_str!("../axpy.wgsl");
/// Elementwise add, sub, mul and the bias broadcast (`binary.wgsl`).
pub const BINARY: &str = include_str!("../binary.wgsl");
/// Global-norm gradient clipping without a CPU round trip (`clip.wgsl`).
pub const CLIP: &str = include_str!("../clip.wgsl");
/// Implicit-GEMM convolution, input gradient (`conv_dgrad.wgsl`).
pub const CONV_DGRAD: &str = include_str!("../conv_dgrad.wgsl");
/// Implicit-GEMM convolution, forward with bias and activation (`conv_fwd.wgsl`).
pub const CONV_FWD: &str = include_str!("../conv_fwd.wgsl");
/// Implicit-GEMM convolution, weight and bias gradients (`conv_wgrad.wgsl`).
pub const CONV_WGRAD: &str = include_str!("../conv_wgrad.wgsl");
/// EWC's diagonal empirical Fisher from per-sample gradients (`ewc_fisher.wgsl`).
pub const EWC_FISHER: &str = include_str!("../ewc_fisher.wgsl");
/// EWC's quadratic-penalty gradient (`ewc_penalty.wgsl`).
pub const EWC_PENALTY: &str = include_str!("../ewc_penalty.wgsl");
/// Row gather: a batch from a GPU-resident dataset by an index buffer (`gather.wgsl`).
pub const GATHER: &str = include_str!("../gather.wgsl");
/// im2col and its adjoint col2im (`im2col.wgsl`).
pub const IM2COL: &str = include_str!("../im2col.wgsl");
/// Knowledge-distillation loss and its gradient (`loss_distill.wgsl`).
pub const LOSS_DISTILL: &str = include_str!("../loss_distill.wgsl");
/// Mean squared error and its gradient (`loss_mse.wgsl`).
pub const LOSS_MSE: &str = include_str!("../loss_mse.wgsl");
/// Dynamic loss scaling for mixed precision (`loss_scale.wgsl`).
pub const LOSS_SCALE: &str = include_str!("../loss_scale.wgsl");
/// The loss of a rehearsal batch with stored logits, DER / DER++ (`loss_replay.wgsl`).
pub const LOSS_REPLAY: &str = include_str!("../loss_replay.wgsl");
/// Fused softmax cross-entropy with label smoothing (`loss_xent.wgsl`).
pub const LOSS_XENT: &str = include_str!("../loss_xent.wgsl");
/// Tiled, register-blocked `C = act(op(A)·op(B) + bias)` (`matmul.wgsl`).
pub const MATMUL: &str = include_str!("../matmul.wgsl");
/// The vec4 / double-buffered / f16-tile matmul (`matmul_vec4.wgsl`).
pub const MATMUL_VEC4: &str = include_str!("../matmul_vec4.wgsl");
/// Loss and accuracy accumulated on the GPU across steps (`metrics.wgsl`).
pub const METRICS: &str = include_str!("../metrics.wgsl");
/// Optimizer updates of one tensor (`optim.wgsl`).
pub const OPTIM: &str = include_str!("../optim.wgsl");
/// Global-norm clipping over segments of flat gradient buffers (`optim_clip.wgsl`).
pub const OPTIM_CLIP: &str = include_str!("../optim_clip.wgsl");
/// Optimizer updates of every listed tensor of a flat buffer in one launch
/// (`optim_multi.wgsl`).
pub const OPTIM_MULTI: &str = include_str!("../optim_multi.wgsl");
/// Batched transpose of the last two axes (`permute.wgsl`).
pub const PERMUTE: &str = include_str!("../permute.wgsl");
/// 2-D max and average pooling, forward and backward (`pool.wgsl`).
pub const POOL: &str = include_str!("../pool.wgsl");
/// Row and column sums and means (`reduce.wgsl`).
pub const REDUCE: &str = include_str!("../reduce.wgsl");
/// Column sums with subgroup shuffles, native targets only (`reduce_subgroup.wgsl`).
pub const REDUCE_SUBGROUP: &str = include_str!("../reduce_subgroup.wgsl");
/// Uniform, normal and dropout-mask random tensors (Philox4x32-10) (`rng.wgsl`).
pub const RNG: &str = include_str!("../rng.wgsl");
/// Row-wise numerically stable softmax (`softmax.wgsl`).
pub const SOFTMAX: &str = include_str!("../softmax.wgsl");
/// The training-step counter kept on the GPU (`step.wgsl`).
pub const STEP: &str = include_str!("../step.wgsl");

/// The libraries (`shaders/lib/`): prepended to entry shaders, never compiled alone.
pub mod lib {
    /// Activation functions and their derivatives (`lib/activation_fns.wgsl`).
    pub const ACTIVATION_FNS: &str = include_str!("../lib/activation_fns.wgsl");
    /// The workgroup size `WG` and the linear index of 1-D launches spread over x and y
    /// (`lib/common.wgsl`).
    pub const COMMON: &str = include_str!("../lib/common.wgsl");
    /// A convolution's pre-activation gradient `dz = dy·act'(z)`, computed as it is loaded
    /// (`lib/conv_dz.wgsl`).
    pub const CONV_DZ: &str = include_str!("../lib/conv_dz.wgsl");
    /// The workgroup GEMM of the implicit-GEMM forward and input gradient
    /// (`lib/conv_gemm.wgsl`).
    pub const CONV_GEMM: &str = include_str!("../lib/conv_gemm.wgsl");
    /// The implicit-GEMM convolutions' uniform `ConvParams` and tile element type
    /// (`lib/conv_geom.wgsl`).
    pub const CONV_GEOM: &str = include_str!("../lib/conv_geom.wgsl");
    /// The implicit im2col gather (`lib/conv_tap.wgsl`).
    pub const CONV_TAP: &str = include_str!("../lib/conv_tap.wgsl");
    /// The per-element optimizer rules and their uniform `Params` (`lib/optim_rules.wgsl`).
    pub const OPTIM_RULES: &str = include_str!("../lib/optim_rules.wgsl");
    /// The segment table of a multi-tensor launch over a flat buffer
    /// (`lib/optim_segments.wgsl`).
    pub const OPTIM_SEGMENTS: &str = include_str!("../lib/optim_segments.wgsl");
    /// Philox4x32-10, the counter-based RNG (`lib/philox.wgsl`).
    pub const PHILOX: &str = include_str!("../lib/philox.wgsl");
    /// Workgroup tree reductions over one row (`lib/row_reduce_lib.wgsl`).
    pub const ROW_REDUCE_LIB: &str = include_str!("../lib/row_reduce_lib.wgsl");
}

/// The header line every entry shader carries, followed by its libraries' paths.
pub const LIBRARIES_LINE: &str = "// Libraries prepended by the launcher";

/// The libraries an entry shader's header says it needs, by name, in the order they are
/// prepended: the `lib/<name>.wgsl` paths on its [`LIBRARIES_LINE`] and the `//` lines
/// continuing it, up to the one ending in `.` (`: none.` gives an empty list). `None` when
/// the source has no such line (a library, or a file without a header).
pub fn declared_libraries(source: &str) -> Option<Vec<&str>> {
    let start = source.find(LIBRARIES_LINE)?;
    let mut names = Vec::new();
    for line in source[start..].lines() {
        if !line.starts_with("//") {
            break;
        }
        let text = line.trim_start_matches('/').trim();
        for word in text.split([' ', ',']) {
            if let Some(name) = word
                .trim_end_matches('.')
                .strip_prefix("lib/")
                .and_then(|w| w.strip_suffix(".wgsl"))
            {
                names.push(name);
            }
        }
        if text.ends_with('.') {
            break;
        }
    }
    Some(names)
}

const fn wgsl(name: &'static str, source: &'static str) -> Wgsl {
    Wgsl { name, source }
}

/// Every entry shader, by name (`shaders/<name>.wgsl`), in alphabetical order.
pub const ENTRIES: &[Wgsl] = &[
    wgsl("activation", ACTIVATION),
    wgsl("agem_project", AGEM_PROJECT),
    wgsl("argmax", ARGMAX),
    wgsl("axpy", AXPY),
    wgsl("binary", BINARY),
    wgsl("clip", CLIP),
    wgsl("conv_dgrad", CONV_DGRAD),
    wgsl("conv_fwd", CONV_FWD),
    wgsl("conv_wgrad", CONV_WGRAD),
    wgsl("ewc_fisher", EWC_FISHER),
    wgsl("ewc_penalty", EWC_PENALTY),
    wgsl("gather", GATHER),
    wgsl("im2col", IM2COL),
    wgsl("loss_distill", LOSS_DISTILL),
    wgsl("loss_mse", LOSS_MSE),
    wgsl("loss_replay", LOSS_REPLAY),
    wgsl("loss_scale", LOSS_SCALE),
    wgsl("loss_xent", LOSS_XENT),
    wgsl("matmul", MATMUL),
    wgsl("matmul_vec4", MATMUL_VEC4),
    wgsl("metrics", METRICS),
    wgsl("optim", OPTIM),
    wgsl("optim_clip", OPTIM_CLIP),
    wgsl("optim_multi", OPTIM_MULTI),
    wgsl("permute", PERMUTE),
    wgsl("pool", POOL),
    wgsl("reduce", REDUCE),
    wgsl("reduce_subgroup", REDUCE_SUBGROUP),
    wgsl("rng", RNG),
    wgsl("softmax", SOFTMAX),
    wgsl("step", STEP),
];

/// Every library, by name (`shaders/lib/<name>.wgsl`), in alphabetical order.
pub const LIBRARIES: &[Wgsl] = &[
    wgsl("activation_fns", lib::ACTIVATION_FNS),
    wgsl("common", lib::COMMON),
    wgsl("conv_dz", lib::CONV_DZ),
    wgsl("conv_gemm", lib::CONV_GEMM),
    wgsl("conv_geom", lib::CONV_GEOM),
    wgsl("conv_tap", lib::CONV_TAP),
    wgsl("optim_rules", lib::OPTIM_RULES),
    wgsl("optim_segments", lib::OPTIM_SEGMENTS),
    wgsl("philox", lib::PHILOX),
    wgsl("row_reduce_lib", lib::ROW_REDUCE_LIB),
];

/// The entry shader `shaders/<name>.wgsl`, if there is one.
///
/// A `const fn`, so a launcher can name its shader in a constant and an unknown name fails
/// the build:
///
/// ```
/// const MATMUL: &str = match accrete_shaders::entry("matmul") {
///     Some(source) => source,
///     None => panic!("no shaders/matmul.wgsl"),
/// };
/// assert_eq!(MATMUL, accrete_shaders::MATMUL);
/// assert_eq!(accrete_shaders::entry("common"), None); // a library, not an entry shader
/// ```
pub const fn entry(name: &str) -> Option<&'static str> {
    find(ENTRIES, name)
}

/// The library `shaders/lib/<name>.wgsl`, if there is one (a `const fn`, as [`entry`]).
pub const fn library(name: &str) -> Option<&'static str> {
    find(LIBRARIES, name)
}

const fn find(files: &[Wgsl], name: &str) -> Option<&'static str> {
    let mut i = 0;
    while i < files.len() {
        if same(files[i].name, name) {
            return Some(files[i].source);
        }
        i += 1;
    }
    None
}

/// `a == b` for `const` contexts (`str`'s `PartialEq` is not `const`).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The `.wgsl` files of `dir` as (stem, text), sorted by name.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("read the shader folder")
            .map(|e| e.expect("folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
            .map(|p| {
                let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&p).expect("read a .wgsl file");
                (stem, text)
            })
            .collect();
        out.sort();
        out
    }

    /// Checks that `table` lists exactly the files of `dir`, in sorted order, each with its text.
    fn check_table(table: &[Wgsl], dir: &Path) {
        let on_disk = files(dir);
        let names: Vec<&str> = table.iter().map(|w| w.name).collect();
        let stems: Vec<&str> = on_disk.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names, stems,
            "table (left) against the .wgsl files of {dir:?}"
        );
        for (w, (stem, text)) in table.iter().zip(&on_disk) {
            assert!(
                w.source == text,
                "{stem}: the table holds another file's text"
            );
        }
    }

    // A file added to a folder but not exported (or exported under another name, or with
    // another file's text) fails here.
    #[test]
    fn tables_list_every_file_of_the_folders() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        check_table(ENTRIES, root);
        check_table(LIBRARIES, &root.join("lib"));
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(entry("matmul"), Some(MATMUL));
        assert_eq!(entry("step"), Some(STEP));
        assert_eq!(library("common"), Some(lib::COMMON));
        assert_eq!(library("row_reduce_lib"), Some(lib::ROW_REDUCE_LIB));
        // The two kinds do not mix, and names are whole.
        assert_eq!(entry("common"), None);
        assert_eq!(library("matmul"), None);
        assert_eq!(entry("matmu"), None);
        assert_eq!(entry("matmul_vec4"), Some(MATMUL_VEC4));
    }

    #[test]
    fn entries_name_known_libraries() {
        for w in ENTRIES {
            let names = declared_libraries(w.source)
                .unwrap_or_else(|| panic!("{}.wgsl lacks the libraries line", w.name));
            for n in names {
                assert!(library(n).is_some(), "{}.wgsl names lib/{n}.wgsl", w.name);
            }
        }
        assert_eq!(declared_libraries(STEP), Some(vec![]));
        assert_eq!(
            declared_libraries(CONV_WGRAD),
            Some(vec![
                "common",
                "activation_fns",
                "conv_geom",
                "conv_tap",
                "conv_dz"
            ])
        );
        assert_eq!(declared_libraries(lib::COMMON), None);
    }
}
