//! The exact index: every query is scored against every vector.

use ember_core::{CoreError, Similarity};

use crate::topk::{top_k, Scored};

/// Vectors stored contiguously, scored exhaustively.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dim: usize,
    similarity: Similarity,
    data: Vec<f32>,
}

impl FlatIndex {
    pub fn new(dim: usize, similarity: Similarity) -> Self {
        FlatIndex { dim, similarity, data: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Add a vector; its id is its position.
    pub fn add(&mut self, v: &[f32]) -> Result<usize, CoreError> {
        if v.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: v.len() });
        }
        self.data.extend_from_slice(v);
        Ok(self.len() - 1)
    }

    /// The `k` most similar vectors to `query`, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Scored>, CoreError> {
        if query.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: query.len() });
        }
        let mut scores = Vec::with_capacity(self.len());
        for (id, v) in self.data.chunks_exact(self.dim.max(1)).enumerate() {
            scores.push(Scored { id, score: self.similarity.score(query, v)? });
        }
        Ok(top_k(scores, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nearest_by_cosine_and_checks_dimensions() {
        let mut idx = FlatIndex::new(2, Similarity::Cosine);
        idx.add(&[1.0, 0.0]).unwrap();
        idx.add(&[0.0, 1.0]).unwrap();
        idx.add(&[1.0, 1.0]).unwrap();
        let hits = idx.search(&[0.9, 0.1], 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 2]);
        assert!((hits[0].score - 0.9 / (0.82f32).sqrt()).abs() < 1e-6);
        assert_eq!(idx.add(&[1.0]), Err(CoreError::DimensionMismatch { left: 2, right: 1 }));
        assert!(idx.search(&[1.0, 2.0, 3.0], 1).is_err());
    }
}
