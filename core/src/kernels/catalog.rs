//! The catalogue of kernel launches, checked on the CPU with naga (wgpu's shader compiler):
//! every `@compute` entry point of every shader in [`all_shaders`], with representative
//! injected constants (the ones its launcher passes: tile sizes, flags, activation codes)
//! and the Rust uniform struct the launcher binds at `@group(0) @binding(0)`.
//!
//! The tests assemble each launch's module exactly as `Gpu::pipeline` does
//! ([`Shader::module_source`]: constants, libraries, source), parse and validate it with the
//! device features the launcher requires, and compare the size of the entry point's uniform
//! (naga's layouter, WGSL's layout rules) with `size_of` of the Rust struct — a field added
//! on one side only, or padding that differs, fails here instead of as a wgpu validation
//! error (or garbage parameters) on a GPU. A catalogue that misses an entry point fails too.
//!
//! The constants are representative, not exhaustive: matmul's are written out here as
//! `matmul_into` assembles them (for every named [`Variant`]); the convolutions' come from
//! `ConvSpec::consts` itself.

use super::conv::{self, ConvGeom, ConvSpec, ConvTiles};
use super::matmul::{self, Precision, Variant};
use super::{
    activation, agem, all_shaders, clip, consts, elementwise, ewc, gather, loss, loss_replay,
    loss_scale, metrics, optim, permute, pool, reduce, rng, softmax, step, Activation, ConstVal,
};
use crate::gpu::Shader;
use std::collections::{BTreeMap, BTreeSet};

/// One launch: a shader's entry point with its injected constants, the size of the Rust
/// struct bound at binding 0, and the device features the launcher requires.
struct Launch {
    shader: Shader,
    entry: &'static str,
    consts: String,
    params: usize,
    features: wgpu::Features,
}

fn launch<P>(shader: Shader, entry: &'static str, consts: String) -> Launch {
    Launch {
        shader,
        entry,
        consts,
        params: size_of::<P>(),
        features: wgpu::Features::empty(),
    }
}

