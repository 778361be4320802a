//! Top-k over posting lists: an exhaustive term-at-a-time scan (the oracle) and block-max
//! MaxScore (Turtle & Flood 1995; with per-block maxima as in Ding & Suel, SIGIR 2011, and
//! Lucene's `MaxScoreBulkScorer`), which returns exactly the same hits.
//!
//! **Scores are computed one way in both.** A document's score is the sum of its terms'
//! contributions in the query's term order, accumulated in `f64` and rounded to `f32`; the
//! pruned search collects a candidate's contributions and sums them in that same order, so the
//! two searches agree bit for bit, ties included (lower id first).
//!
//! **Pruning is safe.** Every contribution is ≥ 0 and at most its block's bound (BM25 is
//! monotonic in tf and in document length, and a dot product with weights ≥ 0 in the weight,
//! all under float rounding), so a sum of bounds bounds the score. A candidate is skipped only
//! when that bound, inflated by a relative 1e-9 for the rounding of `f64` sums in a different
//! order, is ≤ the current k-th score: documents are visited in increasing id, so one that
//! only ties the k-th score loses the tie.
//!
//! MaxScore keeps the query terms sorted by their largest possible contribution; the prefix
//! of terms whose bounds together cannot reach the k-th score are *non-essential*: their lists
//! are never walked, only probed for candidates found in the essential lists, and a probe stops
//! as soon as the remaining bounds cannot lift the candidate into the top k. Block maxima add a
//! second test: for the range of ids up to the nearest block end, the sum of the current
//! blocks' bounds of all terms must beat the k-th score, or the whole range is skipped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::bm25::Bm25Scorer;
use super::postings::{Block, Cursor, PostingList, END};
use crate::dense::PointFilter;
use crate::topk::Scored;

/// How a posting's value becomes a score contribution.
#[derive(Debug)]
pub(crate) enum Contribution<'a> {
    Bm25 { scorer: Bm25Scorer, lens: &'a [u32] },
    Dot,
}

impl Contribution<'_> {
    #[inline]
    fn score(&self, weight: f32, id: u32, value: f32) -> f32 {
        match self {
            Contribution::Bm25 { scorer, lens } => {
                Bm25Scorer::score(weight, value, scorer.norm_inverse(lens[id as usize]))
            }
            Contribution::Dot => weight * value,
        }
    }

    /// At least the contribution of every posting in `block`.
    fn bound(&self, weight: f32, block: &Block) -> f32 {
        match self {
            Contribution::Bm25 { scorer, .. } => {
                Bm25Scorer::score(weight, block.max_value, scorer.norm_inverse(block.min_len))
            }
            Contribution::Dot => weight * block.max_value,
        }
    }
}

/// One query term: its postings and its weight (BM25: query count · idf; dot: the query's weight).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryTerm<'a> {
    pub(crate) list: &'a PostingList,
    pub(crate) weight: f32,
}

/// What a search did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SearchStats {
    /// Documents whose contributions were (at least partly) computed.
    pub(crate) candidates: usize,
    /// Documents fully scored and offered to the top k.
    pub(crate) scored: usize,
}

/// Whether a document whose score is at most `bound` cannot enter a top k whose worst score is
/// `threshold` (see the module docs for the slack).
#[inline]
fn cannot_beat(bound: f64, threshold: f32) -> bool {
    bound * (1.0 + 1e-9) <= f64::from(threshold)
}

/// The score from per-term contributions, in query term order.
#[inline]
fn total(contributions: &[f32], hit: &[bool]) -> f32 {
    let mut sum = 0f64;
    for (&c, &h) in contributions.iter().zip(hit) {
        if h {
            sum += f64::from(c);
        }
    }
    sum as f32
}

/// Heap order: the worst kept hit on top (lower score, then higher id).
#[derive(Debug, PartialEq)]
struct Worst(Scored);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.score.total_cmp(&self.0.score).then(self.0.id.cmp(&other.0.id))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The k best hits so far, offered in increasing id order.
#[derive(Debug)]
struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    /// The k-th best score once k hits are held.
    fn threshold(&self) -> Option<f32> {
        (self.heap.len() == self.k).then(|| self.heap.peek().map_or(f32::INFINITY, |w| w.0.score))
    }

    /// Offer a hit; whether the threshold may have changed.
    fn push(&mut self, hit: Scored) -> bool {
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
            return self.heap.len() == self.k;
        }
        match self.heap.peek() {
            Some(top) if Worst(hit).cmp(top) == Ordering::Less => {
                self.heap.pop();
                self.heap.push(Worst(hit));
                true
            }
            _ => false,
        }
    }

    fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self.heap.into_iter().map(|w| w.0).collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        out
    }
}

