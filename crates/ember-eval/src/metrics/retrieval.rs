//! Retrieval metrics with the semantics of trec_eval 9.0.4, as MTEB obtains them through
//! `pytrec_eval` (`mteb/_evaluators/retrieval_metrics.py::calculate_retrieval_scores`).
//!
//! What is computed, per query, for every cut-off `k`:
//!
//! | field | trec_eval measure | definition |
//! |---|---|---|
//! | `ndcg_at` | `ndcg_cut.k` | DCG@k / ideal DCG@k; gain = relevance label (graded, ≤ 0 gives 0), discount `log2(rank + 1)`; the ideal ranking sorts *all* judged documents with label > 0, retrieved or not |
//! | `map_at` | `map_cut.k` | Σ over relevant documents at rank r ≤ k of precision@r, divided by the number of relevant judged documents (retrieved or not) |
//! | `recall_at` | `recall.k` | relevant documents in the top k / relevant judged documents |
//! | `precision_at` | `P.k` | relevant documents in the top k / k (k, not the list length, even when fewer were retrieved) |
//! | `hit_rate_at` | `success.k` | 1 if a relevant document is in the top k (MTEB v2 reports it as `hit_rate_at_k`) |
//! | `mrr_at` | (MTEB's own `mrr`) | 1 / rank of the first relevant document if that rank ≤ k, else 0 |
//!
//! "Relevant" means label ≥ 1 (trec_eval's default `relevance_level` 1, which for integer labels is
//! MTEB's `> 0` in its MRR). Negative labels count as not relevant and give no gain. A query
//! with no relevant judged document scores 0 on every measure and still counts in the means.
//!
//! **Ranking order.** trec_eval ignores the rank column and sorts a query's documents by score
//! descending, breaking ties by document id *descending* in byte order (`strcmp`), so of docs
//! `"d1"`, `"d2"` with equal scores `"d2"` is ranked first. `-0.0` and `0.0` are equal. The same
//! ranking is used for MRR. MTEB's MRR instead sorts with Python's stable sort, so there ties keep
//! the insertion order of the run dict; [`Run`] is a `HashMap` with no order, and exact float ties
//! are rare with real similarity scores, so ember follows trec_eval's tie rule everywhere (MRR and
//! the trec measures then always agree on the ranking).
//!
//! **Which queries are averaged.** pytrec_eval returns a value only for queries that are in both
//! the qrels and the run (a run entry with no documents counts: it scores 0); MTEB divides the
//! sum by the number of queries pytrec_eval returned. Queries that are judged but absent from the
//! run are skipped (trec_eval without `-c`), and so are retrieved queries without judgements.
//! MTEB v2 averages MRR over the queries of the run (it raises `KeyError` for a retrieved query that
//! is not judged); MTEB v1 divided the MRR sum by the number of *judged* queries. Both coincide
//! with the rule above whenever the run has an entry for every judged query, which is what a
//! retrieval task produces. [`RetrievalScores`] reports how many queries were skipped either way.
//!
//! Means are not rounded (MTEB rounds nDCG/MAP/recall/P/hit-rate means to 5 decimals, not MRR).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{MetricsError, Result};

/// Relevance judgements: query id → document id → relevance label.
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// A run (system output): query id → document id → score, higher is better (like pytrec_eval).
pub type Run = HashMap<String, HashMap<String, f32>>;

/// The cut-offs MTEB reports for retrieval tasks.
pub const MTEB_K_VALUES: [usize; 7] = [1, 3, 5, 10, 20, 100, 1000];

/// Measures of one query, keyed by cut-off k.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryScores {
    pub ndcg_at: BTreeMap<usize, f64>,
    pub map_at: BTreeMap<usize, f64>,
    pub recall_at: BTreeMap<usize, f64>,
    pub precision_at: BTreeMap<usize, f64>,
    pub mrr_at: BTreeMap<usize, f64>,
    pub hit_rate_at: BTreeMap<usize, f64>,
    /// trec_eval `recip_rank`: 1 / rank of the first relevant document anywhere in the list, or 0.
    pub reciprocal_rank: f64,
    /// Judged documents with label ≥ 1.
    pub num_relevant: usize,
    /// Documents in the run for this query.
    pub num_retrieved: usize,
}

