//! Evaluation metrics (accrete::metrics): confusion matrix, precision / recall / F1 with
//! scikit-learn's conventions, ROC curves and exact tie-aware AUC. CPU only, no GPU.

use accrete::metrics::{
    auc, macro_auc, moving_average, one_vs_rest_auc, roc_auc, roc_curve, ConfusionMatrix, Report,
};
use accrete::Error;
use accrete_tests::{rng, uniform};
use rand::Rng;

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12,
        "{what}: got {got}, want {want}"
    );
}

fn is_shape<T: std::fmt::Debug>(r: accrete::Result<T>) -> bool {
    matches!(r, Err(Error::Shape { .. }))
}

fn is_invalid<T: std::fmt::Debug>(r: accrete::Result<T>) -> bool {
    matches!(r, Err(Error::InvalidArgument { .. }))
}

// 10 samples over 4 classes: class 2 occurs but is never predicted, class 3 is predicted but
// never occurs.
const TRUTH: [u32; 10] = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
const PRED: [u32; 10] = [0, 0, 1, 3, 1, 1, 0, 0, 1, 3];

#[test]
fn confusion_matrix_counts_a_hand_example() {
    let m = ConfusionMatrix::from_predictions(&TRUTH, &PRED, 4).unwrap();
    #[rustfmt::skip]
    let want = [
        2, 1, 0, 1, // true 0
        1, 2, 0, 0, // true 1
        1, 1, 0, 1, // true 2
        0, 0, 0, 0, // true 3
    ];
    assert_eq!(m.classes(), 4);
    assert_eq!(m.counts(), &want);
    assert_eq!((m.get(0, 3), m.get(2, 1), m.get(3, 0)), (1, 1, 0));
    assert_eq!(m.total(), 10);
    assert_eq!(m.correct(), 4);
    assert_eq!(m.support(), vec![4, 3, 3, 0]);
    assert_eq!(m.predicted_counts(), vec![4, 4, 0, 2]);
    close("accuracy", m.accuracy(), 0.4);

    let r = m.row_normalized();
    #[rustfmt::skip]
    let want_r = [
        0.5, 0.25, 0.0, 0.25,
        1.0 / 3.0, 2.0 / 3.0, 0.0, 0.0,
        1.0 / 3.0, 1.0 / 3.0, 0.0, 1.0 / 3.0,
        0.0, 0.0, 0.0, 0.0, // no samples of class 3: zeros, not NaN
    ];
    for (i, (&g, &w)) in r.iter().zip(&want_r).enumerate() {
        close(&format!("row_normalized[{i}]"), g, w);
    }

    // Off-diagonal non-zero cells: (0,1)=1 (0,3)=1 (1,0)=1 (2,0)=1 (2,1)=1 (2,3)=1; all tie
    // at 1, so they come in (true, predicted) order.
    assert_eq!(
        m.top_confusions(4),
        vec![(0, 1, 1), (0, 3, 1), (1, 0, 1), (2, 0, 1)]
    );
    assert_eq!(m.top_confusions(100).len(), 6);
    let m2 = ConfusionMatrix::from_predictions(&[0, 1, 1, 1, 2, 2, 2], &[1, 2, 2, 0, 1, 1, 0], 3)
        .unwrap();
    // (1,2)=2 and (2,1)=2 first (tie → by true class), then the ones.
    assert_eq!(m2.top_confusions(3), vec![(1, 2, 2), (2, 1, 2), (0, 1, 1)]);
    assert_eq!(m2.top_confusions(0), vec![]);
}

#[test]
fn confusion_matrix_from_probabilities_takes_the_first_argmax() {
    #[rustfmt::skip]
    let probs = [
        0.1, 0.7, 0.2, // → 1
        0.4, 0.4, 0.2, // tie between 0 and 1 → 0
        0.0, 0.5, 0.5, // tie between 1 and 2 → 1
        -3.0, -1.0, -2.0, // logits work too → 1
    ];
    let m = ConfusionMatrix::from_probabilities(&[1, 1, 2, 0], &probs, 3).unwrap();
    let want = ConfusionMatrix::from_predictions(&[1, 1, 2, 0], &[1, 0, 1, 1], 3).unwrap();
    assert_eq!(m, want);
    let mut nan = probs;
    nan[4] = f32::NAN;
    assert!(is_invalid(ConfusionMatrix::from_probabilities(
        &[1, 1, 2, 0],
        &nan,
        3
    )));
}

