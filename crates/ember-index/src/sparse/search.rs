//! Top-k over posting lists: an exhaustive term-at-a-time scan (the oracle) and block-max
//! MaxScore (Turtle & Flood 1995; with per-block maxima as in Ding & Suel, SIGIR 2011; processed
//! in windows of ids as Lucene's `MaxScoreBulkScorer`), which returns exactly the same hits.
//!
//! **Scores are summed exactly, so order does not matter.** Each term's contribution (an `f32`)
//! is turned into a fixed-point integer, `⌊c · 2^F⌋`, with `F` chosen per query so that the sum
//! of all the query terms' largest contributions fits in 62 bits, and a document's score is the
//! integer sum turned back into `f32`. Integer sums do not depend on the order of the terms, so
//! the pruned search (which adds a document's terms in whatever order it meets them) and the
//! exhaustive scan agree bit for bit, ties included (lower id first); the fixed point costs
//! nothing measurable in precision (a resolution of 2⁻⁶² of the largest possible score).
//!
//! **Pruning is safe.** Every contribution is ≥ 0 and at most its block's bound (BM25 is
//! monotonic in tf and in document length, and a dot product with weights ≥ 0 in the weight,
//! all under float rounding), so a sum of bounds bounds the score. A document is skipped only
//! when that bound, inflated by a relative 1e-9 for the rounding of `f64` sums, is ≤ the current
//! k-th score: documents are visited in increasing id, so one that only ties the k-th score
//! loses the tie anyway.
//!
//! **The algorithm.** Ids are processed in windows of at most 4,096 ids that end at the
//! nearest block end of the terms that were essential in the previous window (all terms at
//! first), so dense non-essential terms do not cut windows short; each term is bounded in a window
//! by the largest bound of its blocks there. Per window, the terms are sorted by bound; the
//! longest prefix whose bounds together cannot reach the k-th score is *non-essential*; if that
//! is every term, the window is skipped unread. The essential terms' postings in the window are
//! added up term at a time into a small accumulator; then each document found is checked in id
//! order: if its partial score plus the non-essential bounds cannot reach the k-th score it is
//! dropped, otherwise the non-essential lists are probed for it (largest bound first), stopping as
//! soon as the remaining bounds cannot lift it into the top k. The filter is called only for
//! documents that survive these checks.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::bm25::Bm25Scorer;
use super::postings::{Block, Cursor, PostingList, END};
use crate::dense::PointFilter;
use crate::topk::{Scored, Worst};

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
            Contribution::Bm25 { scorer, .. } => block
                .impacts
                .iter()
                .map(|&(tf, len)| Bm25Scorer::score(weight, tf, scorer.norm_inverse(len)))
                .fold(0.0, f32::max),
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

/// What a pruned search did (for tests, benchmarks and explanations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Postings in the query terms' lists: what an exhaustive scan reads.
    pub postings: usize,
    /// Documents whose contributions were (at least partly) computed.
    pub candidates: usize,
    /// Documents fully scored and offered to the top k.
    pub scored: usize,
    /// Windows of ids considered.
    pub windows: usize,
    /// Windows skipped unread (no document in them could enter the top k).
    pub skipped_windows: usize,
    /// Look-ups of a candidate in a non-essential term's postings.
    pub probes: usize,
}

/// The most ids one window spans (the accumulator's size).
pub(crate) const WINDOW: usize = 4096;

/// Whether a document whose score is at most `bound` cannot enter a top k whose worst score is
/// `threshold` (see the module docs for the slack).
#[inline]
fn cannot_beat(bound: f64, threshold: f32) -> bool {
    bound * (1.0 + 1e-9) <= f64::from(threshold)
}

/// The largest contribution any posting of `list` can make.
fn list_bound(scoring: &Contribution<'_>, weight: f32, list: &PostingList) -> f32 {
    list.blocks.iter().map(|b| scoring.bound(weight, b)).fold(0.0, f32::max)
}

/// Exact fixed-point sums of contributions (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Fixed {
    scale: f64,
}

impl Fixed {
    /// A scale at which contributions bounded by `bounds` (summed) fit in 62 bits.
    fn for_bounds(bounds: impl Iterator<Item = f32>) -> Self {
        let total: f64 = bounds.map(f64::from).sum::<f64>() * (1.0 + 1e-6);
        let exponent = if total > 0.0 { 62 - total.log2().ceil() as i32 } else { 62 };
        Fixed { scale: 2f64.powi(exponent.clamp(-1000, 1000)) }
    }

    /// `⌊c · 2^F⌋`; saturating (only a product that overflows `f32` gets there).
    #[inline]
    fn of(self, contribution: f32) -> u64 {
        (f64::from(contribution) * self.scale) as u64
    }

    #[inline]
    fn value(self, sum: u64) -> f64 {
        sum as f64 / self.scale
    }