/// Means over the evaluated queries (see the module docs for which those are), plus the
/// per-query values they were averaged from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetrievalScores {
    pub ndcg_at: BTreeMap<usize, f64>,
    pub map_at: BTreeMap<usize, f64>,
    pub recall_at: BTreeMap<usize, f64>,
    pub precision_at: BTreeMap<usize, f64>,
    pub mrr_at: BTreeMap<usize, f64>,
    pub hit_rate_at: BTreeMap<usize, f64>,
    /// Mean trec_eval `recip_rank` (MRR without cut-off).
    pub reciprocal_rank: f64,
    /// Queries in both the qrels and the run: the denominator of every mean.
    pub num_queries: usize,
    /// Judged queries the run has no entry for (skipped, as trec_eval without `-c`).
    pub num_unretrieved_queries: usize,
    /// Queries in the run without any judgement (skipped).
    pub num_unjudged_queries: usize,
    /// Per-query values, by query id.
    pub per_query: BTreeMap<String, QueryScores>,
}

/// Evaluates `run` against `qrels` at every cut-off in `ks` (see the module docs for the exact
/// semantics).
///
/// Errors: `ks` empty or holding 0; a NaN score; no query both judged and retrieved.
///
/// ```
/// use std::collections::HashMap;
/// use ember_eval::metrics::retrieval::{evaluate, Qrels, Run};
///
/// let qrels: Qrels = HashMap::from([("q".into(), HashMap::from([("a".into(), 1)]))]);
/// let run: Run = HashMap::from([("q".into(), HashMap::from([("a".into(), 0.2), ("b".into(), 0.9)]))]);
/// let scores = evaluate(&qrels, &run, &[1, 10]).unwrap();
/// assert_eq!(scores.mrr_at[&10], 0.5);
/// assert_eq!(scores.precision_at[&10], 0.1);
/// assert!((scores.ndcg_at[&10] - 1.0 / 3f64.log2()).abs() < 1e-12);
/// ```
pub fn evaluate(qrels: &Qrels, run: &Run, ks: &[usize]) -> Result<RetrievalScores> {
    check_ks(ks)?;
    let mut scores = RetrievalScores::default();
    for (query, retrieved) in run {
        match qrels.get(query) {
            Some(judged) => {
                let query_scores = evaluate_query(query, judged, retrieved, ks)?;
                scores.per_query.insert(query.clone(), query_scores);
            }
            None => scores.num_unjudged_queries += 1,
        }
    }
    scores.num_unretrieved_queries = qrels.keys().filter(|q| !run.contains_key(*q)).count();
    scores.num_queries = scores.per_query.len();
    if scores.num_queries == 0 {
        return Err(MetricsError::NoEvaluatedQueries);
    }

    let n = scores.num_queries as f64;
    let mean = |field: fn(&QueryScores) -> &BTreeMap<usize, f64>, k: usize| {
        scores.per_query.values().map(|q| field(q).get(&k).copied().unwrap_or(0.0)).sum::<f64>() / n
    };
    let mut means: [BTreeMap<usize, f64>; 6] = Default::default();
    for &k in ks {
        means[0].insert(k, mean(|q| &q.ndcg_at, k));
        means[1].insert(k, mean(|q| &q.map_at, k));
        means[2].insert(k, mean(|q| &q.recall_at, k));
        means[3].insert(k, mean(|q| &q.precision_at, k));
        means[4].insert(k, mean(|q| &q.mrr_at, k));
        means[5].insert(k, mean(|q| &q.hit_rate_at, k));
    }
    let [ndcg, map, recall, precision, mrr, hit_rate] = means;
    scores.ndcg_at = ndcg;
    scores.map_at = map;
    scores.recall_at = recall;
    scores.precision_at = precision;
    scores.mrr_at = mrr;
    scores.hit_rate_at = hit_rate;
    scores.reciprocal_rank = scores.per_query.values().map(|q| q.reciprocal_rank).sum::<f64>() / n;
    Ok(scores)
}

