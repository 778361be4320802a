//! SPLADE (Formal et al., 2021, <https://arxiv.org/abs/2107.05720>; v2
//! <https://arxiv.org/abs/2109.10086>): a masked-language-model head turns every token embedding
//! into logits over the vocabulary, and the text's weight for term `j` is
//! `max over tokens t of log(1 + relu(logit[t, j]))`, the maximum taken over real (non-padding)
//! tokens, special tokens included (naver/splade's `SpladeMaxPooling`, sentence-transformers'
//! `SpladePooling`). Terms with weight 0 are left out.
//!
//! The head is transformers' `BertForMaskedLM` `cls.predictions` (`transform.dense` →
//! `hidden_act` → `transform.LayerNorm` → `decoder`, tied to the word embeddings, + `bias`), or the
//! RoBERTa/MPNet `lm_head` (`dense` → gelu → `layer_norm` → `decoder` + `bias`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{LayerNorm, Linear, Module};
use ember_core::SparseVector;

use super::find_tensor;
use crate::arch::{Activation, ArchConfig};
use crate::error::{ModelError, Result};

/// Rows of logits computed at once (`rows × vocab` floats: 256 × 30,522 × 4 B = 31 MB).
const ROWS_PER_BLOCK: usize = 256;

/// A masked-language-model head used for SPLADE.
#[derive(Debug)]
pub struct SpladeHead {
    transform: Linear,
    activation: Activation,
    norm: LayerNorm,
    /// `[vocab, hidden]`, the word embeddings when tied.
    decoder: Tensor,
    /// `[vocab]`.
    bias: Tensor,
    device: Device,
}

struct HeadNames {
    dense: &'static str,
    norm: &'static str,
    decoder: &'static str,
    biases: [&'static str; 2],
}

const BERT_NAMES: HeadNames = HeadNames {
    dense: "cls.predictions.transform.dense",
    norm: "cls.predictions.transform.LayerNorm",
    decoder: "cls.predictions.decoder.weight",
    biases: ["cls.predictions.bias", "cls.predictions.decoder.bias"],
};

const LM_HEAD_NAMES: HeadNames = HeadNames {
    dense: "lm_head.dense",
    norm: "lm_head.layer_norm",
    decoder: "lm_head.decoder.weight",
    biases: ["lm_head.bias", "lm_head.decoder.bias"],
};

impl SpladeHead {
    /// Whether the checkpoint carries an MLM head (its transform layer) for this architecture.
    pub fn present(arch: &ArchConfig, tensors: &HashMap<String, Tensor>) -> bool {
        let names = match arch {
            ArchConfig::Bert(_) => &BERT_NAMES,
            ArchConfig::XlmRoberta(_) | ArchConfig::MPNet(_) => &LM_HEAD_NAMES,
        };
        find_tensor(tensors, &format!("{}.weight", names.dense)).is_some()
    }

    /// Load the MLM head of an `architecture` (`BertForMaskedLM`, …) checkpoint from its tensors.
    pub fn load(
        architecture: &str,
        arch: &ArchConfig,
        tensors: &HashMap<String, Tensor>,
        weights_path: &Path,
        device: &Device,
    ) -> Result<Self> {
        let (names, activation, eps) = match arch {
            ArchConfig::Bert(c) => (&BERT_NAMES, c.hidden_act, c.layer_norm_eps),
            // RobertaLMHead / MPNetLMHead apply gelu whatever hidden_act says.
            ArchConfig::XlmRoberta(c) => (&LM_HEAD_NAMES, Activation::Gelu, c.bert.layer_norm_eps),
            ArchConfig::MPNet(c) => (&LM_HEAD_NAMES, Activation::Gelu, c.layer_norm_eps),
        };
        let get = |name: &str| -> Result<Tensor> {
            let t = find_tensor(tensors, name).ok_or_else(|| ModelError::Weights {
                path: weights_path.to_path_buf(),
                message: format!(
                    "{architecture} checkpoint without its masked-language-model head: no tensor '{name}'"
                ),
            })?;
            Ok(t.to_dtype(DType::F32)?)
        };
        let hidden = arch.hidden_size();
        let dense_w = get(&format!("{}.weight", names.dense))?;
        let decoder = match find_tensor(tensors, names.decoder) {
            Some(t) => t.to_dtype(DType::F32)?,
            // tied to the input embeddings (tie_word_embeddings, the default)
            None => get("embeddings.word_embeddings.weight")?,
        };
        let bias = match names.biases.iter().find_map(|b| find_tensor(tensors, b)) {
            Some(t) => t.to_dtype(DType::F32)?,
            None => get(names.biases[0])?,
        };
        let vocab = decoder.dim(0)?;
        let shape_error = |what: &str, dims: &[usize], want: String| ModelError::Weights {
            path: weights_path.to_path_buf(),
            message: format!("{what} has shape {dims:?}, expected {want}"),
        };
        if dense_w.dims() != [hidden, hidden] {
            return Err(shape_error(names.dense, dense_w.dims(), format!("[{hidden}, {hidden}]")));
        }
        if decoder.dims() != [vocab, hidden] {
            return Err(shape_error(names.decoder, decoder.dims(), format!("[vocab, {hidden}]")));
        }
        if bias.dims() != [vocab] {
            return Err(shape_error(names.biases[0], bias.dims(), format!("[{vocab}]")));
        }
        Ok(SpladeHead {
            transform: Linear::new(dense_w, Some(get(&format!("{}.bias", names.dense))?)),
            activation,
            norm: LayerNorm::new(get(&format!("{}.weight", names.norm))?, get(&format!("{}.bias", names.norm))?, eps),
            decoder,
            bias,
            device: device.clone(),
        })
    }

