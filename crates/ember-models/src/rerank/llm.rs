//! LLM yes/no rerankers (Qwen3-Reranker): the pair goes into the model card's chat prompt, and
//! the score is P(yes) = softmax over the logits of "no" and "yes" at the last position.
//!
//! Tokenization follows the card's transformers code exactly: the prefix and suffix are
//! tokenized on their own, the formatted `<Instruct>/<Query>/<Document>` text is tokenized
//! without special tokens and cut from the right to `max_length − prefix − suffix` tokens, and
//! rows are left-padded.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use crate::arch::qwen3::{self, Qwen3Model};
use crate::error::{ModelError, Result};
use crate::sentence::LoadOptions;
use crate::tokenizer::PairTokens;
use crate::weights;

/// The Qwen3-Reranker system prompt and chat framing (model card), before the pair.
pub const QWEN3_PREFIX: &str = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
/// After the pair: the assistant turn with an empty think block.
pub const QWEN3_SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
/// The card's instruction when none is given.
pub const QWEN3_DEFAULT_INSTRUCTION: &str =
    "Given a web search query, retrieve relevant passages that answer the query";
/// The card's `max_length`.
pub const QWEN3_MAX_LENGTH: usize = 8192;

/// The user turn of one pair (the card's `format_instruction`).
pub fn format_pair(instruction: Option<&str>, query: &str, document: &str) -> String {
    let instruction = instruction.unwrap_or(QWEN3_DEFAULT_INSTRUCTION);
    format!("<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}")
}

/// A loaded yes/no reranker.
#[derive(Debug)]
pub struct LlmReranker {
    model: Qwen3Model,
    tokenizer: Tokenizer,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    /// Rows of the output projection for ["no", "yes"], `[2, hidden]` f32.
    no_yes: Tensor,
    pad_id: u32,
    max_length: usize,
    device: Device,
}

impl LlmReranker {
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let config: qwen3::Config = serde_json::from_str(&text).map_err(|e| ModelError::invalid(&config_path, e))?;
        config.check().map_err(|m| ModelError::invalid(&config_path, m))?;
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(ModelError::Tokenizer { path: tok_path, message: "file is missing".to_string() });
        }
        let tok_err = |message: String| ModelError::Tokenizer { path: tok_path.clone(), message };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| tok_err(e.to_string()))?;
        let id = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| {
                tok_err(format!(
                    "no token '{token}': a Qwen3 yes/no reranker needs it (is this a Qwen3-Reranker tokenizer?)"
                ))
            })
        };
        let (no, yes) = (id("no")?, id("yes")?);
        for special in ["<|im_start|>", "<|im_end|>"] {
            id(special)?;
        }
        let pad_id = tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
        let encode = |text: &str| -> Result<Vec<u32>> {
            Ok(tokenizer.encode(text, false).map_err(|e| tok_err(e.to_string()))?.get_ids().to_vec())
        };
        let prefix = encode(QWEN3_PREFIX)?;
        let suffix = encode(QWEN3_SUFFIX)?;
        let files = weights::weight_files(dir)?;
        let tensors = weights::load_tensors(&files, options.dtype, &options.device)?;
        let origin = if files.len() == 1 { files[0].clone() } else { dir.to_path_buf() };
        let vb = candle_nn::VarBuilder::from_tensors(tensors, options.dtype, &options.device);
        let model = Qwen3Model::load(vb, &config).map_err(|e| match e {
            ModelError::Tensor(inner) => ModelError::Weights { path: origin.clone(), message: inner.to_string() },
            other => other,
        })?;
        let no_yes = model.lm_head_rows(&[no, yes])?.to_dtype(DType::F32)?;
        options.device.synchronize()?;
        Ok(LlmReranker {
            max_length: QWEN3_MAX_LENGTH.min(model.max_positions()),
            model,
            tokenizer,
            prefix,
            suffix,
            no_yes,
            pad_id,
            device: options.device.clone(),
        })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokens of the prompt around the pair (prefix + suffix).
    pub fn template_tokens(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }

    /// Every document's full prompt, cut to `max_length` (default: the card's 8192) by dropping
    /// tokens from the end of the formatted pair.
    pub fn tokenize(
        &self,
        query: &str,
        documents: &[&str],
        instruction: Option<&str>,
        max_length: Option<usize>,
    ) -> Result<Vec<PairTokens>> {
        use rayon::prelude::*;
        let max_length = max_length.unwrap_or(self.max_length).min(self.model.max_positions());
        let budget = max_length.checked_sub(self.template_tokens()).filter(|&b| b > 0).ok_or_else(|| {
            ModelError::Tokenize {
                index: 0,
                message: format!(
                    "max_length {max_length} leaves no room for the pair: the reranker's prompt template alone takes {} tokens",
                    self.template_tokens()
                ),
            }
        })?;
        documents
            .par_iter()
            .enumerate()
            .map(|(index, doc)| {
                let text = format_pair(instruction, query, doc);
                let enc = self
                    .tokenizer
                    .encode(text, false)
                    .map_err(|e| ModelError::Tokenize { index, message: e.to_string() })?;
                let body = enc.get_ids();
                let truncated = body.len() > budget;
                let body = &body[..body.len().min(budget)];
                let mut ids = Vec::with_capacity(self.template_tokens() + body.len());
                ids.extend_from_slice(&self.prefix);
                ids.extend_from_slice(body);
                ids.extend_from_slice(&self.suffix);
                let type_ids = vec![0; ids.len()];
                Ok(PairTokens { ids, type_ids, truncated })
            })
            .collect()
    }

    /// `[logit(no), logit(yes)]` at the last position of each row (rows left-padded together).
    pub fn forward(&self, rows: &[&PairTokens]) -> Result<Vec<Vec<f32>>> {
        let b = rows.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let l = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; b * l];
        let mut mask = vec![vec![0u8; l]; b];
        for (i, r) in rows.iter().enumerate() {
            let start = l - r.ids.len();
            ids[i * l + start..(i + 1) * l].copy_from_slice(&r.ids);
            mask[i][start..].fill(1);
        }
        let input = Tensor::from_vec(ids, (b, l), &self.device)?;
        let last = self.model.last_hidden(&input, &mask)?.to_dtype(DType::F32)?;
        Ok(last.matmul(&self.no_yes.t()?)?.to_vec2()?)
    }
}