/// Removes, for every query, the document whose id equals the query id (MTEB's
/// `ignore_identical_ids`, used by ArguAna where each argument is also in the corpus).
pub fn remove_identical_ids(run: &mut Run) {
    for (query, docs) in run.iter_mut() {
        docs.remove(query);
    }
}

/// The documents of one query in trec_eval order: score descending, then document id descending
/// (byte order). Errors on a NaN score.
pub fn trec_ranking<'a>(query: &str, retrieved: &'a HashMap<String, f32>) -> Result<Vec<(&'a str, f32)>> {
    let mut ranking = Vec::with_capacity(retrieved.len());
    for (doc, &score) in retrieved {
        if score.is_nan() {
            return Err(MetricsError::NanScore { query: query.to_owned(), doc: doc.clone() });
        }
        ranking.push((doc.as_str(), score));
    }
    ranking.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then_with(|| b.0.cmp(a.0)));
    Ok(ranking)
}

fn check_ks(ks: &[usize]) -> Result<()> {
    if ks.is_empty() {
        return Err(MetricsError::Empty { what: "ks" });
    }
    if ks.contains(&0) {
        return Err(MetricsError::InvalidParameter("cut-off k must be at least 1".into()));
    }
    Ok(())
}

/// Gain of a relevance label in nDCG: the label itself, non-positive labels give nothing.
fn gain(label: i32) -> f64 {
    f64::from(label.max(0))
}

/// trec_eval's discount of 0-based position `i`: log2(rank + 1) with rank = i + 1.
fn discount(i: usize) -> f64 {
    ((i + 2) as f64).log2()
}

