//! Relevance scores of a query against a document from dense, learned-sparse and multi-vector
//! (ColBERT) outputs, and their weighted combinations, as FlagEmbedding scores BGE-M3
//! (`BGEM3FlagModel.compute_score`, FlagEmbedding 1.4.2):
//!
//! - dense: `q · d` (the vectors are unit length, so this is their cosine);
//! - sparse (lexical matching): `Σ w_q(t) · w_d(t)` over the token ids `t` both vectors hold;
//! - ColBERT: for each query token vector the largest dot product with any document token vector,
//!   summed and divided by the number of query token vectors;
//! - `sparse+dense`: `(w_s · sparse + w_d · dense) / (w_s + w_d)`;
//! - `colbert+sparse+dense`: `(w_c · colbert + w_s · sparse + w_d · dense) / (w_d + w_s + w_c)`.
//!
//! The weights are `[dense, sparse, colbert]`, FlagEmbedding's `weights_for_different_modes`
//! order. [`ModeWeights::default`] is `[0.4, 0.2, 0.4]`, the weights the BGE-M3 model card and
//! FlagEmbedding's README use; FlagEmbedding's code itself falls back to `[1, 1, 1]` when none are
//! given ([`ModeWeights::EQUAL`]).

use std::str::FromStr;

use crate::distance::dot;
use crate::embedder::MultiEmbeddings;

/// Lexical matching score of two sparse vectors (ids ascending): the sum of `w_q · w_d` over the
/// ids present in both.
pub fn sparse_dot(query: &[(u32, f32)], document: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0f32);
    while i < query.len() && j < document.len() {
        match query[i].0.cmp(&document[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += query[i].1 * document[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// ColBERT late-interaction score: the mean over query vectors of the largest dot product with
/// any document vector (FlagEmbedding's `colbert_score`). 0 when either side has no vectors.
pub fn colbert_score(query: &[Vec<f32>], document: &[Vec<f32>]) -> f32 {
    if query.is_empty() || document.is_empty() {
        return 0.0;
    }
    let total: f32 = query.iter().map(|q| document.iter().map(|d| dot(q, d)).fold(f32::NEG_INFINITY, f32::max)).sum();
    total / query.len() as f32
}

/// A way of scoring a query against a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoreMode {
    Dense,
    Sparse,
    Colbert,
    SparseDense,
    ColbertSparseDense,
}

impl ScoreMode {
    pub const ALL: [ScoreMode; 5] = [
        ScoreMode::Dense,
        ScoreMode::Sparse,
        ScoreMode::Colbert,
        ScoreMode::SparseDense,
        ScoreMode::ColbertSparseDense,
    ];

    /// FlagEmbedding's key for the mode: `dense`, `sparse`, `colbert`, `sparse+dense`,
    /// `colbert+sparse+dense`.
    pub fn name(self) -> &'static str {
        match self {
            ScoreMode::Dense => "dense",
            ScoreMode::Sparse => "sparse",
            ScoreMode::Colbert => "colbert",
            ScoreMode::SparseDense => "sparse+dense",
            ScoreMode::ColbertSparseDense => "colbert+sparse+dense",
        }
    }

    /// Which outputs the mode needs: `(dense, sparse, colbert)`.
    pub fn needs(self) -> (bool, bool, bool) {
        match self {
            ScoreMode::Dense => (true, false, false),
            ScoreMode::Sparse => (false, true, false),
            ScoreMode::Colbert => (false, false, true),
            ScoreMode::SparseDense => (true, true, false),
            ScoreMode::ColbertSparseDense => (true, true, true),
        }
    }
}

impl std::fmt::Display for ScoreMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown score mode or malformed weights.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreParseError {
    #[error("unknown score mode '{0}' (known: dense, sparse, colbert, sparse+dense, colbert+sparse+dense)")]
    Mode(String),
    #[error("weights must be three non-negative numbers 'dense,sparse,colbert' with a positive sum, got '{0}'")]
    Weights(String),
}

impl FromStr for ScoreMode {
    type Err = ScoreParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace("multivector", "colbert");
        ScoreMode::ALL.into_iter().find(|m| m.name() == s).ok_or(ScoreParseError::Mode(s))
    }
}

/// Weights of the combined modes, in FlagEmbedding's order `[dense, sparse, colbert]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeWeights {
    pub dense: f32,
    pub sparse: f32,
    pub colbert: f32,
}

impl ModeWeights {
    /// FlagEmbedding's fallback when no weights are given.
    pub const EQUAL: ModeWeights = ModeWeights { dense: 1.0, sparse: 1.0, colbert: 1.0 };
}

impl Default for ModeWeights {
    /// `[0.4, 0.2, 0.4]`: the BGE-M3 model card's weights.
    fn default() -> Self {
        ModeWeights { dense: 0.4, sparse: 0.2, colbert: 0.4 }
    }
}

impl FromStr for ModeWeights {
    type Err = ScoreParseError;

    /// `0.4,0.2,0.4` (dense, sparse, colbert).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ScoreParseError::Weights(s.to_string());
        let parts: Vec<f32> =
            s.split(',').map(|p| p.trim().parse::<f32>().map_err(|_| bad())).collect::<Result<_, _>>()?;
        match parts[..] {
            [dense, sparse, colbert]
                if parts.iter().all(|w| w.is_finite() && *w >= 0.0) && dense + sparse + colbert > 0.0 =>
            {
                Ok(ModeWeights { dense, sparse, colbert })
            }
            _ => Err(bad()),
        }
    }
}

