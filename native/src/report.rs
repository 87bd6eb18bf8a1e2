//! `accrete report DIR` (also run at the end of `accrete train`): evaluates a run's
//! checkpoint on its test data (else its validation split) and writes `DIR/report/`:
//!
//! - `report.md`: summary, per-class precision / recall / F1 and one-vs-rest ROC AUC, top
//!   confusions, the per-epoch table, links to the images;
//! - `evaluation.json`: the same numbers as `accrete eval` prints;
//! - `loss.{png,svg}`, `accuracy.{png,svg}`: training and validation curves per epoch,
//!   chunk boundaries dashed;
//! - `confusion_counts.{png,svg}`, `confusion_normalized.{png,svg}`: heat-maps;
//! - `decision_boundary.{png,svg}` for models with 2-D inputs.
//!
//! The numbers come from `accrete::report` and `accrete::session`; [`crate::charts`] draws.

use crate::charts::{
    draw_boundary, draw_confusion, draw_curves, draw_task_curves, draw_task_matrix, save, Metric,
};
use crate::rundir::{io_failure, prepare, read_config, write_failure, RunDir, Which};
use crate::Failure;
use accrete::config::{Prepared, RunConfig};
use accrete::report::{continual_markdown, curves, markdown, Grid, ReportInfo};
use accrete::session::Session;
use accrete::train::{history, Checkpoint};
use accrete::Gpu;
use clap::{Args, ValueEnum};
use plotters::prelude::*;
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "Examples:
  accrete report runs/001                      evaluate checkpoints/last.safetensors
  accrete report runs/001 --checkpoint best    the epoch with the best validation accuracy

Environment:
  ACCRETE_FONT=<file.ttf>   the font for chart text (default: DejaVu Sans or another system font;
                            ACCRETE_FONT=none draws without text)";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WhichArg {
    Last,
    Best,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// Which checkpoint to evaluate.
    #[arg(long, value_enum, default_value = "last")]
    pub checkpoint: WhichArg,
}

/// What a report found, for the caller's summary line.
pub struct Summary {
    pub data_name: &'static str,
    pub samples: usize,
    pub accuracy: f64,
    pub report_md: PathBuf,
}

pub fn run(args: &ReportArgs) -> Result<(), Failure> {
    let run = RunDir::open(&args.dir)?;
    run.preflight()?;
    let config = read_config(&run.config())?;
    let data = prepare(&config)?;
    let gpu = pollster::block_on(Gpu::new())?;
    let which = match args.checkpoint {
        WhichArg::Last => Which::Last,
        WhichArg::Best => Which::Best,
    };
    let s = write_report(&gpu, &run, &config, &data, which)?;
    writeln!(
        std::io::stdout().lock(),
        "{} accuracy {:.2}% on {} samples; report in {}",
        s.data_name,
        100.0 * s.accuracy,
        s.samples,
        s.report_md.display()
    )?;
    Ok(())
}

/// Evaluates the run's `which` checkpoint and writes `DIR/report/`.
pub fn write_report(
    gpu: &Gpu,
    run: &RunDir,
    config: &RunConfig,
    data: &Prepared,
    which: Which,
) -> Result<Summary, Failure> {
    let ckpt_path = run.checkpoint(which);
    if !ckpt_path.exists() {
        return Err(io_failure(
            &ckpt_path,
            "not found (the run has not written that checkpoint yet)",
        ));
    }
    let ckpt = Checkpoint::read_file(&ckpt_path)?;
    let mut session = Session::for_inference(gpu, &ckpt)?;
    // The prepared data is standardised already (with the run's standardizer).
    let (set, data_name) = data.report_data();
    let classes = config.model.outputs()?;
    let eval = pollster::block_on(session.evaluate(set))?;
    let events = run.read_events()?;
    let rows = history::epochs(&events);
    let ends = history::chunk_ends(&events);
    let changes = events
        .iter()
        .filter_map(|e| match e {
            history::Event::HyperChange(h) => Some(h.describe()),
            _ => None,
        })
        .collect();

    let out = run.report();
    std::fs::create_dir_all(&out).map_err(|e| write_failure(&out, e))?;
    let names: Vec<String> = (0..classes).map(|c| config.class_name(c)).collect();
    let mut images = Vec::new();
    let c = curves(&rows);
    if !rows.is_empty() {
        save!(out, "loss", (900, 540), |a| draw_curves(
            a,
            &c,
            Metric::Loss
        ));
        save!(out, "accuracy", (900, 540), |a| draw_curves(
            a,
            &c,
            Metric::Accuracy
        ));
        images.push(("Loss per epoch".to_string(), "loss"));
        images.push(("Accuracy per epoch".to_string(), "accuracy"));
    }
    if let Some(first) = ends.first() {
        let on = first.data.clone();
        if ends.iter().any(|e| !e.task_accuracy.is_empty()) {
            let side = (520 + 70 * ends.len().min(20)) as u32;
            save!(
                out,
                "task_matrix",
                (side + 120, side),
                |a| draw_task_matrix(a, &ends, &on)
            );
            images.push((
                "Accuracy matrix: accuracy on each task after each chunk".to_string(),
                "task_matrix",
            ));
        }
        save!(out, "task_accuracy", (900, 540), |a| draw_task_curves(
            a, &ends, &on
        ));
        images.push(("Accuracy after each chunk".to_string(), "task_accuracy"));
    }
    let side = (560 + 40 * classes.min(30)) as u32;
    save!(out, "confusion_counts", (side + 140, side), |a| {
        draw_confusion(a, &eval, &names, false, data_name)
    });
    save!(out, "confusion_normalized", (side + 140, side), |a| {
        draw_confusion(a, &eval, &names, true, data_name)
    });
    images.push(("Confusion matrix (counts)".to_string(), "confusion_counts"));
    images.push((
        "Confusion matrix (row-normalised: recall on the diagonal)".to_string(),
        "confusion_normalized",
    ));
    if config.model.input == [2] {
        if let Some(grid) = Grid::around(&set.features, 160, 160) {
            let pts = grid.points();
            let g = accrete::data::Dataset::new(pts, vec![0; grid.nx * grid.ny], vec![2], classes)?;
            let gp = pollster::block_on(session.predict(&g))?;
            // The model sees standardised features when the run standardises.
            let note = if data.standardizer.is_some() {
                " (standardised)"
            } else {
                ""
            };
            save!(out, "decision_boundary", (760, 700), |a| draw_boundary(
                a,
                note,
                &grid,
                &gp,
                classes,
                &set.features,
                &set.labels,
                &names
            ));
            images.push(("Decision boundary".to_string(), "decision_boundary"));
        }
    }

    let info = ReportInfo {
        title: run.dir.display().to_string(),
        checkpoint: RunDir::checkpoint_label(which),
        data_name: data_name.to_string(),
        class_names: names,
        images: images
            .iter()
            .map(|(h, f)| (h.clone(), format!("{f}.png"), format!("{f}.svg")))
            .collect(),
        changes,
    };
    let md = markdown(&info, &eval, &rows) + &continual_markdown(&ends);
    let md_path = out.join("report.md");
    std::fs::write(&md_path, md).map_err(|e| write_failure(&md_path, e))?;
    let json_path = out.join("evaluation.json");
    let json = serde_json::to_string_pretty(&eval).expect("serialisable");
    std::fs::write(&json_path, json + "\n").map_err(|e| write_failure(&json_path, e))?;
    Ok(Summary {
        data_name,
        samples: eval.samples,
        accuracy: eval.accuracy,
        report_md: md_path,
    })
}
