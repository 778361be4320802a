//! MPNet (Song et al., 2020, <https://arxiv.org/abs/2004.09297>): BERT-shaped layers plus a
//! T5-style relative position bias shared by all layers. The encoder of all-mpnet-base-v2.
//! Weight names are those of transformers' `MPNetModel`.

use candle_core::{DType, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, Module, VarBuilder};
use serde::Deserialize;

use super::attention::{attend, mask_bias};
use super::{forward_padded, Activation, Encoder, EncoderInput};
use crate::cpu::attention::DistanceBias;
use crate::cpu::{CpuEncoder, EmbeddingWeights, LayerWeights};
use crate::error::Result;

/// `config.json` of an MPNet checkpoint.
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
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_pad")]
    pub pad_token_id: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
}

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-12
}
fn default_pad() -> usize {
    1
}
fn default_buckets() -> usize {
    32
}

/// The longest relative distance with its own buckets, as in transformers' MPNet.
const MAX_DISTANCE: usize = 128;

#[derive(Debug)]
struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// An MPNet encoder.
#[derive(Debug)]
pub struct MPNetModel {
    word: Embedding,
    position: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    relative_bias: Embedding,
    buckets: usize,
    heads: usize,
    act: Activation,
    hidden: usize,
    pad: usize,
    max_positions: usize,
    /// The padding-free f32 CPU path, when the weights are f32 on the CPU.
    cpu: Option<CpuEncoder>,
}

impl MPNetModel {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    q: linear(h, h, a.pp("attn.q"))?,
                    k: linear(h, h, a.pp("attn.k"))?,
                    v: linear(h, h, a.pp("attn.v"))?,
                    o: linear(h, h, a.pp("attn.o"))?,
                    attn_norm: layer_norm(h, c.layer_norm_eps, a.pp("LayerNorm"))?,
                    intermediate: linear(h, c.intermediate_size, l.pp("intermediate.dense"))?,
                    output: linear(c.intermediate_size, h, l.pp("output.dense"))?,
                    out_norm: layer_norm(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let word = embedding(c.vocab_size, h, e.pp("word_embeddings"))?;
        let position = embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let norm = layer_norm(h, c.layer_norm_eps, e.pp("LayerNorm"))?;
        let cpu = CpuEncoder::build(
            EmbeddingWeights {
                word: &word,
                position: &position,
                token_type: None,
                norm: &norm,
                position_offset: c.pad_token_id + 1,
            },
            &layers.iter().map(Layer::weights).collect::<Vec<_>>(),
            c.num_attention_heads,
            c.hidden_act,
        )?;
        Ok(MPNetModel {
            word,
            position,
            norm,
            layers,
            cpu,
            relative_bias: embedding(
                c.relative_attention_num_buckets,
                c.num_attention_heads,
                vb.pp("encoder.relative_attention_bias"),
            )?,
            buckets: c.relative_attention_num_buckets,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            hidden: h,
            pad: c.pad_token_id,
            max_positions: c.max_position_embeddings.saturating_sub(c.pad_token_id + 1),
        })
    }

    /// `[1, heads, len, len]` bias from bucketed relative positions (memory − context).
    fn position_bias(&self, len: usize, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        let ids: Vec<u32> = (0..len)
            .flat_map(|q| (0..len).map(move |k| (q, k)))
            .map(|(q, k)| relative_bucket(k as i64 - q as i64, self.buckets, MAX_DISTANCE) as u32)
            .collect();
        let ids = Tensor::from_vec(ids, (len, len), device)?;
        // [len, len, heads] → [1, heads, len, len]
        self.relative_bias.forward(&ids)?.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()
    }
}

impl Layer {
    fn weights(&self) -> LayerWeights<'_> {
        LayerWeights {
            query: &self.q,
            key: &self.k,
            value: &self.v,
            attn_out: &self.o,
            attn_norm: &self.attn_norm,
            intermediate: &self.intermediate,
            output: &self.output,
            out_norm: &self.out_norm,
        }
    }
}

