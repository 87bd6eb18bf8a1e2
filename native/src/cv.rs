//! `accrete cv`: k-fold cross-validation of a run configuration. The folds, the grid and
//! the summary are the core's ([`accrete::config::cv`]); this module trains each fold as an
//! ordinary run directory under the parent, evaluates it on its held-out fold, and writes
//! the summary (one JSON object on stdout, `report.md` in the parent).

use crate::progress::{Display, Mode};
use crate::rundir::{check_out, read_config, write_failure, RunDir, Which};
use crate::Failure;
use accrete::checkpoint::write_atomic;
use accrete::config::cv::{
    check_folds, cv_markdown, grid_points, CvSummary, FoldScores, GridAxis, Scores,
};
use accrete::config::RunConfig;
use accrete::session::Session;
use accrete::train::Checkpoint;
use accrete::Gpu;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "Examples:
  accrete cv --config run.toml --folds 5 --out cv/exp1
  accrete cv --config run.toml --folds 3 --stratified --grid optimizer.lr=1e-3,3e-4 --grid train.batch_size=64,128

Each fold trains as an ordinary run in DIR/fold-N (DIR/setting-S/fold-N with a grid) on the
other folds — chunks, validation split and standardisation as the configuration says — and is
evaluated on its held-out fold (its sample indices in fold-N/heldout.json, 0-based rows of the
training data after data.train_limit). Standard output: one JSON object {\"folds\": [{\"fold\",
\"accuracy\", \"loss\", \"macro_f1\"}, …], \"mean\": {…}, \"std\": {…}} (std: sample standard
deviation); with a grid also \"setting\" (the best by mean accuracy) and \"grid\" (every
setting's mean and std). DIR/report.md has the same tables. Progress per fold on standard error.";

#[derive(Args, Debug)]
pub struct CvArgs {
    /// The run configuration (TOML); default: the built-in run.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Number of folds (at least 2).
    #[arg(long, value_name = "K")]
    pub folds: usize,
    /// Deal every class evenly over the folds.
    #[arg(long)]
    pub stratified: bool,
    /// The parent directory of the folds' run directories (default: runs/NNN, the next free
    /// number).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Compare settings: KEY=V1,V2,… (repeatable; every combination is cross-validated).
    #[arg(long, value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// Print nothing but the JSON summary and errors.
    #[arg(long)]
    pub quiet: bool,
}

/// `[parallel]` for cross-validation: the folds train one after another in this process, so
/// local replicas are honoured (and checked now, before any fold trains) and MPI is refused.
fn check_parallel(config: &RunConfig) -> accrete::Result<()> {
    use accrete::config::ParallelBackend;
    let Some(p) = config.parallel.as_ref() else {
        return Ok(());
    };
    if p.backend == ParallelBackend::Mpi {
        return Err(accrete::Error::InvalidArgument {
            what: "parallel.backend".into(),
            detail: "accrete cv trains its folds one after another in one process; \"mpi\" is for `mpirun … accrete train` and `resume`. Use backend = \"local\" with devices = N, or leave [parallel] out".into(),
        });
    }
    p.validate(config)
}

