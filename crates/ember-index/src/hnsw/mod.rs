//! Hierarchical navigable small-world graphs (Malkov & Yashunin, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
//! TPAMI 2018, <https://arxiv.org/abs/1603.09320>).
//!
//! Layout, chosen for search speed: vectors in one contiguous `Vec<f32>` (node-major); level-0
//! links in one `Vec<u32>` with a fixed stride (`[count, 2M slots]` per node); upper-level links
//! in a second flat `Vec<u32>` (only about one node in `M` has any). Points are addressed by the
//! caller's ids; inside, nodes are numbered in insertion order.
//!
//! * **Build** (`build.rs`): the paper's algorithm 1 with the neighbour-selection heuristic of its
//!   algorithm 4 (no candidate extension, no kept pruned connections, as hnswlib), levels drawn
//!   from a seeded generator, so the same inserts with the same seed give the same graph.
//! * **Deletes** are tombstones: a removed node still routes searches but is never returned;
//!   re-inserting an id tombstones its old node and adds a new one. [`HnswIndex::compact`]
//!   rebuilds without tombstones.
//! * **Filters** are applied during the search (`search.rs`): failing nodes are traversed but
//!   never enter the result set, and the search keeps expanding until `ef` passing nodes are
//!   found or the graph is exhausted. When a sample says few points pass, a scan over the
//!   passing points is cheaper and exact (Qdrant's rule, estimated here by sampling the filter),
//!   and a graph search that finds fewer than `k` passing points also falls back to the scan,
//!   so a filtered query returns `k` hits whenever `k` points pass.
//! * **Persistence** (`format.rs`, which documents the byte layout): [`HnswIndex::to_bytes`] /
//!   [`HnswIndex::from_bytes`].

mod build;
mod format;
mod search;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;

use ember_core::{CoreError, Similarity};

use crate::dense::{DenseIndex, PointFilter};
use crate::error::IndexError;
use crate::metric::Metric;
use crate::random::SplitMix64;
use crate::topk::Scored;

use search::Scratch;

/// Build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper levels; level 0 keeps `2·m` (at least 2).
    pub m: usize,
    /// Candidate list size while inserting (at least 1).
    pub ef_construction: usize,
    /// Candidate list size while searching (at least 1; a search uses `max(ef_search, k)`).
    pub ef_search: usize,
    /// Seed of the level generator.
    pub seed: u64,
    /// A filtered search scans the passing points instead of walking the graph when fewer than
    /// this many are estimated to pass. `None`: `√(4·ef·live points)`, where the scan (one
    /// filter call per point, one distance per passing point) and the graph walk (about
    /// `4·ef / selectivity` distances) cost about the same.
    pub full_scan_threshold: Option<usize>,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 16, ef_construction: 200, ef_search: 64, seed: 0x5eed, full_scan_threshold: None }
    }
}

impl HnswParams {
    fn validate(&self) -> Result<(), IndexError> {
        let check = |name, value: usize, ok: bool, why| {
            if ok {
                Ok(())
            } else {
                Err(IndexError::InvalidParameter { name, value, why })
            }
        };
        check("m", self.m, (2..=MAX_M).contains(&self.m), "must be between 2 and 4096")?;
        check("ef_construction", self.ef_construction, self.ef_construction >= 1, "must be at least 1")?;
        check("ef_search", self.ef_search, self.ef_search >= 1, "must be at least 1")
    }
}

const MAX_M: usize = 4096;
/// Levels above this are never drawn (the chance of one is below `M^-30`).
const MAX_LEVEL: usize = 30;

/// An HNSW graph over `f32` vectors; see the [module documentation](self).
pub struct HnswIndex {
    dim: usize,
    metric: Metric,
    params: HnswParams,
    /// Level-0 link capacity, `2·m`.
    m0: usize,
    /// `1 / ln(m)`: the scale of the exponential level distribution.
    level_scale: f64,
    rng: SplitMix64,
    /// `dim` values per node.
    vectors: Vec<f32>,
    /// `1 + m0` values per node: the link count, then the links.
    links0: Vec<u32>,
    /// Per node with a level `l > 0`: `l` blocks of `1 + m` values (count, links), levels 1..=l.
    upper: Vec<u32>,
    /// Where each node's blocks start in `upper`.
    upper_start: Vec<usize>,
    levels: Vec<u8>,
    /// The caller's id of each node.
    ids: Vec<usize>,
    deleted: Vec<bool>,
    /// The node of each live id.
    node_of: HashMap<usize, u32>,
    entry: Option<u32>,
    max_level: usize,
    /// Reusable visited sets and heaps, one per concurrent search.
    scratch: Mutex<Vec<Scratch>>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("similarity", &self.metric.similarity())
            .field("params", &self.params)
            .field("live", &self.node_of.len())
            .field("nodes", &self.ids.len())
            .field("max_level", &self.max_level)
            .finish()
    }
}

