//! Session behaviour: mid-epoch checkpoints and stops resume exactly; divergence is rolled
//! back; transfer learning loads matching layers, re-initialises a new head and leaves
//! frozen layers byte-identical.

use accrete::checkpoint::weights_from_bytes;
use accrete::optim::OptimizerSpec;
use accrete::train::Checkpoint;
use accrete::train::{
    ChunkOptions, ChunkOutcome, Control, Observer, Progress, RecoverySpec, TrainSpec, Trainer,
};
use accrete::Error;
use accrete_tests::*;

/// Keeps every checkpoint; asks to stop at the `stop_at`-th report.
struct Keeper {
    checkpoints: Vec<Checkpoint>,
    reports: usize,
    stop_at: Option<usize>,
}

impl Observer for Keeper {
    fn progress(&mut self, _p: &Progress) -> Control {
        self.reports += 1;
        if Some(self.reports) == self.stop_at {
            Control::Stop
        } else {
            Control::Continue
        }
    }
    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        self.checkpoints
            .push(Checkpoint::from_bytes(&c.to_bytes()?, "kept")?);
        Ok(())
    }
}

fn trainer(seed: u64) -> Trainer {
    let train = TrainSpec {
        batch_size: 32,
        epochs: 2,
        ..Default::default()
    };
    Trainer::new(gpu(), small_cnn(), OptimizerSpec::adam(0.01), train, seed).unwrap()
}

#[test]
fn mid_epoch_checkpoints_and_stops_resume_exactly() {
    let chunk = quadrant_images(300, 51); // 10 steps per epoch, 20 per chunk
    let opts = ChunkOptions {
        report_every_steps: Some(4),
        checkpoint_every_steps: Some(3),
        ..ChunkOptions::default()
    };
    let mut straight = trainer(3);
    let mut keep = Keeper {
        checkpoints: Vec::new(),
        reports: 0,
        stop_at: None,
    };
    let out = pollster::block_on(straight.fit_chunk_with(&chunk, &opts, &mut keep)).unwrap();
    assert!(matches!(out, ChunkOutcome::Done(ref v) if v.len() == 2));
    let want = pollster::block_on(weight_bytes(&straight));
    // Checkpoints at steps 3, 6, 9, (epoch end 10), 12, 15, 18, (20).
    let mid: Vec<&Checkpoint> = keep
        .checkpoints
        .iter()
        .filter(|c| c.meta.cursor.step_in_epoch > 0)
        .collect();
    assert!(mid.len() >= 5, "{} mid-epoch checkpoints", mid.len());
    for c in mid {
        let mut resumed = Trainer::from_checkpoint(gpu(), c).unwrap();
        pollster::block_on(resumed.fit_chunk_with(&chunk, &opts, &mut accrete::train::NoObserver))
            .unwrap();
        let got = pollster::block_on(weight_bytes(&resumed));
        assert!(
            got == want,
            "resume from step {} (epoch step {}) differs",
            c.meta.step,
            c.meta.cursor.step_in_epoch
        );
    }
    // Stop at the third report (step 12): a checkpoint is handed over, resuming finishes the same.
    let mut stopped = trainer(3);
    let mut keep = Keeper {
        checkpoints: Vec::new(),
        reports: 0,
        stop_at: Some(3),
    };
    let out = pollster::block_on(stopped.fit_chunk_with(&chunk, &opts, &mut keep)).unwrap();
    assert_eq!(out, ChunkOutcome::Stopped);
    let last = keep.checkpoints.last().unwrap();
    let mut resumed = Trainer::from_checkpoint(gpu(), last).unwrap();
    pollster::block_on(resumed.fit_chunk(&chunk)).unwrap();
    assert!(pollster::block_on(weight_bytes(&resumed)) == want);
    // The resumed run's per-epoch loss matches too (the partial accumulator travelled).
    assert_eq!(
        resumed.history_json().last().unwrap()["train_loss"],
        straight.history_json().last().unwrap()["train_loss"]
    );
}

