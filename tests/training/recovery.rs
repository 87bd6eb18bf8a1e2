//! Recovery strategies (`[recovery] strategy`): the same injected divergence (ten steps at
//! 10⁴ × the learning rate in chunk 2) is recovered from by each of last_good, best, anneal
//! and population; the run completes and learns; every rollback is in the history with
//! its strategy and cost; runs are deterministic and resume bit-exactly from checkpoints
//! before and after the rollback (the best state and the draws counter travel); `best`
//! without validation is refused. Prints the comparison table (final validation accuracy,
//! extra steps) with `--nocapture`.

use accrete::config::RunConfig;
use accrete::optim::OptimizerSpec;
use accrete::train::history::Event;
use accrete::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, Observer, RecoverySpec, Strategy, TrainSpec, Trainer,
};
use accrete_tests::*;

fn trainer(strategy: Strategy) -> Trainer {
    let spec = accrete::nn::presets::mlp(2, &[32, 32], 3);
    let train = TrainSpec {
        batch_size: 25,
        epochs: 4,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), spec, OptimizerSpec::adam(0.01), train, 4).unwrap();
    t.recovery = Some(RecoverySpec {
        spike_factor: 2.0,
        strategy,
        ..Default::default()
    });
    t.set_validation(Some(&spirals(30, 63))).unwrap();
    t
}

struct Keep(Vec<Checkpoint>);

impl Observer for Keep {
    fn checkpoint(&mut self, c: &Checkpoint) -> accrete::Result<()> {
        self.0.push(c.clone());
        Ok(())
    }
}

fn opts() -> ChunkOptions {
    ChunkOptions {
        checkpoint_every_steps: Some(6),
        ..ChunkOptions::default()
    }
}

/// Chunk 2 with the spike injected at its start (when the trainer is at chunk 2's start).
fn chunk2(t: &mut Trainer, keep: &mut Keep, inject: bool) {
    if inject {
        t.inject_lr_spike(1e4, 10);
    }
    let out = pollster::block_on(t.fit_chunk_with(&spirals(100, 61), &opts(), keep)).unwrap();
    assert!(matches!(out, ChunkOutcome::Done(_)));
}

/// Chunk 1, then chunk 2 with the injected divergence; the checkpoints on the way.
fn run(strategy: Strategy) -> (Trainer, Keep) {
    let mut t = trainer(strategy);
    let mut keep = Keep(Vec::new());
    let out = pollster::block_on(t.fit_chunk_with(&spirals(100, 62), &opts(), &mut keep)).unwrap();
    assert!(matches!(out, ChunkOutcome::Done(_)));
    chunk2(&mut t, &mut keep, true);
    (t, keep)
}

