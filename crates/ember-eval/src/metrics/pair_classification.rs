//! Pair-classification metrics as MTEB computes them (`AbsTaskPairClassification._compute_metrics`
//! in `mteb/abstasks/pair_classification.py`, v2; the same formulas as v1's
//! `PairClassificationEvaluator`).
//!
//! For each scoring function (cosine similarity, dot product, Euclidean distance, Manhattan
//! distance; for distances a *lower* score means "more similar") MTEB computes:
//!
//! - `ap`: scikit-learn's `average_precision_score(labels, scores)` (negated scores for
//!   distances). Tied scores form one threshold, so AP does not depend on the order of ties.
//! - `accuracy`: the best accuracy of a threshold between consecutive sorted scores, scanning the
//!   first n − 1 positions only (as MTEB does), with its threshold (the midpoint);
//! - `f1`, `precision`, `recall`: the best F1 of such a threshold and the precision / recall there.
//!
//! The accuracy / F1 scans walk the pairs in sorted order one by one, so with tied scores they
//! depend on the order of the ties. MTEB sorts with Python's stable sort; so does ember (stable,
//! descending for similarities, ascending for distances), so ties keep the input order.
//!
//! The main score is `max_ap`: the maximum AP over the scoring functions (MTEB v2 also includes
//! the model's own similarity function, which is cosine for every model ember evaluates; MTEB v1
//! used `cos_sim_ap` as the main score of older tasks). Embedding geometry follows scikit-learn's
//! `paired_*_distances`: cosine = 1 − cosine distance of L2-normalised rows (a zero row stays
//! zero), computed here in `f64`.

use std::cmp::Ordering;

use super::{check_finite, check_same_len, MetricsError, Result};

/// Metrics of one scoring function.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PairScores {
    pub accuracy: f64,
    pub accuracy_threshold: f64,
    pub f1: f64,
    pub f1_threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub ap: f64,
}

/// Metrics of every scoring function and their maxima (MTEB's `max_*` keys).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PairClassificationScores {
    pub cosine: PairScores,
    pub dot: PairScores,
    pub euclidean: PairScores,
    pub manhattan: PairScores,
    /// MTEB's main score.
    pub max_ap: f64,
    pub max_accuracy: f64,
    pub max_f1: f64,
    pub max_precision: f64,
    pub max_recall: f64,
}

/// Scores each pair `(a[i], b[i])` with every scoring function and computes MTEB's metrics against
/// `labels[i]` (true = duplicate / paraphrase).
///
/// Errors: empty or mismatched inputs, pairs of different dimensions, non-finite values, or labels
/// without a positive (AP undefined).
pub fn evaluate<V: AsRef<[f32]>>(a: &[V], b: &[V], labels: &[bool]) -> Result<PairClassificationScores> {
    check_same_len("a", a.len(), "b", b.len())?;
    check_same_len("a", a.len(), "labels", labels.len())?;
    if a.is_empty() {
        return Err(MetricsError::Empty { what: "pairs" });
    }
    let n = a.len();
    let (mut cosine, mut dot, mut euclidean, mut manhattan) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (x.as_ref(), y.as_ref());
        check_same_len("a[i]", x.len(), "b[i]", y.len()).map_err(|_| {
            MetricsError::InvalidParameter(format!("pair {i}: dimensions {} and {} differ", x.len(), y.len()))
        })?;
        let (mut xy, mut xx, mut yy, mut l2, mut l1) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for (&p, &q) in x.iter().zip(y) {
            let (p, q) = (f64::from(p), f64::from(q));
            xy += p * q;
            xx += p * p;
            yy += q * q;
            l2 += (p - q) * (p - q);
            l1 += (p - q).abs();
        }
        let (nx, ny) = (xx.sqrt(), yy.sqrt());
        // sklearn: 1 - 0.5 * ||x/|x| - y/|y|||^2 == x.y / (|x||y|), zero rows stay zero
        let cos = if nx > 0.0 && ny > 0.0 { xy / (nx * ny) } else { 0.0 };
        cosine.push(cos);
        dot.push(xy);
        euclidean.push(l2.sqrt());
        manhattan.push(l1);
    }
    let cosine = pair_metrics(&cosine, labels, true)?;
    let dot = pair_metrics(&dot, labels, true)?;
    let euclidean = pair_metrics(&euclidean, labels, false)?;
    let manhattan = pair_metrics(&manhattan, labels, false)?;
    let all = [cosine, dot, euclidean, manhattan];
    let max = |f: fn(&PairScores) -> f64| all.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    Ok(PairClassificationScores {
        max_ap: max(|s| s.ap),
        max_accuracy: max(|s| s.accuracy),
        max_f1: max(|s| s.f1),
        max_precision: max(|s| s.precision),
        max_recall: max(|s| s.recall),
        cosine,
        dot,
        euclidean,
        manhattan,
    })
}

/// MTEB's metrics of one scoring function. `higher_is_similar` is true for similarities and false
/// for distances.
pub fn pair_metrics(scores: &[f64], labels: &[bool], higher_is_similar: bool) -> Result<PairScores> {
    check_same_len("scores", scores.len(), "labels", labels.len())?;
    check_finite("scores", scores)?;
    let sign = if higher_is_similar { 1.0 } else { -1.0 };
    let signed: Vec<f64> = scores.iter().map(|s| s * sign).collect();
    let ap = average_precision(labels, &signed)?;

    // Stable sort, most similar first (Python's sorted(..., reverse=higher_is_similar)).
    let mut rows: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    if higher_is_similar {
        rows.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(Ordering::Equal));
    } else {
        rows.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(Ordering::Equal));
    }
    let (accuracy, accuracy_threshold) = best_accuracy(&rows);
    let (f1, precision, recall, f1_threshold) = best_f1(&rows);
    Ok(PairScores { accuracy, accuracy_threshold, f1, f1_threshold, precision, recall, ap })
}