/// Every posting of every term added up (term at a time): the oracle.
pub(crate) fn exhaustive(
    terms: &[QueryTerm<'_>],
    scoring: &Contribution<'_>,
    ids: usize,
    k: usize,
    filter: Option<PointFilter<'_>>,
) -> Vec<Scored> {
    if k == 0 || terms.is_empty() {
        return Vec::new();
    }
    let mut acc = vec![0f64; ids];
    let mut matched = vec![false; ids];
    for t in terms {
        for (id, value) in t.list.iter() {
            acc[id as usize] += f64::from(scoring.score(t.weight, id, value));
            matched[id as usize] = true;
        }
    }
    let mut top = TopK::new(k);
    for (id, (&score, &m)) in acc.iter().zip(&matched).enumerate() {
        if m && filter.is_none_or(|f| f(id)) {
            top.push(Scored { id, score: score as f32 });
        }
    }
    top.into_sorted()
}

/// A query term during a pruned search.
struct TermState<'a> {
    cursor: Cursor<'a>,
    weight: f32,
    /// The bound of each of the list's blocks.
    block_bounds: Vec<f32>,
    /// The largest block bound.
    bound: f32,
    /// The block the last range check used (only moves forward).
    shallow: usize,
}

/// Block-max MaxScore (see the module docs).
pub(crate) fn pruned(
    terms: &[QueryTerm<'_>],
    scoring: &Contribution<'_>,
    k: usize,
    filter: Option<PointFilter<'_>>,
) -> (Vec<Scored>, SearchStats) {
    let mut stats = SearchStats::default();
    let n = terms.len();
    if k == 0 || n == 0 {
        return (Vec::new(), stats);
    }
    let mut states: Vec<TermState<'_>> = terms
        .iter()
        .map(|t| {
            let cursor = t.list.cursor();
            let block_bounds: Vec<f32> = cursor.blocks().iter().map(|b| scoring.bound(t.weight, b)).collect();
            let bound = block_bounds.iter().copied().fold(0.0, f32::max);
            TermState { cursor, weight: t.weight, block_bounds, bound, shallow: 0 }
        })
        .collect();
    // Terms by bound, smallest first (ties: query order); prefix[i] bounds the terms order[..i].
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| states[a].bound.total_cmp(&states[b].bound).then(a.cmp(&b)));
    let mut prefix = vec![0f64; n + 1];
    for (i, &t) in order.iter().enumerate() {
        prefix[i + 1] = prefix[i] + f64::from(states[t].bound);
    }

    let mut top = TopK::new(k);
    // order[..first_essential] are the non-essential terms.
    let mut first_essential = 0;
    let mut contributions = vec![0f32; n];
    let mut hit = vec![false; n];
    // The last block-max range: ids up to `range_end` could beat `range_threshold` iff `range_ok`.
    let mut range: Option<(u32, f32, bool)> = None;

    loop {
        let doc = order[first_essential..].iter().map(|&t| states[t].cursor.doc()).min().unwrap_or(END);
        if doc == END {
            break;
        }
        let threshold = top.threshold();
        if let Some(theta) = threshold {
            let ok = match range {
                Some((end, at, ok)) if doc <= end && at == theta => ok,
                _ => {
                    let mut bound = 0f64;
                    let mut end = END - 1;
                    for st in states.iter_mut() {
                        if let Some(b) = st.cursor.block_for(doc, st.shallow) {
                            st.shallow = b;
                            bound += f64::from(st.block_bounds[b]);
                            end = end.min(st.cursor.blocks()[b].last());
                        } else {
                            st.shallow = st.cursor.blocks().len();
                        }
                    }
                    let ok = !cannot_beat(bound, theta);
                    range = Some((end, theta, ok));
                    ok
                }
            };
            if !ok {
                let (end, _, _) = range.unwrap_or((doc, theta, false));
                for &t in &order[first_essential..] {
                    states[t].cursor.seek(end + 1);
                }
                continue;
            }
        }

        stats.candidates += 1;
        let mut partial = 0f64;
        for &t in &order[first_essential..] {
            let st = &states[t];
            if st.cursor.doc() == doc {
                let c = scoring.score(st.weight, doc, st.cursor.value());
                contributions[t] = c;
                hit[t] = true;
                partial += f64::from(c);
            }
        }
        let mut skipped = false;
        if let Some(theta) = threshold {
            for i in (0..first_essential).rev() {
                if cannot_beat(partial + prefix[i + 1], theta) {
                    skipped = true;
                    break;
                }
                let st = &mut states[order[i]];
                st.cursor.seek(doc);
                if st.cursor.doc() == doc {
                    let c = scoring.score(st.weight, doc, st.cursor.value());
                    contributions[order[i]] = c;
                    hit[order[i]] = true;
                    partial += f64::from(c);
                }
            }
        }
        if !skipped && filter.is_none_or(|f| f(doc as usize)) {
            stats.scored += 1;
            let score = total(&contributions, &hit);
            if top.push(Scored { id: doc as usize, score }) {
                if let Some(theta) = top.threshold() {
                    while first_essential < n && cannot_beat(prefix[first_essential + 1], theta) {
                        first_essential += 1;
                    }
                }
            }
        }
        hit.iter_mut().for_each(|h| *h = false);
        for st in states.iter_mut() {
            if st.cursor.doc() == doc {
                st.cursor.next();
            }
        }
    }
    (top.into_sorted(), stats)
}