pub fn run(args: &CvArgs) -> Result<(), Failure> {
    let base = match &args.config {
        Some(p) => read_config(p)?,
        None => RunConfig::default(),
    }
    .resolved();
    base.validate()?;
    let axes = args
        .grid
        .iter()
        .map(|g| GridAxis::parse(g))
        .collect::<accrete::Result<Vec<_>>>()?;
    let points = grid_points(&axes);
    // Every setting is checked before any training.
    let mut settings = Vec::new();
    for p in &points {
        let mut c = base.clone();
        for (k, v) in p {
            c = c.with_value(k, v)?;
        }
        let name = if p.is_empty() {
            "config".to_string()
        } else {
            p.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        settings.push((name, c));
    }
    check_folds(args.folds)?;
    for (_, c) in &settings {
        check_parallel(c)?;
    }
    if let Some(out) = &args.out {
        check_out(out)?;
    }
    let (train, _) = base.load_data()?;
    let gpu = pollster::block_on(Gpu::new())?;
    let parent = RunDir::claim(args.out.as_deref())?;
    let mode = Mode::detect(args.quiet);
    let say = |line: &str| {
        if mode != Mode::Quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    };
    let mut results = Vec::new();
    for (s, (name, config)) in settings.iter().enumerate() {
        let folds = config.cv_folds(train.clone(), args.folds, args.stratified)?;
        let mut scores = Vec::new();
        for (f, (fold_config, data, held)) in folds.iter().enumerate() {
            let dir = if settings.len() > 1 {
                parent.dir.join(format!("setting-{}", s + 1))
            } else {
                parent.dir.clone()
            }
            .join(format!("fold-{}", f + 1));
            let run = RunDir::claim(Some(&dir))?;
            run.write_config(fold_config)?;
            let held_path = dir.join("heldout.json");
            let held_json = serde_json::to_string(held).expect("indices serialise");
            write_atomic(&held_path, held_json.as_bytes())?;
            let (mut session, _) = Session::for_run(
                &gpu,
                fold_config,
                data.standardizer.clone(),
                Some(data.planned_steps_by(&fold_config.train, &fold_config.chunk_epochs(&[]))),
                fold_config.finetune_weights()?.as_deref(),
            )?;
            // [parallel] backend = "local": each fold trains on its replicas.
            pollster::block_on(session.enable_parallel(fold_config, None))?;
            say(&format!(
                "{}fold {}/{}: training on {} samples, holding out {} · {}{}",
                if settings.len() > 1 {
                    format!("setting {}/{} ({name}) ", s + 1, settings.len())
                } else {
                    String::new()
                },
                f + 1,
                folds.len(),
                data.train.len(),
                held.len(),
                dir.display(),
                match session.trainer.workers() {
                    1 => String::new(),
                    n => format!(" · {n} replicas"),
                }
            ));
            let display = Display::new(
                Mode::Quiet,
                fold_config.incremental.chunks,
                fold_config.train.epochs,
            );
            crate::run::train_run(&gpu, fold_config, data, &run, session, display)?;
            let ckpt = Checkpoint::read_file(&run.checkpoint(Which::Last))?;
            let mut eval = Session::for_inference(&gpu, &ckpt)?;
            // The prepared held-out fold is the run's test data, standardised already.
            let test = data.test.as_ref().expect("the held-out fold");
            let e = pollster::block_on(eval.evaluate(test))?;
            let sc = Scores::of(&e);
            say(&format!(
                "fold {}/{}: accuracy {:.2}%, loss {:.4}, macro F1 {:.4}",
                f + 1,
                folds.len(),
                100.0 * sc.accuracy,
                sc.loss,
                sc.macro_f1
            ));
            scores.push(FoldScores {
                fold: f + 1,
                scores: sc,
            });
        }
        results.push((name.clone(), CvSummary::new(scores)));
    }
    let best = (0..results.len()).fold(0, |b, i| {
        if results[i].1.mean.accuracy > results[b].1.mean.accuracy {
            i
        } else {
            b
        }
    });
    let md = cv_markdown(&parent.dir.display().to_string(), &results, best);
    let md_path = parent.dir.join("report.md");
    std::fs::write(&md_path, md).map_err(|e| write_failure(&md_path, e))?;
    let mut out = serde_json::to_value(&results[best].1).expect("serialisable");
    if !axes.is_empty() {
        let obj = out.as_object_mut().expect("an object");
        let setting: serde_json::Map<String, serde_json::Value> = points[best]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        obj.insert("setting".into(), setting.into());
        obj.insert(
            "grid".into(),
            results
                .iter()
                .zip(&points)
                .map(|((_, r), p)| {
                    serde_json::json!({
                        "setting": p.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
                        "mean": r.mean,
                        "std": r.std,
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        );
    }
    // Without a grid, the summary in its documented key order (fold first).
    let text = if axes.is_empty() {
        serde_json::to_string(&results[best].1).expect("serialisable")
    } else {
        out.to_string()
    };
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}
