//! BERT (Devlin et al., 2018, <https://arxiv.org/abs/1810.04805>): the encoder behind MiniLM,
//! BGE, E5, GTE, M3E and text2vec. Weight names are those of transformers' `BertModel`.

use candle_core::{DType, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, Module, VarBuilder};
use serde::Deserialize;

use super::attention::{attend, mask_bias};
use super::{forward_padded, Activation, Encoder, EncoderInput};
use crate::cpu::{CpuEncoder, EmbeddingWeights, LayerWeights};
use crate::error::Result;

/// `config.json` of a BERT checkpoint (fields ember reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

#[derive(Debug)]
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

#[derive(Debug)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// A BERT encoder. `position_offset` shifts position ids (RoBERTa-style models start at
/// `pad_token_id + 1`).
#[derive(Debug)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    heads: usize,
    act: Activation,
    hidden: usize,
    position_offset: usize,
    max_positions: usize,
    /// The padding-free f32 CPU path, when the weights are f32 on the CPU.
    cpu: Option<CpuEncoder>,
}

impl BertModel {
    pub fn load(vb: VarBuilder, c: &Config, position_offset: usize) -> Result<Self> {
        if let Some(kind) = c.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(candle_core::Error::Msg(format!("position_embedding_type '{kind}' is not supported")).into());
        }
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: embedding(c.vocab_size, c.hidden_size, e.pp("word_embeddings"))?,
            position: embedding(c.max_position_embeddings, c.hidden_size, e.pp("position_embeddings"))?,
            token_type: embedding(c.type_vocab_size, c.hidden_size, e.pp("token_type_embeddings"))?,
            norm: layer_norm(c.hidden_size, c.layer_norm_eps, e.pp("LayerNorm"))?,
        };
        let h = c.hidden_size;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: linear(h, h, a.pp("self.query"))?,
                    key: linear(h, h, a.pp("self.key"))?,
                    value: linear(h, h, a.pp("self.value"))?,
                    attn_out: linear(h, h, a.pp("output.dense"))?,
                    attn_norm: layer_norm(h, c.layer_norm_eps, a.pp("output.LayerNorm"))?,
                    intermediate: linear(h, c.intermediate_size, l.pp("intermediate.dense"))?,
                    output: linear(c.intermediate_size, h, l.pp("output.dense"))?,
                    out_norm: layer_norm(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cpu = CpuEncoder::build(
            EmbeddingWeights {
                word: &embeddings.word,
                position: &embeddings.position,
                token_type: Some(&embeddings.token_type),
                norm: &embeddings.norm,
                position_offset,
            },
            &layers.iter().map(Layer::weights).collect::<Vec<_>>(),
            c.num_attention_heads,
            c.hidden_act,
        )?;
        Ok(BertModel {
            embeddings,
            layers,
            cpu,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            hidden: h,
            position_offset,
            max_positions: c.max_position_embeddings.saturating_sub(position_offset),
        })
    }
}

impl Layer {
    fn weights(&self) -> LayerWeights<'_> {
        LayerWeights {
            query: &self.query,
            key: &self.key,
            value: &self.value,
            attn_out: &self.attn_out,
            attn_norm: &self.attn_norm,
            intermediate: &self.intermediate,
            output: &self.output,
            out_norm: &self.out_norm,
        }
    }

    fn forward(&self, x: &Tensor, mask: &Tensor, heads: usize, act: Activation) -> candle_core::Result<Tensor> {
        let ctx = attend(&self.query.forward(x)?, &self.key.forward(x)?, &self.value.forward(x)?, heads, mask, None)?;
        let x = self.attn_norm.forward(&(self.attn_out.forward(&ctx)? + x)?)?;
        let inner = act.apply(&self.intermediate.forward(&x)?)?;
        self.out_norm.forward(&(self.output.forward(&inner)? + &x)?)
    }
}

impl Encoder for BertModel {
    fn forward(&self, input: &EncoderInput) -> Result<Tensor> {
        let (b, l) = input.input_ids.dims2()?;
        let device = input.input_ids.device();
        let start = self.position_offset as u32;
        let positions = Tensor::arange(start, start + l as u32, device)?.unsqueeze(0)?.expand((b, l))?;
        let e = &self.embeddings;
        let x = e
            .word
            .forward(&input.input_ids)?
            .add(&e.position.forward(&positions)?)?
            .add(&e.token_type.forward(&input.token_type_ids)?)?;
        let mut x = e.norm.forward(&x)?;
        let mask = mask_bias(&input.attention_mask)?.to_dtype(x.dtype())?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, self.heads, self.act)?;
        }
        Ok(x.to_dtype(DType::F32)?)
    }

    fn forward_packed(&self, ids: &[u32], lengths: &[usize], device: &candle_core::Device) -> Result<Vec<f32>> {
        match &self.cpu {
            Some(cpu) if device.is_cpu() => Ok(cpu.forward(ids, lengths, None)?),
            _ => forward_padded(self, ids, lengths, device),
        }
    }

    fn hidden_size(&self) -> usize {
        self.hidden
    }

    fn max_positions(&self) -> usize {
        self.max_positions
    }
}
