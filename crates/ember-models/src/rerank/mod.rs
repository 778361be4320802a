//! Rerankers: models that score (query, document) pairs jointly, behind
//! [`ember_core::Reranker`].
//!
//! | `architectures` in config.json | what | score (default) | raw (`activation: false`) |
//! |---|---|---|---|
//! | `BertForSequenceClassification` | cross-encoder, `[CLS] q [SEP] d [SEP]` with segment ids, pooler + tanh + classifier | sigmoid(logit) | the logit |
//! | `XLMRobertaForSequenceClassification`, `RobertaForSequenceClassification` | cross-encoder, `<s> q </s></s> d </s>`, `classifier.dense` + tanh + `out_proj` | sigmoid(logit) | the logit |
//! | `Qwen3ForCausalLM` (Qwen3-Reranker) | LLM, the model card's yes/no prompt, left padding | P(yes) = softmax(no, yes)[1] | logit(yes) − logit(no) |
//!
//! Cross-encoders score as sentence-transformers' `CrossEncoder.predict`: one label → the
//! activation that config.json names (`sentence_transformers.activation_fn`, or the older
//! `sbert_ce_default_activation_function`; Sigmoid when absent, which is CrossEncoder's default);
//! several labels → label 1 (the "relevant" class of binary classifiers), as a softmax over the
//! labels when activated (CrossEncoder's `apply_softmax=True`) and as its logit when raw.
//! `activation: Some(true)` always maps into [0, 1] (sigmoid for one label, even where the config
//! says Identity); `None` follows the config.
//!
//! Pairs longer than the limit are cut, never refused: cross-encoders longest-first between
//! query and document (transformers' `truncation="longest_first"`), the LLM reranker from the end
//! of the formatted pair (the card's code). The limit is `tokenizer_config.json`'s
//! `model_max_length` capped at the position table (cross-encoders) or the card's 8192 (Qwen3),
//! or `RerankOptions::max_length`.

use std::path::{Path, PathBuf};

use ember_core::embedder::BoxError;
use ember_core::{plan_batches, RerankOptions, RerankScores, Reranker};
use serde::Deserialize;

use crate::error::{ModelError, Result};
use crate::resolve::{resolve, HubOptions};
use crate::sentence::LoadOptions;
use crate::tokenizer::PairTokens;

pub mod classifier;
pub mod cross_encoder;
pub mod llm;

use classifier::HeadKind;
use cross_encoder::CrossEncoder;
use llm::LlmReranker;

/// `architectures` values [`load_reranker`] accepts.
pub const SUPPORTED_RERANKERS: [&str; 4] = [
    "BertForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "RobertaForSequenceClassification",
    "Qwen3ForCausalLM",
];

/// Default pairs per forward pass (CrossEncoder's `batch_size`).
pub const DEFAULT_RERANK_BATCH_SIZE: usize = 32;
/// Default padded token slots per forward pass.
pub const DEFAULT_RERANK_TOKEN_BUDGET: usize = 16_384;

/// A cross-encoder's activation on one logit (CrossEncoder's `activation_fn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Sigmoid,
    Identity,
    Tanh,
}

impl Activation {
    /// From a dotted torch path as sentence-transformers saves it
    /// (`torch.nn.modules.activation.Sigmoid`, `torch.nn.modules.linear.Identity`, …).
    pub fn from_torch_path(path: &str) -> Option<Self> {
        match path.rsplit('.').next()? {
            "Sigmoid" => Some(Activation::Sigmoid),
            "Identity" => Some(Activation::Identity),
            "Tanh" => Some(Activation::Tanh),
            _ => None,
        }
    }

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => sigmoid(x),
            Activation::Identity => x,
            Activation::Tanh => x.tanh(),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// What kind of reranker a directory holds, from its config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankerKind {
    CrossEncoder(HeadKind),
    Qwen3,
}

