//! Inserting a node: the paper's algorithm 1, with algorithm 4 choosing neighbours.

use super::search::Cand;
use super::{HnswIndex, MAX_LEVEL};

impl HnswIndex {
    /// Draw a level: `⌊-ln(U) / ln(m)⌋`, capped.
    fn draw_level(&mut self) -> usize {
        let level = (-self.rng.unit_open().ln() * self.level_scale) as usize;
        level.min(MAX_LEVEL)
    }

    /// Append a node for `id` (whose previous node, if any, is already tombstoned) and link it.
    pub(super) fn add_node(&mut self, id: usize, vector: &[f32]) {
        let node = self.ids.len() as u32;
        let level = self.draw_level();
        let mut q = Vec::with_capacity(self.dim);
        self.metric.prepare(vector, &mut q);
        self.vectors.extend_from_slice(&q);
        self.links0.resize(self.links0.len() + 1 + self.m0, 0);
        self.upper_start.push(self.upper.len());
        self.upper.resize(self.upper.len() + level * (1 + self.params.m), 0);
        self.levels.push(level as u8);
        self.ids.push(id);
        self.deleted.push(false);
        self.node_of.insert(id, node);

        let Some(entry) = self.entry else {
            self.entry = Some(node);
            self.max_level = level;
            return;
        };
        let mut cur = Cand { dist: self.metric.distance(&q, self.vector(entry)), node: entry };
        for l in (level + 1..=self.max_level).rev() {
            cur = self.greedy(&q, cur, l);
        }
        let mut scratch = self.take_scratch();
        let mut found = Vec::new();
        for l in (0..=level.min(self.max_level)).rev() {
            self.search_layer(&q, &[cur], self.params.ef_construction, l, |_| true, &mut scratch);
            found.clear();
            found.extend(scratch.results.drain());
            found.sort_unstable();
            let chosen = self.select_neighbours(&found, self.params.m);
            self.set_links(node, l, &chosen);
            for &c in &chosen {
                self.link_back(c, node, l);
            }
            if let Some(&closest) = found.first() {
                cur = closest;
            }
        }
        self.put_scratch(scratch);
        if level > self.max_level {
            self.entry = Some(node);
            self.max_level = level;
        }
    }

    /// Algorithm 4 without extension or kept pruned links: walk the candidates nearest first
    /// and keep one only if it is closer to the base than to every neighbour kept so far, up
    /// to `max`. Fewer candidates than `max` are all kept. `cands` is sorted nearest first.
    fn select_neighbours(&self, cands: &[Cand], max: usize) -> Vec<u32> {
        if cands.len() < max {
            return cands.iter().map(|c| c.node).collect();
        }
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        for c in cands {
            if kept.len() >= max {
                break;
            }
            let v = self.vector(c.node);
            if kept.iter().all(|&r| self.metric.distance(v, self.vector(r)) >= c.dist) {
                kept.push(c.node);
            }
        }
        kept
    }

    fn set_links(&mut self, node: u32, level: usize, links: &[u32]) {
        let (block, cap) = self.block(node, level);
        let n = links.len().min(cap);
        let list = if level == 0 { &mut self.links0 } else { &mut self.upper };
        list[block] = n as u32;
        list[block + 1..block + 1 + n].copy_from_slice(&links[..n]);
    }

    /// Add the reverse link `from → to` on `level`; a full list is re-chosen by the heuristic
    /// among its links and `to`.
    fn link_back(&mut self, from: u32, to: u32, level: usize) {
        let (block, cap) = self.block(from, level);
        let list = if level == 0 { &mut self.links0 } else { &mut self.upper };
        let n = list[block] as usize;
        if list[block + 1..block + 1 + n].contains(&to) {
            return;
        }
        if n < cap {
            list[block + 1 + n] = to;
            list[block] += 1;
            return;
        }
        let base = self.vector(from);
        let mut cands: Vec<Cand> = self
            .links(from, level)
            .iter()
            .chain(std::iter::once(&to))
            .map(|&c| Cand { dist: self.metric.distance(base, self.vector(c)), node: c })
            .collect();
        cands.sort_unstable();
        let chosen = self.select_neighbours(&cands, cap);
        self.set_links(from, level, &chosen);
    }

    /// Greedy descent on one level: move to the nearest neighbour until none is nearer.
    pub(super) fn greedy(&self, q: &[f32], mut cur: Cand, level: usize) -> Cand {
        loop {
            let mut moved = false;
            for &n in self.links(cur.node, level) {
                let d = self.metric.distance(q, self.vector(n));
                if d < cur.dist {
                    cur = Cand { dist: d, node: n };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }
}