impl MPNetModel {
    /// The relative-position bias per head and distance `j − i` for sequences up to `span`
    /// long, laid out as [`DistanceBias`] reads it.
    fn distance_bias(&self, span: usize) -> candle_core::Result<Vec<f32>> {
        let table = self.relative_bias.embeddings().to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let width = 2 * span.max(1) - 1;
        let mut values = vec![0f32; self.heads * width];
        for (at, distance) in (1 - span.max(1) as i64..span.max(1) as i64).enumerate() {
            let bucket = &table[relative_bucket(distance, self.buckets, MAX_DISTANCE)];
            for (h, &b) in bucket.iter().enumerate() {
                values[h * width + at] = b;
            }
        }
        Ok(values)
    }
}

/// transformers' `MPNetEncoder.relative_position_bucket` (bidirectional T5 buckets).
pub fn relative_bucket(relative_position: i64, num_buckets: usize, max_distance: usize) -> usize {
    let half = (num_buckets / 2) as i64;
    let n = -relative_position;
    let mut bucket = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        bucket += n;
    } else {
        // Computed in f32 as PyTorch does, then truncated toward zero.
        let ratio = (n as f32 / max_exact as f32).ln() / (max_distance as f32 / max_exact as f32).ln();
        let large = max_exact + (ratio * (half - max_exact) as f32) as i64;
        bucket += large.min(half - 1);
    }
    bucket as usize
}

impl Encoder for MPNetModel {
    fn forward(&self, input: &EncoderInput) -> Result<Tensor> {
        let (b, l) = input.input_ids.dims2()?;
        let device = input.input_ids.device();
        // Positions count real tokens from pad + 1; padding keeps the padding index. With right
        // padding that is `pad + 1 + i` on real tokens.
        let start = self.pad as u32 + 1;
        let positions = Tensor::arange(start, start + l as u32, device)?.unsqueeze(0)?.expand((b, l))?;
        let x = self.word.forward(&input.input_ids)?.add(&self.position.forward(&positions)?)?;
        let mut x = self.norm.forward(&x)?;
        let mask = mask_bias(&input.attention_mask)?.to_dtype(x.dtype())?;
        let bias = self.position_bias(l, device)?.to_dtype(x.dtype())?;
        for layer in &self.layers {
            let ctx = attend(
                &layer.q.forward(&x)?,
                &layer.k.forward(&x)?,
                &layer.v.forward(&x)?,
                self.heads,
                &mask,
                Some(&bias),
            )?;
            let y = layer.attn_norm.forward(&(layer.o.forward(&ctx)? + &x)?)?;
            let inner = self.act.apply(&layer.intermediate.forward(&y)?)?;
            x = layer.out_norm.forward(&(layer.output.forward(&inner)? + &y)?)?;
        }
        Ok(x.to_dtype(DType::F32)?)
    }

    fn forward_packed(&self, ids: &[u32], lengths: &[usize], device: &candle_core::Device) -> Result<Vec<f32>> {
        match &self.cpu {
            Some(cpu) if device.is_cpu() => {
                let span = lengths.iter().copied().max().unwrap_or(0).max(1);
                let values = self.distance_bias(span)?;
                Ok(cpu.forward(ids, lengths, Some(DistanceBias { values: &values, span }))?)
            }
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

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn buckets_match_transformers() {
        // Values from transformers' MPNetEncoder.relative_position_bucket(num_buckets=32, max_distance=128).
        let expect = [
            (-200, 15),
            (-128, 15),
            (-40, 12),
            (-9, 8),
            (-8, 8),
            (-7, 7),
            (-1, 1),
            (0, 0),
            (1, 17),
            (7, 23),
            (8, 24),
            (20, 26),
            (127, 31),
            (500, 31),
        ];
        for (rel, bucket) in expect {
            assert_eq!(relative_bucket(rel, 32, 128), bucket, "relative position {rel}");
        }
    }
}