fn evaluate_query(
    query: &str,
    judged: &HashMap<String, i32>,
    retrieved: &HashMap<String, f32>,
    ks: &[usize],
) -> Result<QueryScores> {
    let ranking = trec_ranking(query, retrieved)?;
    let labels: Vec<i32> = ranking.iter().map(|(doc, _)| judged.get(*doc).copied().unwrap_or(0)).collect();
    let num_relevant = judged.values().filter(|&&label| label >= 1).count();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&label| label > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));

    // Prefix sums over the ranking: [i] covers the first i documents.
    let len = labels.len();
    let mut relevant_prefix = vec![0usize; len + 1];
    let mut dcg_prefix = vec![0f64; len + 1];
    let mut precision_sum_prefix = vec![0f64; len + 1];
    let mut first_relevant: Option<usize> = None;
    for (i, &label) in labels.iter().enumerate() {
        let relevant = label >= 1;
        relevant_prefix[i + 1] = relevant_prefix[i] + usize::from(relevant);
        dcg_prefix[i + 1] = dcg_prefix[i] + gain(label) / discount(i);
        precision_sum_prefix[i + 1] =
            precision_sum_prefix[i] + if relevant { relevant_prefix[i + 1] as f64 / (i + 1) as f64 } else { 0.0 };
        if relevant && first_relevant.is_none() {
            first_relevant = Some(i + 1);
        }
    }
    let mut ideal_prefix = vec![0f64; ideal.len() + 1];
    for (i, &label) in ideal.iter().enumerate() {
        ideal_prefix[i + 1] = ideal_prefix[i] + gain(label) / discount(i);
    }

    let mut scores = QueryScores {
        reciprocal_rank: first_relevant.map_or(0.0, |rank| 1.0 / rank as f64),
        num_relevant,
        num_retrieved: len,
        ..QueryScores::default()
    };
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    for &k in ks {
        let cut = k.min(len);
        let relevant_in_k = relevant_prefix[cut] as f64;
        let ideal_dcg = ideal_prefix[k.min(ideal.len())];
        scores.ndcg_at.insert(k, ratio(dcg_prefix[cut], ideal_dcg));
        scores.map_at.insert(k, ratio(precision_sum_prefix[cut], num_relevant as f64));
        scores.recall_at.insert(k, ratio(relevant_in_k, num_relevant as f64));
        scores.precision_at.insert(k, relevant_in_k / k as f64);
        scores.hit_rate_at.insert(k, if relevant_in_k > 0.0 { 1.0 } else { 0.0 });
        let rr = match first_relevant {
            Some(rank) if rank <= k => 1.0 / rank as f64,
            _ => 0.0,
        };
        scores.mrr_at.insert(k, rr);
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qrels(entries: &[(&str, &[(&str, i32)])]) -> Qrels {
        entries
            .iter()
            .map(|(q, docs)| (q.to_string(), docs.iter().map(|(d, r)| (d.to_string(), *r)).collect()))
            .collect()
    }

    fn run(entries: &[(&str, &[(&str, f32)])]) -> Run {
        entries
            .iter()
            .map(|(q, docs)| (q.to_string(), docs.iter().map(|(d, s)| (d.to_string(), *s)).collect()))
            .collect()
    }

    #[test]
    fn ties_break_by_doc_id_descending() {
        let retrieved: HashMap<String, f32> =
            [("d1", 0.5), ("d2", 0.5), ("D3", 0.5), ("d10", 0.5), ("x", 0.9), ("z", -0.0), ("y", 0.0)]
                .iter()
                .map(|(d, s)| (d.to_string(), *s))
                .collect();
        let order: Vec<&str> = trec_ranking("q", &retrieved).unwrap().into_iter().map(|(d, _)| d).collect();
        assert_eq!(order, ["x", "d2", "d10", "d1", "D3", "z", "y"]);
    }

    #[test]
    fn graded_ndcg_by_hand() {
        // ranking: d4 (0), d2 (2), d1 (1); ideal: 2, 1
        let q = qrels(&[("q", &[("d1", 1), ("d2", 2), ("d3", 0)])]);
        let r = run(&[("q", &[("d1", 0.5), ("d2", 0.5), ("d4", 0.9)])]);
        let s = evaluate(&q, &r, &[1, 3]).unwrap();
        let dcg = 2.0 / 3f64.log2() + 1.0 / 2.0;
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert!((s.ndcg_at[&3] - dcg / idcg).abs() < 1e-12);
        assert_eq!(s.ndcg_at[&1], 0.0);
        assert!((s.map_at[&3] - (1.0 / 2.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(s.mrr_at[&1], 0.0);
        assert_eq!(s.mrr_at[&3], 0.5);
        assert!((s.precision_at[&3] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.recall_at[&3], 1.0);
    }

    #[test]
    fn query_sets_and_degenerate_queries() {
        let q = qrels(&[("judged_only", &[("a", 1)]), ("no_relevant", &[("a", 0)]), ("neg", &[("a", -1)])]);
        let r = run(&[("retrieved_only", &[("a", 1.0)]), ("no_relevant", &[("a", 1.0)]), ("neg", &[])]);
        let s = evaluate(&q, &r, &[10]).unwrap();
        assert_eq!(s.num_queries, 2);
        assert_eq!(s.num_unretrieved_queries, 1);
        assert_eq!(s.num_unjudged_queries, 1);
        for value in [s.ndcg_at[&10], s.map_at[&10], s.recall_at[&10], s.precision_at[&10], s.mrr_at[&10]] {
            assert_eq!(value, 0.0);
        }
    }

    #[test]
    fn errors_instead_of_panics() {
        let q = qrels(&[("q", &[("a", 1)])]);
        let r = run(&[("other", &[("a", 1.0)])]);
        assert_eq!(evaluate(&q, &r, &[10]), Err(MetricsError::NoEvaluatedQueries));
        assert!(matches!(evaluate(&q, &r, &[]), Err(MetricsError::Empty { .. })));
        assert!(matches!(evaluate(&q, &r, &[0]), Err(MetricsError::InvalidParameter(_))));
        let nan = run(&[("q", &[("a", f32::NAN)])]);
        assert!(matches!(evaluate(&q, &nan, &[1]), Err(MetricsError::NanScore { .. })));
    }

    #[test]
    fn identical_ids_are_removed() {
        let mut r = run(&[("q1", &[("q1", 1.0), ("d", 0.5)])]);
        remove_identical_ids(&mut r);
        assert_eq!(r["q1"].len(), 1);
        assert!(r["q1"].contains_key("d"));
    }
}
