//! The encoder loop of BERT-shaped models on packed sequences: embeddings, then per layer
//! fused QKV projection → attention → output projection + residual → LayerNorm → FFN with
//! fused activation → projection + residual → LayerNorm. What differs between architectures
//! comes in as data: the position offset, whether token-type embeddings exist, and an optional
//! relative-distance attention bias (MPNet).

use candle_core::{DType, Storage, Tensor};
use candle_nn::{Embedding, LayerNorm as CandleLayerNorm, Linear};
use rayon::prelude::*;

use super::attention::{self, DistanceBias};
use super::gemm::{Epilogue, PackedLinear};
use super::layer_norm::LayerNorm;
use crate::arch::Activation;

/// Rows per task when a pass is split between threads by rows: the FFN's intermediate values
/// of one task (rows × 4·hidden f32, and their bfloat16 halves) then stay in the core's L2.
const ROW_CHUNK: usize = 64;
/// From this many tokens in a pass, the linear layers are split between threads by rows (each
/// thread runs whole rows, all columns); below it, each product splits its columns, which
/// shares the reading of the weights when there are few rows.
const ROW_CHUNKED_MIN_TOKENS: usize = 256;

thread_local! {
    /// [`CpuEncoder::token_wise`]'s buffers, reused across calls.
    static TOKEN_WISE: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The checkpoint's embedding modules.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingWeights<'a> {
    pub word: &'a Embedding,
    pub position: &'a Embedding,
    /// BERT's token-type table; type 0 is added to every token. MPNet has none.
    pub token_type: Option<&'a Embedding>,
    pub norm: &'a CandleLayerNorm,
    /// Position id of a sequence's first token (RoBERTa-style models: `pad_token_id + 1`).
    pub position_offset: usize,
}

/// One transformer layer's modules, as candle loaded them.
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    pub query: &'a Linear,
    pub key: &'a Linear,
    pub value: &'a Linear,
    pub attn_out: &'a Linear,
    pub attn_norm: &'a CandleLayerNorm,
    pub intermediate: &'a Linear,
    pub output: &'a Linear,
    pub out_norm: &'a CandleLayerNorm,
}

#[derive(Debug)]
struct Layer {
    /// Query, key and value stacked into one `[3·hidden, hidden]` product.
    qkv: PackedLinear,
    attn_out: PackedLinear,
    attn_norm: LayerNorm,
    intermediate: PackedLinear,
    output: PackedLinear,
    out_norm: LayerNorm,
}

/// A BERT-shaped encoder running on the CPU in f32 without padding.
#[derive(Debug)]
pub struct CpuEncoder {
    /// `[vocab, hidden]`, shared with candle's copy (no duplicate of the largest table).
    word: Tensor,
    vocab: usize,
    position: Vec<f32>,
    max_position: usize,
    /// Token type 0's row, added to every token.
    token_type: Option<Vec<f32>>,
    norm: LayerNorm,
    position_offset: usize,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    act: Activation,
}

impl CpuEncoder {
    /// Pack the weights for the CPU path, or `None` when they are not f32 tensors on the CPU
    /// (those models keep candle's path).
    pub fn build(
        embeddings: EmbeddingWeights<'_>,
        layers: &[LayerWeights<'_>],
        heads: usize,
        act: Activation,
    ) -> candle_core::Result<Option<Self>> {
        let word = embeddings.word.embeddings();
        if !word.device().is_cpu() || word.dtype() != DType::F32 {
            return Ok(None);
        }
        let (vocab, hidden) = word.dims2()?;
        let position_table = embeddings.position.embeddings();
        let max_position = position_table.dims2()?.0;
        let token_type = match embeddings.token_type {
            Some(t) => Some(t.embeddings().get(0)?.to_vec1::<f32>()?),
            None => None,
        };
        let layers = layers.iter().map(pack_layer).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Some(CpuEncoder {
            word: word.contiguous()?,
            vocab,
            position: values(position_table)?,
            max_position,
            token_type,
            norm: layer_norm(embeddings.norm)?,
            position_offset: embeddings.position_offset,
            layers,
            heads,
            hidden,
            act,
        }))
    }

    /// Token embeddings of the sequences in `ids` (back to back, `lengths` long):
    /// `sum(lengths) × hidden` values.
    pub fn forward(
        &self,
        ids: &[u32],
        lengths: &[usize],
        bias: Option<DistanceBias<'_>>,
    ) -> candle_core::Result<Vec<f32>> {
        // The whole pass runs on one of rayon's workers: kernels called from a worker split
        // work by stealing, whereas each one called from outside the pool would hand its work
        // over and sleep until woken (tens of µs per kernel, ~30 kernels per pass).
        rayon::scope(|_| self.forward_on_worker(ids, lengths, bias))
    }

