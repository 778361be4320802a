//! Tokenization exactly as sentence-transformers feeds the model: no padding (batches are padded
//! by ember), truncation at the model's `max_seq_length` counting special tokens.

use std::path::{Path, PathBuf};

use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{
    ModelWrapper, PreTokenizerWrapper, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{ModelError, Result};

/// One tokenized input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// The input was longer than the limit and was cut.
    pub truncated: bool,
}

/// One tokenized (first, second) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairTokens {
    pub ids: Vec<u32>,
    /// 0 for the first text and its special tokens, 1 for the second (BERT's segments).
    pub type_ids: Vec<u32>,
    /// The pair was longer than the limit and was cut.
    pub truncated: bool,
}

/// One token as a tokenize endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDetail {
    pub id: u32,
    /// The piece of the input it covers, or the token's string for special tokens.
    pub text: String,
    pub special: bool,
    /// Byte offsets into the input.
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// A model's tokenizer with ember's settings applied.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    lowercase: bool,
    path: PathBuf,
    max_length: usize,
}

impl TextTokenizer {
    /// Load `tokenizer.json`, truncating at `max_length` tokens including special tokens.
    /// `lowercase` applies sentence-transformers' `do_lower_case`.
    pub fn load(path: &Path, lowercase: bool, max_length: usize) -> Result<Self> {
        if !path.exists() {
            return Err(ModelError::Tokenizer { path: path.to_path_buf(), message: "file is missing".to_string() });
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer { path: path.to_path_buf(), message: e.to_string() })?;
        // Packaged tokenizer.json files often enable padding and truncation (all-MiniLM-L6-v2's
        // truncates at 128); sentence-transformers overrides both.
        inner.with_padding(None);
        // SentencePiece (Unigram + Metaspace) tokenizers: transformers splits on whitespace
        // before Metaspace, so trailing or repeated spaces yield no stray "▁" tokens.
        let metaspace = match (inner.get_model(), inner.get_pre_tokenizer()) {
            (ModelWrapper::Unigram(_), Some(PreTokenizerWrapper::Metaspace(m))) => Some(m.clone()),
            _ => None,
        };
        if let Some(m) = metaspace {
            let seq = Sequence::new(vec![WhitespaceSplit.into(), PreTokenizerWrapper::Metaspace(m)]);
            inner.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(seq)));
        }
        let mut tokenizer = TextTokenizer { inner, lowercase, path: path.to_path_buf(), max_length };
        tokenizer.set_truncation(max_length)?;
        Ok(tokenizer)
    }

    fn set_truncation(&mut self, max_length: usize) -> Result<()> {
        self.max_length = max_length;
        self.inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() })?;
        Ok(())
    }

    /// A copy truncating at another length (the configured one is shared, this is the rare path).
    pub fn with_max_length(&self, max_length: usize) -> Result<Self> {
        let mut copy = self.clone();
        copy.set_truncation(max_length)?;
        Ok(copy)
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenize `texts`, each truncated to the configured length, on rayon's threads (in input
    /// order).
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Tokens>> {
        use rayon::prelude::*;
        let tok = &self.inner;
        texts
            .par_iter()
            .enumerate()
            .map(|(index, text)| {
                let text = if self.lowercase { text.to_lowercase() } else { text.clone() };
                let enc = tok.encode(text, true).map_err(|e| ModelError::Tokenize { index, message: e.to_string() })?;
                Ok(Tokens { ids: enc.get_ids().to_vec(), truncated: !enc.get_overflowing().is_empty() })
            })
            .collect()
    }

    /// Tokenize (first, second) text pairs as a cross-encoder sees them (`[CLS] a [SEP] b [SEP]`,
    /// `<s> a </s></s> b </s>`), cut to the configured length longest-first (transformers'
    /// `truncation="longest_first"`), on rayon's threads (in input order).
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<PairTokens>> {
        use rayon::prelude::*;
        let tok = &self.inner;
        pairs
            .par_iter()
            .enumerate()
            .map(|(index, &(a, b))| {
                let (a, b) = if self.lowercase { (a.to_lowercase(), b.to_lowercase()) } else { (a.into(), b.into()) };
                let enc =
                    tok.encode((a, b), true).map_err(|e| ModelError::Tokenize { index, message: e.to_string() })?;
                Ok(PairTokens {
                    ids: enc.get_ids().to_vec(),
                    type_ids: enc.get_type_ids().to_vec(),
                    truncated: !enc.get_overflowing().is_empty(),
                })
            })
            .collect()
    }

    /// Tokens of `prompt` alone, without the closing special token: sentence-transformers'
    /// `prompt_length`, used to exclude a prompt from pooling.
    pub fn prompt_length(&self, prompt: &str) -> Result<usize> {
        let enc =
            self.inner.encode(prompt, true).map_err(|e| ModelError::Tokenize { index: 0, message: e.to_string() })?;
        Ok(enc.get_ids().len().saturating_sub(1))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The vocabulary entry of `id` as the tokenizer stores it (`##ing`, `▁the`, `[CLS]`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a vocabulary entry or added token.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The tokens of one text with their strings and byte offsets into `text` (what a tokenize
    /// endpoint shows), truncated like every input. Offsets are `None` for special tokens, and
    /// for every token when the model lowercases and that changed the text's byte length.
    pub fn encode_detailed(&self, text: &str, add_special_tokens: bool) -> Result<Vec<TokenDetail>> {
        let lowered;
        let input = if self.lowercase {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let offsets_valid = input.len() == text.len();
        let enc = self
            .inner
            .encode(input, add_special_tokens)
            .map_err(|e| ModelError::Tokenize { index: 0, message: e.to_string() })?;
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_tokens())
            .zip(enc.get_offsets())
            .zip(enc.get_special_tokens_mask())
            .map(|(((&id, token), &(start, stop)), &special)| {
                let special = special == 1;
                let span = (!special && offsets_valid && text.get(start..stop).is_some()).then_some((start, stop));
                TokenDetail {
                    id,
                    text: span.and_then(|(s, e)| text.get(s..e)).unwrap_or(token).to_string(),
                    special,
                    start: span.map(|s| s.0),
                    stop: span.map(|s| s.1),
                }
            })
            .collect())
    }

    /// Token ids back to text.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() })
    }

    /// A counter of this tokenizer's tokens without special tokens or truncation.
    pub fn token_count(&self) -> Result<TokenCount> {
        let mut inner = self.inner.clone();
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() })?;
        Ok(TokenCount { inner, lowercase: self.lowercase })
    }
}

/// Counts the tokens a text costs the model, without special tokens and never truncated: the unit
/// of a chunker's budget.
#[derive(Debug, Clone)]
pub struct TokenCount {
    inner: Tokenizer,
    lowercase: bool,
}

impl TokenCount {
    /// How many tokens `text` becomes (0 if the tokenizer rejects it, which its models do not do
    /// for valid UTF-8).
    pub fn count(&self, text: &str) -> usize {
        let enc = if self.lowercase {
            self.inner.encode_fast(text.to_lowercase(), false)
        } else {
            self.inner.encode_fast(text, false)
        };
        // A text the tokenizer cannot encode counts as its length in bytes (more than any
        // tokenizer makes of it), so a chunker keeps cutting it rather than overflowing the model.
        enc.map_or(text.len(), |e| e.len())
    }

    /// The byte range in `text` of each counted token, when they map back onto `text` (not when
    /// the model lowercases first, which can change byte lengths).
    pub fn offsets(&self, text: &str) -> Option<Vec<std::ops::Range<usize>>> {
        if self.lowercase {
            return None;
        }
        let enc = self.inner.encode(text, false).ok()?;
        Some(enc.get_offsets().iter().map(|&(s, e)| s..e).collect())
    }
}
