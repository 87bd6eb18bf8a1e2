//! matmul autotuning: the environment's modes, the per-adapter JSON cache (round trip,
//! atomic replacement, corrupted or foreign files ignored with a warning), the explicit
//! tuning pass and reuse of the cached choice (a launch never tunes; it reads the cache),
//! that a tuned choice gives the same bits as the deterministic default, that the GEMMs a
//! graph lists for the pass are the ones it launches, and that the trainer runs the pass.
//! Each test that changes the autotune mode opens its own device, so the shared test device
//! stays in the default mode (off).

use accrete::gpu::{AutotuneCache, AutotuneMode, TunedEntry, AUTOTUNE_CACHE_VERSION};
use accrete::kernels::matmul::{
    autotune, choose, class_key, matmul_into, tune_problems, MatmulProblem, MatmulSpec, Precision,
    Variant,
};
use accrete::kernels::step;
use accrete::nn::graph::{gemm_problems, tune_gemms, ConvAlgo};
use accrete::nn::{Graph, LayerSpec, Model, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete::{Gpu, Tensor};
use accrete_tests::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A fresh, empty directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("accrete-autotune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Autotuning times WGSL variants on a GPU; the CPU backend runs one fixed GEMM and tunes
/// nothing (checked by `the_cpu_backend_tunes_nothing`). True (after saying so) on the CPU.
fn skip_on_cpu(test: &str) -> bool {
    if gpu().is_cpu() {
        eprintln!("{test}: skipped on the CPU backend (autotuning times GPU kernels)");
        return true;
    }
    false
}

fn own_gpu() -> Gpu {
    pollster::block_on(Gpu::new()).expect("a GPU adapter")
}

fn entry(v: Variant) -> TunedEntry {
    TunedEntry {
        choice: serde_json::to_value(v).unwrap(),
        name: v.name(),
        seconds: BTreeMap::from([(v.name(), 0.001_464_843_75)]), // exact in binary
        timing: "timestamp".into(),
        measured_on: "40x36x44".into(),
    }
}

/// Equal up to the last bit of the timings (serde_json's float parsing is not exact).
fn assert_same_entry(got: &TunedEntry, want: &TunedEntry) {
    assert_eq!(
        (&got.choice, &got.name, &got.timing, &got.measured_on),
        (&want.choice, &want.name, &want.timing, &want.measured_on)
    );
    assert_eq!(
        got.seconds.keys().collect::<Vec<_>>(),
        want.seconds.keys().collect::<Vec<_>>()
    );
    for (k, s) in &got.seconds {
        assert!((s - want.seconds[k]).abs() <= 1e-12 * s.abs(), "{k}: {s}");
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn modes_from_the_environment_values() {
    let p = || Some(PathBuf::from("/c/autotune.json"));
    assert_eq!(
        AutotuneMode::parse(None, None, p()),
        (AutotuneMode::Off, None)
    );
    assert_eq!(
        AutotuneMode::parse(Some("0"), None, p()),
        (AutotuneMode::Off, None)
    );
    assert_eq!(
        AutotuneMode::parse(Some("1"), None, p()),
        (AutotuneMode::Persist("/c/autotune.json".into()), None)
    );
    assert_eq!(
        AutotuneMode::parse(Some(" ON "), Some("/x.json"), p()),
        (AutotuneMode::Persist("/x.json".into()), None)
    );
    assert_eq!(
        AutotuneMode::parse(Some("memory"), Some("/x.json"), p()),
        (AutotuneMode::Memory, None)
    );
    // On without anywhere to persist: memory, with a warning.
    let (mode, warning) = AutotuneMode::parse(Some("1"), Some(""), None);
    assert_eq!(mode, AutotuneMode::Memory);
    assert!(warning.unwrap().contains("no cache path"));
    // Nonsense leaves it off, with a warning naming the value.
    let (mode, warning) = AutotuneMode::parse(Some("fastest"), None, p());
    assert_eq!(mode, AutotuneMode::Off);
    assert!(warning.unwrap().contains("fastest"));
}

#[test]
fn cache_round_trip_is_atomic() {
    let dir = scratch_dir("roundtrip");
    let path = dir.join("sub").join("autotune.json");
    let mut cache = AutotuneCache::default();
    cache
        .adapters
        .entry("gpu A | drv | 1.0 | Vulkan".into())
        .or_default()
        .insert(
            "matmul f32 nn m64 n64 k64 quads11".into(),
            entry(Variant::VEC4DB_128X128),
        );
    cache.save(&path).unwrap();
    let (back, warning) = AutotuneCache::load(&path);
    assert_eq!(warning, None);
    assert_eq!(back, cache);
    assert_eq!(back.version, AUTOTUNE_CACHE_VERSION);
    // Overwriting replaces the file whole and leaves no temporary file behind.
    cache
        .adapters
        .entry("gpu B | drv | 2.0 | Metal".into())
        .or_default()
        .insert("k".into(), entry(Variant::VEC4_64X64));
    cache.save(&path).unwrap();
    assert_eq!(AutotuneCache::load(&path), (cache.clone(), None));
    assert_eq!(files_in(path.parent().unwrap()), ["autotune.json"]);
    // merge_into_file keeps other adapters' and other classes' entries.
    let mine = BTreeMap::from([("k2".to_string(), entry(Variant::VEC4_32X32))]);
    let w = AutotuneCache::merge_into_file(&path, "gpu A | drv | 1.0 | Vulkan", &mine).unwrap();
    assert_eq!(w, None);
    let (merged, _) = AutotuneCache::load(&path);
    assert_eq!(merged.adapters.len(), 2);
    assert_eq!(merged.adapters["gpu A | drv | 1.0 | Vulkan"].len(), 2);
    // A missing file is simply empty.
    assert_eq!(
        AutotuneCache::load(&dir.join("none.json")),
        (AutotuneCache::default(), None)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupted_caches_are_ignored_with_a_warning() {
    if skip_on_cpu("corrupted_caches_are_ignored_with_a_warning") {
        return;
    }
    let dir = scratch_dir("corrupt");
    let path = dir.join("autotune.json");
    let mut good = AutotuneCache::default();
    good.adapters
        .entry("a".into())
        .or_default()
        .insert("k".into(), entry(Variant::VEC4_64X64));
    let good_text = serde_json::to_string(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        (
            "truncated",
            good_text.as_bytes()[..good_text.len() / 2].to_vec(),
        ),
        ("empty", Vec::new()),
        ("wrong type", b"[1, 2, 3]".to_vec()),
        (
            "other version",
            good_text
                .replace("\"version\":1", "\"version\":99")
                .into_bytes(),
        ),
        (
            "unknown field",
            b"{\"version\":1,\"adapters\":{},\"x\":0}".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let (cache, warning) = AutotuneCache::load(&path);
        assert_eq!(cache, AutotuneCache::default(), "{what}");
        let w = warning.unwrap_or_else(|| panic!("{what}: no warning"));
        assert!(w.contains("autotune.json"), "{what}: {w}");
    }
    // A directory where the file should be: a warning, not a panic.
    let as_dir = dir.join("dir.json");
    std::fs::create_dir_all(&as_dir).unwrap();
    assert!(AutotuneCache::load(&as_dir).1.is_some());

    // A device pointed at a corrupted file warns, tunes anyway, and replaces the file with
    // a valid one holding the new choice.
    std::fs::write(&path, b"{\"version\":1,\"adapters\":").unwrap();
    let g = own_gpu();
    g.set_autotune(AutotuneMode::Persist(path.clone()));
    let warnings = g.take_autotune_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("ignoring the autotune cache"),
        "{warnings:?}"
    );
    let a = Tensor::from_f32(&g, &[8, 12], &[0.5; 96]).unwrap();
    let b = Tensor::from_f32(&g, &[12, 4], &[0.25; 48]).unwrap();
    let t = pollster::block_on(autotune(&a, &b, &MatmulSpec::default())).unwrap();
    let (cache, warning) = AutotuneCache::load(&path);
    assert_eq!(warning, None);
    let saved = &cache.adapters[&g.autotune_key()][&t.class];
    assert_eq!(saved.name, t.name);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tuned_by_the_pass_then_cached_and_persisted() {
    if skip_on_cpu("tuned_by_the_pass_then_cached_and_persisted") {
        return;
    }
    let dir = scratch_dir("tune");
    let path = dir.join("autotune.json");
    let g = own_gpu();
    assert_eq!(
        g.autotune_mode(),
        AutotuneMode::Off,
        "tests run with autotuning off"
    );
    g.set_autotune(AutotuneMode::Persist(path.clone()));
    let (m, k, n) = (40, 36, 44);
    let mut r = rng(9);
    let a = Tensor::from_f32(&g, &[m, k], &uniform(&mut r, m * k, -1.0, 1.0)).unwrap();
    let b = Tensor::from_f32(&g, &[k, n], &uniform(&mut r, k * n, -1.0, 1.0)).unwrap();
    let spec = MatmulSpec::default();
    let class = class_key(m, k, n, &spec);
    assert!(g.autotuned(&class).is_none());

    // A launch built before the pass times nothing: the heuristic, and one warning per class.
    let heuristic = Variant::heuristic(&g, m, k, n);
    assert_eq!(choose(&a, &b, &spec).unwrap(), heuristic);
    let c0 = Tensor::full(&g, &[m, n], f32::NAN).unwrap();
    let d0 = matmul_into(&a, &b, None, &c0, &spec).unwrap();
    assert!(g.autotuned(&class).is_none(), "a launch tuned");
    let warnings = g.take_autotune_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&class), "{warnings:?}");
    assert!(!AutotuneCache::load(&path)
        .0
        .adapters
        .contains_key(&g.autotune_key()));

    // The pass: tuned, recorded, saved.
    let problem = MatmulProblem {
        m,
        k,
        n,
        trans_a: false,
        trans_b: false,
    };
    assert_eq!(problem.class_key(), class);
    let tuned = pollster::block_on(tune_problems(&g, &[problem, problem])).unwrap();
    assert_eq!(tuned.len(), 2);
    assert!(!tuned[0].cached && tuned[1].cached, "a class is timed once");
    assert_eq!(tuned[1].choice, tuned[0].choice);
    let e = g.autotuned(&class).expect("tuned by the pass");
    let candidates = Variant::candidates(&g);
    assert_eq!(e.seconds.len(), candidates.len());
    assert!(
        e.seconds.values().all(|s| s.is_finite() && *s > 0.0),
        "{e:?}"
    );
    let chosen: Variant = serde_json::from_value(e.choice.clone()).unwrap();
    assert_eq!(chosen, tuned[0].choice);
    assert!(candidates.iter().any(|(_, v)| *v == chosen));
    assert_eq!(chosen.precision, Precision::F32);
    assert_eq!(e.measured_on, format!("{m}x{k}x{n}"));
    let (file, _) = AutotuneCache::load(&path);
    assert_same_entry(&file.adapters[&g.autotune_key()][&class], &e);

    // Launches built now use the choice, bit-identical to the deterministic default's.
    assert_eq!(choose(&a, &b, &spec).unwrap(), chosen);
    let c = Tensor::full(&g, &[m, n], f32::NAN).unwrap();
    let d = matmul_into(&a, &b, None, &c, &spec).unwrap();
    g.run(&[&d, &d0]).unwrap();
    let got = pollster::block_on(c.read_f32()).unwrap();
    let want = pollster::block_on(c0.read_f32()).unwrap();
    assert_eq!(
        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );

    // Same class, another shape in the bucket: answered from the cache, nothing timed.
    let a2 = Tensor::from_f32(&g, &[33, 36], &vec![0.1; 33 * 36]).unwrap();
    let t = pollster::block_on(autotune(&a2, &b, &spec)).unwrap();
    assert!(t.cached);
    assert_eq!(t.class, class);
    assert_eq!(t.choice, chosen);
    assert_eq!(choose(&a2, &b, &spec).unwrap(), chosen);
    assert!(g.take_autotune_warnings().is_empty());

    // A new device on the same adapter reads the choice from the file.
    let g2 = own_gpu();
    g2.set_autotune(AutotuneMode::Persist(path.clone()));
    assert_same_entry(&g2.autotuned(&class).expect("loaded"), &e);
    // Off: the cached choice is not used, the heuristic is.
    g2.set_autotune(AutotuneMode::Off);
    let a3 = Tensor::from_f32(&g2, &[m, k], &vec![0.1; m * k]).unwrap();
    let b3 = Tensor::from_f32(&g2, &[k, n], &vec![0.1; k * n]).unwrap();
    assert_eq!(
        choose(&a3, &b3, &spec).unwrap(),
        Variant::heuristic(&g2, m, k, n)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_persisted_choice_is_used_as_is_and_bad_ones_are_not() {
    if skip_on_cpu("a_persisted_choice_is_used_as_is_and_bad_ones_are_not") {
        return;
    }
    let dir = scratch_dir("reuse");
    let path = dir.join("autotune.json");
    let g = own_gpu();
    let spec = MatmulSpec {
        trans_b: true,
        ..Default::default()
    };
    let (m, k, n) = (20, 12, 9);
    let class = class_key(m, k, n, &spec);
    let other = class_key(m, k, 300, &spec);
    // A hand-written file: a valid choice for one class, an f16 choice (never autotuned,
    // it changes the rounding) and an unparsable one for others.
    let mut cache = AutotuneCache::default();
    let mine = cache.adapters.entry(g.autotune_key()).or_default();
    mine.insert(class.clone(), entry(Variant::VEC4_32X32));
    mine.insert(other.clone(), entry(Variant::F16_64X64));
    let mut broken = entry(Variant::VEC4_64X64);
    broken.choice = serde_json::json!({"kernel": "warp_specialized"});
    mine.insert(class_key(m, k, 600, &spec), broken);
    cache.save(&path).unwrap();

    g.set_autotune(AutotuneMode::Memory);
    assert!(g.autotuned(&class).is_none(), "memory mode reads no file");
    g.set_autotune(AutotuneMode::Persist(path.clone()));
    assert!(g.take_autotune_warnings().is_empty());
    let a = Tensor::from_f32(&g, &[m, k], &vec![0.5; m * k]).unwrap();
    let b = Tensor::from_f32(&g, &[n, k], &vec![0.5; n * k]).unwrap();
    assert_eq!(choose(&a, &b, &spec).unwrap(), Variant::VEC4_32X32);
    // The f16 and the unparsable entries are not used: launches get the heuristic, and the
    // pass tunes those classes afresh among the f32 candidates.
    for n2 in [300, 600] {
        let b2 = Tensor::from_f32(&g, &[n2, k], &vec![0.5; n2 * k]).unwrap();
        let heuristic = Variant::heuristic(&g, m, k, n2);
        assert_eq!(choose(&a, &b2, &spec).unwrap(), heuristic);
        let problem = MatmulProblem {
            m,
            k,
            n: n2,
            trans_a: false,
            trans_b: true,
        };
        let t = pollster::block_on(tune_problems(&g, &[problem])).unwrap();
        assert!(!t[0].cached, "{:?}", t[0]);
        let v = choose(&a, &b2, &spec).unwrap();
        assert_eq!(v, t[0].choice);
        assert_eq!(v.precision, Precision::F32);
        assert!(Variant::candidates(&g).iter().any(|(_, c)| *c == v));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explicit_choices_bypass_autotuning() {
    let g = own_gpu();
    g.set_autotune(AutotuneMode::Memory);
    let a = Tensor::from_f32(&g, &[16, 8], &[1.0; 128]).unwrap();
    let b = Tensor::from_f32(&g, &[8, 16], &[1.0; 128]).unwrap();
    let spec = MatmulSpec {
        variant: Some(Variant::VEC4_64X64),
        ..Default::default()
    };
    assert_eq!(choose(&a, &b, &spec).unwrap(), Variant::VEC4_64X64);
    assert!(g.autotune_entries().is_empty(), "nothing was tuned");
    // Empty products are never timed, by a launch or by the pass.
    let e = Tensor::from_f32(&g, &[0, 8], &[]).unwrap();
    let v = choose(&e, &b, &MatmulSpec::default()).unwrap();
    assert_eq!(v, Variant::heuristic(&g, 0, 8, 16));
    let empty = MatmulProblem {
        m: 0,
        k: 8,
        n: 16,
        trans_a: false,
        trans_b: false,
    };
    let t = pollster::block_on(tune_problems(&g, &[empty])).unwrap();
    assert_eq!((t[0].choice, t[0].timing.as_str()), (v, "none"));
    assert!(g.autotune_entries().is_empty());
    assert!(g.take_autotune_warnings().is_empty());
}

fn gemm(m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> MatmulProblem {
    MatmulProblem {
        m,
        k,
        n,
        trans_a,
        trans_b,
    }
}

/// `small_cnn` with its first dense layer frozen: its weight gradient goes, its input
/// gradient stays (the convolution below is trainable).
fn frozen_dense_cnn() -> ModelSpec {
    let mut spec = small_cnn();
    match &mut spec.layers[3] {
        LayerSpec::Dense { trainable, .. } => *trainable = false,
        other => panic!("small_cnn changed: layer 3 is {other:?}"),
    }
    spec
}

/// The GEMM list of small_cnn at batch 4, derived by hand: conv 1→4 filters, 3×3, padding 1 on
/// 8×8 (im2col: 4·64 = 256 rows of 9), max-pool to 4×4×4 = 64 features, dense 64→16, dense
/// 16→4. Forward X·Wᵀ [rows, inner]·[cols, inner]ᵀ; weight gradient dZᵀ·X; input gradient
/// dZ·W, except below the lowest trainable layer (the convolution).
#[test]
fn a_graph_lists_its_gemms() {
    let g = gpu();
    let cnn = Model::new(g, small_cnn(), 1).unwrap();
    let f32_ = Precision::F32;
    let conv = [gemm(256, 9, 4, false, true), gemm(4, 256, 9, true, false)];
    let dense = [
        gemm(4, 64, 16, false, true),
        gemm(16, 4, 64, true, false),
        gemm(4, 16, 64, false, false),
        gemm(4, 16, 4, false, true),
        gemm(4, 4, 16, true, false),
        gemm(4, 4, 16, false, false),
    ];
    let im2col = gemm_problems(&cnn, 4, true, ConvAlgo::Im2col, f32_);
    assert_eq!(im2col, [&conv[..], &dense[..]].concat());
    assert_eq!(
        gemm_problems(&cnn, 4, true, ConvAlgo::Implicit, f32_),
        dense
    );
    assert_eq!(
        gemm_problems(&cnn, 4, false, ConvAlgo::Im2col, f32_),
        [conv[0], dense[0], dense[3]]
    );
    let frozen = Model::new(g, frozen_dense_cnn(), 1).unwrap();
    let mut want = [&conv[..], &dense[..]].concat();
    want.remove(3); // the frozen layer's weight gradient
    assert_eq!(
        gemm_problems(&frozen, 4, true, ConvAlgo::Im2col, f32_),
        want
    );
    // Under mixed precision every GEMM names its f16 variant: nothing to tune.
    assert!(gemm_problems(&cnn, 4, true, ConvAlgo::Im2col, Precision::F16).is_empty());
}

/// The pass covers every GEMM the graph launches: after `tune_gemms`, building the graph meets
/// no untuned class (a launch would warn). Built before the pass, it does warn — once per
/// class — so the check can fail.
#[test]
fn tuning_a_graph_leaves_no_launch_untuned() {
    if skip_on_cpu("tuning_a_graph_leaves_no_launch_untuned") {
        return;
    }
    let g = own_gpu();
    g.set_autotune(AutotuneMode::Memory);
    let counter = step::counter(&g, 0).unwrap();
    let build = |model: &Model, batch: usize, train: bool, conv: ConvAlgo| {
        Graph::build(model, batch, train, &counter, 7, conv, Precision::F32).unwrap();
    };
    let cnn = Model::new(&g, small_cnn(), 1).unwrap();
    build(&cnn, 4, true, ConvAlgo::Im2col);
    let classes: std::collections::BTreeSet<String> =
        gemm_problems(&cnn, 4, true, ConvAlgo::Im2col, Precision::F32)
            .iter()
            .map(MatmulProblem::class_key)
            .collect();
    let warnings = g.take_autotune_warnings();
    assert_eq!(warnings.len(), classes.len(), "{warnings:?}");
    assert!(g.autotune_entries().is_empty(), "building the graph tuned");
    let frozen = Model::new(&g, frozen_dense_cnn(), 1).unwrap();
    for (model, batch, train, conv) in [
        (&cnn, 4, true, ConvAlgo::Im2col),
        (&cnn, 4, false, ConvAlgo::Im2col),
        (&cnn, 6, true, ConvAlgo::Implicit),
        (&frozen, 4, true, ConvAlgo::Im2col),
    ] {
        pollster::block_on(tune_gemms(model, batch, train, conv, Precision::F32));
        build(model, batch, train, conv);
        let w = g.take_autotune_warnings();
        assert!(w.is_empty(), "batch {batch} train {train} {conv:?}: {w:?}");
    }
    assert!(g.autotune_entries().len() >= classes.len());
}

/// With autotuning on, the trainer runs the pass before it builds its step and evaluation
/// programs: their GEMM classes are tuned and no launch warns. Off, nothing is tuned.
#[test]
fn the_trainer_tunes_before_building_its_programs() {
    if skip_on_cpu("the_trainer_tunes_before_building_its_programs") {
        return;
    }
    let data = spirals(10, 3);
    let spec = accrete::nn::presets::mlp(2, &[12], 3);
    for on in [false, true] {
        let g = own_gpu();
        if on {
            g.set_autotune(AutotuneMode::Memory);
        }
        let train = TrainSpec {
            batch_size: 8,
            ..Default::default()
        };
        let mut t = Trainer::new(&g, spec.clone(), OptimizerSpec::adam(0.01), train, 5).unwrap();
        let d = GpuDataset::upload(&g, &data).unwrap();
        pollster::block_on(t.fit_epoch(&d)).unwrap();
        pollster::block_on(t.evaluate(&d, 5)).unwrap();
        let entries = g.autotune_entries();
        if !on {
            assert!(entries.is_empty(), "tuned with autotuning off");
            continue;
        }
        let f32_ = Precision::F32;
        let implicit = ConvAlgo::Implicit;
        let problems = [
            gemm_problems(&t.model, 8, true, implicit, f32_),
            gemm_problems(&t.model, 5, false, implicit, f32_),
        ]
        .concat();
        assert_eq!(problems.len(), 5 + 2, "{problems:?}");
        for p in problems {
            assert!(entries.contains_key(&p.class_key()), "{p:?} not tuned");
        }
        let w = g.take_autotune_warnings();
        assert!(w.is_empty(), "{w:?}");
    }
}

#[test]
fn the_cpu_backend_tunes_nothing() {
    let g = Gpu::cpu();
    let problems = [
        gemm(96, 80, 72, false, false),
        gemm(64, 96, 32, true, false),
    ];
    let tuned = pollster::block_on(tune_problems(&g, &problems)).unwrap();
    for t in &tuned {
        assert!(!t.cached && t.seconds.is_empty(), "{t:?}");
        assert_eq!(
            t.choice,
            Variant::heuristic(&g, 1, 1, 1),
            "one fixed variant: {t:?}"
        );
    }
}

#[test]
fn the_cpu_backend_refuses_f16_with_a_clear_message() {
    let g = Gpu::cpu();
    let err = Variant::F16_64X64.validate(&g).unwrap_err().to_string();
    assert!(
        err.contains("SHADER_F16") && err.contains("CPU backend computes in f32 only"),
        "{err}"
    );
}
