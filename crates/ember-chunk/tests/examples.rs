//! Hand-worked chunkings with the whitespace and char counters, and configuration errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::ops::Range;

use common::check_invariants;
use ember_chunk::{
    CharCounter, Chunk, ChunkConfig, ChunkError, Chunker, TextFormat, TokenCounter, TokenizerCounter, WhitespaceCounter,
};

/// (text, byte range, char range, tokens, headings) of a chunk.
type Summary = (String, Range<usize>, Range<usize>, usize, Vec<String>);

/// The chunks' summaries, after checking the invariants.
fn run(counter: impl TokenCounter, config: ChunkConfig, source: &str) -> Vec<Summary> {
    let chunks = Chunker::new(&counter, config).unwrap().chunk(source);
    check_invariants(source, &chunks, &counter, &config);
    chunks.into_iter().map(|c: Chunk| (c.text, c.byte_range, c.char_range, c.token_count, c.headings)).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn markdown_two_headings() {
    let source =
        "# Intro\n\nAlpha beta gamma. Delta epsilon.\n\n## Setup\n\nOne two three four five six.\nSeven eight.\n";
    let got = run(WhitespaceCounter, ChunkConfig::new(6).with_format(TextFormat::Markdown), source);
    let intro = strings(&["Intro"]);
    let setup = strings(&["Intro", "Setup"]);
    assert_eq!(
        got,
        vec![
            // 7 words do not fit: the heading stays with the first sentence.
            ("# Intro\n\nAlpha beta gamma.".to_string(), 0..26, 0..26, 5, intro.clone()),
            ("Delta epsilon.".to_string(), 27..41, 27..41, 2, intro),
            // No sentence of the paragraph fits beside the heading: cut between words.
            ("## Setup\n\nOne two three four".to_string(), 43..71, 43..71, 6, setup.clone()),
            ("five six.\nSeven eight.".to_string(), 72..94, 72..94, 4, setup),
        ]
    );
}

#[test]
fn markdown_sections_are_never_merged() {
    let source = "Preface.\n\n# A\n## B\nx y z\n\n# C\n";
    let got = run(WhitespaceCounter, ChunkConfig::new(100).with_format(TextFormat::Markdown), source);
    assert_eq!(
        got,
        vec![
            ("Preface.".to_string(), 0..8, 0..8, 1, vec![]),
            // `# A` has no content of its own: it stays with its subsection.
            ("# A\n## B\nx y z".to_string(), 10..24, 10..24, 7, strings(&["A", "B"])),
            ("# C".to_string(), 26..29, 26..29, 2, strings(&["C"])),
        ]
    );
    // As plain text the same source is one chunk.
    let plain = run(WhitespaceCounter, ChunkConfig::new(100), source);
    assert_eq!(plain, vec![(source.trim().to_string(), 0..29, 0..29, 10, vec![])]);
}

#[test]
fn cjk_paragraph_split_at_full_stops() {
    let source = "今天天气很好。我们去公园散步吧！你觉得怎么样？";
    let got = run(CharCounter, ChunkConfig::new(10), source);
    assert_eq!(
        got,
        vec![
            ("今天天气很好。".to_string(), 0..21, 0..7, 7, vec![]),
            ("我们去公园散步吧！".to_string(), 21..48, 7..16, 9, vec![]),
            ("你觉得怎么样？".to_string(), 48..69, 16..23, 7, vec![]),
        ]
    );
    // With room for two sentences, two are taken.
    let got = run(CharCounter, ChunkConfig::new(16), source);
    assert_eq!(
        got.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["今天天气很好。我们去公园散步吧！", "你觉得怎么样？"]
    );
}

#[test]
fn word_overlap() {
    let source = "a b c d e f g h i j";
    let got = run(WhitespaceCounter, ChunkConfig::new(4).with_overlap(2), source);
    let summary: Vec<_> = got.iter().map(|c| (c.0.as_str(), c.1.clone())).collect();
    assert_eq!(summary, [("a b c d", 0..7), ("c d e f", 4..11), ("e f g h", 8..15), ("g h i j", 12..19)]);
}

#[test]
fn sentence_overlap_prefers_whole_sentences() {
    // Overlap 3: the last sentence (2 words) holds at least half of it, so the overlap is that
    // sentence rather than the last 3 words.
    let source = "One two three. Four five six. Seven eight. Nine ten eleven.";
    let got = run(WhitespaceCounter, ChunkConfig::new(8).with_overlap(3), source);
    let texts: Vec<_> = got.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(texts, ["One two three. Four five six. Seven eight.", "Seven eight. Nine ten eleven."]);
}

#[test]
fn giant_word_is_cut_at_token_boundaries() {
    let got = run(CharCounter, ChunkConfig::new(4), "abcdefghij");
    let summary: Vec<_> = got.iter().map(|c| (c.0.as_str(), c.1.clone(), c.3)).collect();
    assert_eq!(summary, [("abcd", 0..4, 4), ("efgh", 4..8, 4), ("ij", 8..10, 2)]);

    let got = run(CharCounter, ChunkConfig::new(4).with_overlap(1), "abcdefghij");
    let summary: Vec<_> = got.iter().map(|c| (c.0.as_str(), c.1.clone())).collect();
    assert_eq!(summary, [("abcd", 0..4), ("defg", 3..7), ("ghij", 6..10)]);
}

#[test]
fn crlf_and_trimming() {
    let source = "\r\n  one two\r\n\r\nthree four\r\n  ";
    let got = run(WhitespaceCounter, ChunkConfig::new(2), source);
    assert_eq!(
        got,
        vec![("one two".to_string(), 4..11, 4..11, 2, vec![]), ("three four".to_string(), 15..25, 15..25, 2, vec![])]
    );
}

#[test]
fn char_offsets_differ_from_byte_offsets() {
    let source = "Ünïcödé façade. 👍🏽 ok.";
    let got = run(WhitespaceCounter, ChunkConfig::new(2), source);
    let summary: Vec<_> = got.iter().map(|c| (c.0.as_str(), c.1.clone(), c.2.clone())).collect();
    assert_eq!(summary, [("Ünïcödé façade.", 0..20, 0..15), ("👍🏽 ok.", 21..33, 16..22)]);
}

#[test]
fn empty_and_whitespace_give_nothing() {
    let chunker = Chunker::new(WhitespaceCounter, ChunkConfig::new(3).with_format(TextFormat::Markdown)).unwrap();
    assert!(chunker.chunk("").is_empty());
    assert!(chunker.chunk(" \r\n\t\u{3000}\n").is_empty());
}

#[test]
fn config_validation() {
    assert_eq!(Chunker::new(WhitespaceCounter, ChunkConfig::new(0)).unwrap_err(), ChunkError::ZeroMaxTokens);
    let err = Chunker::new(WhitespaceCounter, ChunkConfig::new(5).with_overlap(5)).unwrap_err();
    assert_eq!(err, ChunkError::OverlapNotBelowMax { overlap_tokens: 5, max_tokens: 5 });
    assert_eq!(err.to_string(), "overlap_tokens (5) must be smaller than max_tokens (5)");
    assert!(matches!(
        ChunkConfig::new(5).with_overlap(9).validate(),
        Err(ChunkError::OverlapNotBelowMax { overlap_tokens: 9, max_tokens: 5 })
    ));
    let ok = Chunker::new(WhitespaceCounter, ChunkConfig::new(5).with_overlap(4)).unwrap();
    assert_eq!(ok.config().overlap_tokens, 4);

    let missing = std::path::Path::new("/nonexistent/tokenizer.json");
    match TokenizerCounter::from_file(missing).unwrap_err() {
        ChunkError::LoadTokenizer { path, message } => {
            assert_eq!(path, missing);
            assert!(!message.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn format_from_extension() {
    assert_eq!(TextFormat::from_extension("md"), TextFormat::Markdown);
    assert_eq!(TextFormat::from_extension("MARKDOWN"), TextFormat::Markdown);
    assert_eq!(TextFormat::from_extension("txt"), TextFormat::Plain);
    assert_eq!(TextFormat::from_extension(""), TextFormat::Plain);
}

#[test]
fn builtin_counters() {
    assert_eq!(WhitespaceCounter.count("  a bb\tccc\n"), 3);
    assert_eq!(WhitespaceCounter.offsets("  a bb\tccc\n").unwrap(), [2..3, 4..6, 7..10]);
    assert_eq!(CharCounter.count("a b你"), 3);
    assert_eq!(CharCounter.offsets("a b你").unwrap(), [0..1, 2..3, 3..6]);
}
