//! How a document is cut into chunks with exact offsets.
//!
//! A [`Chunker`] splits a text into [`Chunk`]s whose size is measured by the model's own tokenizer
//! (a [`TokenCounter`]: tokens without special tokens; the caller passes the budget, typically the
//! model's `max_seq_length` minus its special tokens). It prefers structure: Markdown headings start
//! sections, then it cuts at paragraphs (blank lines), lines, sentences (`.!?` followed by
//! whitespace; `。！？；` and full-width stops without), words (Unicode word boundaries), and only a
//! single word still over budget is cut at token boundaries.
//!
//! Invariants, for every chunk of `chunker.chunk(source)`:
//! - `&source[chunk.byte_range.clone()] == chunk.text`, and `char_range` counts the same span in
//!   `char`s (what JSON APIs expect);
//! - the text is non-empty and has no leading or trailing whitespace;
//! - `chunk.token_count == counter.count(&chunk.text) <= max_tokens` (the one exception: a single
//!   character that alone tokenizes to more than `max_tokens` tokens is emitted on its own);
//! - chunks come in source order with strictly increasing starts; without overlap, what lies between
//!   consecutive chunks is whitespace only, so the chunks cover every non-whitespace character.
//!
//! ```
//! use ember_chunk::{ChunkConfig, Chunker, TextFormat, WhitespaceCounter};
//!
//! let config = ChunkConfig::new(6).with_format(TextFormat::Markdown);
//! let chunker = Chunker::new(WhitespaceCounter, config)?;
//! let source = "# Intro\n\nAlpha beta gamma. Delta epsilon.\n";
//! let chunks = chunker.chunk(source);
//! assert_eq!(chunks[0].text, "# Intro\n\nAlpha beta gamma.");
//! assert_eq!(chunks[1].text, "Delta epsilon.");
//! assert_eq!(&source[chunks[1].byte_range.clone()], "Delta epsilon.");
//! assert_eq!(chunks[1].headings, ["Intro"]);
//! # Ok::<(), ember_chunk::ChunkError>(())
//! ```

mod boundaries;
mod chunker;
mod config;
mod counter;
mod error;
mod estimate;
mod markdown;
mod span;

pub use chunker::{Chunk, Chunker};
pub use config::{ChunkConfig, TextFormat};
pub use counter::{CharCounter, TokenCounter, TokenizerCounter, WhitespaceCounter};
pub use error::ChunkError;
