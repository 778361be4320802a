//! Test support: the invariants every chunking must satisfy, sample documents, counters.
#![allow(dead_code, clippy::unwrap_used)]

use std::cell::Cell;
use std::ops::Range;
use std::path::PathBuf;

use ember_chunk::{Chunk, ChunkConfig, TokenCounter, TokenizerCounter};

/// Checks what `ember_chunk` promises for every chunking of `source`.
pub fn check_invariants(source: &str, chunks: &[Chunk], counter: &impl TokenCounter, config: &ChunkConfig) {
    let ctx = |c: &Chunk| format!("chunk {:?} of {:?} with {config:?}", c.text, shorten(source));
    for c in chunks {
        let r = c.byte_range.clone();
        assert_eq!(&source[r.clone()], c.text, "{}", ctx(c));
        assert_eq!(source[..r.start].chars().count(), c.char_range.start, "{}", ctx(c));
        assert_eq!(source[..r.end].chars().count(), c.char_range.end, "{}", ctx(c));
        assert!(!c.text.is_empty() && c.text.trim() == c.text, "untrimmed or empty: {}", ctx(c));
        let real = counter.count(&c.text);
        assert_eq!(real, c.token_count, "{}", ctx(c));
        assert!(
            real <= config.max_tokens || c.text.chars().count() == 1,
            "{real} tokens > {}: {}",
            config.max_tokens,
            ctx(c)
        );
    }
    for w in chunks.windows(2) {
        assert!(w[0].byte_range.start < w[1].byte_range.start, "starts do not increase: {:?}", (&w[0], &w[1]));
        assert!(w[0].byte_range.end < w[1].byte_range.end, "ends do not increase: {:?}", (&w[0], &w[1]));
        if config.overlap_tokens == 0 {
            assert!(w[0].byte_range.end <= w[1].byte_range.start, "overlap without overlap_tokens: {w:?}");
        }
    }
    // Every non-whitespace character is in some chunk.
    let mut covered = 0;
    for c in chunks {
        if c.byte_range.start > covered {
            let gap = &source[covered..c.byte_range.start];
            assert!(gap.trim().is_empty(), "uncovered text {gap:?} before {}", ctx(c));
        }
        covered = covered.max(c.byte_range.end);
    }
    assert!(source[covered..].trim().is_empty(), "uncovered tail {:?}", &source[covered..]);
}

