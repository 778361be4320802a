//! Qwen3 (Qwen team, 2025, <https://arxiv.org/abs/2505.09388>): a decoder-only transformer with
//! RMSNorm, rotary position embeddings (NEOX halves, base `rope_theta`), grouped-query attention
//! with a per-head RMSNorm on queries and keys, and a SwiGLU MLP. The base of Qwen3-Reranker and
//! Qwen3-Embedding. Weight names are those of transformers' `Qwen3ForCausalLM` (`model.` prefix,
//! `lm_head.weight` unless the embeddings are tied).
//!
//! This file runs the decoder to the final norm; what is read from it (the logits of a few
//! tokens at the last position, for a yes/no reranker) is decided outside, in [`crate::rerank`].

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{embedding, linear_b, linear_no_bias, Embedding, Linear, Module, VarBuilder};
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// `config.json` of a Qwen3 checkpoint (fields ember reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// transformers < 5 writes `rope_theta` at the top level ...
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// ... transformers 5 inside `rope_parameters`.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub use_sliding_window: bool,
}

/// transformers 5's `rope_parameters`.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_positions() -> usize {
    32_768
}
fn default_act() -> String {
    "silu".to_string()
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters.as_ref().and_then(|r| r.rope_theta).or(self.rope_theta).unwrap_or(10_000.0)
    }

    /// What ember cannot run, said plainly (instead of wrong numbers).
    pub fn check(&self) -> std::result::Result<(), String> {
        let rope_type = self.rope_parameters.as_ref().and_then(|r| r.rope_type.as_deref()).unwrap_or("default");
        if rope_type != "default" || self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(format!("RoPE scaling ('{rope_type}') is not supported"));
        }
        if self.use_sliding_window {
            return Err("sliding-window attention is not supported".to_string());
        }
        if self.hidden_act != "silu" {
            return Err(format!("hidden_act '{}' is not supported (Qwen3 uses silu)", self.hidden_act));
        }
        let heads = self.num_attention_heads;
        if heads == 0 || self.kv_heads() == 0 || !heads.is_multiple_of(self.kv_heads()) {
            return Err(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {}",
                self.kv_heads()
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!("head_dim {} is odd; rotary embeddings need an even one", self.head_dim()));
        }
        Ok(())
    }
}

/// `weight · x / sqrt(mean(x²) + eps)`, computed in f32 as transformers does.
#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(RmsNorm { weight: vb.get(size, "weight")?, eps })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        x.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

