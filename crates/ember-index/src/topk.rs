//! Selecting the k best of many scores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An item and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub id: usize,
    pub score: f32,
}

/// Heap order: the worst kept item on top. Higher scores are better; among equal scores the
/// lower id is better, so results are deterministic.
#[derive(Debug, PartialEq)]
pub(crate) struct Worst(pub(crate) Scored);

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

/// The `k` highest scores, best first (ties: lower id first). NaN scores rank last.
pub fn top_k(scores: impl IntoIterator<Item = Scored>, k: usize) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    // k may be huge (a user asking for "everything"): the heap grows with what it holds.
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k.saturating_add(1).min(4096));
    for s in scores {
        let s = Scored { score: if s.score.is_nan() { f32::NEG_INFINITY } else { s.score }, ..s };
        if heap.len() < k {
            heap.push(Worst(s));
        } else if let Some(top) = heap.peek() {
            if Worst(s).cmp(top) == Ordering::Less {
                heap.pop();
                heap.push(Worst(s));
            }
        }
    }
    let mut out: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_in_order_with_deterministic_ties() {
        let scores = [0.1, 0.9, 0.5, 0.9, -1.0, f32::NAN, 0.5];
        let got = top_k(scores.iter().enumerate().map(|(id, &score)| Scored { id, score }), 4);
        let ids: Vec<usize> = got.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 3, 2, 6]);
        assert_eq!(top_k(std::iter::empty(), 3), vec![]);
        assert_eq!(top_k([Scored { id: 0, score: 1.0 }], 0), vec![]);
        assert_eq!(top_k([Scored { id: 0, score: 1.0 }], 5).len(), 1);
        assert_eq!(top_k([Scored { id: 0, score: 1.0 }], usize::MAX).len(), 1);
    }
}