/// Launches without injected constants: `entries` of `shader`, all binding `P`.
fn plain<P>(shader: Shader, entries: &[&'static str]) -> Vec<Launch> {
    entries
        .iter()
        .map(|e| launch::<P>(shader, e, String::new()))
        .collect()
}

/// Every launch the kernels make, with representative constants.
fn launches() -> Vec<Launch> {
    let mut all = Vec::new();
    for act in Activation::ALL {
        let defs = consts(&[("ACT", ConstVal::U(act.code()))]);
        for entry in ["forward", "backward"] {
            all.push(launch::<activation::Params>(
                activation::SHADER,
                entry,
                defs.clone(),
            ));
        }
    }
    for op in [0, 1, 2] {
        let defs = consts(&[("OP", ConstVal::U(op))]);
        all.push(launch::<elementwise::BinParams>(
            elementwise::BINARY,
            "binary",
            defs,
        ));
    }
    let defs = consts(&[("OP", ConstVal::U(0))]);
    all.push(launch::<elementwise::BinParams>(
        elementwise::BINARY,
        "bias_add",
        defs,
    ));
    all.extend(plain::<elementwise::AxpyParams>(
        elementwise::AXPY,
        &["axpy", "scale"],
    ));
    all.extend(plain::<softmax::RowParams>(softmax::SHADER, &["main"]));
    all.extend(plain::<softmax::RowParams>(
        reduce::SHADER,
        &["rows", "cols"],
    ));
    all.extend(plain::<softmax::RowParams>(reduce::ARGMAX, &["main"]));
    for (lanes, force_serial) in [(1, false), (8, false), (32, true)] {
        let defs = consts(&[
            ("TR", ConstVal::U(lanes)),
            ("FORCE_SERIAL", ConstVal::B(force_serial)),
        ]);
        let mut l = launch::<softmax::RowParams>(reduce::SUBGROUP, "cols", defs);
        l.features = wgpu::Features::SUBGROUP;
        all.push(l);
    }
    all.extend(plain::<loss::XentParams>(
        loss::XENT,
        &["main", "with_metrics"],
    ));
    all.extend(plain::<softmax::RowParams>(loss::MSE, &["main", "masked"]));
    all.extend(plain::<softmax::RowParams>(loss::DISTILL, &["main"]));
    all.extend(plain::<loss_replay::Params>(loss_replay::SHADER, &["main"]));
    all.extend(plain::<agem::Params>(
        agem::SHADER,
        &["dots", "finalize", "project"],
    ));
    all.extend(plain::<ewc::Params>(ewc::FISHER, &["accumulate", "finish"]));
    all.extend(plain::<ewc::Params>(ewc::PENALTY, &["main"]));
    all.extend(plain::<loss_scale::Params>(
        loss_scale::SHADER,
        &["scale", "unscale", "update"],
    ));
    let rules = ["sgd", "momentum", "adagrad", "rmsprop", "adam"];
    all.extend(plain::<optim::Params>(optim::SHADER, &rules));
    all.extend(plain::<optim::Params>(optim::MULTI, &rules));
    all.extend(plain::<optim::ClipParams>(optim::CLIP, &["sumsq", "apply"]));
    all.extend(plain::<clip::Params>(
        clip::SHADER,
        &["sumsq", "finalize", "apply"],
    ));
    // MultiClip runs clip.wgsl's `finalize` with its own ClipParams.
    all.extend(plain::<optim::ClipParams>(clip::SHADER, &["finalize"]));
    all.extend(plain::<rng::Params>(
        rng::SHADER,
        &["draw_uniform", "draw_normal", "draw_bernoulli"],
    ));
    all.extend(plain::<gather::Params>(gather::SHADER, &["main", "pair"]));
    all.extend(plain::<permute::Params>(permute::SHADER, &["main"]));
    all.extend(plain::<pool::Params>(
        pool::SHADER,
        &["max_forward", "max_backward", "avg_forward", "avg_backward"],
    ));
    all.extend(plain::<step::Params>(step::SHADER, &["advance"]));
    all.extend(plain::<metrics::Params>(
        metrics::SHADER,
        &["classify", "regress", "regress_labelled"],
    ));
    all.extend(plain::<conv::Params>(conv::SHADER, &["im2col", "col2im"]));
    all.extend(conv_launches());
    all.extend(matmul_launches());
    all
}

/// The implicit-GEMM convolutions: each tile shape and precision, a 3×3 stride-2 kernel
/// with an activation and a 1×1 stride-1 one without (dz = dy, `zin` unread).
fn conv_launches() -> Vec<Launch> {
    let geom = |kernel, stride, padding| ConvGeom {
        batch: 2,
        channels: 3,
        height: 9,
        width: 7,
        kernel,
        stride,
        padding,
    };
    let mut all = Vec::new();
    for tiles in [ConvTiles::LARGE, ConvTiles::TALL, ConvTiles::MEDIUM] {
        for precision in [Precision::F32, Precision::F16] {
            for (geom, activation) in [
                (geom(3, 2, 1), Activation::Gelu),
                (geom(1, 1, 0), Activation::Identity),
            ] {
                let spec = ConvSpec {
                    geom,
                    filters: 5,
                    activation,
                    tiles: Some(tiles),
                    precision,
                };
                let mut add = |shader, entry, has_bias| {
                    let mut l =
                        launch::<conv::ConvParams>(shader, entry, spec.consts(&tiles, has_bias));
                    l.features = spec.required_features();
                    all.push(l);
                };
                for has_bias in [false, true] {
                    add(conv::FORWARD, "main", has_bias);
                    add(conv::FORWARD, "main_z", has_bias);
                }
                add(conv::WGRAD, "main", false);
                add(conv::WGRAD, "reduce", false);
                add(conv::DGRAD, "main", false);
            }
        }
    }
    all
}

/// Every named matmul variant, once plain and once with transposes, bias and an
/// activation (and, for the vec4 kernels, scalar instead of quad loads); the f32 ones also
/// with the row sums (the virtual column of ones), quad and scalar loads.
fn matmul_launches() -> Vec<Launch> {
    let mut all = Vec::new();
    for (_, v) in Variant::ALL {
        let mut cases = vec![
            (false, Activation::Identity, false),
            (true, Activation::Gelu, false),
        ];
        if v.precision == Precision::F32 {
            cases.extend([
                (false, Activation::Identity, true),
                (true, Activation::Identity, true),
            ]);
        }
        for (flags, act, row_sums) in cases {
            // As matmul_into assembles them.
            let (shader, defs) = matmul::shader_defs(
                &v,
                &matmul::Flags {
                    trans_a: flags,
                    trans_b: flags,
                    has_bias: flags && !row_sums,
                    activation: act,
                    vec_a: !flags,
                    vec_b: !flags,
                    row_sums,
                },
            );
            let mut l = launch::<matmul::Params>(shader, "main", defs);
            l.features = v.required_features();
            all.push(l);
        }
    }
    all
}

/// naga's capabilities for a device with `features`, as wgpu maps them (for the features
/// the kernels use).
fn capabilities(features: wgpu::Features) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as C;
    let mut caps = C::empty();
    caps.set(
        C::SHADER_FLOAT16,
        features.contains(wgpu::Features::SHADER_F16),
    );
    caps.set(C::SUBGROUP, features.contains(wgpu::Features::SUBGROUP));
    caps
}