/// The outputs of one text (borrowed), whichever were computed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TextOutputs<'a> {
    pub dense: Option<&'a [f32]>,
    pub sparse: Option<&'a [(u32, f32)]>,
    pub colbert: Option<&'a [Vec<f32>]>,
}

impl<'a> TextOutputs<'a> {
    /// The outputs of input `i` of a [`MultiEmbeddings`] (panics if `i` is out of range).
    pub fn of(outputs: &'a MultiEmbeddings, i: usize) -> Self {
        TextOutputs {
            dense: outputs.dense.as_ref().map(|v| v[i].as_slice()),
            sparse: outputs.sparse.as_ref().map(|v| v[i].as_slice()),
            colbert: outputs.multivector.as_ref().map(|v| v[i].as_slice()),
        }
    }
}

/// The three base scores of one query–document pair (`None` where an output was not computed).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PairScores {
    pub dense: Option<f32>,
    pub sparse: Option<f32>,
    pub colbert: Option<f32>,
}

impl PairScores {
    /// Score whichever outputs both sides have.
    pub fn compute(query: TextOutputs<'_>, document: TextOutputs<'_>) -> PairScores {
        PairScores {
            dense: query.dense.zip(document.dense).map(|(q, d)| dot(q, d)),
            sparse: query.sparse.zip(document.sparse).map(|(q, d)| sparse_dot(q, d)),
            colbert: query.colbert.zip(document.colbert).map(|(q, d)| colbert_score(q, d)),
        }
    }

    /// The score of `mode`, or `None` if an output it needs is missing. Combined modes are
    /// weighted means, exactly as FlagEmbedding's `compute_score` forms them.
    pub fn get(&self, mode: ScoreMode, w: ModeWeights) -> Option<f32> {
        Some(match mode {
            ScoreMode::Dense => self.dense?,
            ScoreMode::Sparse => self.sparse?,
            ScoreMode::Colbert => self.colbert?,
            ScoreMode::SparseDense => (self.sparse? * w.sparse + self.dense? * w.dense) / (w.sparse + w.dense),
            ScoreMode::ColbertSparseDense => {
                (self.colbert? * w.colbert + self.sparse? * w.sparse + self.dense? * w.dense)
                    / (w.dense + w.sparse + w.colbert)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_dot_sums_shared_ids_only() {
        let q = vec![(1, 0.5), (4, 2.0), (9, 1.0)];
        let d = vec![(0, 3.0), (4, 0.25), (9, 2.0), (10, 7.0)];
        assert_eq!(sparse_dot(&q, &d), 0.5 + 2.0);
        assert_eq!(sparse_dot(&q, &[]), 0.0);
    }

    #[test]
    fn colbert_is_the_mean_of_per_query_token_maxima() {
        let q = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let d = vec![vec![0.5, 0.5], vec![-1.0, 0.9], vec![0.9, -0.2]];
        // token 1: max(0.5, -1.0, 0.9) = 0.9; token 2: max(0.5, 0.9, -0.2) = 0.9
        assert!((colbert_score(&q, &d) - 0.9).abs() < 1e-7);
        // all dot products negative: the maximum stays negative (no implicit zero)
        assert!((colbert_score(&[vec![1.0, 0.0]], &[vec![-0.5, 0.0]]) + 0.5).abs() < 1e-7);
        assert_eq!(colbert_score(&q, &[]), 0.0);
    }

    #[test]
    fn combined_modes_are_weighted_means() {
        let s = PairScores { dense: Some(0.8), sparse: Some(0.1), colbert: Some(0.6) };
        let w = ModeWeights::default();
        assert!((s.get(ScoreMode::SparseDense, w).unwrap() - (0.1 * 0.2 + 0.8 * 0.4) / 0.6).abs() < 1e-6);
        let all = (0.6 * 0.4 + 0.1 * 0.2 + 0.8 * 0.4) / 1.0;
        assert!((s.get(ScoreMode::ColbertSparseDense, w).unwrap() - all).abs() < 1e-6);
        let eq = s.get(ScoreMode::ColbertSparseDense, ModeWeights::EQUAL).unwrap();
        assert!((eq - 1.5 / 3.0).abs() < 1e-6);
        assert_eq!(PairScores { colbert: None, ..s }.get(ScoreMode::ColbertSparseDense, w), None);
    }

    #[test]
    fn modes_and_weights_parse() {
        assert_eq!("colbert+sparse+dense".parse::<ScoreMode>().unwrap(), ScoreMode::ColbertSparseDense);
        assert_eq!("multivector".parse::<ScoreMode>().unwrap(), ScoreMode::Colbert);
        assert!("bm25".parse::<ScoreMode>().unwrap_err().to_string().contains("known: dense"));
        assert_eq!("1,0.5,0".parse::<ModeWeights>().unwrap(), ModeWeights { dense: 1.0, sparse: 0.5, colbert: 0.0 });
        assert!("1,2".parse::<ModeWeights>().is_err());
        assert!("0,0,0".parse::<ModeWeights>().is_err());
        assert!("-1,1,1".parse::<ModeWeights>().is_err());
    }
}
