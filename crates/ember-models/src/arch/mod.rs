//! Encoder architectures, one file each. A model file holds a `Config` mirroring `config.json`,
//! `load` (weight names equal to checkpoint keys) and `forward` to token embeddings; pooling,
//! normalisation and heads live outside, in [`crate::sentence`].

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::error::{ModelError, Result};

pub mod attention;
pub mod bert;
#[cfg(test)]
mod cpu_parity;
pub mod mpnet;
pub mod qwen3;
pub mod xlm_roberta;

/// A padded batch, right-padded to the longest sequence.
#[derive(Debug)]
pub struct EncoderInput {
    /// `[batch, len]` u32 token ids.
    pub input_ids: Tensor,
    /// `[batch, len]` u32 token type ids.
    pub token_type_ids: Tensor,
    /// `[batch, len]` f32, 1 for real tokens and 0 for padding.
    pub attention_mask: Tensor,
}

/// A transformer encoder: token ids → contextual token embeddings `[batch, len, hidden]`.
pub trait Encoder: Send + Sync + std::fmt::Debug {
    fn forward(&self, input: &EncoderInput) -> Result<Tensor>;

    /// Token embeddings of several sequences given back to back (`ids` holds the sequences
    /// concatenated, `lengths` their lengths): `sum(lengths) × hidden` values, sequence after
    /// sequence, no padding. The default pads to the longest sequence and runs [`forward`];
    /// an encoder may override it with a path that never pads.
    ///
    /// [`forward`]: Encoder::forward
    fn forward_packed(&self, ids: &[u32], lengths: &[usize], device: &Device) -> Result<Vec<f32>> {
        forward_padded(self, ids, lengths, device)
    }

    fn hidden_size(&self) -> usize;
    /// The most positions the model was built for (`max_position_embeddings`, less any offset).
    fn max_positions(&self) -> usize;
}

/// [`Encoder::forward_packed`] by padding to the longest sequence and running
/// [`Encoder::forward`] (candle's path), then dropping the padding.
pub fn forward_padded<E: Encoder + ?Sized>(
    encoder: &E,
    ids: &[u32],
    lengths: &[usize],
    device: &Device,
) -> Result<Vec<f32>> {
    let b = lengths.len();
    let l = lengths.iter().copied().max().unwrap_or(0);
    let mut padded = vec![0u32; b * l];
    let mut mask = vec![0f32; b * l];
    let mut at = 0;
    for (i, &n) in lengths.iter().enumerate() {
        padded[i * l..i * l + n].copy_from_slice(&ids[at..at + n]);
        mask[i * l..i * l + n].fill(1.0);
        at += n;
    }
    let input = EncoderInput {
        input_ids: Tensor::from_vec(padded, (b, l), device)?,
        token_type_ids: Tensor::zeros((b, l), candle_core::DType::U32, device)?,
        attention_mask: Tensor::from_vec(mask, (b, l), device)?,
    };
    let h = encoder.hidden_size();
    // One copy back to the host per batch (this also waits for a GPU to finish).
    let flat: Vec<f32> = encoder.forward(&input)?.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
    let mut out = Vec::with_capacity(at * h);
    for (i, &n) in lengths.iter().enumerate() {
        out.extend_from_slice(&flat[i * l * h..(i * l + n) * h]);
    }
    Ok(out)
}

/// `model_type` values ember can run.
pub const SUPPORTED: [&str; 4] = ["bert", "mpnet", "xlm-roberta", "roberta"];

/// The architecture a `config.json` describes, keyed by `model_type`.
#[derive(Debug, Clone)]
pub enum ArchConfig {
    Bert(bert::Config),
    MPNet(mpnet::Config),
    XlmRoberta(xlm_roberta::Config),
}

#[derive(Deserialize)]
struct ModelType {
    model_type: Option<String>,
}

impl ArchConfig {
    /// Read and validate `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let kind: ModelType = serde_json::from_str(&text).map_err(|e| ModelError::invalid(path, e))?;
        let found = kind.model_type.unwrap_or_else(|| "<missing model_type>".to_string());
        let parse = |e: serde_json::Error| ModelError::invalid(path, e);
        Ok(match found.as_str() {
            "bert" => ArchConfig::Bert(serde_json::from_str(&text).map_err(parse)?),
            "mpnet" => ArchConfig::MPNet(serde_json::from_str(&text).map_err(parse)?),
            "xlm-roberta" | "roberta" => ArchConfig::XlmRoberta(serde_json::from_str(&text).map_err(parse)?),
            _ => {
                return Err(ModelError::UnsupportedArchitecture {
                    found,
                    path: path.to_path_buf(),
                    supported: SUPPORTED.join(", "),
                })
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ArchConfig::Bert(_) => "bert",
            ArchConfig::MPNet(_) => "mpnet",
            ArchConfig::XlmRoberta(_) => "xlm-roberta",
        }
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            ArchConfig::Bert(c) => c.hidden_size,
            ArchConfig::MPNet(c) => c.hidden_size,
            ArchConfig::XlmRoberta(c) => c.bert.hidden_size,
        }
    }

    /// The key of the word-embedding matrix, used to find the encoder's weight prefix.
    pub fn embedding_key(&self) -> &'static str {
        "embeddings.word_embeddings.weight"
    }

    /// Build the encoder from weights.
    pub fn build(&self, vb: VarBuilder, device: &Device) -> Result<Box<dyn Encoder>> {
        let _ = device;
        Ok(match self {
            ArchConfig::Bert(c) => Box::new(bert::BertModel::load(vb, c, 0)?),
            ArchConfig::MPNet(c) => Box::new(mpnet::MPNetModel::load(vb, c)?),
            ArchConfig::XlmRoberta(c) => Box::new(xlm_roberta::load(vb, c)?),
        })
    }
}

/// Activation functions named in `config.json` (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The exact erf form (PyTorch's default `gelu`).
    Gelu,
    /// The tanh approximation.
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    Relu,
    Silu,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => x.gelu_erf(),
            Activation::GeluNew => x.gelu(),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
        }
    }
}