/// The launch's module, parsed and validated, with naga's analysis.
fn compile(l: &Launch) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let src = l.shader.module_source(&l.consts);
    let module = naga::front::wgsl::parse_str(&src)
        .map_err(|e| e.emit_to_string_with_path(&src, l.shader.name))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        capabilities(l.features),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(&src, l.shader.name))?;
    Ok((module, info))
}

/// Checks the launch's entry point and its binding-0 uniform against the Rust struct.
fn check(l: &Launch, module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<(), String> {
    let ep = module
        .entry_points
        .iter()
        .position(|ep| ep.name == l.entry && ep.stage == naga::ShaderStage::Compute)
        .ok_or("no such @compute entry point")?;
    let binding0 = naga::ResourceBinding {
        group: 0,
        binding: 0,
    };
    let (handle, var) = module
        .global_variables
        .iter()
        .find(|(_, v)| v.binding.as_ref() == Some(&binding0))
        .ok_or("no @group(0) @binding(0) variable")?;
    if var.space != naga::AddressSpace::Uniform {
        return Err(format!("binding 0 is in {:?}, not uniform", var.space));
    }
    // Gpu::dispatch always binds the uniform; with wgpu's automatic layout an entry point that
    // does not use it has no binding 0, and the bind group would be rejected.
    if info.get_entry_point(ep)[handle].is_empty() {
        return Err("the entry point does not use the binding-0 uniform".into());
    }
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| format!("layout: {e}"))?;
    let wgsl = layouter[var.ty].size as usize;
    if wgsl != l.params {
        let ty = module.types[var.ty].name.as_deref().unwrap_or("?");
        return Err(format!(
            "uniform `{ty}` is {wgsl} bytes in WGSL, the Rust struct {} bytes",
            l.params
        ));
    }
    Ok(())
}

fn label(l: &Launch) -> String {
    format!(
        "{}::{} ({:?})",
        l.shader.name,
        l.entry,
        l.consts.replace('\n', " ")
    )
}

#[test]
fn every_launch_compiles_and_binds_a_uniform_of_its_params_size() {
    let mut failures = Vec::new();
    let all = launches();
    for l in &all {
        if let Err(e) = compile(l).and_then(|(m, info)| check(l, &m, &info)) {
            failures.push(format!("{}: {e}", label(l)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} launches fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn the_catalogue_covers_every_entry_point_of_every_shader() {
    let shaders: BTreeSet<&str> = all_shaders().iter().map(|s| s.name).collect();
    // Every entry shader file is some Shader's source, and all_shaders() lists it.
    let files: BTreeSet<&str> = accrete_shaders::ENTRIES.iter().map(|w| w.name).collect();
    assert_eq!(shaders, files, "all_shaders() against shaders/*.wgsl");
    for s in all_shaders() {
        assert_eq!(accrete_shaders::entry(s.name), Some(s.source), "{}", s.name);
    }

    // The entry points each shader declares (from any launch's module: the source is the
    // same), against the entry points the catalogue launches.
    let mut declared: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut launched: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for l in launches() {
        assert!(
            shaders.contains(l.shader.name),
            "{} is not in all_shaders()",
            l.shader.name
        );
        launched
            .entry(l.shader.name)
            .or_default()
            .insert(l.entry.to_string());
        if declared.contains_key(l.shader.name) {
            continue;
        }
        let (module, _) = compile(&l).unwrap_or_else(|e| panic!("{}: {e}", label(&l)));
        let entries = module
            .entry_points
            .iter()
            .filter(|ep| ep.stage == naga::ShaderStage::Compute)
            .map(|ep| ep.name.clone())
            .collect();
        declared.insert(l.shader.name, entries);
    }
    for name in &shaders {
        let have = declared.get(name).cloned().unwrap_or_default();
        let want = launched.get(name).cloned().unwrap_or_default();
        assert!(!want.is_empty(), "the catalogue launches nothing of {name}");
        assert_eq!(
            have, want,
            "{name}: entry points declared (left) against launched (right)"
        );
    }
}

#[test]
fn headers_list_the_libraries_the_launchers_prepend() {
    let name_of = |src: &str| {
        accrete_shaders::LIBRARIES
            .iter()
            .find(|w| w.source == src)
            .map_or("<not a library of accrete_shaders>", |w| w.name)
    };
    for s in all_shaders() {
        let prepended: Vec<&str> = s.libs.iter().map(|l| name_of(l)).collect();
        let declared = accrete_shaders::declared_libraries(s.source)
            .unwrap_or_else(|| panic!("{}.wgsl has no libraries line in its header", s.name));
        assert_eq!(
            declared, prepended,
            "{}.wgsl: libraries its header lists (left) against the launcher's (right)",
            s.name
        );
    }
}
