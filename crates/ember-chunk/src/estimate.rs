//! Estimated token counts of spans of a section, from one pass of the counter over it.
//!
//! Cutting asks "how many tokens between here and there?" many times per chunk; re-tokenizing each
//! candidate span would be quadratic. The estimate comes from the section's tokens (counting the
//! tokens that intersect the span) or, for counters without offsets, from per-word counts summed
//! with prefix sums. Token counts of concatenations can differ slightly from the sum of their
//! parts, so the chunker checks every chunk it keeps with the real counter.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use crate::TokenCounter;

/// Runs without whitespace longer than this are cut into several atoms (at word-segment
/// boundaries, and inside a longer segment at char boundaries), so that counting part of an atom
/// stays cheap. The price: a token cut apart at an atom boundary may count twice.
const MAX_ATOM_BYTES: usize = 64;

#[derive(Debug)]
pub(crate) enum Estimator {
    /// Start and end positions (in the source) of the section's tokens, each list sorted.
    Tokens { starts: Vec<usize>, ends: Vec<usize> },
    /// Starts (in the source) of the section's atoms, whitespace runs and non-whitespace runs,
    /// followed by the section end; `prefix[k]` is the count of atoms `0..k`.
    Atoms { starts: Vec<usize>, prefix: Vec<usize> },
}

impl Estimator {
    /// From the counter's token offsets in `text[base..]`.
    pub(crate) fn from_offsets(base: usize, offsets: &[Range<usize>]) -> Self {
        let mut starts: Vec<usize> = offsets.iter().map(|r| base + r.start).collect();
        // A zero-width token counts where it starts.
        let mut ends: Vec<usize> = offsets.iter().map(|r| base + r.end.max(r.start + 1)).collect();
        starts.sort_unstable();
        ends.sort_unstable();
        Estimator::Tokens { starts, ends }
    }

    /// Counts every non-whitespace atom of `text[range]` once.
    pub(crate) fn from_atoms(text: &str, range: Range<usize>, counter: &impl TokenCounter) -> Self {
        let mut atoms: Vec<(usize, bool)> = Vec::new(); // (start, is whitespace)
        let mut current_len = 0;
        for (i, seg) in text[range.clone()].split_word_bound_indices().flat_map(|(i, seg)| pieces(i, seg)) {
            let start = range.start + i;
            let space = seg.chars().all(char::is_whitespace);
            match atoms.last() {
                Some(&(_, last_space))
                    if last_space == space && (space || current_len + seg.len() <= MAX_ATOM_BYTES) =>
                {
                    current_len += seg.len();
                }
                _ => {
                    atoms.push((start, space));
                    current_len = seg.len();
                }
            }
        }
        let mut starts = Vec::with_capacity(atoms.len() + 1);
        let mut prefix = Vec::with_capacity(atoms.len() + 1);
        let mut total = 0;
        for (k, &(start, space)) in atoms.iter().enumerate() {
            starts.push(start);
            prefix.push(total);
            if !space {
                let end = atoms.get(k + 1).map_or(range.end, |a| a.0);
                total += counter.count(&text[start..end]);
            }
        }
        starts.push(range.end);
        prefix.push(total);
        Estimator::Atoms { starts, prefix }
    }

    /// The token starts, when the estimate comes from the counter's offsets.
    pub(crate) fn token_starts(&self) -> Option<&[usize]> {
        match self {
            Estimator::Tokens { starts, .. } => Some(starts),
            Estimator::Atoms { .. } => None,
        }
    }

    /// About how many tokens `text[a..b]` has (`a <= b`, both inside the section).
    pub(crate) fn estimate(&self, text: &str, counter: &impl TokenCounter, a: usize, b: usize) -> usize {
        if a >= b {
            return 0;
        }
        match self {
            // Tokens that start before `b` and end after `a`: a span that begins inside a token
            // counts it, as the counter would count the token's remaining piece.
            Estimator::Tokens { starts, ends } => {
                starts.partition_point(|&s| s < b).saturating_sub(ends.partition_point(|&e| e <= a))
            }
            Estimator::Atoms { starts, prefix } => {
                let i = starts.partition_point(|&s| s < a);
                let j = starts.partition_point(|&s| s <= b).saturating_sub(1);
                if i > j || i == starts.len() {
                    return counter.count(&text[a..b]);
                }
                let head = if starts[i] > a { counter.count(&text[a..starts[i]]) } else { 0 };
                let tail = if starts[j] < b { counter.count(&text[starts[j]..b]) } else { 0 };
                head + prefix[j] - prefix[i] + tail
            }
        }
    }
}

/// A word segment at offset `i`, cut at char boundaries into pieces of at most
/// `MAX_ATOM_BYTES` (or one char, if longer).
fn pieces(i: usize, seg: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = (i, seg);
    std::iter::from_fn(move || {
        let (at, s) = rest;
        if s.is_empty() {
            return None;
        }
        let mut cut = s.len().min(MAX_ATOM_BYTES);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            cut = s.chars().next().map_or(s.len(), char::len_utf8);
        }
        rest = (at + cut, &s[cut..]);
        Some((at, &s[..cut]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CharCounter, WhitespaceCounter};

    #[test]
    fn token_starts_count_spans() {
        let text = "aa bb cc";
        let e = Estimator::from_offsets(0, &WhitespaceCounter.offsets(text).unwrap());
        assert_eq!(e.estimate(text, &WhitespaceCounter, 0, 8), 3);
        // A span that starts or ends inside a token counts it.
        assert_eq!(e.estimate(text, &WhitespaceCounter, 1, 6), 2);
        assert_eq!(e.estimate(text, &WhitespaceCounter, 3, 7), 2);
        assert_eq!(e.estimate(text, &WhitespaceCounter, 2, 3), 0);
        assert_eq!(e.estimate(text, &WhitespaceCounter, 3, 3), 0);
    }

    #[test]
    fn atoms_match_real_counts() {
        // Both counters split at whitespace only (or everywhere), so the atom sums are exact.
        let text = "  Hello, world! 你好世界。 x";
        for counter in [&WhitespaceCounter as &dyn TokenCounter, &CharCounter] {
            let e = Estimator::from_atoms(text, 0..text.len(), &counter);
            let bounds: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
            for &a in &bounds {
                for &b in bounds.iter().filter(|&&b| b >= a) {
                    assert_eq!(e.estimate(text, &counter, a, b), counter.count(&text[a..b]), "{a}..{b}");
                }
            }
        }
    }

    #[test]
    fn long_words_become_several_atoms() {
        let text = format!("{} tail", "ab-".repeat(50));
        let Estimator::Atoms { starts, prefix } = Estimator::from_atoms(&text, 0..text.len(), &CharCounter) else {
            unreachable!()
        };
        assert!(starts.len() > 4, "{starts:?}");
        assert_eq!(*prefix.last().unwrap(), 154);
        // One word segment of 1,000 bytes.
        let text = "ä".repeat(500);
        let Estimator::Atoms { starts, prefix } = Estimator::from_atoms(&text, 0..text.len(), &CharCounter) else {
            unreachable!()
        };
        assert_eq!(starts.len(), 1000usize.div_ceil(64) + 1);
        assert!(starts.windows(2).all(|w| w[1] - w[0] <= 64 && text.is_char_boundary(w[0])));
        assert_eq!(*prefix.last().unwrap(), 500);
    }
}
