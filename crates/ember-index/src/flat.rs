//! The exact index: every query is scored against every vector.
//!
//! Scores are `ember_core::Similarity::score`'s (cosine with norms clamped at 1e-8, negative
//! Euclidean and Manhattan distances), computed with the SIMD kernels of [`crate::distance`]
//! and, for cosine, norms stored at insert.

use ember_core::{CoreError, Similarity};

use crate::dense::{DenseIndex, PointFilter};
use crate::distance::Kernels;
use crate::topk::{top_k, Scored};

/// Vectors stored contiguously, scored exhaustively.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dim: usize,
    similarity: Similarity,
    kernels: &'static Kernels,
    data: Vec<f32>,
    /// `max(‖v‖, 1e-8)` per id (cosine only).
    norms: Vec<f32>,
    /// `live[id]` is false for ids never inserted or removed.
    live: Vec<bool>,
    live_count: usize,
}

impl FlatIndex {
    pub fn new(dim: usize, similarity: Similarity) -> Self {
        FlatIndex {
            dim,
            similarity,
            kernels: Kernels::best(),
            data: Vec::new(),
            norms: Vec::new(),
            live: Vec::new(),
            live_count: 0,
        }
    }

    fn norm(&self, v: &[f32]) -> f32 {
        (self.kernels.dot)(v, v).sqrt().max(1e-8)
    }

    /// Add a vector under the next free id (one past the largest id so far) and return that id.
    pub fn add(&mut self, v: &[f32]) -> Result<usize, CoreError> {
        let id = self.live.len();
        self.insert(id, v)?;
        Ok(id)
    }
}

impl DenseIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live_count
    }

    fn insert(&mut self, id: usize, v: &[f32]) -> Result<(), CoreError> {
        if v.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: v.len() });
        }
        if id >= self.live.len() {
            self.live.resize(id + 1, false);
            self.data.resize((id + 1) * self.dim, 0.0);
            if self.similarity == Similarity::Cosine {
                self.norms.resize(id + 1, 1e-8);
            }
        }
        self.data[id * self.dim..(id + 1) * self.dim].copy_from_slice(v);
        if self.similarity == Similarity::Cosine {
            self.norms[id] = self.norm(v);
        }
        if !self.live[id] {
            self.live[id] = true;
            self.live_count += 1;
        }
        Ok(())
    }

    fn remove(&mut self, id: usize) {
        if self.live.get(id).copied().unwrap_or(false) {
            self.live[id] = false;
            self.live_count -= 1;
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<PointFilter<'_>>) -> Result<Vec<Scored>, CoreError> {
        if query.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: query.len() });
        }
        let kern = self.kernels;
        let query_norm = self.norm(query);
        let scores = (0..self.live.len()).filter(|&id| self.live[id] && filter.is_none_or(|f| f(id))).map(|id| {
            let v = &self.data[id * self.dim..(id + 1) * self.dim];
            let score = match self.similarity {
                Similarity::Cosine => (kern.dot)(query, v) / (query_norm * self.norms[id]),
                Similarity::Dot => (kern.dot)(query, v),
                Similarity::Euclidean => -(kern.l2_sq)(query, v).sqrt(),
                Similarity::Manhattan => -(kern.l1)(query, v),
            };
            Scored { id, score }
        });
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
        let hits = idx.search(&[0.9, 0.1], 2, None).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 2]);
        assert!((hits[0].score - 0.9 / (0.82f32).sqrt()).abs() < 1e-6);
        assert_eq!(idx.add(&[1.0]), Err(CoreError::DimensionMismatch { left: 2, right: 1 }));
        assert!(idx.search(&[1.0, 2.0, 3.0], 1, None).is_err());
    }

    #[test]
    fn filters_during_search_and_honours_removal() {
        let mut idx = FlatIndex::new(2, Similarity::Dot);
        for i in 0..10 {
            idx.insert(i, &[i as f32, 1.0]).unwrap();
        }
        idx.remove(9);
        idx.remove(42);
        assert_eq!(idx.len(), 9);
        let even = |id: usize| id.is_multiple_of(2);
        let hits = idx.search(&[1.0, 0.0], 3, Some(&even)).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![8, 6, 4]);
        idx.insert(3, &[100.0, 0.0]).unwrap();
        assert_eq!(idx.len(), 9);
        assert_eq!(idx.search(&[1.0, 0.0], 1, None).unwrap()[0].id, 3);
    }

    #[test]
    fn scores_equal_the_core_similarity() {
        let mut rng = crate::random::SplitMix64::new(5);
        let points: Vec<Vec<f32>> = (0..50).map(|_| (0..37).map(|_| rng.normal()).collect()).collect();
        let query: Vec<f32> = (0..37).map(|_| rng.normal()).collect();
        for sim in [Similarity::Cosine, Similarity::Dot, Similarity::Euclidean, Similarity::Manhattan] {
            let mut idx = FlatIndex::new(37, sim);
            for p in &points {
                idx.add(p).unwrap();
            }
            let hits = idx.search(&query, 50, None).unwrap();
            assert_eq!(hits.len(), 50);
            for h in hits {
                let want = sim.score(&query, &points[h.id]).unwrap();
                assert!((h.score - want).abs() <= 1e-5 * want.abs().max(1.0), "{sim:?}: {} vs {want}", h.score);
            }
        }
    }
}
