//! k-fold cross-validation of a run configuration (`accrete cv`): the folds, the grid of
//! settings to compare, and the summary. The CLI trains each fold as an ordinary run (its
//! training part split into chunks, validation and all as the configuration says) and
//! evaluates it on the held-out fold.
//!
//! The summary's `std` is the sample standard deviation over folds (n − 1; 0 for one fold).
//! With a grid, every combination of the `--grid key=v1,v2` values is cross-validated and
//! the best mean accuracy wins (the first on ties).

use super::{Prepared, RunConfig};
use crate::data::{split, Dataset};
use crate::error::{Error, Result};
use crate::report::Evaluation;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One fold's scores on its held-out part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    pub loss: f64,
    pub macro_f1: f64,
}

impl Scores {
    pub fn of(e: &Evaluation) -> Scores {
        Scores {
            accuracy: e.accuracy,
            loss: e.loss,
            macro_f1: e.macro_f1,
        }
    }
}

/// A fold's number (1-based) and scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    pub fold: usize,
    #[serde(flatten)]
    pub scores: Scores,
}

/// Folds' scores with their mean and standard deviation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    pub folds: Vec<FoldScores>,
    pub mean: Scores,
    pub std: Scores,
}

impl CvSummary {
    pub fn new(folds: Vec<FoldScores>) -> CvSummary {
        let n = folds.len().max(1) as f64;
        let pick = |f: fn(&Scores) -> f64| -> (f64, f64) {
            let mean = folds.iter().map(|x| f(&x.scores)).sum::<f64>() / n;
            let var = if folds.len() > 1 {
                folds
                    .iter()
                    .map(|x| (f(&x.scores) - mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0)
            } else {
                0.0
            };
            (mean, var.sqrt())
        };
        let (a, b, c) = (pick(|s| s.accuracy), pick(|s| s.loss), pick(|s| s.macro_f1));
        CvSummary {
            folds,
            mean: Scores {
                accuracy: a.0,
                loss: b.0,
                macro_f1: c.0,
            },
            std: Scores {
                accuracy: a.1,
                loss: b.1,
                macro_f1: c.1,
            },
        }
    }
}

/// Refuses fewer than 2 folds.
pub fn check_folds(k: usize) -> Result<()> {
    if k < 2 {
        return Err(Error::invalid(
            "--folds",
            format!("{k} folds: cross-validation needs at least 2 (each fold is held out once)"),
        ));
    }
    Ok(())
}

/// One `--grid key=v1,v2,…` axis.
#[derive(Clone, Debug, PartialEq)]
pub struct GridAxis {
    pub key: String,
    pub values: Vec<String>,
}

impl GridAxis {
    /// Parses `key=v1,v2,…` (at least one value).
    pub fn parse(text: &str) -> Result<GridAxis> {
        let (key, values) = text.split_once('=').ok_or_else(|| {
            Error::invalid(
                "--grid",
                format!("`{text}` is not key=v1,v2,…; e.g. --grid optimizer.lr=1e-3,3e-4"),
            )
        })?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(Error::invalid(
                "--grid",
                format!("`{text}` gives no values"),
            ));
        }
        Ok(GridAxis {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// Every combination of the axes' values, as (key, value) lists, in order (the last axis
/// varies fastest); one empty combination without axes.
pub fn grid_points(axes: &[GridAxis]) -> Vec<Vec<(String, String)>> {
    let mut points = vec![Vec::new()];
    for a in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((a.key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    points
}

impl RunConfig {
    /// This configuration with `key` (a dotted path such as `optimizer.lr` or
    /// `train.batch_size`) set to `raw` (a TOML value; a bare word is a string), checked as
    /// a whole ([`RunConfig::validate`]).
    pub fn with_value(&self, key: &str, raw: &str) -> Result<RunConfig> {
        let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t.remove("v").expect("parsed"),
            Err(_) => toml::Value::String(raw.to_string()),
        };
        let text = self.to_toml()?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| Error::invalid("run configuration", e))?;
        let parts: Vec<&str> = key.split('.').collect();
        let mut cur = &mut table;
        for p in &parts[..parts.len() - 1] {
            cur = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| Error::invalid(key, format!("{p} is not a table")))?;
        }
        cur.insert(parts[parts.len() - 1].to_string(), value);
        let text = toml::to_string(&table).map_err(|e| Error::invalid(key, e))?;
        let c = RunConfig::from_toml(&text, key)?;
        c.validate()?;
        Ok(c)
    }

    /// The folds of a cross-validation: the configuration's training data (fitted to the
    /// model, `train_limit` applied) dealt into `k` folds ([`split::kfold_indices`], seeded
    /// by `seed`, stratified on request). For each fold: the configuration to train it with
    /// (its `data.test_limit` removed: the held-out fold is its test data), its prepared
    /// data (chunks, validation split and standardisation from the other folds; the
    /// held-out fold as the test data) and the held-out sample indices.
    pub fn cv_folds(
        &self,
        train: Dataset,
        k: usize,
        stratified: bool,
    ) -> Result<Vec<(RunConfig, Prepared, Vec<usize>)>> {
        check_folds(k)?;
        let data = self.fit_to_model(train, self.data.train_limit, "training data")?;
        let folds = split::kfold_indices(&data, k, stratified, self.seed)
            .map_err(|e| Error::invalid("--folds", e.to_string()))?;
        let mut config = self.clone();
        config.data.test_limit = None;
        config.data.train_limit = None;
        folds
            .into_iter()
            .map(|(tr, held)| {
                let p = config.prepare(data.select(&tr), Some(data.select(&held)))?;
                Ok((config.clone(), p, held))
            })
            .collect()
    }
}

/// The parent's `report.md`: every setting's folds, mean and std, the best setting first.
pub fn cv_markdown(title: &str, results: &[(String, CvSummary)], best: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Cross-validation: {title}\n");
    if results.len() > 1 {
        let _ = writeln!(
            s,
            "Best setting by mean accuracy: **{}**.\n\n| setting | mean accuracy | std | mean loss | mean macro F1 |\n| --- | ---: | ---: | ---: | ---: |",
            results[best].0
        );
        for (name, r) in results {
            let _ = writeln!(
                s,
                "| {name} | {:.2}% | {:.2}% | {:.4} | {:.4} |",
                100.0 * r.mean.accuracy,
                100.0 * r.std.accuracy,
                r.mean.loss,
                r.mean.macro_f1
            );
        }
        let _ = writeln!(s);
    }
    for (name, r) in results {
        if results.len() > 1 {
            let _ = writeln!(s, "## {name}\n");
        }
        let _ = writeln!(
            s,
            "| fold | accuracy | loss | macro F1 |\n| ---: | ---: | ---: | ---: |"
        );
        for f in &r.folds {
            let _ = writeln!(
                s,
                "| {} | {:.2}% | {:.4} | {:.4} |",
                f.fold,
                100.0 * f.scores.accuracy,
                f.scores.loss,
                f.scores.macro_f1
            );
        }
        let _ = writeln!(
            s,
            "| mean | {:.2}% | {:.4} | {:.4} |\n| std | {:.2}% | {:.4} | {:.4} |\n",
            100.0 * r.mean.accuracy,
            r.mean.loss,
            r.mean.macro_f1,
            100.0 * r.std.accuracy,
            r.std.loss,
            r.std.macro_f1
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_grid_and_values() {
        let f = |fold, accuracy| FoldScores {
            fold,
            scores: Scores {
                accuracy,
                loss: 1.0,
                macro_f1: 0.5,
            },
        };
        let s = CvSummary::new(vec![f(1, 0.8), f(2, 0.9), f(3, 1.0)]);
        assert!((s.mean.accuracy - 0.9).abs() < 1e-12);
        assert!((s.std.accuracy - 0.1).abs() < 1e-12, "sample std");
        assert_eq!(s.std.loss, 0.0);
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with(r#"{"folds":[{"fold":1,"accuracy":0.8,"loss":1.0,"macro_f1":0.5}"#),
            "{json}"
        );
        let axes = [
            GridAxis::parse("optimizer.lr=1e-3,3e-4").unwrap(),
            GridAxis::parse("train.batch_size=64,128").unwrap(),
        ];
        let points = grid_points(&axes);
        assert_eq!(points.len(), 4);
        assert_eq!(points[1][1], ("train.batch_size".into(), "128".into()));
        assert!(GridAxis::parse("optimizer.lr").is_err());
        let c = RunConfig::default()
            .with_value("train.batch_size", "64")
            .unwrap();
        assert_eq!(c.train.batch_size, 64);
        let c = c.with_value("optimizer.lr", "3e-4").unwrap();
        assert_eq!(c.optimizer.lr, 3e-4);
        let e = RunConfig::default()
            .with_value("train.batchsize", "64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("batchsize"), "{e}");
        assert!(RunConfig::default()
            .with_value("train.batch_size", "0")
            .is_err());
    }
}