#[derive(Deserialize)]
struct Architectures {
    #[serde(default)]
    architectures: Vec<String>,
}

impl RerankerKind {
    /// Read `architectures` from `config.json`.
    pub fn detect(config_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(config_path).map_err(|e| ModelError::io(config_path, e))?;
        let a: Architectures = serde_json::from_str(&text).map_err(|e| ModelError::invalid(config_path, e))?;
        let found = a.architectures.first().map_or("<no architectures in config.json>", String::as_str);
        match found {
            "BertForSequenceClassification" => Ok(RerankerKind::CrossEncoder(HeadKind::BertPooler)),
            "XLMRobertaForSequenceClassification" | "RobertaForSequenceClassification" => {
                Ok(RerankerKind::CrossEncoder(HeadKind::RobertaClassification))
            }
            "Qwen3ForCausalLM" => Ok(RerankerKind::Qwen3),
            _ => Err(ModelError::UnsupportedReranker {
                found: found.to_string(),
                path: config_path.to_path_buf(),
                supported: SUPPORTED_RERANKERS.join(", "),
            }),
        }
    }
}

/// What `ember serve`'s `/info` and `ember rerank --json` report about a reranker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RerankerInfo {
    pub id: String,
    pub path: PathBuf,
    /// `cross-encoder` or `llm`.
    pub kind: &'static str,
    /// `bert`, `xlm-roberta` or `qwen3`.
    pub architecture: &'static str,
    pub max_length: usize,
    /// Labels of a cross-encoder's classifier (the LLM reranker reads two logits: no, yes).
    pub num_labels: usize,
    /// What a default score is: `sigmoid`, `identity`, `tanh`, `softmax` (label 1) or `p_yes`.
    pub activation: String,
}

#[derive(Debug)]
enum Inner {
    Cross(CrossEncoder),
    Llm(LlmReranker),
}

/// A loaded reranker of any supported kind.
#[derive(Debug)]
pub struct RerankModel {
    id: String,
    dir: PathBuf,
    inner: Inner,
}

/// Resolve `name` (a local directory, a hub id in the cache, or a download as
/// [`resolve`] does) and load the reranker it holds, detected from config.json's
/// `architectures`.
pub fn load_reranker(name: &str, hub: &HubOptions, options: &LoadOptions) -> Result<Box<dyn Reranker>> {
    let dir = resolve(name, hub)?;
    Ok(Box::new(RerankModel::load(name, &dir, options)?))
}

impl RerankModel {
    /// Load the reranker in `dir`; `id` names it in output (hub id or path).
    pub fn load(id: &str, dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config = dir.join("config.json");
        if !config.exists() {
            return Err(ModelError::NotAModelDir(dir.to_path_buf()));
        }
        let inner = match RerankerKind::detect(&config)? {
            RerankerKind::CrossEncoder(head) => Inner::Cross(CrossEncoder::load(dir, head, options)?),
            RerankerKind::Qwen3 => Inner::Llm(LlmReranker::load(dir, options)?),
        };
        Ok(RerankModel { id: id.to_string(), dir: dir.to_path_buf(), inner })
    }

    pub fn model_id(&self) -> &str {
        &self.id
    }

    pub fn info(&self) -> RerankerInfo {
        let (kind, architecture, num_labels, activation) = match &self.inner {
            Inner::Cross(c) => {
                let activation = if c.num_labels() == 1 {
                    serde_json::to_value(c.activation()).ok().and_then(|v| v.as_str().map(str::to_string))
                } else {
                    Some("softmax".to_string())
                };
                ("cross-encoder", c.architecture(), c.num_labels(), activation.unwrap_or_default())
            }
            Inner::Llm(_) => ("llm", "qwen3", 2, "p_yes".to_string()),
        };
        RerankerInfo {
            id: self.id.clone(),
            path: self.dir.clone(),
            kind,
            architecture,
            max_length: self.max_length(),
            num_labels,
            activation,
        }
    }

