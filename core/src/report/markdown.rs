//! The text of a run's `report.md`.

use super::{best_validation, EpochRecord, Evaluation};
use std::fmt::Write;

/// What the report says about the run besides the numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportInfo {
    /// Heading, e.g. the run directory.
    pub title: String,
    /// The checkpoint that was evaluated, e.g. "checkpoints/last.safetensors".
    pub checkpoint: String,
    /// Which data was evaluated: "test", "validation" or "training".
    pub data_name: String,
    /// One name per class.
    pub class_names: Vec<String>,
    /// Images to link: (section heading, PNG path, SVG path), relative to the report.
    pub images: Vec<(String, String, String)>,
    /// Hyper-parameter changes during the run, one line each
    /// ([`crate::train::HyperChange::describe`]).
    pub changes: Vec<String>,
}

pub(super) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        "n/a".into()
    }
}

pub(super) fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".into()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), num)
}

/// Escapes `|` so a name cannot break a table row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// `report.md`: a summary, the training history, per-class precision / recall / F1 and
/// ROC AUC, the most frequent confusions, and links to the images.
pub fn markdown(info: &ReportInfo, eval: &Evaluation, rows: &[EpochRecord]) -> String {
    let name = |c: usize| {
        info.class_names
            .get(c)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    // "Coat (4)", or just "4" without class names.
    let label = |c: usize| {
        let n = name(c);
        if n == c.to_string() {
            n
        } else {
            format!("{n} ({c})")
        }
    };
    let mut s = String::new();
    let _ = writeln!(s, "# Report: {}\n", info.title);
    let _ = writeln!(
        s,
        "Model `{}` evaluated on the {} data ({} samples).\n",
        info.checkpoint, info.data_name, eval.samples
    );
    let _ = writeln!(s, "| metric | value |\n| --- | --- |");
    let _ = writeln!(s, "| accuracy | {} |", pct(eval.accuracy));
    let _ = writeln!(s, "| loss (cross-entropy) | {} |", num(eval.loss));
    let _ = writeln!(s, "| macro F1 | {} |", num(eval.macro_f1));
    let _ = writeln!(s, "| weighted F1 | {} |", num(eval.weighted_f1));
    let _ = writeln!(
        s,
        "| macro ROC AUC (one-vs-rest) | {} |",
        opt(eval.macro_auc)
    );
    if let Some(last) = rows.last() {
        let chunks = rows.iter().map(|r| r.chunk).max().map_or(0, |c| c + 1);
        let _ = writeln!(
            s,
            "| training | {} epochs in {chunks} chunk{}, {} steps |",
            last.epoch,
            if chunks == 1 { "" } else { "s" },
            last.step
        );
        let _ = writeln!(
            s,
            "| last epoch: train loss / accuracy | {} / {} |",
            num(last.train_loss),
            pct(last.train_accuracy)
        );
        if let Some((acc, epoch)) = best_validation(rows) {
            let _ = writeln!(
                s,
                "| best validation accuracy | {} (epoch {epoch}) |",
                pct(acc)
            );
        }
    }

    let _ = writeln!(s, "\n## Per class\n");
    let _ = writeln!(
        s,
        "| class | name | precision | recall | F1 | ROC AUC | support |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for c in &eval.per_class {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.class,
            cell(&name(c.class)),
            num(c.precision),
            num(c.recall),
            num(c.f1),
            opt(c.auc),
            c.support
        );
    }
    let _ = writeln!(
        s,
        "| | **macro** | {} | {} | {} | {} | {} |",
        num(eval.macro_precision),
        num(eval.macro_recall),
        num(eval.macro_f1),
        opt(eval.macro_auc),
        eval.samples
    );
    let _ = writeln!(
        s,
        "| | **micro** | {} | {} | {} | | {} |",
        num(eval.micro_precision),
        num(eval.micro_recall),
        num(eval.micro_f1),
        eval.samples
    );

    let _ = writeln!(s, "\n## Top confusions\n");
    if eval.top_confusions.is_empty() {
        let _ = writeln!(s, "No sample was misclassified.");
    } else {
        let _ = writeln!(
            s,
            "| actual | predicted as | samples | share of the class |\n| --- | --- | ---: | ---: |"
        );
        for t in &eval.top_confusions {
            let support = eval.per_class.get(t.actual).map_or(0, |c| c.support);
            let share = if support == 0 {
                f64::NAN
            } else {
                t.count as f64 / support as f64
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell(&label(t.actual)),
                cell(&label(t.predicted)),
                t.count,
                pct(share)
            );
        }
    }

    for (heading, png, svg) in &info.images {
        let _ = writeln!(s, "\n## {heading}\n");
        let _ = writeln!(s, "![{heading}]({png})\n\n[SVG]({svg})");
    }

    if !info.changes.is_empty() {
        let _ = writeln!(s, "\n## Hyper-parameter changes\n");
        for c in &info.changes {
            let _ = writeln!(s, "- {}", c.replace('|', "\\|"));
        }
    }

    if !rows.is_empty() {
        let _ = writeln!(s, "\n## Epochs\n");
        let _ = writeln!(
            s,
            "| epoch | chunk | step | train loss | train acc. | val. loss | val. acc. | lr | samples/s |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {:.3e} | {:.0} |",
                r.epoch,
                r.chunk + 1,
                r.step,
                num(r.train_loss),
                pct(r.train_accuracy),
                opt(r.val_loss),
                r.val_accuracy.map_or_else(|| "n/a".into(), pct),
                r.lr,
                r.samples_per_sec
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::evaluate;
    use super::*;

    #[test]
    fn report_mentions_classes_confusions_and_images() {
        let e = evaluate(&[0, 1, 1], &[0.9, 0.1, 0.6, 0.4, 0.2, 0.8], 2).unwrap();
        let info = ReportInfo {
            title: "runs/001".into(),
            checkpoint: "checkpoints/last.safetensors".into(),
            data_name: "test".into(),
            class_names: vec!["cat".into(), "dog|wolf".into()],
            images: vec![(
                "Confusion matrix".into(),
                "confusion.png".into(),
                "confusion.svg".into(),
            )],
            changes: vec!["step 4 (chunk 2, resume --set): optimizer.lr 0.01 → 0.001".into()],
        };
        let md = markdown(&info, &e, &[]);
        assert!(md.contains("| 1 | dog\\|wolf |"), "{md}");
        assert!(
            md.contains("| dog\\|wolf (1) | cat (0) | 1 | 50.00% |"),
            "{md}"
        );
        assert!(md.contains("![Confusion matrix](confusion.png)"), "{md}");
        assert!(md.contains("| accuracy | 66.67% |"), "{md}");
        assert!(
            md.contains("## Hyper-parameter changes\n\n- step 4 (chunk 2, resume --set): optimizer.lr 0.01 → 0.001\n"),
            "{md}"
        );
    }
}