    #[inline]
    fn score(self, sum: u64) -> f32 {
        self.value(sum) as f32
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
    #[inline]
    fn threshold(&self) -> Option<f32> {
        if self.heap.len() == self.k {
            self.heap.peek().map(|w| w.0.score)
        } else {
            None
        }
    }

    fn push(&mut self, hit: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else if let Some(mut top) = self.heap.peek_mut() {
            if Worst(hit).cmp(&top) == Ordering::Less {
                *top = Worst(hit);
            }
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
    let fixed = Fixed::for_bounds(terms.iter().map(|t| list_bound(scoring, t.weight, t.list)));
    let mut acc = vec![0u64; ids];
    let mut matched = vec![false; ids];
    for t in terms {
        for (id, value) in t.list.iter() {
            let a = &mut acc[id as usize];
            *a = a.saturating_add(fixed.of(scoring.score(t.weight, id, value)));
            matched[id as usize] = true;
        }
    }
    let mut top = TopK::new(k);
    for (id, (&sum, &m)) in acc.iter().zip(&matched).enumerate() {
        if m && filter.is_none_or(|f| f(id)) {
            top.push(Scored { id, score: fixed.score(sum) });
        }
    }
    top.into_sorted()
}

/// A query term during a pruned search.
struct TermState<'a> {
    cursor: Cursor<'a>,
    weight: f32,
    /// This term's bound in the current window (0 when it has no block there).
    window_bound: f32,
}

/// Block-max MaxScore in windows (see the module docs).
pub(crate) fn pruned(
    terms: &[QueryTerm<'_>],
    scoring: &Contribution<'_>,
    k: usize,
    filter: Option<PointFilter<'_>>,
) -> (Vec<Scored>, SearchStats) {
    let mut stats = SearchStats { postings: terms.iter().map(|t| t.list.len()).sum(), ..SearchStats::default() };
    let n = terms.len();
    if k == 0 || n == 0 {
        return (Vec::new(), stats);
    }
    let fixed = Fixed::for_bounds(terms.iter().map(|t| list_bound(scoring, t.weight, t.list)));
    let mut states: Vec<TermState<'_>> =
        terms.iter().map(|t| TermState { cursor: t.list.cursor(), weight: t.weight, window_bound: 0.0 }).collect();
    let mut top = TopK::new(k);
    let mut acc = vec![0u64; WINDOW];
    let mut seen = vec![0u64; WINDOW / 64];
    // Terms by window bound, smallest first; prefix[i] = Σ bounds of order[..i].
    let mut order: Vec<usize> = (0..n).collect();
    let mut prefix = vec![0f64; n + 1];
    let mut next: u32 = 0;
    // order[lead..] are the terms that were essential in the last window.
    let mut lead = 0;

    loop {
        // The window: from the next id any term holds to the nearest block end.
        let mut start = END;
        for st in states.iter_mut() {
            st.cursor.seek(next);
            start = start.min(st.cursor.doc());
        }
        if start == END {
            break;
        }
        // It ends at the nearest block end of the terms that were essential in the last window
        // (all terms at first), so that dense non-essential terms do not cut windows short; the
        // other terms are bounded by their largest block bound in the window.
        let mut end = start.saturating_add(WINDOW as u32 - 1).min(END - 1);
        for &t in &order[lead..] {
            if let Some(block) = states[t].cursor.block() {
                end = end.min(block.last());
            }
        }
        for st in states.iter_mut() {
            st.window_bound = st
                .cursor
                .blocks_ahead()
                .iter()
                .take_while(|b| b.ids[0] <= end)
                .map(|b| scoring.bound(st.weight, b))
                .fold(0.0, f32::max);
        }
        next = end + 1;
        stats.windows += 1;

        // Which terms are essential here.
        let threshold = top.threshold();
        let mut first_essential = 0;
        if let Some(theta) = threshold {
            order.sort_unstable_by(|&a, &b| states[a].window_bound.total_cmp(&states[b].window_bound));
            for (i, &t) in order.iter().enumerate() {
                prefix[i + 1] = prefix[i] + f64::from(states[t].window_bound);
            }
            while first_essential < n && cannot_beat(prefix[first_essential + 1], theta) {
                first_essential += 1;
            }
            lead = first_essential.min(n - 1);
            if first_essential == n {
                stats.skipped_windows += 1;
                continue;
            }
        }

        // Essential postings of the window, term at a time.
        for &t in &order[first_essential..] {
            let st = &mut states[t];
            loop {
                let doc = st.cursor.doc();
                if doc > end {
                    break;
                }
                let j = (doc - start) as usize;
                acc[j] = acc[j].saturating_add(fixed.of(scoring.score(st.weight, doc, st.cursor.value())));
                seen[j / 64] |= 1 << (j % 64);
                st.cursor.next();
            }
        }

        // Candidates in id order.
        let words = (end - start) as usize / 64 + 1;
        for (w, word) in seen[..words].iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let j = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let doc = start + j as u32;
                let mut sum = std::mem::take(&mut acc[j]);
                stats.candidates += 1;
                let theta = top.threshold();
                let mut dropped = false;
                if let Some(theta) = theta {
                    for i in (0..first_essential).rev() {
                        if cannot_beat(fixed.value(sum) + prefix[i + 1], theta) {
                            dropped = true;
                            break;
                        }
                        let st = &mut states[order[i]];
                        stats.probes += 1;
                        st.cursor.seek(doc);
                        if st.cursor.doc() == doc {
                            sum = sum.saturating_add(fixed.of(scoring.score(st.weight, doc, st.cursor.value())));
                        }
                    }
                    dropped = dropped || cannot_beat(fixed.value(sum), theta);
                }
                if !dropped && filter.is_none_or(|f| f(doc as usize)) {
                    stats.scored += 1;
                    top.push(Scored { id: doc as usize, score: fixed.score(sum) });
                }
            }
        }
    }
    (top.into_sorted(), stats)
}
