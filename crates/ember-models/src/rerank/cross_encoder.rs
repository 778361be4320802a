//! Cross-encoders: a (query, document) pair through an encoder as one sequence, a classification
//! head on its first token. Scores as sentence-transformers' `CrossEncoder.predict`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use serde::Deserialize;

use super::classifier::{ClassifierHead, HeadKind};
use super::Activation;
use crate::arch::{ArchConfig, Encoder, EncoderInput};
use crate::error::{ModelError, Result};
use crate::sentence::LoadOptions;
use crate::tokenizer::{PairTokens, TextTokenizer};
use crate::weights;

/// A loaded cross-encoder.
#[derive(Debug)]
pub struct CrossEncoder {
    encoder: Box<dyn Encoder>,
    head: ClassifierHead,
    tokenizer: TextTokenizer,
    /// BERT feeds segment ids (0 for the query, 1 for the document); RoBERTa-style models have
    /// a single segment and get zeros, as transformers' tokenizers give them.
    segments: bool,
    /// `sentence_transformers.activation_fn` of config.json (Sigmoid unless it says otherwise).
    activation: Activation,
    arch: &'static str,
    device: Device,
}

/// The parts of `config.json` that sentence-transformers' CrossEncoder reads.
#[derive(Deserialize, Default)]
struct CeConfig {
    sentence_transformers: Option<StSection>,
    /// sentence-transformers < 4 kept the activation here.
    sbert_ce_default_activation_function: Option<String>,
}

#[derive(Deserialize, Default)]
struct StSection {
    activation_fn: Option<String>,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    model_max_length: Option<serde_json::Value>,
}

impl CrossEncoder {
    pub fn load(dir: &Path, head_kind: HeadKind, options: &LoadOptions) -> Result<Self> {
        let config_path = dir.join("config.json");
        let arch = ArchConfig::load(&config_path)?;
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let ce: CeConfig = serde_json::from_str(&text).map_err(|e| ModelError::invalid(&config_path, e))?;
        let activation_name =
            ce.sentence_transformers.and_then(|s| s.activation_fn).or(ce.sbert_ce_default_activation_function);
        let activation = match activation_name.as_deref() {
            None => Activation::Sigmoid,
            Some(name) => Activation::from_torch_path(name).ok_or_else(|| {
                ModelError::invalid(
                    &config_path,
                    format!("unsupported activation_fn '{name}' (ember knows torch's Sigmoid, Identity and Tanh)"),
                )
            })?,
        };
        let files = weights::weight_files(dir)?;
        let mut tensors = weights::load_tensors(&files, options.dtype, &options.device)?;
        let origin: PathBuf = if files.len() == 1 { files[0].clone() } else { dir.to_path_buf() };
        let prefix = encoder_prefix(&tensors, arch.embedding_key(), &origin)?;
        let head = ClassifierHead::take(head_kind, &mut tensors, &prefix, arch.hidden_size(), &origin)?;
        let vb = weights::encoder_var_builder(tensors, arch.embedding_key(), options.dtype, &options.device, &origin)?;
        let encoder = arch.build(vb, &options.device).map_err(|e| match e {
            ModelError::Tensor(inner) => ModelError::Weights { path: origin.clone(), message: inner.to_string() },
            other => other,
        })?;
        let max_len = model_max_length(dir).unwrap_or(usize::MAX).min(encoder.max_positions());
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"), false, max_len)?;
        let segments = matches!(arch, ArchConfig::Bert(_));
        options.device.synchronize()?;
        Ok(CrossEncoder {
            encoder,
            head,
            tokenizer,
            segments,
            activation,
            arch: arch.name(),
            device: options.device.clone(),
        })
    }

    pub fn architecture(&self) -> &'static str {
        self.arch
    }

    pub fn num_labels(&self) -> usize {
        self.head.num_labels()
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }

    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    pub fn max_positions(&self) -> usize {
        self.encoder.max_positions()
    }

    /// (query, document) pairs tokenized, cut longest-first to `max_length` (default: the
    /// model's).
    pub fn tokenize(&self, query: &str, documents: &[&str], max_length: Option<usize>) -> Result<Vec<PairTokens>> {
        let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, *d)).collect();
        let mut rows = match max_length {
            Some(n) if n != self.tokenizer.max_length() => {
                self.tokenizer.with_max_length(n.min(self.encoder.max_positions()))?.encode_pairs(&pairs)?
            }
            _ => self.tokenizer.encode_pairs(&pairs)?,
        };
        if !self.segments {
            for r in &mut rows {
                r.type_ids.fill(0);
            }
        }
        Ok(rows)
    }

    /// Raw logits (`num_labels` per row) of one padded batch.
    pub fn forward(&self, rows: &[&PairTokens]) -> Result<Vec<Vec<f32>>> {
        let b = rows.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let l = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; b * l];
        let mut types = vec![0u32; b * l];
        let mut mask = vec![0f32; b * l];
        for (i, r) in rows.iter().enumerate() {
            let n = r.ids.len();
            ids[i * l..i * l + n].copy_from_slice(&r.ids);
            let t = r.type_ids.len().min(n);
            types[i * l..i * l + t].copy_from_slice(&r.type_ids[..t]);
            mask[i * l..i * l + n].fill(1.0);
        }
        let input = EncoderInput {
            input_ids: Tensor::from_vec(ids, (b, l), &self.device)?,
            token_type_ids: Tensor::from_vec(types, (b, l), &self.device)?,
            attention_mask: Tensor::from_vec(mask, (b, l), &self.device)?,
        };
        let hidden = self.encoder.forward(&input)?;
        let first = hidden.i((.., 0, ..))?.contiguous()?;
        Ok(self.head.forward(&first)?.to_dtype(DType::F32)?.to_vec2()?)
    }
}

/// The encoder's key prefix (`bert`, `roberta`, or empty), from its word-embedding key.
fn encoder_prefix(
    tensors: &std::collections::HashMap<String, Tensor>,
    embedding_key: &str,
    origin: &Path,
) -> Result<String> {
    let key = tensors.keys().filter(|k| k.ends_with(embedding_key)).min_by_key(|k| k.len()).ok_or_else(|| {
        ModelError::Weights {
            path: origin.to_path_buf(),
            message: format!("no tensor named '{embedding_key}' (is this the right architecture?)"),
        }
    })?;
    Ok(key[..key.len() - embedding_key.len()].trim_end_matches('.').to_string())
}

/// `model_max_length` of `tokenizer_config.json`, unless absent or transformers' "no limit"
/// sentinel (sentence-transformers then caps at the position table, as ember always does).
fn model_max_length(dir: &Path) -> Option<usize> {
    let path = dir.join("tokenizer_config.json");
    let text = std::fs::read_to_string(path).ok()?;
    let config: TokenizerConfig = serde_json::from_str(&text).ok()?;
    let n = config.model_max_length?.as_f64()?;
    (1.0..1e9).contains(&n).then_some(n as usize)
}