/// Consecutive chunks of one section (same heading path) overlap.
pub fn assert_overlapping(chunks: &[Chunk]) {
    for w in chunks.windows(2) {
        if w[0].headings == w[1].headings {
            assert!(
                w[1].byte_range.start < w[0].byte_range.end,
                "no overlap between {:?} and {:?}",
                w[0].text,
                w[1].text
            );
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A counter that hides its offsets, to exercise the per-word estimate.
#[derive(Debug)]
pub struct NoOffsets<C>(pub C);

impl<C: TokenCounter> TokenCounter for NoOffsets<C> {
    fn count(&self, text: &str) -> usize {
        self.0.count(text)
    }
}

/// A counter that tallies how many bytes it was asked to tokenize.
#[derive(Debug)]
pub struct Tally<C> {
    pub inner: C,
    pub bytes: Cell<usize>,
}

impl<C> Tally<C> {
    pub fn new(inner: C) -> Self {
        Tally { inner, bytes: Cell::new(0) }
    }
}

impl<C: TokenCounter> TokenCounter for Tally<C> {
    fn count(&self, text: &str) -> usize {
        self.bytes.set(self.bytes.get() + text.len());
        self.inner.count(text)
    }
    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        self.bytes.set(self.bytes.get() + text.len());
        self.inner.offsets(text)
    }
}

pub const ENGLISH_MARKDOWN: &str = "\
Preamble before any heading. It has two sentences.

# Getting started

ember is an embedding engine. It cuts documents into chunks, embeds them, and searches them.
Chunks never exceed the model's budget!

## Install

Run the following:

```sh
# not a heading: a shell comment
cargo install ember-cli
```

- first item of a list
- second item, a little longer than the first one

## Usage

Use `ember embed` to embed lines. Does it work? Yes. The output is JSON lines, one per input.

Setext heading
==============

Text under a setext heading, e.g. this one, with an abbreviation and the number 3.14 in it.
";

pub const CHINESE: &str = "\
自然语言处理是人工智能的一个重要分支。它研究如何让计算机理解和生成人类语言！这项技术的应用非常广泛，包括机器翻译、\
信息检索和问答系统。你知道向量检索是如何工作的吗？文档首先被切分成较小的片段；然后每个片段被编码成一个向量。

查询也被编码成向量，系统返回与查询最相似的片段。这种方法对长文档尤其有用。";

pub const MIXED: &str = "\
English first. Then 中文句子没有空格。Русский текст тоже здесь! العربية من اليمين إلى اليسار. \
日本語の文も入っています。한국어 문장도 있습니다. Ünïcödé façade naïve café — «quotes» and „more“.";

pub const EMOJI: &str = "\
Family 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵 and skin tones 👍🏽👍🏿. 🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉 party!
Combining: e\u{301}e\u{301}e\u{301} and 🏳️‍🌈🏳️‍🌈 done.";

pub const CRLF: &str = "First line.\r\nSecond line, same paragraph.\r\n\r\nNew paragraph here.\r\n\
# Heading\r\n\r\nBody under the heading. Two sentences.\r\n";

/// One word of 1,800 letters (WordPiece makes it a single `[UNK]`, SentencePiece ~600 tokens).
pub fn giant_word() -> String {
    "pneumonoultramicroscopicsilicovolcanoconiosis".repeat(40)
}

/// 800 punctuation characters without a word boundary: 800 WordPiece tokens.
pub fn giant_rule() -> String {
    "-=".repeat(400)
}

/// The sample documents of the invariant tests, with a name.
pub fn documents() -> Vec<(&'static str, String)> {
    vec![
        ("english markdown", ENGLISH_MARKDOWN.to_string()),
        ("chinese", CHINESE.to_string()),
        ("mixed scripts", MIXED.to_string()),
        ("emoji", EMOJI.to_string()),
        ("crlf", CRLF.to_string()),
        ("giant word", giant_word()),
        ("giant word in text", format!("Before it. {} After it.\n\nNext paragraph.", giant_word())),
        ("giant rule", format!("Above.\n{}\nBelow.", giant_rule())),
        ("empty", String::new()),
        ("whitespace only", " \n\t\r\n  \u{3000}\n".to_string()),
        ("single char", "x".to_string()),
        ("padded", "\n\n   padded text   \n\n".to_string()),
    ]
}

/// The all-MiniLM-L6-v2 tokenizer (WordPiece) fetched by `scripts/fetch-models.sh`.
pub fn minilm() -> TokenizerCounter {
    test_tokenizer("all-MiniLM-L6-v2", "minilm")
}

/// The XLM-R tokenizer (SentencePiece Unigram, counts depend on context) fetched by
/// `scripts/fetch-models.sh`.
pub fn xlmr() -> TokenizerCounter {
    test_tokenizer("xlmr-tokenizer", "xlmr-tokenizer")
}

/// `tokenizer.json` of a test model under `$EMBER_MODELS_DIR` (default
/// `$HOME/.cache/ember-test-models`). Missing, it fails the test: never a silent skip.
fn test_tokenizer(dir: &str, fetch_key: &str) -> TokenizerCounter {
    let base = std::env::var_os("EMBER_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").expect("HOME is not set")).join(".cache/ember-test-models")
    });
    let path = base.join(dir).join("tokenizer.json");
    if !path.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI: the test tokenizer {} is missing; CI must run `bash scripts/fetch-models.sh`", path.display());
        }
        panic!("the test tokenizer {} is missing: run `bash scripts/fetch-models.sh {fetch_key}`", path.display());
    }
    TokenizerCounter::from_file(&path).unwrap()
}

/// The first `lines` sentences of the benchmark corpus, five to a paragraph.
pub fn moby_dick(lines: usize) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/corpus/sentences.txt");
    let corpus = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = corpus.lines().take(lines).collect();
    lines.chunks(5).map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n")
}
