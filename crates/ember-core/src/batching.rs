//! Planning batches: sort by length, pack by a token budget.
//!
//! Padding is the main waste when embedding many texts: a batch costs `count × longest` token
//! slots. Sorting by length and closing a batch when the padded cost would exceed the budget keeps
//! the waste small and the memory bounded, whatever the batch size asked for.

/// One planned batch: indices into the input, longest first, and the padded length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub indices: Vec<usize>,
    pub padded_len: usize,
}

/// Plan batches over inputs of the given token `lengths`.
///
/// Each batch holds at most `max_batch` inputs and, unless a single input alone exceeds it, at
/// most `max_tokens` padded token slots. Inputs are taken longest first (a stable sort, so equal
/// lengths keep input order). Every index appears in exactly one batch.
pub fn plan_batches(lengths: &[usize], max_tokens: usize, max_batch: usize) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let max_batch = max_batch.max(1);
    let mut batches: Vec<Batch> = Vec::new();
    for i in order {
        let fits = batches
            .last()
            .is_some_and(|b| b.indices.len() < max_batch && (b.indices.len() + 1) * b.padded_len.max(1) <= max_tokens);
        match batches.last_mut() {
            Some(b) if fits => b.indices.push(i),
            _ => batches.push(Batch { indices: vec![i], padded_len: lengths[i] }),
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_longest_first_within_budget() {
        let lengths = [3, 10, 4, 10, 1, 2];
        let b = plan_batches(&lengths, 20, 8);
        assert_eq!(
            b,
            vec![Batch { indices: vec![1, 3], padded_len: 10 }, Batch { indices: vec![2, 0, 5, 4], padded_len: 4 },]
        );
    }

    #[test]
    fn respects_batch_size_and_oversized_inputs() {
        let b = plan_batches(&[50, 1, 1, 1], 10, 2);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], Batch { indices: vec![0], padded_len: 50 });
        let mut all: Vec<usize> = b.iter().flat_map(|b| b.indices.clone()).collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3]);
        assert!(plan_batches(&[], 10, 2).is_empty());
    }
}