fn rollbacks(t: &Trainer) -> Vec<accrete::train::history::Rollback> {
    t.history
        .iter()
        .filter_map(|e| match e {
            Event::Rollback(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn bits(t: &Trainer) -> Vec<Vec<u32>> {
    let c = pollster::block_on(t.checkpoint()).unwrap();
    c.tensors
        .iter()
        .map(|x| x.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// The history without timing, its numbers to 12 digits: a checkpoint carries it as JSON,
/// whose f64 parsing may be one ulp off.
fn without_timing(t: &Trainer) -> Vec<String> {
    fn round(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                *v = format!("{:.12e}", n.as_f64().unwrap()).into();
            }
            serde_json::Value::Object(m) => m.values_mut().for_each(round),
            serde_json::Value::Array(a) => a.iter_mut().for_each(round),
            _ => {}
        }
    }
    t.history
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            v.as_object_mut().unwrap().remove("samples_per_sec");
            round(&mut v);
            v.to_string()
        })
        .collect()
}

#[test]
fn every_strategy_recovers_from_an_injected_divergence_and_resumes_exactly() {
    let mut table = vec![
        "| strategy | rollbacks | extra steps | final val. accuracy | final val. loss |"
            .to_string(),
        "| --- | ---: | ---: | ---: | ---: |".to_string(),
    ];
    // Without the fault, for reference.
    let mut clean = trainer(Strategy::LastGood);
    let mut k = Keep(Vec::new());
    pollster::block_on(clean.fit_chunk_with(&spirals(100, 62), &opts(), &mut k)).unwrap();
    chunk2(&mut clean, &mut k, false);
    let last = |t: &Trainer| {
        accrete::train::history::epochs(&t.history)
            .last()
            .unwrap()
            .clone()
    };
    let c = last(&clean);
    table.push(format!(
        "| (no fault) | 0 | 0 | {:.2}% | {:.4} |",
        100.0 * c.val_accuracy.unwrap(),
        c.val_loss.unwrap()
    ));
    for strategy in [
        Strategy::LastGood,
        Strategy::Best,
        Strategy::Anneal,
        Strategy::Population,
    ] {
        let (t, keep) = run(strategy);
        let rb = rollbacks(&t);
        assert!(!rb.is_empty(), "{strategy:?}: the spike was not detected");
        assert!(rb.iter().all(|r| r.strategy == strategy && r.chunk == 1));
        let r = last(&t);
        assert!(
            r.train_loss.is_finite() && r.train_loss < 1.0,
            "{strategy:?}: {r:?}"
        );
        assert_eq!(r.epoch_in_chunk, 4, "{strategy:?}: the chunk completes");
        let extra: u64 = rb.iter().map(|r| r.extra_steps).sum();
        // The diverged epoch's 12 steps at least; population adds 4 × 10 trial steps.
        assert!(extra >= 12 * rb.len() as u64, "{strategy:?}: {rb:?}");
        match strategy {
            Strategy::LastGood => assert!(rb[0].detail.is_none()),
            Strategy::Best => assert!(
                rb[0]
                    .detail
                    .as_deref()
                    .unwrap()
                    .starts_with("the best-validation state"),
                "{rb:?}"
            ),
            Strategy::Anneal => assert!(rb[0].detail.as_deref().unwrap().contains("anneal")),
            Strategy::Population => {
                assert!(
                    rb[0].detail.as_deref().unwrap().starts_with("candidate "),
                    "{rb:?}"
                );
                assert_eq!(rb[0].extra_steps, 12 + 40);
            }
        }
        table.push(format!(
            "| {strategy:?} | {} | {extra} | {:.2}% | {:.4} |",
            rb.len(),
            100.0 * r.val_accuracy.unwrap(),
            r.val_loss.unwrap()
        ));

        // Deterministic: the same run again gives the same bits.
        let (again, _) = run(strategy);
        assert_eq!(bits(&again), bits(&t), "{strategy:?}: not deterministic");

        // Resumed from chunk 2's start (the fault injected again) and from a checkpoint
        // after the rollback: bit-identical, same history.
        let start = keep
            .0
            .iter()
            .find(|c| c.meta.cursor.chunk == 1 && c.meta.step == 48)
            .expect("a checkpoint at chunk 2's start");
        let after = keep
            .0
            .iter()
            .find(|c| {
                c.meta.cursor.chunk == 1
                    && c.meta
                        .history
                        .iter()
                        .any(|e| matches!(e, Event::Rollback(_)))
            })
            .expect("a checkpoint after the rollback");
        for (c, inject) in [(start, true), (after, false)] {
            let bytes = c.to_bytes().unwrap();
            let mut resumed =
                Trainer::from_checkpoint(gpu(), &Checkpoint::from_bytes(&bytes, "c").unwrap())
                    .unwrap();
            resumed.recovery = t.recovery.clone();
            resumed.set_validation(Some(&spirals(30, 63))).unwrap();
            chunk2(&mut resumed, &mut Keep(Vec::new()), inject);
            assert_eq!(
                bits(&resumed),
                bits(&t),
                "{strategy:?} from step {}",
                c.meta.step
            );
            assert_eq!(without_timing(&resumed), without_timing(&t));
        }
    }
    eprintln!("{}", table.join("\n"));
}

#[test]
fn best_without_validation_is_refused() {
    let mut t = trainer(Strategy::Best);
    t.set_validation(None).unwrap();
    let e = pollster::block_on(t.fit_chunk(&spirals(20, 1))).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(
        e.to_string().starts_with("recovery.strategy: \"best\" restarts from the best-validation state, but the run has no validation set"),
        "{e}"
    );
    let mut config = RunConfig::default();
    config.data.validation_fraction = 0.0;
    config.recovery = Some(RecoverySpec {
        strategy: Strategy::Best,
        ..Default::default()
    });
    let e = config.validate().unwrap_err().to_string();
    assert!(e.starts_with("recovery.strategy: "), "{e}");
    let text = "[recovery]\nstrategy = \"population\"\npopulation = 0\n";
    let e = RunConfig::from_toml(text, "run.toml")
        .and_then(|c| c.validate())
        .unwrap_err()
        .to_string();
    assert!(e.contains("recovery.population: must be at least 1"), "{e}");
    let e = RunConfig::from_toml("[recovery]\nstrategy = \"genetic\"\n", "run.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("genetic") && e.contains("population"), "{e}");
}

/// A cause that lasts: chunk 2 runs at 512 × the base rate for good (a bad `--set
/// optimizer.lr`), not a transient spike. Each rollback halves the rate; `last_good` and
/// `population` both end the chunk learning, and `population` never adopts a candidate
/// that diverged in its trial steps (each adopted one scored within `spike_factor` × the
/// last good state's loss): until the rate is low enough it restarts from the last good
/// state.
#[test]
fn a_lasting_cause_is_met_by_lower_rates_not_by_diverged_candidates() {
    use accrete::train::history::ChangeSource;
    use accrete::train::Setting;
    let mut table =
        vec!["| strategy | rollbacks | extra steps | final val. accuracy |".to_string()];
    for strategy in [Strategy::LastGood, Strategy::Population] {
        let mut t = trainer(strategy);
        t.recovery.as_mut().unwrap().max_rollbacks = 8;
        let mut keep = Keep(Vec::new());
        pollster::block_on(t.fit_chunk_with(&spirals(100, 62), &opts(), &mut keep)).unwrap();
        t.change_hyper(&[Setting::new("optimizer.lr", 5.12)], ChangeSource::Call)
            .unwrap();
        chunk2(&mut t, &mut keep, false);
        let rb = rollbacks(&t);
        assert!(rb.len() >= 2, "{strategy:?}: the cause lasts: {rb:?}");
        let last = accrete::train::history::epochs(&t.history)
            .last()
            .unwrap()
            .clone();
        assert_eq!(last.epoch_in_chunk, 4, "{strategy:?}: the chunk completes");
        assert!(
            last.train_loss < 1.0 && last.val_accuracy.unwrap() > 0.7,
            "{strategy:?}: {last:?}"
        );
        if strategy == Strategy::Population {
            let number = |text: &str, key: &str| -> f64 {
                let at = text.find(key).unwrap() + key.len();
                text[at..]
                    .split([' ', ')'])
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let mut refused = 0;
            for r in &rb {
                let detail = r.detail.as_deref().unwrap();
                if detail.starts_with("no candidate") {
                    refused += 1;
                    continue;
                }
                let (loss, good) = (number(detail, "loss "), number(detail, "last good "));
                assert!(loss <= 2.0 * good, "adopted a diverged candidate: {detail}");
            }
            assert!(
                refused >= 1,
                "at 512 × the rate every candidate diverges: {rb:?}"
            );
        }
        let extra: u64 = rb.iter().map(|r| r.extra_steps).sum();
        table.push(format!(
            "| {strategy:?} | {} | {extra} | {:.2}% |",
            rb.len(),
            100.0 * last.val_accuracy.unwrap()
        ));
    }
    eprintln!("{}", table.join("\n"));
}
