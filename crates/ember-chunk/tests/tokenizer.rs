//! Budgets measured by real tokenizers: all-MiniLM-L6-v2's WordPiece and XLM-R's SentencePiece,
//! fetched by `scripts/fetch-models.sh` (a missing tokenizer fails these tests).
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    assert_overlapping, check_invariants, documents, minilm, moby_dick, xlmr, Tally, CHINESE, ENGLISH_MARKDOWN,
};
use ember_chunk::{Chunk, ChunkConfig, Chunker, TextFormat, TokenCounter, TokenizerCounter};

#[test]
fn counts_without_specials_truncation_or_padding() {
    let counter = minilm();
    // hello , world ! — no [CLS]/[SEP], no padding to 128.
    assert_eq!(counter.count("Hello, world!"), 4);
    assert_eq!(counter.count(""), 0);
    // Each CJK character is a token.
    assert_eq!(counter.count("今天天气很好。"), 7);
    // No truncation to 128 either.
    let long = moby_dick(20);
    let n = counter.count(&long);
    assert!(n > 500, "{n}");
    assert_eq!(counter.offsets(&long).unwrap().len(), n);
}

#[test]
fn long_english_text_within_budget_at_line_ends() {
    let counter = minilm();
    let text = moby_dick(400);
    let total = counter.count(&text);
    for (max_tokens, overlap_tokens) in [(126, 0), (126, 32), (30, 0), (30, 8)] {
        let config = ChunkConfig::new(max_tokens).with_overlap(overlap_tokens);
        let chunks = Chunker::new(&counter, config).unwrap().chunk(&text);
        check_invariants(&text, &chunks, &counter, &config);
        let mean = chunks.iter().map(|c| c.token_count).sum::<usize>() as f64 / chunks.len() as f64;
        if overlap_tokens == 0 {
            // Chunks are well filled: never fewer than the budget allows, and on average more
            // than half full even though they end at sentence ends.
            assert!(chunks.len() >= total.div_ceil(max_tokens), "{} chunks for {total} tokens", chunks.len());
            assert!(mean > 0.6 * max_tokens as f64, "mean {mean} for budget {max_tokens}");
        } else {
            assert_overlapping(&chunks);
        }
        if max_tokens == 126 {
            // Every line (one sentence of the corpus) fits, so chunks end at line ends.
            for c in &chunks {
                let after = &text[c.byte_range.end..];
                assert!(after.is_empty() || after.starts_with('\n'), "chunk ends mid-line: {:?}", c.text);
            }
        }
    }
}

#[test]
fn long_english_text_is_tokenized_about_twice() {
    // One pass per section for the estimates, one to check each chunk: not quadratic.
    let counter = Tally::new(minilm());
    let text = moby_dick(2000);
    let chunks = Chunker::new(&counter, ChunkConfig::new(126)).unwrap().chunk(&text);
    assert!(chunks.len() > 500);
    let ratio = counter.bytes.get() as f64 / text.len() as f64;
    assert!(ratio < 2.5, "tokenized {ratio:.2}x the text");

    let counter = Tally::new(minilm());
    let chunks = Chunker::new(&counter, ChunkConfig::new(126).with_overlap(32)).unwrap().chunk(&text);
    assert!(chunks.len() > 600);
    let ratio = counter.bytes.get() as f64 / text.len() as f64;
    assert!(ratio < 3.5, "tokenized {ratio:.2}x the text with overlap");
}

#[test]
fn chinese_text_within_budget_at_sentence_ends() {
    let counter = minilm();
    let text = [CHINESE; 4].join("\n\n");
    for (max_tokens, overlap_tokens) in [(30, 0), (30, 10), (62, 0)] {
        let config = ChunkConfig::new(max_tokens).with_overlap(overlap_tokens);
        let chunks = Chunker::new(&counter, config).unwrap().chunk(&text);
        check_invariants(&text, &chunks, &counter, &config);
        assert!(chunks.len() >= counter.count(&text).div_ceil(max_tokens));
        if overlap_tokens == 0 {
            // Every sentence fits: chunks end at sentence ends.
            for c in &chunks {
                assert!(c.text.ends_with(['。', '！', '？', '；']), "{:?}", c.text);
            }
        } else {
            assert_overlapping(&chunks);
        }
    }
}