    /// Pairs are cut to this many tokens by default (special tokens and prompt included).
    pub fn max_length(&self) -> usize {
        match &self.inner {
            Inner::Cross(c) => c.max_length(),
            Inner::Llm(l) => l.max_length(),
        }
    }

    /// The first half of [`Reranker::score`]: every (query, document) pair as the model's
    /// tokens, cut to `options.max_length` (default: the model's). A caller that batches pairs
    /// itself (a server's queue) runs this, then [`forward`](Self::forward) and
    /// [`finish_score`](Self::finish_score).
    pub fn tokenize(&self, query: &str, documents: &[&str], options: &RerankOptions) -> Result<Vec<PairTokens>> {
        match &self.inner {
            Inner::Cross(c) => c.tokenize(query, documents, options.max_length),
            Inner::Llm(l) => l.tokenize(query, documents, options.instruction.as_deref(), options.max_length),
        }
    }

    /// One forward pass over tokenized pairs: the raw logits of each (a cross-encoder's labels;
    /// `[no, yes]` for the LLM reranker).
    pub fn forward(&self, rows: &[&PairTokens]) -> Result<Vec<Vec<f32>>> {
        match &self.inner {
            Inner::Cross(c) => c.forward(rows),
            Inner::Llm(l) => l.forward(rows),
        }
    }

    /// A pair's score from its logits: activated (see the module docs) or raw.
    pub fn finish_score(&self, logits: &[f32], activation: Option<bool>) -> f32 {
        let at = |i: usize| logits.get(i).copied().unwrap_or(f32::NAN);
        match &self.inner {
            Inner::Cross(c) if c.num_labels() == 1 => match activation {
                None => c.activation().apply(at(0)),
                Some(true) => sigmoid(at(0)),
                Some(false) => at(0),
            },
            Inner::Cross(_) => {
                if activation == Some(false) {
                    at(1)
                } else {
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
                    (at(1) - max).exp() / sum
                }
            }
            Inner::Llm(_) => {
                let log_odds = at(1) - at(0);
                if activation == Some(false) {
                    log_odds
                } else {
                    sigmoid(log_odds)
                }
            }
        }
    }

    /// [`Reranker::score`] with this crate's error type.
    pub fn score_pairs(&self, query: &str, documents: &[&str], options: &RerankOptions) -> Result<RerankScores> {
        if documents.is_empty() {
            return Ok(RerankScores::default());
        }
        let rows = self.tokenize(query, documents, options)?;
        let lengths: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        let batch_size = options.batch_size.unwrap_or(DEFAULT_RERANK_BATCH_SIZE);
        let mut scores = vec![0f32; rows.len()];
        for batch in plan_batches(&lengths, DEFAULT_RERANK_TOKEN_BUDGET, batch_size) {
            let batch_rows: Vec<&PairTokens> = batch.indices.iter().map(|&i| &rows[i]).collect();
            let logits = self.forward(&batch_rows)?;
            for (&i, l) in batch.indices.iter().zip(&logits) {
                scores[i] = self.finish_score(l, options.activation);
            }
        }
        Ok(RerankScores {
            scores,
            tokens: lengths.iter().sum(),
            truncated: rows.iter().filter(|r| r.truncated).count(),
        })
    }
}

impl Reranker for RerankModel {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn score(&self, query: &str, documents: &[&str], options: &RerankOptions) -> Result<RerankScores, BoxError> {
        Ok(self.score_pairs(query, documents, options)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_from_torch_paths() {
        assert_eq!(Activation::from_torch_path("torch.nn.modules.activation.Sigmoid"), Some(Activation::Sigmoid));
        assert_eq!(Activation::from_torch_path("torch.nn.modules.linear.Identity"), Some(Activation::Identity));
        assert_eq!(Activation::from_torch_path("torch.nn.Softplus"), None);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-7);
    }
}
