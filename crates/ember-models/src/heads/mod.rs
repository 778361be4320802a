//! Task heads on an encoder's token embeddings, written once for every architecture (the model
//! files stay heads-free): SPLADE's masked-language-model head ([`splade`]) and BGE-M3's sparse and
//! ColBERT heads ([`bgem3`]).
//!
//! A head reads the encoder's packed output (sequences back to back, no padding, `hidden` values
//! per token, as [`crate::arch::Encoder::forward_packed`] returns it) with the token ids of each
//! sequence, so one forward pass serves dense pooling and every head at once.
//!
//! Which heads a checkpoint has is decided from its files ([`OutputHeads::detect`]):
//! `config.json` naming a `*ForMaskedLM` architecture → SPLADE (sparse only); a
//! `sparse_linear.pt` / `colbert_linear.pt` beside the weights (or `.safetensors` equivalents),
//! as FlagEmbedding's BGE-M3 repository ships them → dense + sparse + ColBERT.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use ember_core::{OutputKinds, SparseVector, TokenVectors};
use serde::Deserialize;

use crate::arch::ArchConfig;
use crate::error::{ModelError, Result};
use crate::tokenizer::TextTokenizer;

pub mod bgem3;
pub mod splade;

pub use bgem3::BgeM3Heads;
pub use splade::SpladeHead;

/// The heads a loaded model runs after its encoder.
#[derive(Debug)]
pub enum OutputHeads {
    /// A plain embedding model: dense vectors from pooling only.
    DenseOnly,
    /// SPLADE: a sparse vector over the vocabulary, no dense output.
    Splade(SpladeHead),
    /// BGE-M3: dense (pooling) plus the heads present (sparse, ColBERT).
    BgeM3(BgeM3Heads),
}

/// What the heads produced for one batch, one entry per sequence, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadOutputs {
    pub sparse: Option<Vec<SparseVector>>,
    pub multivector: Option<Vec<TokenVectors>>,
}

#[derive(Deserialize, Default)]
struct Architectures {
    #[serde(default)]
    architectures: Option<Vec<String>>,
}

impl OutputHeads {
    /// Decide from `dir`'s files which heads the model has and load them. `tensors` are the
    /// checkpoint's weights (already read), `weights_path` names them in errors.
    pub fn detect(
        dir: &Path,
        arch: &ArchConfig,
        tensors: &HashMap<String, Tensor>,
        weights_path: &Path,
        tokenizer: &TextTokenizer,
        device: &Device,
    ) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let names: Architectures = serde_json::from_str(&text).map_err(|e| ModelError::invalid(&config_path, e))?;
        // A `*ForMaskedLM` checkpoint with its MLM head is SPLADE. Without the head it is an
        // embedding model saved from an MLM (all-mpnet-base-v2's config names MPNetForMaskedLM),
        // which sentence-transformers pools like any other.
        if let Some(mlm) = names.architectures.unwrap_or_default().iter().find(|a| a.ends_with("ForMaskedLM")) {
            if SpladeHead::present(arch, tensors) {
                return Ok(OutputHeads::Splade(SpladeHead::load(mlm, arch, tensors, weights_path, device)?));
            }
        }
        match BgeM3Heads::load(dir, arch.hidden_size(), tokenizer, device)? {
            Some(heads) => Ok(OutputHeads::BgeM3(heads)),
            None => Ok(OutputHeads::DenseOnly),
        }
    }

    /// The kinds of output the model produces.
    pub fn outputs(&self) -> OutputKinds {
        match self {
            OutputHeads::DenseOnly => OutputKinds::DENSE,
            OutputHeads::Splade(_) => OutputKinds::SPARSE,
            OutputHeads::BgeM3(h) => OutputKinds { dense: true, sparse: h.has_sparse(), multivector: h.has_colbert() },
        }
    }

    /// The length of each token vector of the ColBERT head, when the model has one.
    pub fn colbert_dimension(&self) -> Option<usize> {
        match self {
            OutputHeads::BgeM3(h) if h.has_colbert() => Some(h.colbert_dim()),
            _ => None,
        }
    }

    /// A short name for `ember models info`: `splade`, `bge-m3`, or `none`.
    pub fn name(&self) -> &'static str {
        match self {
            OutputHeads::DenseOnly => "none",
            OutputHeads::Splade(_) => "splade",
            OutputHeads::BgeM3(_) => "bge-m3",
        }
    }

    /// Run the heads `kinds` asks for (its dense flag is ignored: pooling makes dense vectors)
    /// over one batch: `hidden` is the encoder's packed output, `rows` the token ids of each
    /// sequence.
    pub fn run(&self, hidden: &[f32], hidden_size: usize, rows: &[&[u32]], kinds: OutputKinds) -> Result<HeadOutputs> {
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        debug_assert_eq!(hidden.len(), lengths.iter().sum::<usize>() * hidden_size);
        let mut out = HeadOutputs::default();
        match self {
            OutputHeads::DenseOnly => {}
            OutputHeads::Splade(head) => {
                if kinds.sparse {
                    out.sparse = Some(head.sparse(hidden, hidden_size, &lengths)?);
                }
            }
            OutputHeads::BgeM3(heads) => {
                if kinds.sparse {
                    out.sparse = Some(heads.sparse(hidden, hidden_size, rows)?);
                }
                if kinds.multivector {
                    out.multivector = Some(heads.colbert(hidden, hidden_size, &lengths)?);
                }
            }
        }
        Ok(out)
    }
}

/// The tensor whose key is `suffix` or ends with `.suffix` (checkpoints saved from a wrapper carry
/// a prefix); the shortest such key wins.
pub(crate) fn find_tensor<'a>(tensors: &'a HashMap<String, Tensor>, suffix: &str) -> Option<&'a Tensor> {
    tensors
        .iter()
        .filter(|(k, _)| k.as_str() == suffix || k.strip_suffix(suffix).is_some_and(|p| p.ends_with('.')))
        .min_by_key(|(k, _)| k.len())
        .map(|(_, t)| t)
}
