//! Dynamic loss scaling kernels (shaders/loss_scale.wgsl) against a host reference: scaling,
//! unscaling of the listed segments only with the overflow flag, and the scale's backoff and
//! growth. Runs on whichever backend `gpu()` gives (ACCRETE_BACKEND).

use accrete::kernels::loss_scale::{scale_into, scaler, unscale_into, update_into};
use accrete::kernels::optim::Segment;
use accrete::kernels::step;
use accrete_tests::*;

#[test]
fn scale_unscale_and_update_match_the_reference() {
    let n = 700;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 - 350.0) * 0.125).collect();
    let s = scaler(gpu(), 1024.0, 0, 0).unwrap();
    let t = upload(&[n], &x);
    gpu().run(&[&scale_into(&t, &s).unwrap()]).unwrap();
    let want: Vec<f32> = x.iter().map(|v| v * 1024.0).collect();
    assert_eq!(read(&t), want, "scale: x × S (exact, S a power of two)");

    // Unscale two segments (one spanning several workgroups); the gap and tail stay put.
    let segs = [
        Segment {
            offset: 3,
            len: 300,
            lr_scale: 1.0,
        },
        Segment {
            offset: 400,
            len: 260,
            lr_scale: 1.0,
        },
    ];
    let counter = step::counter(gpu(), 0).unwrap();
    let d = unscale_into(&t, &segs, &s, &counter).unwrap().unwrap();
    gpu().run(&[&d]).unwrap();
    let listed = |i: usize| (3..303).contains(&i) || (400..660).contains(&i);
    let want: Vec<f32> = (0..n)
        .map(|i| if listed(i) { x[i] } else { want[i] })
        .collect();
    assert_eq!(
        read(&t),
        want,
        "unscale touches exactly the listed segments"
    );
    assert_eq!(read_u32(&counter)[2], 0, "finite gradients raise no flag");

    // Clean step: the good-step count grows; after `interval` of them S doubles.
    let up = update_into(&s, &counter, 2.0, 0.5, 2).unwrap();
    gpu().run(&[&up]).unwrap();
    assert_eq!(read_u32(&s), vec![1024f32.to_bits(), 1, 0, 0]);
    gpu().run(&[&up]).unwrap();
    assert_eq!(read_u32(&s), vec![2048f32.to_bits(), 0, 0, 0]);

    // An infinite gradient in a listed segment flags the step; update backs off and clears it.
    let mut y = vec![1.0f32; n];
    y[500] = f32::INFINITY;
    y[350] = f32::NAN; // in the gap: not listed, so no flag from it
    let g = upload(&[n], &y);
    let d = unscale_into(&g, &segs, &s, &counter).unwrap().unwrap();
    gpu().run(&[&d]).unwrap();
    assert_eq!(read_u32(&counter)[2], 1, "overflow flags the step");
    gpu().run(&[&up]).unwrap();
    assert_eq!(read_u32(&s), vec![1024f32.to_bits(), 0, 1, 0]);
    assert_eq!(read_u32(&counter)[2], 0, "update clears the flag");

    // The scale stays within [2⁻²⁴, 2²⁴].
    let hi = scaler(gpu(), 16_777_216.0, 0, 0).unwrap();
    let c2 = step::counter(gpu(), 0).unwrap();
    gpu()
        .run(&[&update_into(&hi, &c2, 2.0, 0.5, 1).unwrap()])
        .unwrap();
    assert_eq!(f32::from_bits(read_u32(&hi)[0]), 16_777_216.0);
}
