//! Posting lists in blocks: each term's `(point id, value)` pairs sorted by id, cut into blocks
//! of [`BLOCK`] to `2·BLOCK` postings, each with what a search needs to bound the block's
//! scores without reading it: the largest value, and (for BM25) the block's *impacts*, the
//! Pareto frontier of `(term frequency, document length)` pairs (Lucene's `Impacts`): every
//! posting has a frequency at most and a length at least those of some impact, so, BM25 being
//! monotonic in both, the best impact's score bounds the block at any `avgdl` and `idf`.
//!
//! A value is a term frequency (BM25) or a weight (dot product); both are `f32` (frequencies are
//! exact up to 2²⁴). Blocks keep inserts and removals local: appending (ids in increasing order,
//! as the store assigns them) fills a block to [`BLOCK`] and opens the next; an insert in the
//! middle splits a block that outgrows `2·BLOCK`; a removal touches one block (an empty block is
//! dropped). Either way only that block's maxima are recomputed.

/// Postings per block when appending.
pub(crate) const BLOCK: usize = 128;

/// One past the largest point id a posting can hold: ids are `u32` inside.
pub(crate) const END: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub(crate) struct Block {
    pub(crate) ids: Vec<u32>,
    pub(crate) values: Vec<f32>,
    /// The largest value in the block.
    pub(crate) max_value: f32,
    /// `(value, document length)` pairs not dominated by another posting of the block (a larger
    /// or equal value with a shorter or equal length); one pair for dot-product indexes, where
    /// every length is 0.
    pub(crate) impacts: Vec<(f32, u32)>,
}

impl Block {
    pub(crate) fn last(&self) -> u32 {
        self.ids[self.ids.len() - 1]
    }

    fn new(id: u32, value: f32, len: u32) -> Self {
        Block { ids: vec![id], values: vec![value], max_value: value, impacts: vec![(value, len)] }
    }

    fn refresh(&mut self, lens: &[u32]) {
        self.max_value = self.values.iter().copied().fold(0.0, f32::max);
        let mut pairs: Vec<(f32, u32)> = self
            .ids
            .iter()
            .zip(&self.values)
            .map(|(&id, &v)| (v, lens.get(id as usize).copied().unwrap_or(0)))
            .collect();
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.impacts.clear();
        let mut shortest = u32::MAX;
        for (v, len) in pairs {
            if len < shortest {
                self.impacts.push((v, len));
                shortest = len;
            }
        }
    }

    /// Account for a new posting in the impacts.
    fn add_impact(&mut self, value: f32, len: u32) {
        if self.impacts.iter().any(|&(v, l)| v >= value && l <= len) {
            return;
        }
        self.impacts.retain(|&(v, l)| !(value >= v && len <= l));
        self.impacts.push((value, len));
    }
}

/// One term's postings.
#[derive(Debug, Clone, Default)]
pub(crate) struct PostingList {
    pub(crate) blocks: Vec<Block>,
    len: usize,
}

impl PostingList {
    /// The number of postings (the term's document frequency).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add `id` (not already present) with `value`; `lens[id]` is its document length.
    pub(crate) fn insert(&mut self, id: u32, value: f32, lens: &[u32]) {
        self.len += 1;
        let len = lens.get(id as usize).copied().unwrap_or(0);
        // The first block whose last id is ≥ id, or the last block when appending.
        let at = self.blocks.partition_point(|b| b.last() < id);
        if at == self.blocks.len() {
            match self.blocks.last_mut() {
                Some(last) if last.ids.len() < BLOCK => {
                    last.ids.push(id);
                    last.values.push(value);
                    last.max_value = last.max_value.max(value);
                    last.add_impact(value, len);
                }
                _ => self.blocks.push(Block::new(id, value, len)),
            }
            return;
        }
        let block = &mut self.blocks[at];
        let pos = block.ids.partition_point(|&x| x < id);
        debug_assert!(block.ids.get(pos) != Some(&id), "posting {id} inserted twice");
        block.ids.insert(pos, id);
        block.values.insert(pos, value);
        block.max_value = block.max_value.max(value);
        block.add_impact(value, len);
        if block.ids.len() > 2 * BLOCK {
            let half = block.ids.len() / 2;
            let mut tail = Block {
                ids: block.ids.split_off(half),
                values: block.values.split_off(half),
                max_value: 0.0,
                impacts: Vec::new(),
            };
            block.refresh(lens);
            tail.refresh(lens);
            self.blocks.insert(at + 1, tail);
        }
    }

    /// Remove `id` if present; `lens` gives the lengths of the documents that stay.
    pub(crate) fn remove(&mut self, id: u32, lens: &[u32]) -> bool {
        let at = self.blocks.partition_point(|b| b.last() < id);
        let Some(block) = self.blocks.get_mut(at) else { return false };
        let Ok(pos) = block.ids.binary_search(&id) else { return false };
        block.ids.remove(pos);
        block.values.remove(pos);
        self.len -= 1;
        if block.ids.is_empty() {
            self.blocks.remove(at);
        } else {
            block.refresh(lens);
        }
        true
    }

