//! Fine-tuning from a state dict as PyTorch saves it: `nn.Sequential` names (activations
//! counted as modules), a `model.` prefix, F16 and F32 tensors. The file is written by hand
//! (safetensors: u64 header length, JSON header, little-endian data).

use accrete::checkpoint::weights_from_bytes;
use accrete::kernels::Activation;
use accrete::nn::{LayerSpec, ModelSpec};
use accrete::optim::OptimizerSpec;
use accrete::train::{GpuDataset, TrainSpec, Trainer};
use accrete_tests::*;

/// f32 → IEEE half bits, round to nearest even (for values in the normal range).
fn to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    if x == 0.0 {
        return sign;
    }
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    assert!((1..31).contains(&exp), "{x} outside the f16 normal range");
    let man = b & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

fn state_dict(tensors: &[(&str, bool, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, half, shape, values) in tensors {
        let start = data.len();
        for &v in values {
            if *half {
                data.extend_from_slice(&to_f16(v).to_le_bytes());
            } else {
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        let dtype = if *half { "F16" } else { "F32" };
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

#[test]
fn a_pytorch_state_dict_in_f16_and_f32_fine_tunes() {
    // nn.Sequential(Linear(2, 8), Tanh(), Linear(8, 3)) ⇔ dense(8, tanh), dense(3).
    let spec = ModelSpec::new(
        vec![2],
        vec![
            LayerSpec::dense(8, Activation::Tanh),
            LayerSpec::dense(3, Activation::Identity),
        ],
    );
    let mut r = rng(5);
    // Values that are exact in f16 (multiples of 1/64 in [−1, 1]), so equality is exact.
    let mut exact = |n: usize| -> Vec<f32> {
        uniform(&mut r, n, -64.0, 64.0)
            .into_iter()
            .map(|v| v.round() / 64.0)
            .collect()
    };
    let (w0, b0, w2, b2) = (exact(16), exact(8), exact(24), exact(3));
    let bytes = state_dict(&[
        ("model.0.weight", true, vec![8, 2], w0.clone()),
        ("model.0.bias", true, vec![8], b0.clone()),
        ("model.2.weight", false, vec![3, 8], w2.clone()),
        ("model.2.bias", false, vec![3], b2.clone()),
        ("model.num_batches_tracked", false, vec![1], vec![0.0]),
    ]);
    let source = weights_from_bytes(&bytes, "torch.safetensors").unwrap();
    let train = TrainSpec {
        batch_size: 30,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), train, 3).unwrap();
    let rep = t.load_weights(&source).unwrap();
    assert_eq!(
        rep.loaded,
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias"
        ]
    );
    assert!(rep.reinitialized.is_empty(), "{:?}", rep.reinitialized);
    assert_eq!(rep.unused, ["num_batches_tracked"]);
    let ck = pollster::block_on(t.checkpoint()).unwrap();
    for (name, want) in [
        ("layers.0.weight", &w0),
        ("layers.0.bias", &b0),
        ("layers.1.weight", &w2),
        ("layers.1.bias", &b2),
    ] {
        assert_eq!(&ck.tensor(name).unwrap().data, want, "{name}");
    }
    // And it trains from there: the loss on three spiral arms falls.
    let d = GpuDataset::upload(gpu(), &spirals(30, 8)).unwrap();
    let first = pollster::block_on(t.fit_epoch(&d)).unwrap().loss;
    let mut last = first;
    for _ in 0..30 {
        last = pollster::block_on(t.fit_epoch(&d)).unwrap().loss;
    }
    assert!(last < first * 0.8, "loss {first} → {last}");
}
