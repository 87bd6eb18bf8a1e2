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
    assert_eq!(t.history.last().unwrap()["event"], "early_stop");
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
    assert!(t.history[3]["val_accuracy"].is_number());
}
