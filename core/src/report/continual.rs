//! The continual-learning section of `report.md`, from the history's `chunk_end` rows.

use super::markdown::{num, pct};
use crate::train::history::ChunkEnd;
use std::fmt::Write;

fn signed(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "n/a".into(), |v| format!("{v:+.4}"))
}

/// "## After each chunk": accuracy on the evaluation data after every chunk and, for
/// class-incremental runs, the average accuracy over the tasks seen, backward transfer,
/// forgetting and the accuracy matrix R[i][j] (accuracy on task j after chunk i). Empty
/// without chunk-end rows.
pub fn continual_markdown(ends: &[ChunkEnd]) -> String {
    let mut s = String::new();
    let Some(first) = ends.first() else {
        return s;
    };
    let tasks = ends.iter().any(|e| !e.task_accuracy.is_empty());
    let _ = writeln!(s, "\n## After each chunk\n");
    let _ = writeln!(
        s,
        "Evaluated on the {} data ({} samples) at the end of every chunk{}.\n",
        first.data,
        first.samples,
        if tasks {
            "; a task is the classes one chunk brought. Average: over the tasks seen; BWT (backward transfer, Lopez-Paz & Ranzato 2017): mean over earlier tasks of final minus just-trained accuracy; forgetting (Chaudhry et al. 2018): mean over earlier tasks of best earlier minus final accuracy"
        } else {
            ""
        }
    );
    if tasks {
        let _ = writeln!(
            s,
            "| chunk | step | accuracy (all) | average over tasks seen | BWT | forgetting |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
        );
    } else {
        let _ = writeln!(s, "| chunk | step | accuracy |\n| ---: | ---: | ---: |");
    }
    for e in ends {
        if tasks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                e.chunk + 1,
                e.step,
                pct(e.accuracy),
                e.average_accuracy.map_or_else(|| "n/a".into(), pct),
                signed(e.bwt),
                e.forgetting.map_or_else(|| "n/a".into(), num)
            );
        } else {
            let _ = writeln!(s, "| {} | {} | {} |", e.chunk + 1, e.step, pct(e.accuracy));
        }
    }
    if tasks {
        let width = ends
            .iter()
            .map(|e| e.task_accuracy.len())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "\n### Accuracy matrix (rows: after chunk i; columns: task j)\n"
        );
        let head: String = (1..=width).map(|j| format!(" task {j} |")).collect();
        let rule: String = (0..width).map(|_| " ---: |").collect();
        let _ = writeln!(s, "| after chunk |{head}\n| ---: |{rule}");
        for e in ends {
            let cells: String = (0..width)
                .map(|j| {
                    e.task_accuracy
                        .get(j)
                        .map_or_else(|| " |".to_string(), |&a| format!(" {} |", pct(a)))
                })
                .collect();
            let _ = writeln!(s, "| {} |{cells}", e.chunk + 1);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(chunk: u64, tasks: Vec<f64>, bwt: Option<f64>) -> ChunkEnd {
        ChunkEnd {
            chunk,
            epoch: chunk + 1,
            step: 10 * (chunk + 1),
            data: "test".into(),
            samples: 50,
            accuracy: 0.5,
            task_accuracy: tasks,
            average_accuracy: Some(0.5),
            bwt,
            forgetting: bwt.map(|b| -b),
        }
    }

    #[test]
    fn the_section_holds_the_matrix_and_the_summaries() {
        let md = continual_markdown(&[
            end(0, vec![0.9], None),
            end(1, vec![0.25, 0.75], Some(-0.65)),
        ]);
        for needle in [
            "## After each chunk",
            "Evaluated on the test data (50 samples)",
            "| 2 | 20 | 50.00% | 50.00% | -0.6500 | 0.6500 |",
            "| after chunk | task 1 | task 2 |",
            "| 1 | 90.00% | |",
            "| 2 | 25.00% | 75.00% |",
        ] {
            assert!(md.contains(needle), "lacks {needle:?}:\n{md}");
        }
        assert_eq!(continual_markdown(&[]), "");
        let count = continual_markdown(&[end(0, vec![], None)]);
        assert!(count.contains("| chunk | step | accuracy |") && !count.contains("matrix"));
    }
}
