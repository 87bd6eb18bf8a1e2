//! Early stopping: patience, restore-best, and the monitored metric.

use accrete::optim::OptimizerSpec;
use accrete::train::{EarlyStopping, GpuDataset, Monitor, TrainSpec, Trainer};
use accrete_tests::*;

#[test]
fn stops_after_patience_and_restores_the_best_weights() {
    // A tiny noisy training set and a large model: validation loss turns up quickly.
    let train = spirals(20, 91);
    let val = spirals(100, 92);
    let spec = accrete::nn::presets::mlp(2, &[128, 128], 3);
    let ts = TrainSpec {
        batch_size: 20,
        epochs: 1,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.02), ts, 5).unwrap();
    let es = EarlyStopping {
        patience: 3,
        min_delta: 0.0,
        monitor: Monitor::ValLoss,
        restore_best: true,
    };
    let report = pollster::block_on(t.fit_with_validation(&train, &val, 300, Some(&es))).unwrap();
    eprintln!(
        "early stopping: ran {} epochs, best epoch {} (val loss {:.4})",
        report.epochs_run, report.best_epoch, report.best_value
    );
    assert!(report.stopped_early && report.epochs_run < 300);
    assert_eq!(report.epochs_run, report.best_epoch + 3);
    let best_loss = report.epochs[report.best_epoch - 1].1.loss;
    assert!(report.epochs[report.best_epoch..]
        .iter()
        .all(|(_, v)| v.loss >= best_loss));
    // The restored weights give exactly the best epoch's validation loss.
    let now =
        pollster::block_on(t.evaluate(&GpuDataset::upload(gpu(), &val).unwrap(), 256)).unwrap();
    assert_eq!(now.loss, best_loss);
    assert_eq!(t.history_json().last().unwrap()["event"], "early_stop");
}

#[test]
fn without_early_stopping_all_epochs_run() {
    let train = spirals(20, 93);
    let spec = accrete::nn::presets::mlp(2, &[16], 3);
    let mut t = Trainer::new(
        gpu(),
        spec,
        OptimizerSpec::adam(0.01),
        TrainSpec::default(),
        5,
    )
    .unwrap();
    let report = pollster::block_on(t.fit_with_validation(&train, &train, 4, None)).unwrap();
    assert_eq!((report.epochs_run, report.stopped_early), (4, false));
    assert_eq!(t.history.len(), 4);
    assert!(t.history_json()[3]["val_accuracy"].is_number());
}

/// Early stopping inside `fit_chunk` (what the CLI runs): the chunk ends after `patience`
/// epochs without improvement, the best epoch's weights come back, the validation figures
/// are in the history — and a run resumed from any of its checkpoints ends byte-identical,
/// because the early-stopping state and the best snapshot travel in the checkpoint.
#[test]
fn chunks_stop_early_and_resume_exactly() {
    use accrete::train::{ChunkOptions, ChunkOutcome, NoObserver};
    let train = spirals(20, 94);
    let val = spirals(60, 95);
    let ts = TrainSpec {
        batch_size: 20,
        epochs: 60,
        early_stopping: Some(EarlyStopping {
            patience: 2,
            min_delta: 0.0,
            monitor: Monitor::ValLoss,
            restore_best: true,
        }),
        ..Default::default()
    };
    let fresh = || {
        let spec = accrete::nn::presets::mlp(2, &[128, 128], 3);
        let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.02), ts.clone(), 6).unwrap();
        t.set_validation(Some(&val)).unwrap();
        t
    };
    let opts = ChunkOptions {
        report_every_steps: None,
        checkpoint_every_steps: Some(1),
        ..ChunkOptions::default()
    };
    let mut t = fresh();
    let mut keep = KeepCheckpoints(Vec::new());
    let out = pollster::block_on(t.fit_chunk_with(&train, &opts, &mut keep)).unwrap();
    let ChunkOutcome::Done(epochs) = out else {
        panic!("not stopped by the observer")
    };
    assert!(epochs.len() < 60, "ran all {} epochs", epochs.len());
    let rows: Vec<_> = t
        .history_json()
        .into_iter()
        .filter(|h| h.get("val_loss").is_some())
        .collect();
    assert_eq!(rows.len(), epochs.len());
    let best = rows
        .iter()
        .map(|h| h["val_loss"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(t
        .history_json()
        .iter()
        .any(|h| h["event"] == "early_stop_chunk"));
    // The restored weights give exactly the best epoch's validation loss.
    let now =
        pollster::block_on(t.evaluate(&GpuDataset::upload(gpu(), &val).unwrap(), 256)).unwrap();
    assert_eq!(now.loss, best);
    let want = pollster::block_on(weight_bytes(&t));
    // Resume from a checkpoint taken late in the chunk (after the best snapshot existed).
    let c = &keep.0[keep.0.len() - 2];
    assert!(c
        .tensors
        .iter()
        .any(|x| x.name.starts_with("early_stopping.best.")));
    let mut r = Trainer::from_checkpoint(gpu(), c).unwrap();
    r.set_validation(Some(&val)).unwrap();
    pollster::block_on(r.fit_chunk_with(&train, &opts, &mut NoObserver)).unwrap();
    assert_eq!(
        pollster::block_on(weight_bytes(&r)),
        want,
        "resumed run differs"
    );
}
