//! Scaled dot-product attention over a padded batch, shared by every encoder.

use candle_core::{DType, Tensor};

/// Turn a `[batch, len]` 0/1 mask into an additive bias `[batch, 1, 1, len]`: 0 for real tokens
/// and the dtype's minimum for padding, exactly as transformers builds it.
pub fn mask_bias(attention_mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, l) = attention_mask.dims2()?;
    let inverted = (1.0 - attention_mask.to_dtype(DType::F32)?)?;
    (inverted * f64::from(f32::MIN))?.reshape((b, 1, 1, l))
}

/// Split `[batch, len, heads × head_dim]` into `[batch, heads, len, head_dim]`.
pub fn split_heads(x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, l, h) = x.dims3()?;
    x.reshape((b, l, heads, h / heads))?.transpose(1, 2)?.contiguous()
}

/// softmax(q·kᵀ / √d + bias + mask)·v, merged back to `[batch, len, hidden]`.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    mask: &Tensor,
    position_bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, l, h) = q.dims3()?;
    let scale = 1.0 / ((h / heads) as f64).sqrt();
    let q = split_heads(q, heads)?;
    let k = split_heads(k, heads)?;
    let v = split_heads(v, heads)?;
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(bias) = position_bias {
        scores = scores.broadcast_add(bias)?;
    }
    let scores = scores.broadcast_add(mask)?;
    // One fused kernel (f32 accumulation for f16/bf16) instead of max/sub/exp/sum/div.
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))
}