/// Expected values worked out by hand and confirmed with scikit-learn 1.9:
/// `precision_recall_fscore_support(TRUTH, PRED, average=…, zero_division=0)`.
#[test]
fn report_matches_scikit_learn_on_a_hand_example() {
    // A fifth class that neither occurs nor is predicted: scikit-learn's default label set
    // (unique labels of y_true ∪ y_pred) leaves it out of the macro averages, and so do we.
    let m = ConfusionMatrix::from_predictions(&TRUTH, &PRED, 5).unwrap();
    let r = Report::from_confusion(&m);
    assert_eq!(r.per_class.len(), 5);

    // class 0: TP 2, FP 2 (samples 6, 7), FN 2 (samples 2, 3) → P = R = F1 = 1/2.
    // class 1: TP 2, FP 2 (samples 2, 8), FN 1 (sample 6) → P = 1/2, R = 2/3,
    //          F1 = 2·2 / (2·2 + 2 + 1) = 4/7.
    // class 2: never predicted: TP 0, FP 0 → P = 0/0 := 0; FN 3 → R = 0; F1 = 0/3 = 0.
    // class 3: never present: TP 0, FP 2 → P = 0; TP + FN = 0 → R := 0; F1 = 0/2 = 0.
    // class 4: no samples, no predictions: all 0.
    let want = [
        (0.5, 0.5, 0.5, 4),
        (0.5, 2.0 / 3.0, 4.0 / 7.0, 3),
        (0.0, 0.0, 0.0, 3),
        (0.0, 0.0, 0.0, 0),
        (0.0, 0.0, 0.0, 0),
    ];
    for (c, (got, &(p, rc, f1, support))) in r.per_class.iter().zip(&want).enumerate() {
        close(&format!("precision[{c}]"), got.precision, p);
        close(&format!("recall[{c}]"), got.recall, rc);
        close(&format!("f1[{c}]"), got.f1, f1);
        assert_eq!(got.support, support, "support[{c}]");
    }

    // Macro over classes 0..=3 (class 4 excluded):
    //   P = (1/2 + 1/2 + 0 + 0) / 4 = 1/4                   sklearn 0.25
    //   R = (1/2 + 2/3 + 0 + 0) / 4 = 7/24                  sklearn 0.29166666666666663
    //   F1 = (1/2 + 4/7 + 0 + 0) / 4 = (15/14) / 4 = 15/56  sklearn 0.26785714285714285
    // (With labels=[0..5] scikit-learn would divide by 5 instead: 0.2, 0.2333…, 0.2142….)
    close("macro precision", r.macro_precision, 0.25);
    close("macro recall", r.macro_recall, 7.0 / 24.0);
    close("macro f1", r.macro_f1, 15.0 / 56.0);
    // Micro: 4 correct of 10 samples; single-label → P = R = F1 = accuracy = 0.4.
    close("micro precision", r.micro_precision, 0.4);
    close("micro recall", r.micro_recall, 0.4);
    close("micro f1", r.micro_f1, 0.4);
    close("accuracy", r.accuracy, 0.4);
    // Weighted F1 = (4·1/2 + 3·4/7 + 3·0 + 0·0) / 10 = (26/7) / 10 = 13/35
    // (sklearn 0.37142857142857144).
    close("weighted f1", r.weighted_f1, 13.0 / 35.0);

    // The macro values do not depend on how many unused classes the matrix has.
    let r4 = Report::from_confusion(&ConfusionMatrix::from_predictions(&TRUTH, &PRED, 4).unwrap());
    assert_eq!(r4.macro_f1, r.macro_f1);

    // Nothing counted: everything is 0, not NaN.
    let empty = Report::from_confusion(&ConfusionMatrix::new(3).unwrap());
    assert_eq!(
        [
            empty.macro_f1,
            empty.micro_f1,
            empty.weighted_f1,
            empty.accuracy
        ],
        [0.0; 4]
    );
}