    fn forward_on_worker(
        &self,
        ids: &[u32],
        lengths: &[usize],
        bias: Option<DistanceBias<'_>>,
    ) -> candle_core::Result<Vec<f32>> {
        let tokens: usize = lengths.iter().sum();
        if ids.len() != tokens {
            candle_core::bail!("{} token ids for sequences of {tokens} tokens in all", ids.len());
        }
        let h = self.hidden;
        let mut x = vec![0f32; tokens * h];
        self.embed(ids, lengths, &mut x)?;
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut ctx = vec![0f32; tokens * h];
        if tokens >= ROW_CHUNKED_MIN_TOKENS && rayon::current_num_threads() > 1 {
            let chunk = ROW_CHUNK;
            for layer in &self.layers {
                qkv.par_chunks_mut(chunk * 3 * h)
                    .zip(x.par_chunks(chunk * h))
                    .for_each(|(q, xs)| layer.qkv.forward_serial(xs, xs.len() / h, q, Epilogue::Bias));
                attention::attend(&qkv, lengths, self.heads, bias, &mut ctx);
                x.par_chunks_mut(chunk * h)
                    .zip(ctx.par_chunks(chunk * h))
                    .for_each(|(xs, cs)| self.token_wise(layer, cs, xs));
            }
            return Ok(x);
        }
        let inner = self.layers.first().map_or(0, |l| l.intermediate.n());
        let mut y = vec![0f32; tokens * h];
        let mut ffn = vec![0f32; tokens * inner];
        for layer in &self.layers {
            layer.qkv.forward(&x, tokens, &mut qkv, Epilogue::Bias);
            attention::attend(&qkv, lengths, self.heads, bias, &mut ctx);
            layer.attn_out.forward(&ctx, tokens, &mut y, Epilogue::Residual(&x));
            layer.attn_norm.forward(&mut y);
            layer.intermediate.forward(&y, tokens, &mut ffn, Epilogue::Activation(self.act));
            layer.output.forward(&ffn, tokens, &mut x, Epilogue::Residual(&y));
            layer.out_norm.forward(&mut x);
        }
        Ok(x)
    }

    /// The part of a layer after attention, which works token by token, on the rows `x` (the
    /// layer's input, replaced by its output) with their attention context `ctx`, on the
    /// calling thread: output projection + residual, LayerNorm, FFN, residual, LayerNorm. The
    /// intermediate values of a few dozen rows stay in this core's cache.
    fn token_wise(&self, layer: &Layer, ctx: &[f32], x: &mut [f32]) {
        let h = self.hidden;
        let rows = x.len() / h;
        let inner = layer.intermediate.n();
        let mut buffers = TOKEN_WISE.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        let (y, ffn) = (&mut buffers.0, &mut buffers.1);
        y.resize(rows * h, 0.0);
        ffn.resize(rows * inner, 0.0);
        layer.attn_out.forward_serial(ctx, rows, y, Epilogue::Residual(x));
        layer.attn_norm.forward_serial(y);
        layer.intermediate.forward_serial(y, rows, ffn, Epilogue::Activation(self.act));
        layer.output.forward_serial(ffn, rows, x, Epilogue::Residual(y));
        layer.out_norm.forward_serial(x);
        TOKEN_WISE.with(|cell| *cell.borrow_mut() = buffers);
    }

    /// Word + position (+ token type 0) embeddings, then LayerNorm, into `x`.
    fn embed(&self, ids: &[u32], lengths: &[usize], x: &mut [f32]) -> candle_core::Result<()> {
        let h = self.hidden;
        let (storage, layout) = self.word.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("word embeddings are not on the CPU");
        };
        let start = layout.start_offset();
        let table = &cpu.as_slice::<f32>()?[start..start + self.vocab * h];
        let mut rest = &mut *x;
        let mut at = 0;
        for &n in lengths {
            if self.position_offset + n > self.max_position {
                candle_core::bail!(
                    "a sequence of {n} tokens is longer than the model's {} positions",
                    self.max_position - self.position_offset
                );
            }
            let (seq, tail) = std::mem::take(&mut rest).split_at_mut(n * h);
            rest = tail;
            for (i, (row, &id)) in seq.chunks_exact_mut(h).zip(&ids[at..at + n]).enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    candle_core::bail!("token id {id} is outside the vocabulary of {}", self.vocab);
                }
                let word = &table[id * h..(id + 1) * h];
                let p = self.position_offset + i;
                let pos = &self.position[p * h..(p + 1) * h];
                for ((o, w), q) in row.iter_mut().zip(word).zip(pos) {
                    *o = w + q;
                }
                if let Some(tt) = &self.token_type {
                    for (o, t) in row.iter_mut().zip(tt) {
                        *o += t;
                    }
                }
            }
            at += n;
        }
        drop(storage);
        self.norm.forward(x);
        Ok(())
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

fn layer_norm(ln: &CandleLayerNorm) -> candle_core::Result<LayerNorm> {
    let gamma = values(ln.weight())?;
    let beta = match ln.bias() {
        Some(b) => values(b)?,
        None => vec![0.0; gamma.len()],
    };
    if !ln.remove_mean() {
        candle_core::bail!("RMS norm is not supported by the CPU encoder");
    }
    Ok(LayerNorm { gamma, beta, eps: ln.eps() as f32 })
}

fn pack(linears: &[&Linear]) -> candle_core::Result<PackedLinear> {
    let mut weight = Vec::new();
    let mut bias = Vec::new();
    let mut n = 0;
    let mut k = 0;
    for l in linears {
        let (out, inp) = l.weight().dims2()?;
        if n > 0 && inp != k {
            candle_core::bail!("stacked projections take {k} and {inp} inputs");
        }
        k = inp;
        n += out;
        weight.extend(values(l.weight())?);
        match l.bias() {
            Some(b) => bias.extend(values(b)?),
            None => bias.extend(std::iter::repeat_n(0.0, out)),
        }
    }
    Ok(PackedLinear::new(&weight, Some(&bias), n, k))
}

fn pack_layer(l: &LayerWeights<'_>) -> candle_core::Result<Layer> {
    Ok(Layer {
        qkv: pack(&[l.query, l.key, l.value])?,
        attn_out: pack(&[l.attn_out])?,
        attn_norm: layer_norm(l.attn_norm)?,
        intermediate: pack(&[l.intermediate])?,
        output: pack(&[l.output])?,
        out_norm: layer_norm(l.out_norm)?,
    })
}
