//! The CPU backend's element-wise, reduction, RNG and gather kernels against the WGSL run on
//! a GPU adapter (lavapipe in CI), whatever ACCRETE_BACKEND says: the Philox words (dropout
//! masks, uniform floats) are the same bits, normals agree within the error of log/cos, and
//! the row/column sums fold in the shader's order, so they are the same bits too.

use accrete::kernels::gather::{gather_stepped_into, PAD_INDEX};
use accrete::kernels::pool::{self, PoolGeom};
use accrete::kernels::reduce::{self, cols_into, has_subgroups, Reduce};
use accrete::kernels::rng::{fill_stepped_into, Distribution, RngKey};
use accrete::{BackendChoice, Gpu, GpuOptions, Tensor};
use accrete_tests::*;
use std::sync::OnceLock;

/// A WebGPU adapter, or None (the test prints why it skips).
fn webgpu() -> Option<&'static Gpu> {
    static G: OnceLock<Option<Gpu>> = OnceLock::new();
    G.get_or_init(|| {
        let opts = GpuOptions {
            backend: BackendChoice::Gpu,
            ..Default::default()
        };
        match pollster::block_on(Gpu::with_options(opts)) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("SKIPPED: no WebGPU adapter to compare the CPU kernels with: {e}");
                None
            }
        }
    })
    .as_ref()
}

fn cpu() -> &'static Gpu {
    static G: OnceLock<Gpu> = OnceLock::new();
    G.get_or_init(Gpu::cpu)
}

/// `dist` drawn on `g` at global step `step` (a recorded dropout's `counter[1]`).
fn draw_on(g: &Gpu, dist: Distribution, key: RngKey, step: u32, n: usize) -> Vec<f32> {
    let out = Tensor::full(g, &[n], f32::NAN).unwrap();
    let counter = Tensor::from_u32(g, &[4], &[0, step, 0, 0]).unwrap();
    g.run(&[&fill_stepped_into(dist, key, &counter, &out).unwrap()])
        .unwrap();
    pollster::block_on(out.read_f32()).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn cpu_and_gpu_draw_the_same_dropout_masks_and_uniforms() {
    let Some(wg) = webgpu() else { return };
    let key = RngKey {
        seed: 0xdead_beef_0bad_f00d,
        stream: 7,
        offset: 3,
    };
    let mut worst = 0.0f64;
    for (n, step) in [(1usize, 0u32), (1000, 1), (4099, 41), (70_000, u32::MAX)] {
        for rate in [0.0f32, 0.1, 0.5, 0.9] {
            let d = Distribution::DropoutMask { rate };
            assert_eq!(
                bits(&draw_on(cpu(), d, key, step, n)),
                bits(&draw_on(wg, d, key, step, n)),
                "dropout rate {rate} n={n} step={step}"
            );
        }
        let u = Distribution::Uniform { lo: 0.0, hi: 1.0 };
        assert_eq!(
            bits(&draw_on(cpu(), u, key, step, n)),
            bits(&draw_on(wg, u, key, step, n)),
            "uniform n={n} step={step}"
        );
        let nd = Distribution::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let (a, b) = (
            draw_on(cpu(), nd, key, step, n),
            draw_on(wg, nd, key, step, n),
        );
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            // log, sqrt and cos differ between libm and the GPU's by a few ulps (the
            // largest errors come from ln u1 with u1 close to 1, cancelling).
            let err = (x as f64 - y as f64).abs() / (y as f64).abs().max(1.0);
            worst = worst.max(err);
            assert!(
                err <= 2e-5,
                "normal {i}: cpu {x} gpu {y} (n={n} step={step})"
            );
        }
    }
    eprintln!("normal draws: largest |cpu − gpu| / max(1, |gpu|) = {worst:e}");
}

#[test]
fn cpu_row_and_column_sums_are_the_gpus_bits() {
    let Some(wg) = webgpu() else { return };
    for (rows, cols) in [(1usize, 1usize), (3, 63), (17, 65), (129, 10), (5, 1000)] {
        let x = uniform(&mut rng((rows * 131 + cols) as u64), rows * cols, -3.0, 3.0);
        let mut got = Vec::new();
        for g in [cpu(), wg] {
            let t = Tensor::from_f32(g, &[rows, cols], &x).unwrap();
            let r = reduce::rows(Reduce::Mean, &t).unwrap();
            let c = reduce::cols(Reduce::Sum, &t).unwrap();
            got.push((
                bits(&pollster::block_on(r.read_f32()).unwrap()),
                pollster::block_on(c.read_f32()).unwrap(),
                has_subgroups(g),
            ));
        }
        assert_eq!(got[0].0, got[1].0, "row means {rows}x{cols}");
        if !got[1].2 {
            // Both serial: the same order.
            assert_eq!(
                bits(&got[0].1),
                bits(&got[1].1),
                "column sums {rows}x{cols}"
            );
        }
    }
}