    /// Size of the vocabulary the sparse vectors index.
    pub fn vocab_size(&self) -> usize {
        self.bias.dims1().unwrap_or(0)
    }

    /// Vocabulary logits of `rows` consecutive token embeddings: `[rows, vocab]`.
    fn logits(&self, hidden: &[f32], rows: usize) -> candle_core::Result<Tensor> {
        let x = Tensor::from_slice(hidden, (rows, hidden.len() / rows), &self.device)?;
        let x = self.activation.apply(&self.transform.forward(&x)?)?;
        let x = self.norm.forward(&x)?;
        x.matmul(&self.decoder.t()?)?.broadcast_add(&self.bias)
    }

    /// One sparse vector per sequence (`lengths` tokens each, back to back in `hidden`).
    pub fn sparse(&self, hidden: &[f32], hidden_size: usize, lengths: &[usize]) -> Result<Vec<SparseVector>> {
        let vocab = self.vocab_size();
        let mut out = Vec::with_capacity(lengths.len());
        let mut first = 0; // first sequence of the next block
        let mut at = 0; // its first token
        while first < lengths.len() {
            // a block of whole sequences up to ROWS_PER_BLOCK tokens (a longer sequence alone)
            let mut end = first;
            let mut rows = 0;
            while end < lengths.len() && (end == first || rows + lengths[end] <= ROWS_PER_BLOCK) {
                rows += lengths[end];
                end += 1;
            }
            // per sequence, the largest logit of every term (log1p∘relu is monotone, so it is
            // applied to the maximum afterwards)
            let mut maxima: Vec<Option<Vec<f32>>> = vec![None; end - first];
            let mut start = 0;
            while start < rows {
                let take = ROWS_PER_BLOCK.min(rows - start);
                let base = (at + start) * hidden_size;
                let logits: Vec<f32> =
                    self.logits(&hidden[base..base + take * hidden_size], take)?.flatten_all()?.to_vec1()?;
                // the sequences that overlap rows start..start+take of this block; the running
                // maximum is a plain loop over contiguous rows (vectorised), cheaper than a
                // strided reduction
                let mut seq_start = 0;
                for (k, &n) in lengths[first..end].iter().enumerate() {
                    let (lo, hi) = (seq_start.max(start), (seq_start + n).min(start + take));
                    seq_start += n;
                    for r in lo..hi {
                        let row = &logits[(r - start) * vocab..(r - start + 1) * vocab];
                        match &mut maxima[k] {
                            Some(m) => m.iter_mut().zip(row).for_each(|(a, &b)| *a = a.max(b)),
                            slot => *slot = Some(row.to_vec()),
                        }
                    }
                }
                start += take;
            }
            for m in maxima {
                out.push(m.map(|m| to_sparse(&m)).unwrap_or_default());
            }
            debug_assert!(out.iter().all(|v| v.last().is_none_or(|&(id, _)| (id as usize) < vocab)));
            at += rows;
            first = end;
        }
        Ok(out)
    }
}

/// `log(1 + relu(x))` of every term's largest logit, terms with weight 0 left out.
fn to_sparse(max_logits: &[f32]) -> SparseVector {
    max_logits
        .iter()
        .enumerate()
        .filter(|(_, &x)| x > 0.0)
        .map(|(id, &x)| (id as u32, x.ln_1p()))
        .filter(|&(_, w)| w > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_log1p_of_positive_logits_only() {
        let v = to_sparse(&[-1.0, 0.0, 1.0, f32::MIN_POSITIVE, 3.0]);
        assert_eq!(v.iter().map(|p| p.0).collect::<Vec<_>>(), [2, 3, 4]);
        assert!((v[0].1 - 2f32.ln()).abs() < 1e-7);
        assert!(v[1].1 > 0.0);
        assert!((v[2].1 - 4f32.ln()).abs() < 1e-6);
    }
}
