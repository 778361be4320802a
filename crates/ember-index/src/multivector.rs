//! Late interaction (ColBERT, BGE-M3's multi-vector output): a document is a bag of token
//! vectors and scores against a query's token vectors by MaxSim — for each query token the best
//! dot product over the document's tokens, summed, divided by the number of query tokens (the
//! normalisation BGE-M3's `colbert_score` uses, so scores stay comparable across queries).

use crate::distance::dot;

/// MaxSim of `query` against `document` (each a list of equal-length token vectors). An empty
/// query or document scores 0.
pub fn max_sim<Q: AsRef<[f32]>, D: AsRef<[f32]>>(query: &[Q], document: &[D]) -> f32 {
    if query.is_empty() || document.is_empty() {
        return 0.0;
    }
    let total: f64 = query
        .iter()
        .map(|q| document.iter().map(|d| dot(q.as_ref(), d.as_ref())).fold(f32::NEG_INFINITY, f32::max))
        .map(f64::from)
        .sum();
    (total / query.len() as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_sim_takes_each_query_tokens_best_match_and_averages() {
        let query = [vec![1.0, 0.0], vec![0.0, 1.0]];
        let doc = [vec![0.5, 0.5], vec![2.0, 0.0], vec![0.0, -1.0]];
        // token 1: max(0.5, 2.0, 0.0) = 2.0; token 2: max(0.5, 0.0, -1.0) = 0.5
        assert_eq!(max_sim(&query, &doc), 1.25);
        assert_eq!(max_sim::<Vec<f32>, Vec<f32>>(&[], &doc), 0.0);
        assert_eq!(max_sim(&query, &Vec::<Vec<f32>>::new()), 0.0);
    }
}