#[test]
fn roc_curve_of_a_hand_example_with_ties() {
    // Sorted by score: 0.9 +, 0.8 {+, −}, 0.7 +, 0.5 {+, −, −}, 0.2 −; P = N = 4.
    // Given shuffled so that the sort is exercised.
    let scores = [0.5, 0.8, 0.2, 0.9, 0.5, 0.7, 0.8, 0.5];
    let positive = [false, false, false, true, true, true, true, false];
    let c = roc_curve(&scores, &positive).unwrap();
    // Same as sklearn.metrics.roc_curve(positive, scores, drop_intermediate=False).
    assert_eq!(c.thresholds, vec![f32::INFINITY, 0.9, 0.8, 0.7, 0.5, 0.2]);
    assert_eq!(c.fpr, vec![0.0, 0.0, 0.25, 0.25, 0.75, 1.0]);
    assert_eq!(c.tpr, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
    // Trapezoids: 0 + 0.25·(0.25+0.5)/2 + 0 + 0.5·(0.75+1)/2 + 0.25·1 = 25/32.
    assert_eq!(auc(&c.fpr, &c.tpr).unwrap(), 0.78125);
    // Pairwise: the positives 0.9, 0.8, 0.7, 0.5 beat 4, 3.5, 3, 2 of the negatives
    // 0.8, 0.5, 0.5, 0.2 (a tie counts ½) → 12.5 / 16 = 25/32.
    assert_eq!(roc_auc(&scores, &positive).unwrap(), Some(0.78125));

    // -0.0 and 0.0 are the same score: one tie, one step.
    let z = roc_curve(&[0.0, -0.0], &[true, false]).unwrap();
    assert_eq!((z.fpr, z.tpr), (vec![0.0, 1.0], vec![0.0, 1.0]));
    assert_eq!(roc_auc(&[-0.0, 0.0], &[true, false]).unwrap(), Some(0.5));

    // Perfect and reversed rankings.
    assert_eq!(
        roc_auc(&[3.0, 2.0, 1.0], &[true, true, false]).unwrap(),
        Some(1.0)
    );
    assert_eq!(
        roc_auc(&[3.0, 2.0, 1.0], &[false, true, true]).unwrap(),
        Some(0.0)
    );
}

#[test]
fn auc_integrates_monotonic_curves_either_way() {
    assert_eq!(auc(&[0.0, 0.5, 1.0], &[0.0, 1.0, 1.0]).unwrap(), 0.75);
    assert_eq!(auc(&[1.0, 0.5, 0.0], &[1.0, 1.0, 0.0]).unwrap(), 0.75);
    assert!(is_invalid(auc(&[0.0, 1.0, 0.5], &[0.0, 1.0, 1.0])));
    assert!(is_invalid(auc(&[0.0, f64::NAN], &[0.0, 1.0])));
    assert!(is_shape(auc(&[0.0], &[0.0])));
    assert!(is_shape(auc(&[0.0, 1.0], &[0.0])));
}

/// AUC = P(random positive outranks random negative) + ½ P(tie), counted over all pairs.
fn pairwise_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let (mut twice_wins, mut pairs) = (0u64, 0u64);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if positive[i] && !positive[j] {
                pairs += 1;
                twice_wins += if si > sj {
                    2
                } else if si == sj {
                    1
                } else {
                    0
                };
            }
        }
    }
    (pairs > 0).then(|| twice_wins as f64 / (2 * pairs) as f64)
}

#[test]
fn auc_equals_the_pairwise_definition_on_random_data_with_ties() {
    let mut r = rng(0x05ee_da0c);
    for trial in 0..200 {
        let n = [1, 2, 3, 7, 40, 333][trial % 6];
        // Quantize to a few levels so that many scores tie, positives and negatives alike.
        let levels = [2.0, 5.0, 20.0, 1000.0][trial % 4];
        let scores: Vec<f32> = uniform(&mut r, n, 0.0, 1.0)
            .into_iter()
            .map(|s| (s * levels).floor() / levels)
            .collect();
        // Positives more likely at high scores, so the AUC is spread away from ½.
        let positive: Vec<bool> = scores
            .iter()
            .map(|&s| r.random_bool(0.2 + 0.6 * s as f64))
            .collect();
        let want = pairwise_auc(&scores, &positive);
        let got = roc_auc(&scores, &positive).unwrap();
        assert_eq!(got, want, "trial {trial}: n {n}, levels {levels}");
        match want {
            Some(w) => {
                let c = roc_curve(&scores, &positive).unwrap();
                assert!(c.thresholds.windows(2).all(|t| t[0] > t[1]));
                assert_eq!((c.fpr[0], c.tpr[0]), (0.0, 0.0));
                assert_eq!((*c.fpr.last().unwrap(), *c.tpr.last().unwrap()), (1.0, 1.0));
                close(
                    &format!("trial {trial}: trapezoid"),
                    auc(&c.fpr, &c.tpr).unwrap(),
                    w,
                );
            }
            None => assert!(is_invalid(roc_curve(&scores, &positive))),
        }
    }
}