impl HnswIndex {
    pub fn new(dim: usize, similarity: Similarity, params: HnswParams) -> Result<Self, IndexError> {
        params.validate()?;
        Ok(HnswIndex {
            dim,
            metric: Metric::new(similarity),
            params,
            m0: 2 * params.m,
            level_scale: 1.0 / (params.m as f64).ln(),
            rng: SplitMix64::new(params.seed),
            vectors: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            upper_start: Vec::new(),
            levels: Vec::new(),
            ids: Vec::new(),
            deleted: Vec::new(),
            node_of: HashMap::new(),
            entry: None,
            max_level: 0,
            scratch: Mutex::new(Vec::new()),
        })
    }

    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    pub fn similarity(&self) -> Similarity {
        self.metric.similarity()
    }

    /// The `ef` that [`DenseIndex::search`] uses (at least 1).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    /// Make room for `additional` more points without reallocating.
    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve(additional * self.dim);
        self.links0.reserve(additional * (1 + self.m0));
        self.upper_start.reserve(additional);
        self.levels.reserve(additional);
        self.ids.reserve(additional);
        self.deleted.reserve(additional);
        self.node_of.reserve(additional);
    }

    /// Nodes removed or replaced but still in the graph (they route searches, are never returned).
    pub fn deleted_count(&self) -> usize {
        self.ids.len() - self.node_of.len()
    }

    /// Rebuild the graph from the live points only (in insertion order, same parameters and
    /// seed), dropping tombstones.
    pub fn compact(&mut self) -> Result<(), IndexError> {
        let mut fresh = HnswIndex::new(self.dim, self.metric.similarity(), self.params)?;
        fresh.reserve(self.node_of.len());
        for node in 0..self.ids.len() {
            if !self.deleted[node] {
                fresh.add_node(self.ids[node], self.vector(node as u32));
            }
        }
        *self = fresh;
        Ok(())
    }

    /// Heap bytes held (capacities of the vectors, links and id maps).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.vectors.capacity() * size_of::<f32>()
            + (self.links0.capacity() + self.upper.capacity()) * size_of::<u32>()
            + self.upper_start.capacity() * size_of::<usize>()
            + self.levels.capacity()
            + self.ids.capacity() * size_of::<usize>()
            + self.deleted.capacity()
            + self.node_of.capacity() * (size_of::<(usize, u32)>() + 1)
    }

    /// The `k` nearest live points passing `filter`, searching with candidate list size `ef`
    /// (raised to `k` when smaller).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, CoreError> {
        if query.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: query.len() });
        }
        Ok(self.search_prepared(query, k, ef.max(k).max(1), filter))
    }

    /// The stored (for cosine: normalised) vector of a node.
    #[inline(always)]
    fn vector(&self, node: u32) -> &[f32] {
        let start = node as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    /// The links of `node` on `level` (which the node must have).
    #[inline(always)]
    fn links(&self, node: u32, level: usize) -> &[u32] {
        let (block, _) = self.block(node, level);
        let list = if level == 0 { &self.links0[block..] } else { &self.upper[block..] };
        &list[1..1 + list[0] as usize]
    }

    #[inline(always)]
    fn prefetch_links(&self, node: u32, level: usize) {
        let (block, _) = self.block(node, level);
        let list = if level == 0 { &self.links0[block..] } else { &self.upper[block..] };
        crate::distance::prefetch(list, 1);
    }

    /// Where the `[count, links…]` block of `node` on `level` starts (in `links0` for level 0,
    /// `upper` above), and its capacity.
    #[inline(always)]
    fn block(&self, node: u32, level: usize) -> (usize, usize) {
        if level == 0 {
            (node as usize * (1 + self.m0), self.m0)
        } else {
            (self.upper_start[node as usize] + (level - 1) * (1 + self.params.m), self.params.m)
        }
    }

    fn take_scratch(&self) -> Scratch {
        let mut pool = self.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pool.pop().unwrap_or_default()
    }

    fn put_scratch(&self, s: Scratch) {
        let mut pool = self.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pool.push(s);
    }
}

impl DenseIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.node_of.len()
    }

    fn insert(&mut self, id: usize, vector: &[f32]) -> Result<(), CoreError> {
        if vector.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: vector.len() });
        }
        if self.ids.len() >= u32::MAX as usize {
            // ember-core has no capacity error yet; node numbers are u32 (4,294,967,295 nodes).
            return Err(CoreError::DimensionsTooLarge { requested: self.ids.len() + 1, available: u32::MAX as usize });
        }
        if let Some(old) = self.node_of.remove(&id) {
            self.deleted[old as usize] = true;
        }
        self.add_node(id, vector);
        Ok(())
    }

    fn remove(&mut self, id: usize) {
        if let Some(node) = self.node_of.remove(&id) {
            self.deleted[node as usize] = true;
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<PointFilter<'_>>) -> Result<Vec<Scored>, CoreError> {
        self.search_with(query, k, self.params.ef_search, filter)
    }

    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        effort: Option<usize>,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, CoreError> {
        self.search_with(query, k, effort.unwrap_or(self.params.ef_search), filter)
    }
}
