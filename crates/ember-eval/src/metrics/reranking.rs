//! Reranking metrics as MTEB v1's `RerankingEvaluator` computes them
//! (`mteb/evaluation/evaluators/RerankingEvaluator.py`): for each instance (a query with positive
//! and negative candidates) the candidates are scored, then
//!
//! - `ap` = scikit-learn `average_precision_score(is_relevant, scores)` (ties form one threshold);
//! - `mrr@k` (k = 10) = 1 / rank of the first positive within the top k, else 0;
//!
//! and `map` / `mrr` are the plain means over instances. Instances without a positive or without
//! a negative are dropped before averaging, as MTEB does.
//!
//! Tie order for MRR: MTEB ranks with `torch.argsort(-scores)`, which is not stable; ember ranks
//! with a stable sort on the candidates laid out positives first (MTEB's layout), so a positive
//! tied with a negative ranks first. MTEB v2 turns reranking tasks into retrieval tasks
//! (`AbsTaskReranking`): their scores then come from [`super::retrieval::evaluate`]
//! (`map_at[1000]`, `mrr_at[10]`), where ties follow trec_eval's document-id rule instead. Without
//! exact ties the two give the same MAP and MRR.

use std::cmp::Ordering;

use super::pair_classification::average_precision;
use super::{check_finite, MetricsError, Result};

/// Similarity scores of one query's candidates, split by relevance.
#[derive(Debug, Clone, Copy)]
pub struct RerankingInstance<'a> {
    pub positive: &'a [f64],
    pub negative: &'a [f64],
}

/// Means over the instances that have both positives and negatives.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RerankingScores {
    /// MTEB's main score: mean average precision.
    pub map: f64,
    /// Mean reciprocal rank at the requested cut-off (MTEB: 10).
    pub mrr: f64,
    pub mrr_at_k: usize,
    /// Instances averaged over.
    pub num_instances: usize,
    /// Instances dropped for lacking positives or negatives.
    pub num_skipped: usize,
    /// Per averaged instance, in input order: (average precision, reciprocal rank at k).
    pub per_instance: Vec<(f64, f64)>,
}

/// MTEB's reranking MAP and MRR@`mrr_at_k` (MTEB uses 10).
///
/// Errors: `mrr_at_k` = 0, non-finite scores, or no instance with both positives and negatives.
///
/// ```
/// use ember_eval::metrics::reranking::{evaluate, RerankingInstance};
/// let instances = [RerankingInstance { positive: &[0.7], negative: &[0.9, 0.1] }];
/// let scores = evaluate(&instances, 10).unwrap();
/// assert_eq!(scores.map, 0.5);
/// assert_eq!(scores.mrr, 0.5);
/// ```
pub fn evaluate(instances: &[RerankingInstance<'_>], mrr_at_k: usize) -> Result<RerankingScores> {
    if mrr_at_k == 0 {
        return Err(MetricsError::InvalidParameter("MRR cut-off must be at least 1".into()));
    }
    let mut scores = RerankingScores { mrr_at_k, ..RerankingScores::default() };
    for instance in instances {
        if instance.positive.is_empty() || instance.negative.is_empty() {
            scores.num_skipped += 1;
            continue;
        }
        check_finite("positive scores", instance.positive)?;
        check_finite("negative scores", instance.negative)?;
        let all: Vec<f64> = instance.positive.iter().chain(instance.negative).copied().collect();
        let relevant: Vec<bool> = (0..all.len()).map(|i| i < instance.positive.len()).collect();
        let ap = average_precision(&relevant, &all)?;
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&i, &j| all[j].partial_cmp(&all[i]).unwrap_or(Ordering::Equal));
        let rr = order.iter().take(mrr_at_k).position(|&i| relevant[i]).map_or(0.0, |rank| 1.0 / (rank + 1) as f64);
        scores.per_instance.push((ap, rr));
    }
    scores.num_instances = scores.per_instance.len();
    if scores.num_instances == 0 {
        return Err(MetricsError::Empty { what: "reranking instances with positives and negatives" });
    }
    let n = scores.num_instances as f64;
    scores.map = scores.per_instance.iter().map(|p| p.0).sum::<f64>() / n;
    scores.mrr = scores.per_instance.iter().map(|p| p.1).sum::<f64>() / n;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_and_mrr_by_hand() {
        let instances = [
            // ranking: P(0.9) N(0.8) P(0.5) N(0.1): AP = (1 + 2/3) / 2, RR = 1
            RerankingInstance { positive: &[0.9, 0.5], negative: &[0.8, 0.1] },
            // positive ranked 12th of 12: AP = 1/12, RR@10 = 0
            RerankingInstance { positive: &[0.0], negative: &[1.0; 11] },
            // skipped
            RerankingInstance { positive: &[], negative: &[0.3] },
        ];
        let s = evaluate(&instances, 10).unwrap();
        assert_eq!(s.num_instances, 2);
        assert_eq!(s.num_skipped, 1);
        assert!((s.map - ((1.0 + 2.0 / 3.0) / 2.0 + 1.0 / 12.0) / 2.0).abs() < 1e-12);
        assert_eq!(s.mrr, 0.5);
    }

    #[test]
    fn ties_rank_positives_first_for_mrr() {
        let s = evaluate(&[RerankingInstance { positive: &[0.5], negative: &[0.5] }], 10).unwrap();
        assert_eq!(s.mrr, 1.0);
        // AP groups the tie: precision 1/2 at recall 1
        assert_eq!(s.map, 0.5);
    }

    #[test]
    fn nothing_to_average_is_an_error() {
        assert!(evaluate(&[RerankingInstance { positive: &[1.0], negative: &[] }], 10).is_err());
        assert!(evaluate(&[], 10).is_err());
        assert!(evaluate(&[RerankingInstance { positive: &[1.0], negative: &[0.0] }], 0).is_err());
    }
}