/// scikit-learn's `average_precision_score(y_true, y_score)` for binary labels:
/// Σ (R_t − R_{t−1}) P_t over the distinct score thresholds t in decreasing order.
///
/// Errors: empty or mismatched input, non-finite scores, no positive label.
///
/// ```
/// use ember_eval::metrics::pair_classification::average_precision;
/// // sklearn docs example: 0.8333...
/// let ap = average_precision(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
/// assert!((ap - 5.0 / 6.0).abs() < 1e-12);
/// ```
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64> {
    check_same_len("labels", labels.len(), "scores", scores.len())?;
    check_finite("scores", scores)?;
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return Err(MetricsError::Undefined("average precision needs at least one positive label".into()));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[j].partial_cmp(&scores[i]).unwrap_or(Ordering::Equal));
    let (mut tp, mut seen) = (0usize, 0usize);
    let (mut ap, mut previous_recall) = (0.0, 0.0);
    for (pos, &i) in order.iter().enumerate() {
        seen += 1;
        tp += usize::from(labels[i]);
        // a threshold ends where the next score differs (or at the end)
        let last_of_tie = order.get(pos + 1).is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            let recall = tp as f64 / positives as f64;
            let precision = tp as f64 / seen as f64;
            ap += (recall - previous_recall) * precision;
            previous_recall = recall;
        }
    }
    Ok(ap)
}

/// MTEB's `_find_best_acc_and_threshold` on rows sorted most-similar first.
fn best_accuracy(rows: &[(f64, bool)]) -> (f64, f64) {
    let n = rows.len() as f64;
    let (mut max_accuracy, mut threshold) = (0.0, -1.0);
    let mut positives_so_far = 0usize;
    let mut remaining_negatives = rows.iter().filter(|r| !r.1).count();
    for i in 0..rows.len().saturating_sub(1) {
        if rows[i].1 {
            positives_so_far += 1;
        } else {
            remaining_negatives -= 1;
        }
        let accuracy = (positives_so_far + remaining_negatives) as f64 / n;
        if accuracy > max_accuracy {
            max_accuracy = accuracy;
            threshold = (rows[i].0 + rows[i + 1].0) / 2.0;
        }
    }
    (max_accuracy, threshold)
}

/// MTEB's `_find_best_f1_and_threshold` on rows sorted most-similar first:
/// (f1, precision, recall, threshold).
fn best_f1(rows: &[(f64, bool)]) -> (f64, f64, f64, f64) {
    let total_positives = rows.iter().filter(|r| r.1).count() as f64;
    let (mut best_f1, mut best_precision, mut best_recall, mut threshold) = (0.0, 0.0, 0.0, 0.0);
    let (mut extracted, mut correct) = (0usize, 0usize);
    for i in 0..rows.len().saturating_sub(1) {
        extracted += 1;
        correct += usize::from(rows[i].1);
        if correct > 0 {
            let precision = correct as f64 / extracted as f64;
            let recall = correct as f64 / total_positives;
            let f1 = 2.0 * precision * recall / (precision + recall);
            if f1 > best_f1 {
                (best_f1, best_precision, best_recall) = (f1, precision, recall);
                threshold = (rows[i].0 + rows[i + 1].0) / 2.0;
            }
        }
    }
    (best_f1, best_precision, best_recall, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_groups_ties() {
        // scores tie across a positive and a negative: one threshold, precision 1/2 there
        let ap = average_precision(&[true, false, true], &[0.5, 0.5, 0.1]).unwrap();
        assert!((ap - (0.5 * 0.5 + 0.5 * (2.0 / 3.0))).abs() < 1e-12);
        assert!(matches!(average_precision(&[false, false], &[0.1, 0.2]), Err(MetricsError::Undefined(_))));
    }

    #[test]
    fn accuracy_and_f1_scan_like_mteb() {
        // sorted desc: 0.9 T, 0.8 F, 0.7 T, 0.1 F
        let s = pair_metrics(&[0.1, 0.9, 0.7, 0.8], &[false, true, true, false], true).unwrap();
        // after 1: 1 pos + 2 neg = 3/4; after 3: 2 pos + 1 neg = 3/4 (not >), so threshold 0.85
        assert_eq!(s.accuracy, 0.75);
        assert!((s.accuracy_threshold - 0.85).abs() < 1e-12);
        // f1 after 1: p=1, r=.5 -> 2/3; after 3: p=2/3, r=1 -> 0.8
        assert!((s.f1 - 0.8).abs() < 1e-12);
        assert!((s.f1_threshold - 0.4).abs() < 1e-12);
        // distances: lower is more similar, same ranking when negated
        let d = pair_metrics(&[0.9, 0.1, 0.3, 0.2], &[false, true, true, false], false).unwrap();
        assert_eq!(d.accuracy, s.accuracy);
        assert!((d.ap - s.ap).abs() < 1e-12);
    }

    #[test]
    fn evaluate_takes_the_max_over_functions() {
        let a = [vec![1.0f32, 0.0], vec![0.0, 2.0], vec![1.0, 1.0]];
        let b = [vec![2.0f32, 0.1], vec![1.0, 0.0], vec![0.0, 0.0]];
        let s = evaluate(&a, &b, &[true, false, false]).unwrap();
        assert_eq!(s.cosine.ap, 1.0);
        assert_eq!(s.max_ap, 1.0);
        assert!(evaluate(&a, &b[..2], &[true, false, false]).is_err());
    }
}
