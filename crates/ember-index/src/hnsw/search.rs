//! Searching the graph: one level's best-first search (the paper's algorithm 2) with an
//! acceptance predicate for filters and tombstones, the query path, and the exact scan.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::HnswIndex;
use crate::dense::PointFilter;
use crate::distance::prefetch;
use crate::random::SplitMix64;
use crate::topk::{top_k, Scored};

/// Cache lines of a neighbour's vector to prefetch before its distance is computed.
const PREFETCH_LINES: usize = 4;
/// How many nodes a filter is tried on to estimate how many points pass it.
const FILTER_SAMPLE: usize = 256;

/// A node and its distance to the query; ordered by distance, then node (so ties are
/// deterministic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cand {
    pub(super) dist: f32,
    pub(super) node: u32,
}

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist.total_cmp(&other.dist).then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Which nodes a search has seen: a node is visited when its mark equals the current
/// generation, so clearing is one increment (and a real clear every 2³² searches).
#[derive(Debug, Default)]
struct Visited {
    marks: Vec<u32>,
    generation: u32,
}

impl Visited {
    fn reset(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Mark `node`; false when it was already marked.
    #[inline(always)]
    fn insert(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        let fresh = *mark != self.generation;
        *mark = self.generation;
        fresh
    }
}

/// Buffers one search reuses: kept in a pool by the index so searches do not allocate.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    visited: Visited,
    /// Nodes to expand, nearest on top.
    candidates: BinaryHeap<Reverse<Cand>>,
    /// The best `ef` accepted nodes, farthest on top.
    pub(super) results: BinaryHeap<Cand>,
    /// Unvisited neighbours of the node being expanded, and their distances.
    fresh: Vec<u32>,
    dists: Vec<f32>,
    /// The prepared (normalised) query.
    query: Vec<f32>,
}

impl HnswIndex {
    /// Best-first search of one level from `entries`, leaving the `ef` nearest nodes that
    /// `accept` passes in `s.results`. Rejected nodes are still expanded, and the search only
    /// stops early once `ef` accepted nodes are held, so it keeps going until it finds `ef`
    /// passing nodes or runs out of graph.
    pub(super) fn search_layer<A: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        entries: &[Cand],
        ef: usize,
        level: usize,
        accept: A,
        s: &mut Scratch,
    ) {
        let Scratch { visited, candidates, results, fresh, dists, .. } = s;
        visited.reset(self.ids.len());
        candidates.clear();
        results.clear();
        for &e in entries {
            if visited.insert(e.node) {
                candidates.push(Reverse(e));
                if accept(e.node) {
                    results.push(e);
                }
            }
        }
        while let Some(Reverse(c)) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| c.dist > w.dist) {
                break;
            }
            // Start loading every unvisited neighbour's vector, and the link list of the node
            // likely expanded next, before computing any distance.
            fresh.clear();
            for &n in self.links(c.node, level) {
                if visited.insert(n) {
                    prefetch(self.vector(n), PREFETCH_LINES);
                    fresh.push(n);
                }
            }
            if let Some(Reverse(next)) = candidates.peek() {
                self.prefetch_links(next.node, level);
            }
            self.metric.distances(q, &self.vectors, fresh, dists);
            for (&n, &d) in fresh.iter().zip(dists.iter()) {
                if results.len() < ef || results.peek().is_some_and(|w| d < w.dist) {
                    let cand = Cand { dist: d, node: n };
                    candidates.push(Reverse(cand));
                    if accept(n) {
                        results.push(cand);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
    }

    /// A search with a checked query length and `ef ≥ max(k, 1)`.
    pub(super) fn search_prepared(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Vec<Scored> {
        if k == 0 || self.node_of.is_empty() {
            return Vec::new();
        }
        let mut s = self.take_scratch();
        let mut q = std::mem::take(&mut s.query);
        self.metric.prepare(query, &mut q);
        let hits = match filter {
            Some(f) if self.scan_is_cheaper(f, ef) => self.scan(&q, k, filter),
            _ => {
                let hits = self.graph_search(&q, k, ef, filter, &mut s);
                // Too few: the filter passes fewer than `ef` points, or part of the graph is
                // unreachable. The scan is exact either way.
                let want = if filter.is_some() { k } else { k.min(self.node_of.len()) };
                if hits.len() < want {
                    self.scan(&q, k, filter)
                } else {
                    hits
                }
            }
        };
        s.query = q;
        self.put_scratch(s);
        hits
    }

    fn graph_search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<PointFilter<'_>>,
        s: &mut Scratch,
    ) -> Vec<Scored> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut cur = Cand { dist: self.metric.distance(q, self.vector(entry)), node: entry };
        for level in (1..=self.max_level).rev() {
            cur = self.greedy(q, cur, level);
        }
        let deleted = &self.deleted;
        match filter {
            None if self.deleted_count() == 0 => self.search_layer(q, &[cur], ef, 0, |_| true, s),
            None => self.search_layer(q, &[cur], ef, 0, |n| !deleted[n as usize], s),
            Some(f) => self.search_layer(q, &[cur], ef, 0, |n| !deleted[n as usize] && f(self.ids[n as usize]), s),
        }
        let hits =
            s.results.drain().map(|c| Scored { id: self.ids[c.node as usize], score: self.metric.score(c.dist) });
        top_k(hits, k)
    }

    /// Score every live point that passes `filter`: exact.
    fn scan(&self, q: &[f32], k: usize, filter: Option<PointFilter<'_>>) -> Vec<Scored> {
        let hits = (0..self.ids.len())
            .filter(|&node| !self.deleted[node] && filter.is_none_or(|f| f(self.ids[node])))
            .map(|node| Scored {
                id: self.ids[node],
                score: self.metric.score(self.metric.distance(q, self.vector(node as u32))),
            });
        top_k(hits, k)
    }

    /// Whether fewer points than the full-scan threshold are estimated to pass `filter`,
    /// from the filter's verdict on a fixed pseudo-random sample of nodes.
    fn scan_is_cheaper(&self, filter: PointFilter<'_>, ef: usize) -> bool {
        let live = self.node_of.len();
        let threshold =
            self.params.full_scan_threshold.unwrap_or_else(|| (4.0 * ef as f64 * live as f64).sqrt() as usize);
        if live <= threshold {
            return true;
        }
        let nodes = self.ids.len();
        let mut rng = SplitMix64::new(0x5a3e_91e7);
        let (mut seen, mut pass) = (0usize, 0usize);
        for _ in 0..FILTER_SAMPLE {
            let node = (rng.next_u64() % nodes as u64) as usize;
            if !self.deleted[node] {
                seen += 1;
                pass += usize::from(filter(self.ids[node]));
            }
        }
        seen == 0 || pass * live / seen < threshold
    }
}
