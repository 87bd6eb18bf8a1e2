//! Convolution building blocks (im2col, col2im, swap_last_two, and the conv forward and
//! backward passes composed from them with matmul) and pooling, against f64 references on
//! awkward NCHW geometries (batch 1 and 3, H ≠ W, kernels 1/2/3/5, strides 1–3, padding
//! 0–2, kernels larger than the image, strides that skip pixels, overlapping pools), with
//! NaN-poisoned outputs.
//!
//! Exact: im2col and swap_last_two (copies), max pooling values and argmax (comparisons).
//! Sums: n f32 terms added or fma-chained in any fixed order have
//! |error| ≤ (n + 2)·2⁻²³·Σ|terms| (Higham's γ bound with margin); Σ|terms| comes from the
//! same f64 reference evaluated on absolute values.
//! - conv forward: C·K·K products plus the bias;
//! - dW and db: B·OH·OW terms each;
//! - dx: dcols = dY_mat·W (F products each), then col2im adds ≤ K² of them, so
//!   (F + K² + 4)·2⁻²³·Σ|dy·w|;
//! - col2im alone: ≤ K² terms; pooling backward: ≤ size² windows;
//! - average pooling multiplies the sum by 1/size² rounded to f32: one more 2⁻²³ relative.
//!
//! The implicit-GEMM kernels (no im2col buffer) get the same references and bounds, with
//! every tile shape, identity and ReLU (the activation's backward fused into theirs):
//! forward C·K·K + 1 terms; dW/db B·OH·OW terms plus one per split; dx F·K·K terms.
//! With f16 tiles (operands rounded to f16 in workgroup memory) each product's operands
//! add their f16 rounding, bounded per element from the actual operands with matmul's f16
//! error model (`matmul::reference`, as in matmul.rs); the f16 results must also leave the f32 bound somewhere (short sums),
//! so a kernel that silently computes in f32 fails; db stays f32 (the f32 tiles' bits).

use accrete::kernels::conv::{
    self, col2im_into, im2col_into, implicit_dgrad_into, implicit_forward_into,
    implicit_wgrad_into, ConvGeom, ConvSpec, ConvTiles,
};
use accrete::kernels::matmul::reference::f16_operand_bounds;
use accrete::kernels::matmul::{matmul_into, MatmulSpec, Precision};
use accrete::kernels::permute::{self, swap_last_two_into};
use accrete::kernels::pool::{self, PoolGeom};
use accrete::kernels::reduce::{cols_into, Reduce};
use accrete::kernels::Activation;
use accrete::Tensor;
use accrete_tests::*;

