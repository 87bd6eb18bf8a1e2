//! The GPU runtime: adapter selection errors, buffer reuse, upload/read-back round trips,
//! shape checks on upload, and the pipeline cache.

use accrete::{DType, Error, Gpu, GpuOptions, Tensor};
use accrete_tests::*;

#[test]
fn unknown_adapter_names_the_available_ones() {
    if gpu().is_cpu() {
        eprintln!("skipped: adapter names are a WebGPU property (this run is on the CPU backend)");
        return;
    }
    let opts = GpuOptions {
        adapter: Some("no-such-adapter-xyz".into()),
        backends: None,
        ..Default::default()
    };
    match pollster::block_on(Gpu::with_options(opts)) {
        Err(Error::AdapterNotFound { wanted, available }) => {
            assert_eq!(wanted, "no-such-adapter-xyz");
            assert!(available.contains(&gpu().summary().name), "{available}");
        }
        other => panic!("expected AdapterNotFound, got {other:?}"),
    }
}

#[test]
fn adapter_can_be_picked_by_name_substring() {
    if gpu().is_cpu() {
        eprintln!("skipped: adapter names are a WebGPU property (this run is on the CPU backend)");
        return;
    }
    let name = gpu().summary().name.clone();
    let part = name.split_whitespace().next().unwrap().to_lowercase();
    let opts = GpuOptions {
        adapter: Some(part),
        backends: None,
        ..Default::default()
    };
    let g = pollster::block_on(Gpu::with_options(opts)).unwrap();
    assert!(g
        .summary()
        .name
        .to_lowercase()
        .contains(&name.split_whitespace().next().unwrap().to_lowercase()));
}

#[test]
fn round_trips_and_upload_checks() {
    let data: Vec<f32> = (0..1001).map(|i| i as f32 * 0.5 - 3.0).collect();
    let t = upload(&[7, 11, 13], &data);
    assert_eq!(read(&t), data);
    assert_eq!(t.as_matrix(), (77, 13));
    let u = Tensor::from_u32(gpu(), &[3], &[1, u32::MAX, 7]).unwrap();
    assert_eq!(read_u32(&u), [1, u32::MAX, 7]);
    let err = Tensor::from_f32(gpu(), &[2, 2], &[1.0; 5]).unwrap_err();
    assert!(
        err.to_string().contains("5 values given for shape [2, 2]"),
        "{err}"
    );
    let err = pollster::block_on(u.read_f32()).unwrap_err();
    assert!(err.to_string().contains("expected a F32 tensor"), "{err}");
    let empty = Tensor::uninit(gpu(), &[0, 4], DType::F32).unwrap();
    assert!(read(&empty).is_empty());
    let err = t.reshape(&[1000]).unwrap_err();
    assert!(err.to_string().contains("cannot view"), "{err}");
    assert_eq!(read(&t.reshape(&[1001]).unwrap()), data);
}

#[test]
fn dropped_buffers_are_reused() {
    if gpu().is_cpu() {
        eprintln!("skipped: the CPU backend frees host buffers at once (no pool to reuse)");
        return;
    }
    // A dedicated device, so other tests' allocations do not interfere with the count.
    let g = pollster::block_on(Gpu::new()).unwrap();
    let before = g.pooled_buffers();
    let t = Tensor::zeros(&g, &[12345]).unwrap();
    drop(t);
    assert_eq!(g.pooled_buffers(), before + 1);
    let t2 = Tensor::full(&g, &[12345], 2.0).unwrap();
    assert_eq!(g.pooled_buffers(), before);
    assert!(pollster::block_on(t2.read_f32())
        .unwrap()
        .iter()
        .all(|&v| v == 2.0));
}
