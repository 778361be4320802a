//! The interface every dense index implements, so the store can hold a flat or an HNSW index
//! behind one type and check one against the other.

use ember_core::CoreError;

use crate::topk::Scored;

/// A predicate on point ids, applied during the search (not after it), so a filtered query
/// returns `k` hits whenever `k` points pass it.
pub type PointFilter<'a> = &'a (dyn Fn(usize) -> bool + Sync);

/// A searchable set of dense vectors addressed by point id (a small integer the store assigns).
pub trait DenseIndex: Send + Sync + std::fmt::Debug {
    /// The vector length every insert and query must have.
    fn dim(&self) -> usize;

    /// How many live (not removed) points the index holds.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add or replace the vector of `id`.
    fn insert(&mut self, id: usize, vector: &[f32]) -> Result<(), CoreError>;

    /// Remove `id`; later searches never return it. Removing an unknown id does nothing.
    fn remove(&mut self, id: usize);

    /// The `k` points most similar to `query`, best first, among those that pass `filter`.
    fn search(&self, query: &[f32], k: usize, filter: Option<PointFilter<'_>>) -> Result<Vec<Scored>, CoreError>;

    /// [`search`](Self::search) with the search-time effort of an approximate index (HNSW's
    /// `ef`, the candidate list size); exact indexes ignore it, and `None` means the index's own
    /// default.
    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        effort: Option<usize>,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, CoreError> {
        let _ = effort;
        self.search(query, k, filter)
    }
}