fn cg(
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> ConvGeom {
    ConvGeom {
        batch,
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
    }
}

/// (geometry, filters).
fn conv_cases() -> Vec<(ConvGeom, usize)> {
    vec![
        (cg(1, 1, 5, 7, 3, 1, 1), 1),
        (cg(3, 2, 5, 7, 3, 2, 0), 4),
        (cg(3, 3, 7, 5, 5, 1, 2), 17),
        (cg(1, 3, 5, 7, 1, 1, 0), 5),
        (cg(1, 2, 5, 7, 1, 2, 0), 3), // stride > kernel: some pixels are read by no patch
        (cg(2, 2, 4, 3, 5, 2, 2), 2), // kernel larger than the image
        (cg(2, 3, 6, 9, 3, 2, 1), 16),
        (cg(3, 1, 8, 6, 2, 3, 1), 3), // even kernel, stride 3
        (cg(1, 2, 3, 3, 3, 1, 0), 4), // a single output position
        (cg(2, 1, 28, 28, 5, 1, 2), 8),
    ]
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn geometry_sizes_follow_pytorch() {
    let g = cg(2, 1, 28, 28, 5, 1, 2);
    assert_eq!(
        (g.out_h(), g.out_w(), g.patch(), g.rows()),
        (28, 28, 25, 1568)
    );
    let g = cg(3, 2, 5, 7, 3, 2, 0);
    assert_eq!((g.out_h(), g.out_w(), g.patch(), g.rows()), (2, 3, 18, 18));
    let g = cg(1, 3, 6, 9, 3, 2, 1);
    assert_eq!((g.out_h(), g.out_w()), (3, 5));
    let p = PoolGeom {
        batch: 1,
        channels: 1,
        height: 5,
        width: 7,
        size: 3,
        stride: 2,
    };
    assert_eq!((p.out_h(), p.out_w()), (2, 3));
}

#[test]
fn im2col_is_an_exact_copy() {
    for (s, (g, _)) in conv_cases().into_iter().enumerate() {
        let mut x = uniform(
            &mut rng(100 + s as u64),
            g.input_shape().iter().product(),
            -2.0,
            2.0,
        );
        x[0] = -0.0; // copies keep the sign of zero
        let cols = poisoned(&[g.rows(), g.patch()]);
        let d = im2col_into(&upload(&g.input_shape(), &x), &g, &cols).unwrap();
        gpu().run(&[&d]).unwrap();
        assert_eq!(
            bits(&read(&cols)),
            bits(&conv::reference::im2col(&x, &g)),
            "im2col {g:?}"
        );
    }
}

#[test]
fn col2im_matches_reference() {
    for (s, (g, _)) in conv_cases().into_iter().enumerate() {
        let dcols = uniform(&mut rng(200 + s as u64), g.rows() * g.patch(), -1.0, 1.0);
        let dx = poisoned(&g.input_shape());
        let d = col2im_into(&upload(&[g.rows(), g.patch()], &dcols), &g, &dx).unwrap();
        gpu().run(&[&d]).unwrap();
        let want = conv::reference::col2im(&dcols, &g);
        let mag = conv::reference::col2im(&abs(&dcols), &g);
        let n = (g.kernel * g.kernel) as f64;
        // Pixels no patch reads have mag = 0, so they must be exactly 0 (not left as NaN).
        assert_close(&format!("col2im {g:?}"), &read(&dx), &want, |i| {
            (n + 2.0) * EPS * mag[i] + SUBNORMAL
        });
    }
}

/// The references themselves: col2im is the adjoint of im2col, ⟨im2col(x), d⟩ = ⟨x, col2im(d)⟩.
#[test]
fn reference_col2im_is_the_adjoint_of_im2col() {
    for (s, (g, _)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(300 + s as u64);
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let d = uniform(&mut r, g.rows() * g.patch(), -1.0, 1.0);
        let lhs: f64 = conv::reference::im2col(&x, &g)
            .iter()
            .zip(&d)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let rhs: f64 = x
            .iter()
            .zip(conv::reference::col2im(&d, &g))
            .map(|(&a, b)| a as f64 * b)
            .sum();
        assert!(
            (lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()),
            "{g:?}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn swap_last_two_is_an_exact_transpose() {
    let cases = [
        (1, 1, 1),
        (1, 16, 16),
        (2, 17, 15),
        (3, 1, 33),
        (3, 40, 1),
        (2, 49, 8),
        (3, 8, 49),
        (2, 0, 3),
    ];
    for (s, &(b, p, q)) in cases.iter().enumerate() {
        let x = uniform(&mut rng(400 + s as u64), b * p * q, -3.0, 3.0);
        let out = poisoned(&[b, q, p]);
        let d = swap_last_two_into(&upload(&[b * p, q], &x), b, p, q, &out).unwrap();
        gpu().run(&[&d]).unwrap();
        assert_eq!(
            bits(&read(&out)),
            bits(&permute::reference::swap_last_two(&x, b, p, q)),
            "swap_last_two b={b} p={p} q={q}"
        );
    }
    // u32 tensors are raw words too.
    let (b, p, q) = (2, 19, 21);
    let x: Vec<u32> = (0..(b * p * q) as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let out = poisoned_u32(&[b, q, p]);
    let tx = Tensor::from_u32(gpu(), &[b, p, q], &x).unwrap();
    gpu()
        .run(&[&swap_last_two_into(&tx, b, p, q, &out).unwrap()])
        .unwrap();
    assert_eq!(
        read_u32(&out),
        permute::reference::swap_last_two(&x, b, p, q)
    );
}

/// Conv forward = swap_last_two(im2col(x)·Wᵀ + bias), against a direct f64 convolution.
#[test]
fn conv_forward_composed() {
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(500 + s as u64);
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let bias = uniform(&mut r, f, -1.0, 1.0);
        let (oh, ow) = (g.out_h(), g.out_w());
        let cols = poisoned(&[g.rows(), g.patch()]);
        let y_mat = poisoned(&[g.rows(), f]);
        let y = poisoned(&[g.batch, f, oh, ow]);
        let tb = upload(&[f], &bias);
        let spec = MatmulSpec {
            trans_b: true,
            ..Default::default()
        };
        let d1 = im2col_into(&upload(&g.input_shape(), &x), &g, &cols).unwrap();
        let d2 = matmul_into(
            &cols,
            &upload(&[f, g.patch()], &w),
            Some(&tb),
            &y_mat,
            &spec,
        )
        .unwrap();
        let d3 = swap_last_two_into(&y_mat, g.batch, oh * ow, f, &y).unwrap();
        gpu().run(&[&d1, &d2, &d3]).unwrap();
        let want = conv::reference::conv2d(&x, &w, Some(&bias), &g, f);
        let mag = conv::reference::conv2d(&abs(&x), &abs(&w), Some(&abs(&bias)), &g, f);
        let n = g.patch() as f64 + 1.0;
        assert_close(
            &format!("conv forward {g:?} F={f}"),
            &read(&y),
            &want,
            |i| (n + 2.0) * EPS * mag[i] + SUBNORMAL,
        );
    }
}

/// Conv backward: dY_mat = swap_last_two(dY), dW = dY_matᵀ·cols, db = Σ_rows dY_mat,
/// dcols = dY_mat·W, dx = col2im(dcols); against direct f64 gradients.
#[test]
fn conv_backward_composed() {
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(600 + s as u64);
        let (oh, ow) = (g.out_h(), g.out_w());
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let dy = uniform(&mut r, g.batch * f * oh * ow, -1.0, 1.0);
        let tw = upload(&[f, g.patch()], &w);
        let cols = poisoned(&[g.rows(), g.patch()]);
        let dy_mat = poisoned(&[g.rows(), f]);
        let dw = poisoned(&[f, g.patch()]);
        let db = poisoned(&[f]);
        let dcols = poisoned(&[g.rows(), g.patch()]);
        let dx = poisoned(&g.input_shape());
        let ta = MatmulSpec {
            trans_a: true,
            ..Default::default()
        };
        let ds = [
            im2col_into(&upload(&g.input_shape(), &x), &g, &cols).unwrap(),
            swap_last_two_into(
                &upload(&[g.batch, f, oh, ow], &dy),
                g.batch,
                f,
                oh * ow,
                &dy_mat,
            )
            .unwrap(),
            matmul_into(&dy_mat, &cols, None, &dw, &ta).unwrap(),
            cols_into(Reduce::Sum, &dy_mat, &db).unwrap(),
            matmul_into(&dy_mat, &tw, None, &dcols, &MatmulSpec::default()).unwrap(),
            col2im_into(&dcols, &g, &dx).unwrap(),
        ];
        gpu().run(&ds.iter().collect::<Vec<_>>()).unwrap();
        let (want_dx, want_dw, want_db) = conv::reference::conv2d_backward(&x, &w, &dy, &g, f);
        let (mag_dx, mag_dw, mag_db) =
            conv::reference::conv2d_backward(&abs(&x), &abs(&w), &abs(&dy), &g, f);
        let what = format!("conv backward {g:?} F={f}");
        let rows = g.rows() as f64;
        assert_close(&format!("{what} dW"), &read(&dw), &want_dw, |i| {
            (rows + 2.0) * EPS * mag_dw[i] + SUBNORMAL
        });
        assert_close(&format!("{what} db"), &read(&db), &want_db, |i| {
            (rows + 2.0) * EPS * mag_db[i] + SUBNORMAL
        });
        let n = (f + g.kernel * g.kernel) as f64;
        assert_close(&format!("{what} dx"), &read(&dx), &want_dx, |i| {
            (n + 4.0) * EPS * mag_dx[i] + SUBNORMAL
        });
    }
}

fn pg(
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
    stride: usize,
) -> PoolGeom {
    PoolGeom {
        batch,
        channels,
        height,
        width,
        size,
        stride,
    }
}

fn pool_cases() -> Vec<PoolGeom> {
    vec![
        pg(1, 1, 5, 7, 2, 2),
        pg(3, 2, 5, 7, 3, 2), // overlapping windows
        pg(2, 3, 28, 28, 2, 2),
        pg(3, 1, 7, 5, 3, 1), // heavily overlapping
        pg(1, 2, 6, 9, 2, 3), // stride > size: some pixels in no window
        pg(2, 2, 4, 4, 4, 1), // one window covering the image
        pg(1, 1, 1, 1, 1, 1),
        // 86,400 inputs, overlapping: the CPU backend shares the planes out to its threads.
        pg(12, 8, 30, 30, 3, 2),
    ]
}

/// Inputs in [-2, 2); with `ties`, rounded to halves so windows hold equal maxima.
fn pool_input(g: &PoolGeom, seed: u64, ties: bool) -> Vec<f32> {
    let x = uniform(&mut rng(seed), g.input_shape().iter().product(), -2.0, 2.0);
    if ties {
        x.iter().map(|v| (v * 2.0).round() / 2.0).collect()
    } else {
        x
    }
}

fn run_max_pool(g: &PoolGeom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let (y, arg) = (poisoned(&g.output_shape()), poisoned_u32(&g.output_shape()));
    let dx = poisoned(&g.input_shape());
    let tdy = upload(&g.output_shape(), dy);
    let fwd = pool::max_forward_into(&upload(&g.input_shape(), x), g, &y, &arg).unwrap();
    let bwd = pool::max_backward_into(&tdy, &arg, g, &dx).unwrap();
    gpu().run(&[&fwd, &bwd]).unwrap();
    (read(&y), read_u32(&arg), read(&dx))
}

#[test]
fn max_pool_forward_and_backward() {
    for (s, g) in pool_cases().iter().enumerate() {
        for ties in [false, true] {
            let x = pool_input(g, 700 + s as u64, ties);
            let dy = uniform(
                &mut rng(750 + s as u64),
                g.output_shape().iter().product(),
                -1.0,
                1.0,
            );
            let (y, arg, dx) = run_max_pool(g, &x, &dy);
            let what = format!("max pool {g:?} ties={ties}");
            let (want_y, want_arg) = pool::reference::max_forward(&x, g);
            assert_eq!(arg, want_arg, "{what} argmax");
            assert_close(&format!("{what} y"), &y, &want_y, |_| 0.0);
            let want = pool::reference::max_backward(&dy, &want_arg, g);
            let mag = pool::reference::max_backward(&abs(&dy), &want_arg, g);
            let n = (g.size * g.size) as f64;
            assert_close(&format!("{what} dx"), &dx, &want, |i| {
                (n + 2.0) * EPS * mag[i] + SUBNORMAL
            });
        }
    }
}

#[test]
fn max_pool_propagates_nan_and_handles_infinities() {
    // Planes of 4×6, 2×2 windows: outputs [1, 2, 2, 3], output index plane·6 + oh·3 + ow.
    let g = pg(1, 2, 4, 6, 2, 2);
    let mut x = pool_input(&g, 800, false);
    x[1] = f32::NAN; // window (0, 0) of plane 0 = {0, 1, 6, 7}, after a number ...
    x[7] = f32::NAN; // ... and a second NaN in it: the first one wins
    x[2 * 6 + 3] = f32::NAN; // window (1, 1) of plane 0, its last element
    for k in [4, 5, 10, 11] {
        x[24 + k] = f32::NEG_INFINITY; // window (0, 2) of plane 1: all −∞
    }
    x[24 + 3 * 6] = f32::INFINITY; // window (1, 0) of plane 1
    let dy = uniform(&mut rng(801), 12, -1.0, 1.0);
    let (y, arg, dx) = run_max_pool(&g, &x, &dy);
    let (want_y, want_arg) = pool::reference::max_forward(&x, &g);
    assert_eq!(arg, want_arg);
    assert_eq!((arg[0], arg[4], arg[8], arg[9]), (1, 15, 4, 18));
    assert!(y[0].is_nan() && y[4].is_nan());
    assert_eq!((y[8], y[9]), (f32::NEG_INFINITY, f32::INFINITY));
    // (assert_close cannot compare infinities: ∞ − ∞ is NaN.)
    for (i, (&got, &want)) in y.iter().zip(&want_y).enumerate() {
        assert!(
            got as f64 == want || (got.is_nan() && want.is_nan()),
            "y[{i}]: {got} vs {want}"
        );
    }
    // Windows do not overlap: every dx is a copy of one dy, or 0.
    let want = pool::reference::max_backward(&dy, &want_arg, &g);
    assert_close("max pool with NaN/inf dx", &dx, &want, |_| 0.0);
}

#[test]
fn avg_pool_forward_and_backward() {
    for (s, g) in pool_cases().iter().enumerate() {
        let x = pool_input(g, 900 + s as u64, false);
        let dy = uniform(
            &mut rng(950 + s as u64),
            g.output_shape().iter().product(),
            -1.0,
            1.0,
        );
        let (y, dx) = (poisoned(&g.output_shape()), poisoned(&g.input_shape()));
        let fwd = pool::avg_forward_into(&upload(&g.input_shape(), &x), g, &y).unwrap();
        let bwd = pool::avg_backward_into(&upload(&g.output_shape(), &dy), g, &dx).unwrap();
        gpu().run(&[&fwd, &bwd]).unwrap();
        let n = (g.size * g.size) as f64;
        let want = pool::reference::avg_forward(&x, g);
        let mag = pool::reference::avg_forward(&abs(&x), g);
        assert_close(&format!("avg pool {g:?} y"), &read(&y), &want, |i| {
            (n + 3.0) * EPS * mag[i] + SUBNORMAL
        });
        let want = pool::reference::avg_backward(&dy, g);
        let mag = pool::reference::avg_backward(&abs(&dy), g);
        assert_close(&format!("avg pool {g:?} dx"), &read(&dx), &want, |i| {
            (n + 3.0) * EPS * mag[i] + SUBNORMAL
        });
    }
}

#[test]
fn shape_errors_are_clear() {
    let msg = |e: accrete::Error| e.to_string();
    let g = cg(2, 3, 5, 7, 3, 1, 1);
    let x = upload(&g.input_shape(), &vec![0.0; 210]);
    let cols = poisoned(&[g.rows(), g.patch()]);

    let e = msg(cg(1, 1, 5, 5, 0, 1, 0).validate().unwrap_err());
    assert!(e.contains("kernel size must be at least 1"), "{e}");
    let e = msg(cg(1, 1, 5, 5, 3, 0, 0).validate().unwrap_err());
    assert!(e.contains("stride must be at least 1"), "{e}");
    let e = msg(im2col_into(&x, &cg(2, 3, 5, 7, 8, 1, 1), &cols).unwrap_err());
    assert!(
        e.contains("8×8 kernel does not fit the padded 7×9 image"),
        "{e}"
    );

    let e = msg(im2col_into(&x, &g, &poisoned(&[g.rows(), g.patch() + 1])).unwrap_err());
    assert!(
        e.starts_with("im2col: the column matrix must be F32 [B·OH·OW, C·K·K] = [70, 27]"),
        "{e}"
    );
    let e = msg(im2col_into(&poisoned(&[2, 3, 7, 6]), &g, &cols).unwrap_err());
    assert!(
        e.contains("the input must be F32 [B, C, H, W] = [2, 3, 5, 7]"),
        "{e}"
    );
    let e = msg(col2im_into(&cols, &g, &poisoned_u32(&g.input_shape())).unwrap_err());
    assert!(
        e.starts_with("col2im: the input gradient must be F32"),
        "{e}"
    );
    assert!(e.contains("got U32 [2, 3, 5, 7]"), "{e}");

    let e = msg(swap_last_two_into(&cols, 2, 35, 28, &cols).unwrap_err());
    assert!(
        e.starts_with("swap_last_two: input and output must both hold B·P·Q"),
        "{e}"
    );
    let e = msg(swap_last_two_into(&cols, 1, 70, 27, &poisoned_u32(&[27, 70])).unwrap_err());
    assert!(e.contains("of one type"), "{e}");

    let p = pg(2, 3, 5, 7, 2, 2);
    let (y, arg) = (poisoned(&p.output_shape()), poisoned_u32(&p.output_shape()));
    let e = msg(pg(1, 1, 5, 7, 6, 1).validate().unwrap_err());
    assert!(e.contains("6×6 window does not fit the 5×7 image"), "{e}");
    let e = msg(pg(1, 1, 5, 7, 2, 0).validate().unwrap_err());
    assert!(e.contains("stride must be at least 1"), "{e}");
    let e = msg(pool::max_forward_into(&x, &p, &y, &y).unwrap_err());
    assert!(
        e.starts_with("max_pool forward: the argmax must be U32 [B, C, OH, OW]"),
        "{e}"
    );
    let e = msg(pool::max_backward_into(&x, &arg, &p, &x).unwrap_err());
    assert!(
        e.starts_with("max_pool backward: the output gradient must be F32"),
        "{e}"
    );
    let e = msg(pool::avg_forward_into(&x, &p, &arg).unwrap_err());
    assert!(
        e.starts_with("avg_pool forward: the output must be F32"),
        "{e}"
    );
    let e = msg(pool::avg_backward_into(&y, &p, &y).unwrap_err());
    assert!(
        e.starts_with("avg_pool backward: the input gradient must be F32"),
        "{e}"
    );
}

/// The gathers use no atomics: two runs give identical bits.
#[test]
fn backward_kernels_are_deterministic() {
    let g = cg(2, 3, 28, 28, 5, 1, 2);
    let dcols = upload(
        &[g.rows(), g.patch()],
        &uniform(&mut rng(1000), g.rows() * g.patch(), -1.0, 1.0),
    );
    let a = read(&conv::col2im(&dcols, &g).unwrap());
    let b = read(&conv::col2im(&dcols, &g).unwrap());
    assert_eq!(bits(&a), bits(&b), "col2im");

    let p = pg(2, 3, 28, 28, 3, 2);
    let x = upload(&p.input_shape(), &pool_input(&p, 1001, true));
    let dy = upload(
        &p.output_shape(),
        &uniform(&mut rng(1002), p.output_shape().iter().product(), -1.0, 1.0),
    );
    let run = || {
        let (_, arg) = pool::max_forward(&x, &p).unwrap();
        let (dx_max, dx_avg) = (poisoned(&p.input_shape()), poisoned(&p.input_shape()));
        gpu()
            .run(&[
                &pool::max_backward_into(&dy, &arg, &p, &dx_max).unwrap(),
                &pool::avg_backward_into(&dy, &p, &dx_avg).unwrap(),
            ])
            .unwrap();
        (bits(&read(&dx_max)), bits(&read(&dx_avg)))
    };
    assert_eq!(run(), run(), "pool backward");
    assert_eq!(
        read(&pool::avg_forward(&x, &p).unwrap()).len(),
        p.output_shape().iter().product::<usize>()
    );
}

/// The tile shapes the implicit kernels use (CPU adapters; GPUs: large, and tall for ≤ 32
/// columns).
const TILES: [ConvTiles; 3] = [ConvTiles::MEDIUM, ConvTiles::LARGE, ConvTiles::TALL];

fn relu_mask(z: &[f32]) -> Vec<f32> {
    z.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect()
}

/// Implicit-GEMM forward with the bias and activation epilogue, against the direct f64
/// convolution; y and z NaN-poisoned.
#[test]
fn implicit_conv_forward_matches_reference() {
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(1100 + s as u64);
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let bias = uniform(&mut r, f, -1.0, 1.0);
        let (tx, tw, tb) = (
            upload(&g.input_shape(), &x),
            upload(&[f, g.patch()], &w),
            upload(&[f], &bias),
        );
        let want = conv::reference::conv2d(&x, &w, Some(&bias), &g, f);
        let mag = conv::reference::conv2d(&abs(&x), &abs(&w), Some(&abs(&bias)), &g, f);
        let n = g.patch() as f64 + 1.0;
        let tol = |i: usize| (n + 2.0) * EPS * mag[i] + SUBNORMAL;
        for tiles in TILES {
            for act in [Activation::Identity, Activation::Relu] {
                let spec = ConvSpec {
                    geom: g,
                    filters: f,
                    activation: act,
                    tiles: Some(tiles),
                    precision: Precision::F32,
                };
                let out = spec.output_shape();
                let (y, z) = (poisoned(&out), poisoned(&out));
                let keep_z = act != Activation::Identity;
                let d = implicit_forward_into(&spec, &tx, &tw, Some(&tb), keep_z.then_some(&z), &y)
                    .unwrap();
                gpu().run(&[&d]).unwrap();
                let what = format!("implicit conv {g:?} F={f} {act:?} {tiles:?}");
                let want_y: Vec<f64> = want.iter().map(|&v| act.forward_f64(v)).collect();
                assert_close(&format!("{what} y"), &read(&y), &want_y, tol);
                if keep_z {
                    assert_close(&format!("{what} z"), &read(&z), &want, tol);
                }
            }
        }
        // Without a bias.
        let spec = ConvSpec {
            geom: g,
            filters: f,
            activation: Activation::Identity,
            tiles: None,
            precision: Precision::F32,
        };
        let y = poisoned(&spec.output_shape());
        let d = implicit_forward_into(&spec, &tx, &tw, None, None, &y).unwrap();
        gpu().run(&[&d]).unwrap();
        let want = conv::reference::conv2d(&x, &w, None, &g, f);
        let mag = conv::reference::conv2d(&abs(&x), &abs(&w), None, &g, f);
        assert_close(
            &format!("implicit conv {g:?} no bias"),
            &read(&y),
            &want,
            |i| (n + 2.0) * EPS * mag[i] + SUBNORMAL,
        );
    }
}

/// Implicit-GEMM dW, db (split over output positions) and dx against the direct f64
/// gradients, with the identity and with ReLU (dz = dy·[z > 0] fused into the loads);
/// outputs NaN-poisoned.
#[test]
fn implicit_conv_backward_matches_reference() {
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(1200 + s as u64);
        let (oh, ow) = (g.out_h(), g.out_w());
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let dy = uniform(&mut r, g.batch * f * oh * ow, -1.0, 1.0);
        let zv = uniform(&mut r, dy.len(), -1.0, 1.0);
        let (tx, tw, tdy, tz) = (
            upload(&g.input_shape(), &x),
            upload(&[f, g.patch()], &w),
            upload(&[g.batch, f, oh, ow], &dy),
            upload(&[g.batch, f, oh, ow], &zv),
        );
        for tiles in TILES {
            for act in [Activation::Identity, Activation::Relu] {
                let spec = ConvSpec {
                    geom: g,
                    filters: f,
                    activation: act,
                    tiles: Some(tiles),
                    precision: Precision::F32,
                };
                let z = (act != Activation::Identity).then_some(&tz);
                let dz: Vec<f32> = match act {
                    Activation::Identity => dy.clone(),
                    _ => dy.iter().zip(relu_mask(&zv)).map(|(a, m)| a * m).collect(),
                };
                let (dw, db, dx) = (
                    poisoned(&[f, g.patch()]),
                    poisoned(&[f]),
                    poisoned(&g.input_shape()),
                );
                let wg = implicit_wgrad_into(&spec, &tx, &tdy, z, &dw, &db).unwrap();
                let dg = implicit_dgrad_into(&spec, &tdy, z, &tw, &dx).unwrap();
                let mut all: Vec<&accrete::Dispatch> = wg.dispatches.iter().collect();
                all.push(&dg);
                gpu().run(&all).unwrap();
                let (want_dx, want_dw, want_db) =
                    conv::reference::conv2d_backward(&x, &w, &dz, &g, f);
                let (mag_dx, mag_dw, mag_db) =
                    conv::reference::conv2d_backward(&abs(&x), &abs(&w), &abs(&dz), &g, f);
                let what = format!(
                    "implicit conv backward {g:?} F={f} {act:?} {tiles:?} ({} splits)",
                    wg.splits
                );
                let rows = (g.rows() + wg.splits) as f64;
                assert_close(&format!("{what} dW"), &read(&dw), &want_dw, |i| {
                    (rows + 2.0) * EPS * mag_dw[i] + SUBNORMAL
                });
                assert_close(&format!("{what} db"), &read(&db), &want_db, |i| {
                    (rows + 2.0) * EPS * mag_db[i] + SUBNORMAL
                });
                let n = (f * g.kernel * g.kernel) as f64;
                assert_close(&format!("{what} dx"), &read(&dx), &want_dx, |i| {
                    (n + 4.0) * EPS * mag_dx[i] + SUBNORMAL
                });
            }
        }
    }
}

/// Splitting the weight gradient over output positions is a fixed-order reduction: more
/// than one split here, and two runs give identical bits.
#[test]
fn implicit_conv_backward_is_deterministic() {
    let g = cg(2, 3, 28, 28, 5, 1, 2);
    let f = 8;
    let mut r = rng(1300);
    let x = upload(
        &g.input_shape(),
        &uniform(&mut r, 2 * 3 * 28 * 28, -1.0, 1.0),
    );
    let w = upload(&[f, g.patch()], &uniform(&mut r, f * g.patch(), -1.0, 1.0));
    let dy = upload(
        &[2, f, 28, 28],
        &uniform(&mut r, 2 * f * 28 * 28, -1.0, 1.0),
    );
    let spec = ConvSpec {
        geom: g,
        filters: f,
        activation: Activation::Identity,
        tiles: None,
        precision: Precision::F32,
    };
    let run = || {
        let (dw, db, dx) = (
            poisoned(&[f, g.patch()]),
            poisoned(&[f]),
            poisoned(&g.input_shape()),
        );
        let wg = implicit_wgrad_into(&spec, &x, &dy, None, &dw, &db).unwrap();
        let dg = implicit_dgrad_into(&spec, &dy, None, &w, &dx).unwrap();
        let mut all: Vec<&accrete::Dispatch> = wg.dispatches.iter().collect();
        all.push(&dg);
        gpu().run(&all).unwrap();
        (
            wg.splits,
            bits(&read(&dw)),
            bits(&read(&db)),
            bits(&read(&dx)),
        )
    };
    let (a, b) = (run(), run());
    assert!(a.0 > 1, "expected several splits, got {}", a.0);
    assert!(a == b, "implicit conv backward differs between runs");
}

#[test]
fn implicit_conv_errors_are_clear() {
    let msg = |e: accrete::Error| e.to_string();
    let g = cg(2, 3, 5, 7, 3, 1, 1);
    let spec = ConvSpec {
        geom: g,
        filters: 4,
        activation: Activation::Relu,
        tiles: None,
        precision: Precision::F32,
    };
    let x = poisoned(&g.input_shape());
    let w = poisoned(&[4, 27]);
    let y = poisoned(&spec.output_shape());
    let e = msg(implicit_forward_into(&spec, &x, &poisoned(&[4, 26]), None, None, &y).unwrap_err());
    assert!(
        e.starts_with("conv forward: the weights must be F32 [F, C, K, K] = [4, 27]"),
        "{e}"
    );
    let e = msg(implicit_dgrad_into(&spec, &y, None, &w, &x).unwrap_err());
    assert!(
        e.contains("Relu activation needs the pre-activation z"),
        "{e}"
    );
    let e = msg(implicit_wgrad_into(&spec, &x, &y, Some(&y), &w, &poisoned(&[5])).unwrap_err());
    assert!(
        e.starts_with("conv weight gradient: the bias gradient must be F32 [F]"),
        "{e}"
    );
    let bad = ConvSpec {
        tiles: Some(ConvTiles {
            bm: 64,
            bn: 8,
            bk: 8,
            tm: 4,
            tn: 4,
        }),
        ..spec
    };
    let e = msg(implicit_forward_into(&bad, &x, &w, None, None, &y).unwrap_err());
    assert!(e.contains("threads must be a multiple of bm"), "{e}");
}

fn add(a: &[f64], b: &[f64], c: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .zip(c)
        .map(|((a, b), c)| a + b + c)
        .collect()
}

/// Sums of at most this many terms must show the f16 rounding somewhere. (The f32 bound
/// (n + 2)·2⁻²³·Σ|terms| grows like n² for terms of similar size while the f16 rounding
/// errors, of random sign, grow like √n: past a few hundred terms the f32 bound covers them.)
const F16_VISIBLE_TERMS: usize = 200;

/// Asserts that the f16 tiles really rounded: for sums of `terms` ≤ [`F16_VISIBLE_TERMS`]
/// terms, some |got − want| exceeds the f32 bound. Returns whether it checked.
fn assert_not_f32(
    what: &str,
    terms: usize,
    got: &[f32],
    want: &[f64],
    f32_bound: impl Fn(usize) -> f64,
) -> bool {
    if terms > F16_VISIBLE_TERMS {
        return false;
    }
    let worst = got
        .iter()
        .zip(want)
        .enumerate()
        .map(|(i, (&g, &w))| (g as f64 - w).abs() / (f32_bound(i) + SUBNORMAL))
        .fold(0.0, f64::max);
    assert!(worst > 1.0, "{what} looks like f32 (worst {worst})");
    true
}

/// Whether the adapter can run f16 tiles (prints why a test is skipped when not).
fn f16_supported(test: &str) -> bool {
    let need = ConvSpec {
        geom: cg(1, 1, 1, 1, 1, 1, 0),
        filters: 1,
        activation: Activation::Identity,
        tiles: None,
        precision: Precision::F16,
    }
    .required_features();
    let ok = gpu().features().contains(need);
    if !ok {
        eprintln!("skipping {test}: this adapter has no SHADER_F16");
    }
    ok
}

/// f16-tile forward (x and W rounded to f16 in workgroup memory, f32 sums, f32 bias and
/// activation) against the direct f64 convolution, every tile shape, identity and ReLU, y
/// and z NaN-poisoned. Bound per element: Σ over the products of the operands' f16
/// rounding, |x16·w16 − x·w| ≤ e_x·|w| + |x|·e_w + e_x·e_w with e matmul's f16 conversion
/// error (`f16_operand_bounds`, summed through the bilinear reference), then the f32
/// chain of C·K·K + 1 terms on the rounded values, (n + 2)·2⁻²³·Σ(|x| + e_x)(|w| + e_w) +
/// |bias|. Somewhere the error must exceed the f32 bound, or the tiles did not round.
#[test]
fn implicit_conv_f16_forward_matches_reference() {
    if !f16_supported("implicit_conv_f16_forward_matches_reference") {
        return;
    }
    let mut checked = 0;
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(1400 + s as u64);
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let bias = uniform(&mut r, f, -1.0, 1.0);
        let (tx, tw, tb) = (
            upload(&g.input_shape(), &x),
            upload(&[f, g.patch()], &w),
            upload(&[f], &bias),
        );
        let want = conv::reference::conv2d(&x, &w, Some(&bias), &g, f);
        let (ax, aw, ab) = (abs(&x), abs(&w), abs(&bias));
        let mag = conv::reference::conv2d(&ax, &aw, Some(&ab), &g, f);
        let ((ex, x16), (ew, w16)) = (f16_operand_bounds(&x), f16_operand_bounds(&w));
        let in_err = add(
            &conv::reference::conv2d(&ex, &aw, None, &g, f),
            &conv::reference::conv2d(&ax, &ew, None, &g, f),
            &conv::reference::conv2d(&ex, &ew, None, &g, f),
        );
        let mag16 = conv::reference::conv2d(&x16, &w16, Some(&ab), &g, f);
        let n = g.patch() as f64 + 1.0;
        let tol = |i: usize| in_err[i] + (n + 2.0) * EPS * mag16[i] + SUBNORMAL;
        for tiles in TILES {
            for act in [Activation::Identity, Activation::Relu] {
                let spec = ConvSpec {
                    geom: g,
                    filters: f,
                    activation: act,
                    tiles: Some(tiles),
                    precision: Precision::F16,
                };
                let out = spec.output_shape();
                let (y, z) = (poisoned(&out), poisoned(&out));
                let keep_z = act != Activation::Identity;
                let d = implicit_forward_into(&spec, &tx, &tw, Some(&tb), keep_z.then_some(&z), &y)
                    .unwrap();
                gpu().run(&[&d]).unwrap();
                let what = format!("f16 implicit conv {g:?} F={f} {act:?} {tiles:?}");
                let want_y: Vec<f64> = want.iter().map(|&v| act.forward_f64(v)).collect();
                let got_y = read(&y);
                assert_close(&format!("{what} y"), &got_y, &want_y, tol);
                if keep_z {
                    assert_close(&format!("{what} z"), &read(&z), &want, tol);
                }
                let terms = g.patch() + 1;
                checked += usize::from(assert_not_f32(&what, terms, &got_y, &want_y, |i| {
                    (n + 2.0) * EPS * mag[i]
                }));
            }
        }
    }
    assert!(
        checked >= 6 * 9,
        "{checked} forward runs showed the f16 rounding"
    );
}

