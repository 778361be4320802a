use crate::ChunkError;

/// How the source text is structured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TextFormat {
    /// Paragraphs (blank lines), lines, sentences and words.
    #[default]
    Plain,
    /// As `Plain`, and ATX (`# Title`) and setext (`Title` over `===` / `---`) headings start
    /// sections, each chunk records its heading path. Headings inside fenced code blocks are code.
    Markdown,
}

impl TextFormat {
    /// The format of a file with this extension (no dot, any case): `md`, `markdown`, `mdx` are
    /// Markdown, anything else is plain text.
    pub fn from_extension(extension: &str) -> Self {
        match extension.to_ascii_lowercase().as_str() {
            "md" | "markdown" | "mdx" => TextFormat::Markdown,
            _ => TextFormat::Plain,
        }
    }
}

/// What a [`Chunker`](crate::Chunker) produces: chunks of at most `max_tokens` tokens, repeating
/// about `overlap_tokens` tokens of the previous chunk's tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkConfig {
    /// The budget of every chunk, in tokens counted without special tokens (for a BERT-style model:
    /// `max_seq_length - 2`).
    pub max_tokens: usize,
    /// How many tokens of a chunk's tail the next chunk of the same section repeats, roughly: the
    /// next chunk starts at a structural boundary (sentence, word, …) whose tail holds at most this
    /// many tokens. Must be smaller than `max_tokens`; 0 means no overlap.
    pub overlap_tokens: usize,
    /// How the text is structured.
    pub format: TextFormat,
}

impl ChunkConfig {
    /// Plain text, no overlap.
    pub fn new(max_tokens: usize) -> Self {
        ChunkConfig { max_tokens, overlap_tokens: 0, format: TextFormat::Plain }
    }

    pub fn with_overlap(mut self, overlap_tokens: usize) -> Self {
        self.overlap_tokens = overlap_tokens;
        self
    }

    pub fn with_format(mut self, format: TextFormat) -> Self {
        self.format = format;
        self
    }

    /// Checks `max_tokens > 0` and `overlap_tokens < max_tokens`.
    pub fn validate(&self) -> Result<(), ChunkError> {
        if self.max_tokens == 0 {
            return Err(ChunkError::ZeroMaxTokens);
        }
        if self.overlap_tokens >= self.max_tokens {
            return Err(ChunkError::OverlapNotBelowMax {
                overlap_tokens: self.overlap_tokens,
                max_tokens: self.max_tokens,
            });
        }
        Ok(())
    }
}
