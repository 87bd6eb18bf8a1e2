//! Host-side data handling (no GPU): CSV parsing, standardization, hold-out / k-fold splits,
//! incremental chunks and imbalance warnings.

use accrete::data::csv::{self, CsvOptions};
use accrete::data::preprocess::Standardizer;
use accrete::data::split::{class_counts, holdout, imbalance_warning, increments, kfold, SplitBy};
use accrete::data::Dataset;
use std::collections::BTreeSet;

fn opts() -> CsvOptions {
    CsvOptions::default()
}

fn parse_err(text: &str, o: &CsvOptions) -> String {
    match csv::parse(text, "t.csv", o) {
        Ok(d) => panic!("expected an error, parsed {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} should contain {p:?}");
    }
}

/// `per_class[c]` samples of class c; feature 0 is the sample's original index (so samples
/// can be identified after a split), feature 1 its class.
fn labelled(per_class: &[usize]) -> Dataset {
    let mut labels = Vec::new();
    // Interleave classes so that the original order is not sorted by class.
    let mut left = per_class.to_vec();
    while left.iter().any(|&l| l > 0) {
        for (c, l) in left.iter_mut().enumerate() {
            if *l > 0 {
                labels.push(c as u32);
                *l -= 1;
            }
        }
    }
    let features = labels
        .iter()
        .enumerate()
        .flat_map(|(i, &l)| [i as f32, l as f32])
        .collect();
    Dataset::new(features, labels, vec![2], per_class.len()).unwrap()
}

/// Original indices of the samples of a split-off dataset.
fn ids(d: &Dataset) -> Vec<usize> {
    d.features.chunks(2).map(|r| r[0] as usize).collect()
}

// ---------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_happy_path_quotes_crlf_trailing_blank() {
    let text = "\u{feff}sepal,\"petal, width\",label,\"say \"\"hi\"\"\"\r\n\
                1.5, 2 ,0,3\r\n\
                \"-4e-1\",5,2,\"6\"\r\n\
                \r\n\
                7,8.25,1,9\r\n\
                \r\n\r\n";
    let d = csv::parse(text, "t.csv", &opts()).unwrap();
    assert_eq!(d.sample_shape, vec![3]);
    assert_eq!(d.labels, vec![0, 2, 1]);
    assert_eq!(d.classes, 3);
    assert_eq!(
        d.features,
        vec![1.5, 2.0, 3.0, -0.4, 5.0, 6.0, 7.0, 8.25, 9.0]
    );
}