/// f16-tile dW and dx (dz, x and W rounded to f16 in workgroup memory, f32 sums) against
/// the direct f64 gradients with the bound of the forward test (dW: B·OH·OW terms plus one
/// per split; dx: F·K·K terms), every tile shape, identity and ReLU, outputs NaN-poisoned;
/// both must exceed the f32 bound somewhere. db is summed from the f32 dz: within the f32
/// bound, and bit-identical to the f32 tiles' db.
#[test]
fn implicit_conv_f16_backward_matches_reference() {
    if !f16_supported("implicit_conv_f16_backward_matches_reference") {
        return;
    }
    let (mut checked_dw, mut checked_dx) = (0, 0);
    for (s, (g, f)) in conv_cases().into_iter().enumerate() {
        let mut r = rng(1500 + s as u64);
        let (oh, ow) = (g.out_h(), g.out_w());
        let x = uniform(&mut r, g.input_shape().iter().product(), -1.0, 1.0);
        let w = uniform(&mut r, f * g.patch(), -1.0, 1.0);
        let dy = uniform(&mut r, g.batch * f * oh * ow, -1.0, 1.0);
        let zv = uniform(&mut r, dy.len(), -1.0, 1.0);
        let (tx, tw, tdy, tz) = (
            upload(&g.input_shape(), &x),
            upload(&[f, g.patch()], &w),
            upload(&[g.batch, f, oh, ow], &dy),
            upload(&[g.batch, f, oh, ow], &zv),
        );
        let ((ex, x16), (ew, w16)) = (f16_operand_bounds(&x), f16_operand_bounds(&w));
        let (ax, aw) = (abs(&x), abs(&w));
        for tiles in TILES {
            for act in [Activation::Identity, Activation::Relu] {
                let z = (act != Activation::Identity).then_some(&tz);
                let dz: Vec<f32> = match act {
                    Activation::Identity => dy.clone(),
                    _ => dy.iter().zip(relu_mask(&zv)).map(|(a, m)| a * m).collect(),
                };
                let run = |precision: Precision| {
                    let spec = ConvSpec {
                        geom: g,
                        filters: f,
                        activation: act,
                        tiles: Some(tiles),
                        precision,
                    };
                    let (dw, db, dx) = (
                        poisoned(&[f, g.patch()]),
                        poisoned(&[f]),
                        poisoned(&g.input_shape()),
                    );
                    let wg = implicit_wgrad_into(&spec, &tx, &tdy, z, &dw, &db).unwrap();
                    let dg = implicit_dgrad_into(&spec, &tdy, z, &tw, &dx).unwrap();
                    let mut all: Vec<&accrete::Dispatch> = wg.dispatches.iter().collect();
                    all.push(&dg);
                    gpu().run(&all).unwrap();
                    (read(&dw), read(&db), read(&dx), wg.splits)
                };
                let (dw, db, dx, splits) = run(Precision::F16);
                let (_, db32, _, splits32) = run(Precision::F32);
                let (want_dx, want_dw, want_db) =
                    conv::reference::conv2d_backward(&x, &w, &dz, &g, f);
                let adz = abs(&dz);
                let (edz, dz16) = f16_operand_bounds(&dz);
                let (mag_dx, mag_dw, mag_db) =
                    conv::reference::conv2d_backward(&ax, &aw, &adz, &g, f);
                // Bilinear: dW pairs dz with x, dx pairs dz with W.
                let (e1dx, e1dw, _) = conv::reference::conv2d_backward(&ex, &ew, &adz, &g, f);
                let (e2dx, e2dw, _) = conv::reference::conv2d_backward(&ax, &aw, &edz, &g, f);
                let (e3dx, e3dw, _) = conv::reference::conv2d_backward(&ex, &ew, &edz, &g, f);
                let (m16dx, m16dw, _) = conv::reference::conv2d_backward(&x16, &w16, &dz16, &g, f);
                let (err_dx, err_dw) = (add(&e1dx, &e2dx, &e3dx), add(&e1dw, &e2dw, &e3dw));
                let what = format!(
                    "f16 implicit conv backward {g:?} F={f} {act:?} {tiles:?} ({splits} splits)"
                );
                let rows = (g.rows() + splits) as f64;
                assert_close(&format!("{what} dW"), &dw, &want_dw, |i| {
                    err_dw[i] + (rows + 2.0) * EPS * m16dw[i] + SUBNORMAL
                });
                let n = (f * g.kernel * g.kernel) as f64;
                assert_close(&format!("{what} dx"), &dx, &want_dx, |i| {
                    err_dx[i] + (n + 4.0) * EPS * m16dx[i] + SUBNORMAL
                });
                // db stays f32: the f32 bound, and the f32 tiles' bits (same split plan).
                assert_close(&format!("{what} db"), &db, &want_db, |i| {
                    (rows + 2.0) * EPS * mag_db[i] + SUBNORMAL
                });
                assert_eq!(splits, splits32, "{what}: split plans differ");
                assert_eq!(bits(&db), bits(&db32), "{what}: db differs from f32 tiles");
                let terms = g.rows() + splits;
                checked_dw += usize::from(assert_not_f32(
                    &format!("{what} dW"),
                    terms,
                    &dw,
                    &want_dw,
                    |i| (rows + 2.0) * EPS * mag_dw[i],
                ));
                let terms = f * g.kernel * g.kernel;
                checked_dx += usize::from(assert_not_f32(
                    &format!("{what} dx"),
                    terms,
                    &dx,
                    &want_dx,
                    |i| (n + 4.0) * EPS * mag_dx[i],
                ));
            }
        }
    }
    assert!(
        checked_dw >= 6 * 9 && checked_dx >= 6 * 8,
        "{checked_dw} dW and {checked_dx} dx runs showed the f16 rounding"
    );
}

