//! The `Reranker` trait: anything that scores (query, document) pairs jointly — a cross-encoder,
//! an LLM yes/no reranker, a remote rerank API. Search pipelines and the server's rerank routes
//! are written against this trait.

use crate::embedder::BoxError;

/// Per-call options. `None` means "the model's own default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RerankOptions {
    /// Truncate each (query, document) pair to this many tokens (default: the model's maximum).
    /// Oversized pairs are truncated, never refused.
    pub max_length: Option<usize>,
    /// The most pairs per forward pass.
    pub batch_size: Option<usize>,
    /// Map raw scores to [0, 1] with the model's activation (sigmoid for one-logit
    /// cross-encoders); `false` returns raw logits. Default: as the model's config says.
    pub activation: Option<bool>,
    /// An instruction for instruction-following rerankers (Qwen3-Reranker); ignored by others.
    pub instruction: Option<String>,
}

/// One relevance score per document, in input order (higher is more relevant).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RerankScores {
    pub scores: Vec<f32>,
    /// Tokens fed to the model.
    pub tokens: usize,
    /// How many pairs were longer than the token limit and were truncated.
    pub truncated: usize,
}

/// (query, documents) in, one score per document out. No documents gives no scores, not an error.
pub trait Reranker: Send + Sync {
    /// An identifier of the model (hub id or path).
    fn model_id(&self) -> &str;
    /// Score every document against `query`.
    fn score(&self, query: &str, documents: &[&str], options: &RerankOptions) -> Result<RerankScores, BoxError>;
}

/// Document indices ordered by descending score (ties keep input order), with their scores.
pub fn rank_by_score(scores: &[f32]) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_is_descending_and_stable_on_ties() {
        assert_eq!(rank_by_score(&[0.1, 0.9, 0.5, 0.9]), vec![(1, 0.9), (3, 0.9), (2, 0.5), (0, 0.1)]);
        assert!(rank_by_score(&[]).is_empty());
    }
}
