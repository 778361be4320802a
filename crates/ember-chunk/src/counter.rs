//! Token counting: the budget is measured by the model's own tokenizer.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::ChunkError;

/// Counts the tokens a model sees for a piece of text, special tokens excluded.
pub trait TokenCounter {
    /// The number of tokens of `text`, without special tokens (`[CLS]`, `<s>`, …).
    fn count(&self, text: &str) -> usize;

    /// The byte range in `text` of each token that [`count`](Self::count) counts, in order, or
    /// `None` when the counter cannot tell. When `Some`, its length must equal `count(text)`.
    ///
    /// With offsets the chunker tokenizes each section once, estimates the count of any span from
    /// them, and cuts an over-long word at token boundaries; without, it counts word by word and
    /// cuts words at grapheme boundaries. Either way every chunk is checked with `count`.
    fn offsets(&self, _text: &str) -> Option<Vec<Range<usize>>> {
        None
    }
}

impl<T: TokenCounter + ?Sized> TokenCounter for &T {
    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        (**self).offsets(text)
    }
}

impl<T: TokenCounter + ?Sized> TokenCounter for Box<T> {
    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        (**self).offsets(text)
    }
}

impl<T: TokenCounter + ?Sized> TokenCounter for Arc<T> {
    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        (**self).offsets(text)
    }
}

/// One token per whitespace-separated word: budgets in words, and hand-checkable tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct WhitespaceCounter;

impl TokenCounter for WhitespaceCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    out.push(s..i);
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(s..text.len());
        }
        Some(out)
    }
}

/// One token per non-whitespace `char`: budgets in characters (text without spaces, such as
/// Chinese or Japanese, stays countable).
#[derive(Clone, Copy, Debug, Default)]
pub struct CharCounter;

impl TokenCounter for CharCounter {
    fn count(&self, text: &str) -> usize {
        text.chars().filter(|c| !c.is_whitespace()).count()
    }

    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        Some(text.char_indices().filter(|(_, c)| !c.is_whitespace()).map(|(i, c)| i..i + c.len_utf8()).collect())
    }
}

/// A Hugging Face tokenizer as a [`TokenCounter`]: `encode(text, false)` with truncation and
/// padding switched off.
///
/// `tokenizers::Tokenizer` itself is not a counter because `tokenizer.json` files usually carry
/// the model's truncation and padding (all-MiniLM-L6-v2 pads and truncates to 128), which would
/// make every count 128.
#[derive(Clone, Debug)]
pub struct TokenizerCounter {
    tokenizer: Tokenizer,
}

impl TokenizerCounter {
    /// Takes the tokenizer and switches off its truncation and padding.
    pub fn new(mut tokenizer: Tokenizer) -> Result<Self, ChunkError> {
        tokenizer.with_truncation(None).map_err(|e| ChunkError::ConfigureTokenizer { message: e.to_string() })?;
        tokenizer.with_padding(None);
        Ok(TokenizerCounter { tokenizer })
    }

    /// Loads a `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ChunkError> {
        let path = path.as_ref();
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| ChunkError::LoadTokenizer { path: path.to_path_buf(), message: e.to_string() })?;
        Self::new(tokenizer)
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

impl TokenCounter for TokenizerCounter {
    /// A text the tokenizer fails to encode (a WordPiece vocabulary without its unknown token, …)
    /// counts as its length in bytes, more than any tokenizer produces, so the chunker keeps
    /// cutting it smaller rather than overflowing the model.
    fn count(&self, text: &str) -> usize {
        self.tokenizer.encode_fast(text, false).map_or(text.len(), |e| e.len())
    }

    fn offsets(&self, text: &str) -> Option<Vec<Range<usize>>> {
        let encoding = self.tokenizer.encode(text, false).ok()?;
        Some(encoding.get_offsets().iter().map(|&(s, e)| s..e).collect())
    }
}
