//! The invariants over many documents, budgets, overlaps, formats and counters.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_overlapping, check_invariants, documents, NoOffsets};
use ember_chunk::{CharCounter, ChunkConfig, Chunker, TextFormat, TokenCounter, WhitespaceCounter};

fn sweep(counter: &impl TokenCounter) -> usize {
    let mut checked = 0;
    for (name, doc) in documents() {
        for format in [TextFormat::Plain, TextFormat::Markdown] {
            for max_tokens in [1, 2, 3, 5, 8, 13, 40, 1000] {
                for overlap_tokens in [0, 1, max_tokens / 2, max_tokens - 1] {
                    if overlap_tokens >= max_tokens {
                        continue;
                    }
                    let config = ChunkConfig { max_tokens, overlap_tokens, format };
                    let chunks = Chunker::new(counter, config).unwrap().chunk(&doc);
                    check_invariants(&doc, &chunks, counter, &config);
                    if doc.trim().is_empty() {
                        assert!(chunks.is_empty(), "{name}: chunks of whitespace");
                    } else {
                        assert!(!chunks.is_empty(), "{name}: no chunks");
                    }
                    checked += chunks.len();
                }
            }
        }
    }
    checked
}

#[test]
fn invariants_whitespace_counter() {
    assert!(sweep(&WhitespaceCounter) > 1000);
}

#[test]
fn invariants_char_counter() {
    assert!(sweep(&CharCounter) > 1000);
}

#[test]
fn invariants_without_offsets() {
    assert!(sweep(&NoOffsets(WhitespaceCounter)) > 1000);
    assert!(sweep(&NoOffsets(CharCounter)) > 1000);
}

#[test]
fn offsets_and_word_estimates_agree() {
    // For these counters the per-atom sums are exact (for the whitespace counter: as long as no
    // run without whitespace is cut into several atoms, i.e. none exceeds 64 bytes) and, inside a
    // word, token starts are grapheme boundaries: the two estimators must cut identically.
    let ranges = |c: &[ember_chunk::Chunk]| c.iter().map(|c| c.byte_range.clone()).collect::<Vec<_>>();
    for (name, doc) in documents() {
        for max_tokens in [1, 2, 3, 5, 8, 40] {
            for overlap_tokens in [0, 1, max_tokens / 2] {
                if overlap_tokens >= max_tokens {
                    continue;
                }
                let config = ChunkConfig { max_tokens, overlap_tokens, format: TextFormat::Markdown };
                let long_runs = doc.split_whitespace().any(|w| w.len() > 64);
                let counters: &[&dyn TokenCounter] =
                    if long_runs { &[&CharCounter] } else { &[&WhitespaceCounter, &CharCounter] };
                for &counter in counters {
                    let with = Chunker::new(counter, config).unwrap().chunk(&doc);
                    let without = Chunker::new(NoOffsets(counter), config).unwrap().chunk(&doc);
                    assert_eq!(ranges(&with), ranges(&without), "{name} {config:?}");
                }
            }
        }
    }
}

#[test]
fn small_budgets_still_overlap() {
    // One token per word and budget >= 3: every chunk of two or more words leaves room for a
    // one-word tail plus the next word.
    for (_, doc) in documents() {
        for max_tokens in [3, 5, 8] {
            for overlap_tokens in [1, 2] {
                let config = ChunkConfig { max_tokens, overlap_tokens, format: TextFormat::Plain };
                let chunks = Chunker::new(WhitespaceCounter, config).unwrap().chunk(&doc);
                check_invariants(&doc, &chunks, &WhitespaceCounter, &config);
                let multiword: Vec<_> =
                    chunks.windows(2).filter(|w| w[0].text.split_whitespace().count() >= 2).collect();
                for w in multiword {
                    assert_overlapping(w);
                }
            }
        }
    }
}

#[test]
fn chinese_overlap_by_characters() {
    let config = ChunkConfig { max_tokens: 12, overlap_tokens: 4, format: TextFormat::Plain };
    let chunks = Chunker::new(CharCounter, config).unwrap().chunk(common::CHINESE);
    check_invariants(common::CHINESE, &chunks, &CharCounter, &config);
    assert!(chunks.len() > 5);
    assert_overlapping(&chunks);
    for w in chunks.windows(2) {
        // The repeated tail is at most the overlap, and at least half of it.
        let shared = &common::CHINESE[w[1].byte_range.start..w[0].byte_range.end];
        let n = CharCounter.count(shared);
        assert!((2..=4).contains(&n), "{shared:?}");
    }
}