#[test]
fn csv_label_column_first_or_named_and_lf_without_final_newline() {
    let d = csv::parse(
        "y,a,b\n3,1,2\n1,3,4",
        "t.csv",
        &CsvOptions {
            label_column: "y".into(),
            classes: Some(5),
            require_label: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(d.labels, vec![3, 1]);
    assert_eq!(d.classes, 5);
    assert_eq!(d.features, vec![1.0, 2.0, 3.0, 4.0]);
    // Integer-valued float labels (as pandas writes them) are accepted.
    let d = csv::parse("a,label\n1,2.0\n", "t.csv", &opts()).unwrap();
    assert_eq!(d.labels, vec![2]);
}

#[test]
fn csv_quoted_field_with_line_break_keeps_line_numbers() {
    // The quoted header spans lines 1–2, so the bad cell is on line 4.
    let text = "\"a\nb\",label\n1,0\nx,1\n";
    let msg = parse_err(text, &opts());
    assert_has(
        &msg,
        &[
            "t.csv",
            "line 4",
            "column \"a\\nb\"",
            "\"x\" is not a number",
        ],
    );
}

#[test]
fn csv_error_ragged_row() {
    let text = "a,b,c,d,e,label\n1,2,3,4,5,0\n1,2,3,4,5,0\n1,2,3,4,5,0\n1,2,3,4,5,0\n\
                1,2,3,4,5,0\n1,2,3,4,5\n";
    let msg = parse_err(text, &opts());
    assert_has(&msg, &["t.csv", "line 7 has 5 fields, the header has 6"]);
}

#[test]
fn csv_error_non_numeric_cell() {
    let text = "sepal,petal_width,label\n1,2,0\n3,abc,1\n";
    let msg = parse_err(text, &opts());
    assert_has(
        &msg,
        &["line 3, column \"petal_width\": \"abc\" is not a number"],
    );
}

#[test]
fn csv_error_nan_inf_empty_and_overflow_cells() {
    for (cell, want) in [
        ("NaN", "not a finite number"),
        ("inf", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("", "the cell is empty"),
        ("1e39", "too large"),
    ] {
        let text = format!("x,label\n1,0\n{cell},1\n");
        let msg = parse_err(&text, &opts());
        assert_has(&msg, &["line 3, column \"x\"", want]);
    }
}

#[test]
fn csv_error_missing_label_column_lists_columns() {
    let msg = parse_err("a,b,class\n1,2,0\n", &opts());
    assert_has(
        &msg,
        &["no column named \"label\"", "\"a\", \"b\", \"class\""],
    );
}

#[test]
fn csv_error_bad_labels() {
    for (label, want) in [
        ("-1", "is negative"),
        ("1.5", "not a whole number"),
        ("setosa", "not a class index"),
        ("", "label is empty"),
        ("nan", "not a finite number"),
    ] {
        let text = format!("x,label\n1,0\n2,{label}\n");
        let msg = parse_err(&text, &opts());
        assert_has(&msg, &["line 3, column \"label\"", want]);
    }
}

#[test]
fn csv_error_label_outside_classes() {
    let o = CsvOptions {
        classes: Some(3),
        ..opts()
    };
    let msg = parse_err("x,label\n1,0\n2,2\n3,3\n", &o);
    assert_has(
        &msg,
        &[
            "line 4, column \"label\"",
            "label 3 is outside the 3 classes",
        ],
    );
}

#[test]
fn csv_error_empty_and_header_only() {
    for text in ["", "\n\n", "\u{feff}", "  \r\n"] {
        assert_has(&parse_err(text, &opts()), &["t.csv", "empty", "header"]);
    }
    assert_has(
        &parse_err("x,label\r\n\r\n", &opts()),
        &["header but no data rows"],
    );
}

#[test]
fn csv_error_structure() {
    assert_has(&parse_err("label\n1\n", &opts()), &["no feature columns"]);
    assert_has(
        &parse_err("x,label,x\n1,0,2\n", &opts()),
        &["line 1", "\"x\" appears twice", "columns 1 and 3"],
    );
    assert_has(
        &parse_err("x,label\n\"1,0\n", &opts()),
        &["line 2", "never closed"],
    );
    assert_has(
        &parse_err("x,label\n\"1\"2,0\n", &opts()),
        &["line 2", "after the closing quote"],
    );
}

#[test]
fn csv_load_missing_file_is_io_error() {
    let path = std::env::temp_dir().join("accrete-data-test-no-such-file.csv");
    let e = csv::load(&path, &opts()).unwrap_err();
    assert!(matches!(e, accrete::Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("accrete-data-test-no-such-file.csv"));
}

#[test]
fn csv_load_reads_file() {
    let path = std::env::temp_dir().join(format!("accrete-data-test-{}.csv", std::process::id()));
    std::fs::write(&path, "a,label\n0.5,1\n").unwrap();
    let d = csv::load(&path, &opts());
    std::fs::remove_file(&path).unwrap();
    let d = d.unwrap();
    assert_eq!((d.features, d.labels, d.classes), (vec![0.5], vec![1], 2));
}

// ---------------------------------------------------------------------------------------
// Standardizer

#[test]
fn standardizer_fit_apply_and_json_round_trip() {
    // Feature 0: 1..=4 (mean 2.5, population std sqrt(1.25)); feature 1 constant 0.1.
    let mut d = Dataset::new(
        vec![1.0, 0.1, 2.0, 0.1, 3.0, 0.1, 4.0, 0.1],
        vec![0, 1, 0, 1],
        vec![2],
        2,
    )
    .unwrap();
    let s = Standardizer::fit(&d);
    assert_eq!(s.mean, vec![2.5, 0.1]);
    assert!((s.std[0] as f64 - 1.25f64.sqrt()).abs() < 1e-6);
    assert_eq!(s.std[1], 1e-8);

    let json = s.to_json();
    assert_eq!(json["standardize"]["mean"][0].as_f64(), Some(2.5));
    let back = Standardizer::from_json(&json.to_string().parse().unwrap()).unwrap();
    assert_eq!(back, s);

    back.apply(&mut d).unwrap();
    for (i, row) in d.features.chunks(2).enumerate() {
        let want = (i as f64 + 1.0 - 2.5) / 1.25f64.sqrt();
        assert!((row[0] as f64 - want).abs() < 1e-6, "{row:?}");
        assert_eq!(row[1], 0.0, "constant features map to 0");
    }
    // Standardized data has mean 0 and std 1 (the constant feature stays 0).
    let again = Standardizer::fit(&d);
    assert!(again.mean[0].abs() < 1e-6 && (again.std[0] - 1.0).abs() < 1e-6);
}

#[test]
fn standardizer_checks_feature_count() {
    let s = Standardizer::fit(&labelled(&[2, 2]));
    let mut other = Dataset::new(vec![1.0; 6], vec![0, 1], vec![3], 2).unwrap();
    let before = other.clone();
    let msg = s.apply(&mut other).unwrap_err().to_string();
    assert_has(&msg, &["fitted on 2 features", "has 3 per sample"]);
    assert_eq!(other, before, "a failed apply leaves the data unchanged");

    let bad = Standardizer {
        mean: vec![0.0, 0.0],
        std: vec![1.0, 0.0],
    };
    let mut d = labelled(&[1, 1]);
    assert_has(
        &bad.apply(&mut d).unwrap_err().to_string(),
        &["standard deviation of feature 1"],
    );
}

// ---------------------------------------------------------------------------------------
// Hold-out

#[test]
fn holdout_sizes_partition_and_order() {
    let d = labelled(&[30, 30, 30, 10]);
    let (train, val) = holdout(&d, 0.25, false, 7).unwrap();
    assert_eq!(val.len(), 25);
    assert_eq!(train.len(), 75);
    let (t, v) = (ids(&train), ids(&val));
    let all: BTreeSet<usize> = t.iter().chain(&v).copied().collect();
    assert_eq!(all.len(), 100);
    assert!(
        t.windows(2).all(|w| w[0] < w[1]),
        "train keeps the original order"
    );
    assert!(
        v.windows(2).all(|w| w[0] < w[1]),
        "validation keeps the original order"
    );
    // Features and labels travel together.
    for ds in [&train, &val] {
        for (row, &l) in ds.features.chunks(2).zip(&ds.labels) {
            assert_eq!(row[1], l as f32);
            assert_eq!(d.labels[row[0] as usize], l);
        }
    }
    // round(0.3 · 7) = 2.
    assert_eq!(holdout(&labelled(&[7]), 0.3, false, 1).unwrap().1.len(), 2);
}

#[test]
fn holdout_stratified_preserves_proportions() {
    let per_class = [50, 33, 7, 110];
    let d = labelled(&per_class);
    for seed in 0..5 {
        let (train, val) = holdout(&d, 0.2, true, seed).unwrap();
        let (tc, vc) = (class_counts(&train), class_counts(&val));
        for (c, &n) in per_class.iter().enumerate() {
            assert_eq!(vc[c], (0.2 * n as f64).round() as usize, "class {c}");
            assert_eq!(tc[c] + vc[c], n);
        }
    }
}

#[test]
fn holdout_rejects_bad_fractions() {
    let d = labelled(&[5, 5]);
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let msg = holdout(&d, f, false, 0).unwrap_err().to_string();
        assert_has(&msg, &["validation fraction", "outside (0, 1)"]);
    }
    assert_has(
        &holdout(&d, 0.01, false, 0).unwrap_err().to_string(),
        &["leaves the validation set empty"],
    );
    assert_has(
        &holdout(&d, 0.99, false, 0).unwrap_err().to_string(),
        &["leaves the training set empty"],
    );
    // Stratified rounding per class: round(0.04 · 5) = 0 for both classes.
    assert_has(
        &holdout(&d, 0.04, true, 0).unwrap_err().to_string(),
        &["rounded per class", "validation set empty"],
    );
}

#[test]
fn holdout_is_deterministic_per_seed() {
    let d = labelled(&[40, 40, 20]);
    for stratified in [false, true] {
        let a = holdout(&d, 0.3, stratified, 42).unwrap();
        let b = holdout(&d, 0.3, stratified, 42).unwrap();
        let c = holdout(&d, 0.3, stratified, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(ids(&a.1), ids(&c.1));
    }
}

// ---------------------------------------------------------------------------------------
// K-fold

fn check_partition(d: &Dataset, folds: &[(Dataset, Dataset)], k: usize) {
    assert_eq!(folds.len(), k);
    let mut seen = vec![0usize; d.len()];
    for (train, val) in folds {
        let (t, v): (BTreeSet<usize>, BTreeSet<usize>) = (
            ids(train).into_iter().collect(),
            ids(val).into_iter().collect(),
        );
        assert!(t.is_disjoint(&v));
        assert_eq!(t.len() + v.len(), d.len());
        for i in v {
            seen[i] += 1;
        }
    }
    assert!(
        seen.iter().all(|&s| s == 1),
        "each sample validates exactly once"
    );
    let sizes: Vec<usize> = folds.iter().map(|(_, v)| v.len()).collect();
    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(hi - lo <= 1, "fold sizes {sizes:?}");
}

#[test]
fn kfold_partitions_every_sample_once() {
    let d = labelled(&[11, 9, 3]);
    for k in [2, 3, 5, 23] {
        check_partition(&d, &kfold(&d, k, false, 3).unwrap(), k);
    }
}

#[test]
fn kfold_stratified_balances_classes() {
    let per_class = [17, 9, 4, 30];
    let d = labelled(&per_class);
    let k = 4;
    let folds = kfold(&d, k, true, 11).unwrap();
    check_partition(&d, &folds, k);
    for (c, &total) in per_class.iter().enumerate() {
        let counts: Vec<usize> = folds.iter().map(|(_, v)| class_counts(v)[c]).collect();
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "class {c} per fold: {counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), total);
    }
}

#[test]
fn kfold_rejects_bad_k_and_is_deterministic() {
    let d = labelled(&[3, 2]);
    for k in [0, 1, 6] {
        assert_has(
            &kfold(&d, k, false, 0).unwrap_err().to_string(),
            &[&format!("k = {k}"), "at least 2"],
        );
    }
    let d = labelled(&[20, 20]);
    assert_eq!(
        kfold(&d, 4, true, 5).unwrap(),
        kfold(&d, 4, true, 5).unwrap()
    );
    assert_ne!(
        kfold(&d, 4, true, 5).unwrap(),
        kfold(&d, 4, true, 6).unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// Increments

#[test]
fn increments_by_count_are_a_stream() {
    let d = labelled(&[10, 10, 3]);
    let chunks = increments(&d, 4, SplitBy::Count, 0, false).unwrap();
    let sizes: Vec<usize> = chunks.iter().map(Dataset::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 23);
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    let order: Vec<usize> = chunks.iter().flat_map(ids).collect();
    assert_eq!(
        order,
        (0..23).collect::<Vec<_>>(),
        "unshuffled: consecutive, in order"
    );

    let shuffled = increments(&d, 4, SplitBy::Count, 9, true).unwrap();
    let mut order: Vec<usize> = shuffled.iter().flat_map(ids).collect();
    assert_ne!(order, (0..23).collect::<Vec<_>>());
    order.sort();
    assert_eq!(
        order,
        (0..23).collect::<Vec<_>>(),
        "shuffled: still every sample once"
    );
    assert_eq!(
        shuffled,
        increments(&d, 4, SplitBy::Count, 9, true).unwrap()
    );
    assert_ne!(
        shuffled,
        increments(&d, 4, SplitBy::Count, 10, true).unwrap()
    );
}

#[test]
fn increments_by_class_hold_whole_classes() {
    let per_class: Vec<usize> = (0..10).map(|c| 5 + c).collect();
    let d = labelled(&per_class);
    for shuffle in [false, true] {
        let chunks = increments(&d, 5, SplitBy::Class, 1, shuffle).unwrap();
        assert_eq!(chunks.len(), 5);
        for (i, ch) in chunks.iter().enumerate() {
            let counts = class_counts(ch);
            for (c, &n) in counts.iter().enumerate() {
                let mine = c / 2 == i;
                assert_eq!(
                    n,
                    if mine { per_class[c] } else { 0 },
                    "chunk {i} class {c}"
                );
            }
            assert_eq!(ch.classes, 10, "chunks keep the full class count");
            let v = ids(ch);
            let sorted = v.windows(2).all(|w| w[0] < w[1]);
            assert_eq!(sorted, !shuffle, "original order unless shuffled");
        }
    }
    // Uneven: 10 classes in 3 chunks → sizes 3, 3, 4.
    let chunks = increments(&d, 3, SplitBy::Class, 0, false).unwrap();
    let groups: Vec<Vec<usize>> = chunks
        .iter()
        .map(|ch| {
            class_counts(ch)
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(c, _)| c)
                .collect()
        })
        .collect();
    assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8, 9]]);
}

#[test]
fn increments_errors() {
    let d = labelled(&[2, 2, 0]);
    assert_has(
        &increments(&d, 0, SplitBy::Count, 0, false)
            .unwrap_err()
            .to_string(),
        &["0 chunks"],
    );
    assert_has(
        &increments(&d, 5, SplitBy::Count, 0, false)
            .unwrap_err()
            .to_string(),
        &["5 chunks of 4 samples", "at most 4"],
    );
    assert_has(
        &increments(&d, 4, SplitBy::Class, 0, false)
            .unwrap_err()
            .to_string(),
        &["4 class-incremental chunks of 3 classes", "at most 3"],
    );
    assert_has(
        &increments(&d, 3, SplitBy::Class, 0, false)
            .unwrap_err()
            .to_string(),
        &["chunk 3 (classes 2..2) has no samples"],
    );
}

#[test]
fn split_by_names_and_parse() {
    // serde names ("count", "class") are checked by a unit test inside accrete.
    assert_eq!(SplitBy::Class.to_string(), "class");
    assert_eq!(SplitBy::default(), SplitBy::Count);
    assert_eq!("Count".parse::<SplitBy>().unwrap(), SplitBy::Count);
    assert_has(
        &"classes".parse::<SplitBy>().unwrap_err().to_string(),
        &["\"classes\"", "\"count\" or \"class\""],
    );
}

// ---------------------------------------------------------------------------------------
// Imbalance

#[test]
fn class_counts_and_imbalance_warning() {
    let mut per_class = vec![0usize; 8];
    per_class[3] = 12;
    per_class[7] = 410;
    per_class[1] = 100;
    let d = labelled(&per_class);
    assert_eq!(class_counts(&d), per_class);
    assert_eq!(
        imbalance_warning(&d, "chunk 2", 10.0).as_deref(),
        Some("chunk 2 is imbalanced: class 3 has 12 samples, class 7 has 410 (ratio 34.2 > 10)")
    );
    assert_eq!(imbalance_warning(&d, "chunk 2", 40.0), None);
    // Absent classes do not count; one present class is never imbalanced.
    assert_eq!(imbalance_warning(&labelled(&[0, 5, 0, 6]), "x", 1.3), None);
    assert_eq!(imbalance_warning(&labelled(&[0, 9, 0]), "x", 1.0), None);
    assert_has(
        &imbalance_warning(&labelled(&[1, 3]), "x", 2.5).unwrap(),
        &["class 0 has 1 sample,", "ratio 3.0 > 2.5"],
    );
}