/// A word over budget is cut at the tokenizer's token boundaries: back to back, nothing lost,
/// and the pieces' tokens add up to about the word's.
fn check_cut_word(counter: &TokenizerCounter, word: &str, max_tokens: usize, overlap_tokens: usize) -> Vec<Chunk> {
    let config = ChunkConfig::new(max_tokens).with_overlap(overlap_tokens);
    let chunks = Chunker::new(counter, config).unwrap().chunk(word);
    check_invariants(word, &chunks, counter, &config);
    let tokens = counter.count(word);
    assert!(chunks.len() >= tokens.div_ceil(max_tokens));
    if overlap_tokens == 0 {
        assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<String>(), word);
        let sum: usize = chunks.iter().map(|c| c.token_count).sum();
        assert!(sum <= tokens + chunks.len(), "{sum} tokens in pieces, {tokens} in the word");
    } else {
        assert_overlapping(&chunks);
    }
    chunks
}

#[test]
fn giant_words_with_wordpiece() {
    let counter = minilm();
    // WordPiece gives up on words over 100 characters: one [UNK], one chunk.
    let word = common::giant_word();
    let chunks = check_cut_word(&counter, &word, 16, 0);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].token_count, 1);
    // A rule of 800 punctuation tokens: exactly 50 chunks of 16.
    let rule = common::giant_rule();
    let chunks = check_cut_word(&counter, &rule, 16, 0);
    assert_eq!(chunks.len(), 50);
    assert!(chunks.iter().all(|c| c.token_count == 16 && c.text.len() == 16));
    let chunks = check_cut_word(&counter, &rule, 16, 4);
    assert!(chunks.iter().all(|c| c.token_count == 16 || c.byte_range.end == rule.len()));
}

#[test]
fn giant_word_with_sentencepiece() {
    let counter = xlmr();
    let word = common::giant_word();
    assert!(counter.count(&word) > 500);
    let chunks = check_cut_word(&counter, &word, 16, 0);
    // Cut where the whole word's tokens start; a piece re-tokenized alone may need one more.
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.token_count >= 14), "{chunks:?}");
    check_cut_word(&counter, &word, 16, 4);
    check_cut_word(&counter, &word, 1, 0);
}

#[test]
fn invariants_with_sentencepiece() {
    // SentencePiece counts depend on context (a leading space is part of a token), so sums of
    // pieces differ from real counts: every chunk is still within budget.
    let counter = xlmr();
    for (name, doc) in documents() {
        for max_tokens in [1, 5, 32] {
            for overlap_tokens in [0, max_tokens / 4] {
                let config = ChunkConfig { max_tokens, overlap_tokens, format: TextFormat::Markdown };
                let chunks = Chunker::new(&counter, config).unwrap().chunk(&doc);
                check_invariants(&doc, &chunks, &counter, &config);
                assert_eq!(chunks.is_empty(), doc.trim().is_empty(), "{name}");
            }
        }
    }
}

#[test]
fn markdown_with_overlap() {
    let counter = minilm();
    let config = ChunkConfig { max_tokens: 24, overlap_tokens: 6, format: TextFormat::Markdown };
    let chunks = Chunker::new(&counter, config).unwrap().chunk(ENGLISH_MARKDOWN);
    check_invariants(ENGLISH_MARKDOWN, &chunks, &counter, &config);
    assert_overlapping(&chunks);
    let paths: Vec<Vec<&str>> = chunks.iter().map(|c| c.headings.iter().map(String::as_str).collect()).collect();
    assert!(paths.contains(&vec!["Getting started", "Install"]));
    assert!(paths.contains(&vec!["Setext heading"]));
    // The shell comment inside the code fence is not a heading.
    assert!(chunks.iter().all(|c| !c.headings.iter().any(|h| h.contains("not a heading"))));
    // Each section's first chunk starts with its heading.
    assert!(chunks.iter().any(|c| c.text.starts_with("## Install\n\nRun the following:")));
}

#[test]
fn invariants_with_real_tokenizer() {
    let counter = minilm();
    for (name, doc) in documents() {
        for format in [TextFormat::Plain, TextFormat::Markdown] {
            for max_tokens in [1, 4, 16, 126] {
                for overlap_tokens in [0, max_tokens / 4] {
                    let config = ChunkConfig { max_tokens, overlap_tokens, format };
                    let chunks = Chunker::new(&counter, config).unwrap().chunk(&doc);
                    check_invariants(&doc, &chunks, &counter, &config);
                    assert_eq!(chunks.is_empty(), doc.trim().is_empty(), "{name}");
                }
            }
        }
    }
}