/// The CPU device has no subgroups, so `cols_into` takes the serial kernel: rows added in
/// order per column, then scaled.
#[test]
fn cols_into_takes_the_serial_path_on_the_cpu() {
    assert!(!has_subgroups(cpu()), "the CPU device has no subgroups");
    let (rows, cols) = (37, 19);
    let x = uniform(&mut rng(5), rows * cols, -2.0, 2.0);
    let t = Tensor::from_f32(cpu(), &[rows, cols], &x).unwrap();
    let out = Tensor::full(cpu(), &[cols], f32::NAN).unwrap();
    cpu()
        .run(&[&cols_into(Reduce::Mean, &t, &out).unwrap()])
        .unwrap();
    let scale = 1.0 / rows as f32;
    let want: Vec<f32> = (0..cols)
        .map(|c| (0..rows).fold(0.0f32, |s, r| s + x[r * cols + c]) * scale)
        .collect();
    assert_eq!(
        bits(&pollster::block_on(out.read_f32()).unwrap()),
        bits(&want)
    );
}

/// A stepped gather whose batch lies past the end of its index buffer is an error on the
/// CPU backend (a GPU reads some in-bounds word there), never a panic or a silent copy.
#[test]
fn cpu_gather_past_the_index_buffer_is_an_error() {
    let g = cpu();
    let src = Tensor::from_f32(g, &[4, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).unwrap();
    let idx = Tensor::from_u32(g, &[4], &[3, PAD_INDEX, 0, 2]).unwrap();
    let out = Tensor::full(g, &[2, 2], f32::NAN).unwrap();
    let counter = Tensor::from_u32(g, &[4], &[1, 0, 0, 0]).unwrap();
    g.run(&[&gather_stepped_into(&src, &idx, &counter, &out).unwrap()])
        .unwrap();
    assert_eq!(
        pollster::block_on(out.read_f32()).unwrap(),
        vec![0.0, 1.0, 4.0, 5.0]
    );
    let counter = Tensor::from_u32(g, &[4], &[2, 0, 0, 0]).unwrap();
    let err = g
        .run(&[&gather_stepped_into(&src, &idx, &counter, &out).unwrap()])
        .unwrap_err();
    assert!(err.to_string().contains("past the end"), "{err}");
}

/// Max pooling with overlapping windows (an input in several windows, ties included): the
/// CPU's scatter of each window's gradient to its argmax, in window order, gives the same
/// bits as the shader's gather over the windows containing each input.
#[test]
fn cpu_max_pool_is_the_gpus_bits() {
    let Some(wg) = webgpu() else { return };
    for (b, c, h, w, size, stride) in [
        (2, 3, 9, 11, 3, 2),
        (12, 8, 30, 30, 3, 1),
        (4, 2, 28, 28, 2, 2),
    ] {
        let g = PoolGeom {
            batch: b,
            channels: c,
            height: h,
            width: w,
            size,
            stride,
        };
        let n_in: usize = g.input_shape().iter().product();
        let n_out: usize = g.output_shape().iter().product();
        // Halves: ties in most windows.
        let x: Vec<f32> = uniform(&mut rng(n_in as u64), n_in, -2.0, 2.0)
            .iter()
            .map(|v| (v * 2.0).round() / 2.0)
            .collect();
        let dy = uniform(&mut rng(n_out as u64 + 1), n_out, -1.0, 1.0);
        let mut got = Vec::new();
        for d in [cpu(), wg] {
            let y = Tensor::full(d, &g.output_shape(), f32::NAN).unwrap();
            let arg = Tensor::from_u32(d, &g.output_shape(), &vec![u32::MAX; n_out]).unwrap();
            let dx = Tensor::full(d, &g.input_shape(), f32::NAN).unwrap();
            let tx = Tensor::from_f32(d, &g.input_shape(), &x).unwrap();
            let tdy = Tensor::from_f32(d, &g.output_shape(), &dy).unwrap();
            let fwd = pool::max_forward_into(&tx, &g, &y, &arg).unwrap();
            let bwd = pool::max_backward_into(&tdy, &arg, &g, &dx).unwrap();
            d.run(&[&fwd, &bwd]).unwrap();
            got.push((
                bits(&pollster::block_on(y.read_f32()).unwrap()),
                pollster::block_on(arg.read_u32()).unwrap(),
                bits(&pollster::block_on(dx.read_f32()).unwrap()),
            ));
        }
        let what = format!("{b}x{c}x{h}x{w} size {size} stride {stride}");
        assert_eq!(got[0].0, got[1].0, "y {what}");
        assert_eq!(got[0].1, got[1].1, "argmax {what}");
        assert_eq!(got[0].2, got[1].2, "dx {what}");
    }
}