#[test]
fn an_injected_divergence_is_rolled_back() {
    let chunk = spirals(100, 61);
    let spec = accrete::nn::presets::mlp(2, &[32, 32], 3);
    let train = TrainSpec {
        batch_size: 25,
        epochs: 6,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), train, 4).unwrap();
    t.recovery = Some(RecoverySpec {
        spike_factor: 2.0,
        lr_factor: 0.5,
        max_rollbacks: 3,
        ..Default::default()
    });
    pollster::block_on(t.fit_chunk(&spirals(100, 62))).unwrap();
    // Ten steps at 10⁴ × the learning rate blow the loss up; the epoch is rolled back.
    t.inject_lr_spike(1e4, 10);
    let stats = pollster::block_on(t.fit_chunk(&chunk)).unwrap();
    let rollbacks: Vec<_> = t
        .history_json()
        .into_iter()
        .filter(|h| h["event"] == "rollback")
        .collect();
    eprintln!("rollbacks: {rollbacks:?}");
    assert_eq!(rollbacks.len(), 1);
    assert!(stats.iter().all(|s| s.loss.is_finite()));
    assert!(stats.last().unwrap().loss < 1.0, "{stats:?}");
    assert!((t.lr_state.scale - 0.5).abs() < 1e-9);

    // A run that keeps diverging stops with a clear error.
    let mut bad = Trainer::new(
        gpu(),
        accrete::nn::presets::mlp(2, &[8], 3),
        OptimizerSpec::adam(1e4),
        TrainSpec {
            batch_size: 25,
            epochs: 3,
            ..Default::default()
        },
        4,
    )
    .unwrap();
    bad.recovery = Some(RecoverySpec {
        spike_factor: 1.01,
        lr_factor: 0.9,
        max_rollbacks: 2,
        ..Default::default()
    });
    bad.last_good_loss = Some(1e-3);
    let err = pollster::block_on(bad.fit_chunk(&chunk)).unwrap_err();
    assert!(matches!(err, Error::Diverged { rollbacks: 3, .. }), "{err}");
    assert!(err.to_string().contains("lower optimizer.lr"), "{err}");
}

#[test]
fn finetune_with_a_new_head_keeps_frozen_layers() {
    // Pre-train on 4 quadrant classes.
    let data = quadrant_images(300, 71);
    let mut pre = trainer(5);
    pollster::block_on(pre.fit_chunk(&data)).unwrap();
    let bytes = pollster::block_on(pre.checkpoint())
        .unwrap()
        .to_bytes()
        .unwrap();
    // New task: 2 classes (left vs right half), new head, frozen conv layer.
    let mut spec = small_cnn();
    if let accrete::nn::LayerSpec::Dense { units, .. } = &mut spec.layers[5] {
        *units = 2;
    }
    spec.freeze(&[0]).unwrap();
    let mut ft = Trainer::new(
        gpu(),
        spec,
        OptimizerSpec::adam(0.01),
        TrainSpec {
            batch_size: 32,
            epochs: 1,
            ..Default::default()
        },
        6,
    )
    .unwrap();
    let report = ft
        .load_weights(&weights_from_bytes(&bytes, "pretrained").unwrap())
        .unwrap();
    assert_eq!(
        report.loaded,
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.3.weight",
            "layers.3.bias"
        ]
    );
    assert_eq!(
        report
            .reinitialized
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["layers.5.weight", "layers.5.bias"]
    );
    assert!(
        report.reinitialized[0]
            .1
            .contains("[4, 16] in the source, [2, 16] here"),
        "{:?}",
        report.reinitialized
    );
    assert_eq!(report.frozen, [0]);
    let frozen_before = pollster::block_on(ft.model.params[0].value.read_f32()).unwrap();
    let mut task = data.clone();
    task.labels = task.labels.iter().map(|&l| l % 2).collect();
    task.classes = 2;
    pollster::block_on(ft.fit_chunk(&task)).unwrap();
    let frozen_after = pollster::block_on(ft.model.params[0].value.read_f32()).unwrap();
    assert!(
        frozen_before
            .iter()
            .zip(&frozen_after)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "frozen conv weights changed"
    );
    let pre_w = Checkpoint::from_bytes(&bytes, "p")
        .unwrap()
        .tensor("layers.0.weight")
        .unwrap()
        .data
        .clone();
    assert_eq!(
        frozen_after, pre_w,
        "frozen layer does not hold the pre-trained weights"
    );
    // Weights from a PyTorch-style file (plain safetensors, no accrete metadata) load too.
    let w = &pre_w;
    let plain = plain_safetensors(&[("layers.0.weight", &[4, 1, 3, 3], w)]);
    let tensors = weights_from_bytes(&plain, "torch.safetensors").unwrap();
    let r = ft.load_weights(&tensors).unwrap();
    assert_eq!(r.loaded, ["layers.0.weight"]);
}