/// f16 tiles: a device without SHADER_F16 gets a clear refusal naming the feature and the
/// f32 alternative; the tiles take half the workgroup memory.
#[test]
fn implicit_conv_f16_errors_and_memory() {
    let spec = ConvSpec {
        geom: cg(2, 3, 5, 7, 3, 1, 1),
        filters: 4,
        activation: Activation::Relu,
        tiles: None,
        precision: Precision::F16,
    };
    let e = spec
        .check_features(Default::default(), "some adapter")
        .unwrap_err()
        .to_string();
    assert!(e.contains("SHADER_F16"), "{e}");
    assert!(e.contains("use precision F32"), "{e}");
    let f32_spec = ConvSpec {
        precision: Precision::F32,
        ..spec
    };
    assert!(f32_spec
        .check_features(Default::default(), "some adapter")
        .is_ok());
    for t in TILES {
        assert_eq!(
            2 * t.shared_bytes(Precision::F16),
            t.shared_bytes(Precision::F32)
        );
    }
    assert_eq!(ConvTiles::MEDIUM.shared_bytes(Precision::F16), 1024);
}

/// The two convolution paths in a whole training run (conv + ReLU, max pooling, dense):
/// the same losses to within f32 reordering, and dispatch lists that differ only in the
/// convolution's.
#[test]
fn trainer_conv_paths_agree() {
    use accrete::nn::graph::ConvAlgo;
    use accrete::optim::OptimizerSpec;
    use accrete::train::{GpuDataset, StepKernels, TrainSpec, Trainer};
    let data = GpuDataset::upload(gpu(), &quadrant_images(64, 9)).unwrap();
    let ts = TrainSpec {
        batch_size: 16,
        ..Default::default()
    };
    let run = |conv: ConvAlgo| {
        let mut t =
            Trainer::new(gpu(), small_cnn(), OptimizerSpec::adam(1e-2), ts.clone(), 4).unwrap();
        t.set_step_kernels(StepKernels {
            conv,
            ..Default::default()
        });
        let losses: Vec<f64> = (0..2)
            .map(|_| pollster::block_on(t.fit_epoch(&data)).unwrap().loss)
            .collect();
        (losses, t.dispatches_per_step())
    };
    let ((implicit, n_implicit), (im2col, n_im2col)) =
        (run(ConvAlgo::Implicit), run(ConvAlgo::Im2col));
    // The conv layer is the first (no input gradient): im2col 4 forward + 3 backward
    // (activation, permute, dW with db from its column of ones), implicit 1 + 2.
    assert_eq!(n_im2col - n_implicit, 4);
    for (a, b) in implicit.iter().zip(&im2col) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "losses {implicit:?} vs {im2col:?}"
        );
    }
}