#[test]
fn one_vs_rest_gives_none_for_a_missing_class() {
    // Three classes, class 2 never occurs.
    let truth = [0, 1, 0, 1];
    #[rustfmt::skip]
    let probs = [
        0.8, 0.1, 0.1,
        0.3, 0.6, 0.1,
        0.5, 0.2, 0.3,
        0.5, 0.4, 0.1,
    ];
    let per_class = one_vs_rest_auc(&truth, &probs, 3).unwrap();
    // Class 0 scores: positives 0.8, 0.5; negatives 0.3, 0.5 → (2 + 1.5) / 4 = 7/8.
    // Class 1 scores: positives 0.6, 0.4; negatives 0.1, 0.2 → 4 / 4 = 1.
    assert_eq!(per_class, vec![Some(0.875), Some(1.0), None]);
    assert_eq!(macro_auc(&per_class), Some(0.9375));

    // Every sample of class 0: class 0 has no negatives, class 1 no positives.
    let all_zero = one_vs_rest_auc(&[0, 0], &[0.9, 0.1, 0.4, 0.6], 2).unwrap();
    assert_eq!(all_zero, vec![None, None]);
    assert_eq!(macro_auc(&all_zero), None);
    assert_eq!(roc_auc(&[], &[]).unwrap(), None);
}

#[test]
fn mismatched_lengths_and_out_of_range_labels_are_errors() {
    // Lengths.
    assert!(is_shape(ConfusionMatrix::from_predictions(
        &[0, 1],
        &[0],
        2
    )));
    assert!(is_shape(ConfusionMatrix::from_probabilities(
        &[0, 1],
        &[0.5; 3],
        2
    )));
    assert!(is_shape(ConfusionMatrix::from_counts(2, vec![0; 3])));
    assert!(is_shape(roc_curve(&[0.1, 0.2], &[true])));
    assert!(is_shape(roc_auc(&[0.1], &[true, false])));
    assert!(is_shape(one_vs_rest_auc(&[0, 1], &[0.5; 5], 2)));

    // Labels ≥ classes, in either argument.
    let e = ConfusionMatrix::from_predictions(&[0, 3], &[0, 1], 3).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
    assert!(e.to_string().contains("sample 1"), "{e}");
    assert!(e.to_string().contains('3'), "{e}");
    assert!(is_invalid(ConfusionMatrix::from_predictions(
        &[0, 1],
        &[0, 2],
        2
    )));
    assert!(is_invalid(ConfusionMatrix::from_probabilities(
        &[2],
        &[0.5, 0.5],
        2
    )));
    assert!(is_invalid(one_vs_rest_auc(&[0, 2], &[0.5; 4], 2)));

    // No classes; a single-class ROC curve; non-finite scores.
    assert!(is_invalid(ConfusionMatrix::new(0)));
    assert!(is_invalid(ConfusionMatrix::from_predictions(&[], &[], 0)));
    assert!(is_invalid(one_vs_rest_auc(&[], &[], 0)));
    assert!(is_invalid(roc_curve(&[0.1, 0.2], &[true, true])));
    assert!(is_invalid(roc_auc(&[0.1, f32::NAN], &[true, false])));
    assert!(is_invalid(roc_curve(&[0.1, f32::INFINITY], &[true, false])));
    assert!(is_invalid(one_vs_rest_auc(&[0], &[f32::NAN, 0.0], 2)));
}

#[test]
#[should_panic(expected = "out of range")]
fn get_out_of_range_panics() {
    ConfusionMatrix::new(2).unwrap().get(0, 2);
}

#[test]
fn moving_average_smooths_a_curve() {
    assert_eq!(
        moving_average(&[4.0, 2.0, 6.0, 0.0], 3),
        vec![4.0, 3.0, 4.0, 8.0 / 3.0]
    );
}