#[derive(Debug)]
struct Layer {
    input_norm: RmsNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_norm: RmsNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

/// A Qwen3 decoder.
#[derive(Debug)]
pub struct Qwen3Model {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// `[vocab, hidden]`: `lm_head.weight`, or the embedding table when tied.
    lm_head: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// `1 / theta^(2i/d)` for `i < d/2`.
    inv_freq: Vec<f32>,
    hidden: usize,
    max_positions: usize,
}

impl Qwen3Model {
    /// Load from a VarBuilder rooted at the checkpoint (keys `model.…` and `lm_head.weight`).
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        c.check().map_err(candle_core::Error::Msg)?;
        let m = vb.pp("model");
        let (h, hd) = (c.hidden_size, c.head_dim());
        let (heads, kv) = (c.num_attention_heads, c.kv_heads());
        let proj = |i: usize, o: usize, vb: VarBuilder| -> candle_core::Result<Linear> {
            if c.attention_bias {
                linear_b(i, o, true, vb)
            } else {
                linear_no_bias(i, o, vb)
            }
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = m.pp(format!("layers.{i}"));
                let a = l.pp("self_attn");
                let mlp = l.pp("mlp");
                Ok(Layer {
                    input_norm: RmsNorm::load(h, c.rms_norm_eps, l.pp("input_layernorm"))?,
                    q_proj: proj(h, heads * hd, a.pp("q_proj"))?,
                    k_proj: proj(h, kv * hd, a.pp("k_proj"))?,
                    v_proj: proj(h, kv * hd, a.pp("v_proj"))?,
                    o_proj: proj(heads * hd, h, a.pp("o_proj"))?,
                    q_norm: RmsNorm::load(hd, c.rms_norm_eps, a.pp("q_norm"))?,
                    k_norm: RmsNorm::load(hd, c.rms_norm_eps, a.pp("k_norm"))?,
                    post_norm: RmsNorm::load(h, c.rms_norm_eps, l.pp("post_attention_layernorm"))?,
                    gate_proj: linear_no_bias(h, c.intermediate_size, mlp.pp("gate_proj"))?,
                    up_proj: linear_no_bias(h, c.intermediate_size, mlp.pp("up_proj"))?,
                    down_proj: linear_no_bias(c.intermediate_size, h, mlp.pp("down_proj"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed_tokens = embedding(c.vocab_size, h, m.pp("embed_tokens"))?;
        let lm_head = if c.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            embed_tokens.embeddings().clone()
        } else {
            vb.get((c.vocab_size, h), "lm_head.weight")?
        };
        let theta = c.rope_theta();
        let inv_freq = (0..hd / 2).map(|i| (1.0 / theta.powf((2 * i) as f64 / hd as f64)) as f32).collect();
        Ok(Qwen3Model {
            embed_tokens,
            layers,
            norm: RmsNorm::load(h, c.rms_norm_eps, m.pp("norm"))?,
            lm_head,
            heads,
            kv_heads: kv,
            head_dim: hd,
            inv_freq,
            hidden: h,
            max_positions: c.max_position_embeddings,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Rows of the output projection for `token_ids`: `[k, hidden]` (the logits of those tokens
    /// are `hidden_state · rowᵀ`).
    pub fn lm_head_rows(&self, token_ids: &[u32]) -> Result<Tensor> {
        let vocab = self.lm_head.dim(0)?;
        if let Some(&bad) = token_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::Tensor(candle_core::Error::Msg(format!(
                "token id {bad} is outside the output vocabulary ({vocab})"
            ))));
        }
        let ids = Tensor::new(token_ids, self.lm_head.device())?;
        Ok(self.lm_head.index_select(&ids, 0)?)
    }

    /// Final-norm hidden states at the last position of every row of a left-padded batch:
    /// `input_ids` `[batch, len]` u32, `attention_mask` `[batch, len]` with 1 for real tokens.
    /// Positions count from the first slot of the padded row, as transformers does when it is
    /// given no position ids (rotary embeddings are relative, so the offset does not matter
    /// beyond rounding).
    pub fn last_hidden(&self, input_ids: &Tensor, attention_mask: &[Vec<u8>]) -> Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let device = input_ids.device();
        let mut x = self.embed_tokens.forward(input_ids)?;
        let dtype = x.dtype();
        let (cos, sin) = self.rope(l, device, dtype)?;
        let mask = causal_mask(attention_mask, l, device)?.to_dtype(dtype)?;
        for layer in &self.layers {
            x = self.layer_forward(layer, &x, &cos, &sin, &mask, b, l)?;
        }
        let last = x.narrow(1, l - 1, 1)?.squeeze(1)?;
        Ok(self.norm.forward(&last)?)
    }

    /// cos and sin of every position, `[len, head_dim]` (the frequencies repeated for both halves).
    fn rope(&self, len: usize, device: &Device, dtype: DType) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut freqs = Vec::with_capacity(len * half * 2);
        for p in 0..len {
            let row: Vec<f32> = self.inv_freq.iter().map(|f| p as f32 * f).collect();
            freqs.extend_from_slice(&row);
            freqs.extend_from_slice(&row);
        }
        let freqs = Tensor::from_vec(freqs, (len, half * 2), device)?;
        Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
    }

    #[allow(clippy::too_many_arguments)]
    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        b: usize,
        l: usize,
    ) -> candle_core::Result<Tensor> {
        let hd = self.head_dim;
        let h = layer.input_norm.forward(x)?;
        let q = layer.q_proj.forward(&h)?.reshape((b, l, self.heads, hd))?;
        let k = layer.k_proj.forward(&h)?.reshape((b, l, self.kv_heads, hd))?;
        let v = layer.v_proj.forward(&h)?.reshape((b, l, self.kv_heads, hd))?;
        let q = rotate(&layer.q_norm.forward(&q)?.transpose(1, 2)?.contiguous()?, cos, sin)?;
        let k = rotate(&layer.k_norm.forward(&k)?.transpose(1, 2)?.contiguous()?, cos, sin)?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let groups = self.heads / self.kv_heads;
        let (k, v) = (repeat_kv(&k, groups)?, repeat_kv(&v, groups)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, self.heads * hd))?;
        let x = (x + layer.o_proj.forward(&ctx)?)?;
        let h = layer.post_norm.forward(&x)?;
        let gated = (candle_nn::ops::silu(&layer.gate_proj.forward(&h)?)? * layer.up_proj.forward(&h)?)?;
        x + layer.down_proj.forward(&gated)?
    }
}

/// `x·cos + rotate_half(x)·sin` over `[batch, heads, len, head_dim]`.
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// `[batch, kv_heads, len, d]` → `[batch, kv_heads · groups, len, d]`, each kv head repeated
/// `groups` times in place (transformers' `repeat_kv`).
fn repeat_kv(x: &Tensor, groups: usize) -> candle_core::Result<Tensor> {
    if groups == 1 {
        return Ok(x.clone());
    }
    let (b, kv, l, d) = x.dims4()?;
    x.unsqueeze(2)?.expand((b, kv, groups, l, d))?.reshape((b, kv * groups, l, d))
}

/// Additive `[batch, 1, len, len]` bias: 0 where query `i` may see key `j` (`j ≤ i` and `j` is a
/// real token), the f32 minimum elsewhere (so a padding row that sees nothing stays finite).
fn causal_mask(attention_mask: &[Vec<u8>], len: usize, device: &Device) -> candle_core::Result<Tensor> {
    let b = attention_mask.len();
    let mut bias = vec![0f32; b * len * len];
    for (r, row) in attention_mask.iter().enumerate() {
        for i in 0..len {
            for j in 0..len {
                if j > i || row.get(j).copied().unwrap_or(0) == 0 {
                    bias[(r * len + i) * len + j] = f32::MIN;
                }
            }
        }
    }
    Tensor::from_vec(bias, (b, 1, len, len), device)
}