    /// Every `(id, value)`, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.blocks.iter().flat_map(|b| b.ids.iter().copied().zip(b.values.iter().copied()))
    }

    pub(crate) fn cursor(&self) -> Cursor<'_> {
        Cursor { blocks: &self.blocks, block: 0, pos: 0 }
    }
}

/// A position in a posting list that only moves forward.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    blocks: &'a [Block],
    block: usize,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The current posting's id, or [`END`] when exhausted.
    #[inline]
    pub(crate) fn doc(&self) -> u32 {
        match self.blocks.get(self.block) {
            Some(b) => b.ids[self.pos],
            None => END,
        }
    }

    /// The current posting's value (only when not exhausted).
    #[inline]
    pub(crate) fn value(&self) -> f32 {
        self.blocks[self.block].values[self.pos]
    }

    #[inline]
    pub(crate) fn next(&mut self) {
        self.pos += 1;
        if self.pos == self.blocks[self.block].ids.len() {
            self.block += 1;
            self.pos = 0;
        }
    }

    /// Move to the first posting with id ≥ `target` (skipping whole blocks by their last id).
    pub(crate) fn seek(&mut self, target: u32) {
        if self.doc() >= target {
            return;
        }
        if self.blocks[self.block].last() < target {
            self.pos = 0;
            self.block += 1;
            // Gallop over blocks, then bisect.
            let mut step = 1;
            while self.block + step < self.blocks.len() && self.blocks[self.block + step].last() < target {
                self.block += step;
                step *= 2;
            }
            let end = (self.block + step).min(self.blocks.len());
            self.block += self.blocks[self.block..end].partition_point(|b| b.last() < target);
            if self.block == self.blocks.len() {
                return;
            }
        }
        let ids = &self.blocks[self.block].ids;
        self.pos += ids[self.pos..].partition_point(|&x| x < target);
    }

    /// The block of the current posting (`None` when exhausted).
    #[inline]
    pub(crate) fn block(&self) -> Option<&'a Block> {
        self.blocks.get(self.block)
    }

    /// The current block and those after it.
    #[inline]
    pub(crate) fn blocks_ahead(&self) -> &'a [Block] {
        self.blocks.get(self.block..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    #[test]
    fn blocks_stay_sorted_and_bounded_through_inserts_and_removals() {
        let mut rng = SplitMix64::new(7);
        let lens: Vec<u32> = (0..5000).map(|_| 1 + rng.below(300) as u32).collect();
        let mut list = PostingList::default();
        let mut truth = std::collections::BTreeMap::new();
        // appends, then inserts in the middle, then removals
        for id in (0..5000u32).step_by(3) {
            list.insert(id, (id % 7) as f32 + 1.0, &lens);
            truth.insert(id, (id % 7) as f32 + 1.0);
        }
        for _ in 0..2000 {
            let id = rng.below(5000) as u32;
            if let std::collections::btree_map::Entry::Vacant(e) = truth.entry(id) {
                e.insert(0.5);
                list.insert(id, 0.5, &lens);
            }
        }
        for _ in 0..1500 {
            let id = rng.below(5000) as u32;
            assert_eq!(list.remove(id, &lens), truth.remove(&id).is_some());
        }
        assert_eq!(list.len(), truth.len());
        assert_eq!(list.iter().collect::<Vec<_>>(), truth.iter().map(|(&i, &v)| (i, v)).collect::<Vec<_>>());
        for b in &list.blocks {
            assert!(!b.ids.is_empty() && b.ids.len() <= 2 * BLOCK);
            assert_eq!(b.max_value, b.values.iter().copied().fold(0.0, f32::max));
            // every posting is dominated by an impact, and no impact by another
            for (&id, &v) in b.ids.iter().zip(&b.values) {
                assert!(b.impacts.iter().any(|&(iv, il)| iv >= v && il <= lens[id as usize]));
            }
            for (i, &(v, l)) in b.impacts.iter().enumerate() {
                assert!(b.values.contains(&v));
                assert!(b.impacts.iter().enumerate().all(|(j, &(w, m))| i == j || !(w >= v && m <= l)));
            }
        }

        // seek agrees with a scan
        for target in [0u32, 1, 2, 100, 2047, 2048, 4998, 4999, 5000, 10_000] {
            let mut c = list.cursor();
            c.seek(target);
            let want = truth.range(target..).next().map_or(END, |(&i, _)| i);
            assert_eq!(c.doc(), want, "seek {target}");
        }
        let mut c = list.cursor();
        let mut seen = Vec::new();
        let mut target = 0;
        while c.doc() != END {
            seen.push(c.doc());
            target = c.doc() + 1 + rng.below(40) as u32;
            c.seek(target);
        }
        assert!(target > 0 && seen.windows(2).all(|w| w[0] < w[1]));
    }
}
