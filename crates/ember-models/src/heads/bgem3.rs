//! BGE-M3's heads (Chen et al., 2024, <https://arxiv.org/abs/2402.03216>), exactly as
//! FlagEmbedding 1.4.2 computes them (`EncoderOnlyEmbedderM3Model` and `M3Embedder`):
//!
//! - dense: CLS pooling + normalisation, done by the sentence pipeline (`1_Pooling`: cls);
//! - sparse (`_sparse_embedding` + `_process_token_weights`): `relu(sparse_linear(h_t))` per token,
//!   the largest weight per token id, the ids of the cls, eos, pad and unk tokens dropped, weights
//!   > 0 kept;
//! - ColBERT (`_colbert_embedding` + `_process_colbert_vecs`): `colbert_linear(h_t)` for every
//!   token but the first (CLS) — the closing `</s>` included —, each normalised to unit length.
//!
//! The heads are the files FlagEmbedding's repository ships beside the encoder:
//! `sparse_linear.pt` (`Linear(hidden, 1)`) and `colbert_linear.pt` (`Linear(hidden, dim)`),
//! torch pickles of the layers' state dicts (`weight`, `bias`), read with candle's pickle reader;
//! `sparse_linear.safetensors` / `colbert_linear.safetensors` with the same tensors win when
//! present.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module};
use ember_core::{l2_normalize, SparseVector, TokenVectors};
use serde_json::Value;

use crate::error::{without_backtrace, ModelError, Result};
use crate::tokenizer::TextTokenizer;

/// The sparse and ColBERT heads of a BGE-M3 checkpoint.
#[derive(Debug)]
pub struct BgeM3Heads {
    /// `sparse_linear`: weight row and bias.
    sparse: Option<(Vec<f32>, f32)>,
    colbert: Option<Linear>,
    colbert_dim: usize,
    /// Token ids whose weights are dropped from sparse vectors (cls, eos, pad, unk).
    special: BTreeSet<u32>,
    device: Device,
}

/// The special tokens FlagEmbedding drops, with XLM-R's spelling when the model's files do not
/// name them.
const DROPPED: [(&str, &str); 4] =
    [("cls_token", "<s>"), ("eos_token", "</s>"), ("pad_token", "<pad>"), ("unk_token", "<unk>")];

impl BgeM3Heads {
    /// Load the heads in `dir`, or `None` when it has neither head file. One head without the
    /// other is an error (FlagEmbedding needs both and would silently use random ones).
    pub fn load(dir: &Path, hidden: usize, tokenizer: &TextTokenizer, device: &Device) -> Result<Option<Self>> {
        let sparse_file = head_file(dir, "sparse_linear");
        let colbert_file = head_file(dir, "colbert_linear");
        let (sparse_file, colbert_file) = match (sparse_file, colbert_file) {
            (None, None) => return Ok(None),
            (Some(s), Some(c)) => (s, c),
            (Some(found), None) | (None, Some(found)) => {
                let missing = if found.to_string_lossy().contains("sparse_linear") {
                    "colbert_linear.pt"
                } else {
                    "sparse_linear.pt"
                };
                return Err(ModelError::Weights {
                    path: dir.join(missing),
                    message: format!(
                        "BGE-M3 head file is missing ({} is there; both sparse_linear and colbert_linear are needed)",
                        found.file_name().unwrap_or_default().to_string_lossy()
                    ),
                });
            }
        };
        let (w, b) = read_linear(&sparse_file, hidden)?;
        if w.dim(0)? != 1 {
            return Err(ModelError::Weights {
                path: sparse_file,
                message: format!("weight has shape {:?}, expected [1, {hidden}]", w.dims()),
            });
        }
        let sparse_w: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let sparse_b = b.to_vec1::<f32>()?[0];
        let (cw, cb) = read_linear(&colbert_file, hidden)?;
        let colbert_dim = cw.dim(0)?;
        Ok(Some(BgeM3Heads {
            sparse: Some((sparse_w, sparse_b)),
            colbert: Some(Linear::new(cw.to_device(device)?, Some(cb.to_device(device)?))),
            colbert_dim,
            special: special_ids(dir, tokenizer)?,
            device: device.clone(),
        }))
    }

    pub fn has_sparse(&self) -> bool {
        self.sparse.is_some()
    }

    pub fn has_colbert(&self) -> bool {
        self.colbert.is_some()
    }

    /// Size of each ColBERT vector.
    pub fn colbert_dim(&self) -> usize {
        self.colbert_dim
    }

    /// The token ids left out of sparse vectors.
    pub fn dropped_ids(&self) -> &BTreeSet<u32> {
        &self.special
    }

    /// One sparse vector per sequence: the largest `relu(w · h_t + b)` per token id.
    pub fn sparse(&self, hidden: &[f32], hidden_size: usize, rows: &[&[u32]]) -> Result<Vec<SparseVector>> {
        let Some((w, b)) = &self.sparse else {
            return Ok(vec![Vec::new(); rows.len()]);
        };
        let mut at = 0;
        let mut out = Vec::with_capacity(rows.len());
        for ids in rows {
            let mut best: BTreeMap<u32, f32> = BTreeMap::new();
            for &id in ids.iter() {
                let h = &hidden[at * hidden_size..(at + 1) * hidden_size];
                at += 1;
                let weight = (ember_core::dot(h, w) + b).max(0.0);
                if weight > 0.0 && !self.special.contains(&id) {
                    let e = best.entry(id).or_insert(0.0);
                    *e = e.max(weight);
                }
            }
            out.push(best.into_iter().collect());
        }
        Ok(out)
    }

    /// One set of ColBERT vectors per sequence (`lengths` tokens each, back to back in
    /// `hidden`): every token after the first, projected and normalised.
    pub fn colbert(&self, hidden: &[f32], hidden_size: usize, lengths: &[usize]) -> Result<Vec<TokenVectors>> {
        let Some(linear) = &self.colbert else {
            return Ok(vec![Vec::new(); lengths.len()]);
        };
        let mut kept = Vec::with_capacity(hidden.len());
        let mut at = 0;
        for &n in lengths {
            if n > 1 {
                kept.extend_from_slice(&hidden[(at + 1) * hidden_size..(at + n) * hidden_size]);
            }
            at += n;
        }
        let rows = kept.len() / hidden_size;
        let mut projected: Vec<Vec<f32>> = if rows == 0 {
            Vec::new()
        } else {
            let x = Tensor::from_vec(kept, (rows, hidden_size), &self.device)?;
            linear.forward(&x)?.to_dtype(DType::F32)?.to_vec2()?
        };
        for v in &mut projected {
            l2_normalize(v);
        }
        let mut projected = projected.into_iter();
        Ok(lengths.iter().map(|&n| projected.by_ref().take(n.saturating_sub(1)).collect()).collect())
    }
}

/// `<stem>.safetensors` if present, else `<stem>.pt`.
fn head_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["safetensors", "pt"].iter().map(|ext| dir.join(format!("{stem}.{ext}"))).find(|p| p.exists())
}

/// `weight` `[out, hidden]` and `bias` `[out]` of a saved `nn.Linear`, as f32 on the CPU.
fn read_linear(path: &Path, hidden: usize) -> Result<(Tensor, Tensor)> {
    let bad = |message: String| ModelError::Weights { path: path.to_path_buf(), message };
    let tensors: HashMap<String, Tensor> = if path.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| bad(format!("cannot read the BGE-M3 head: {}", without_backtrace(e))))?
    } else {
        candle_core::pickle::read_all(path)
            .map_err(|e| bad(format!("cannot read the BGE-M3 head (a torch pickle): {}", without_backtrace(e))))?
            .into_iter()
            .collect()
    };
    let get = |name: &str| -> Result<Tensor> {
        let t = tensors.get(name).ok_or_else(|| {
            let mut found: Vec<&str> = tensors.keys().map(String::as_str).collect();
            found.sort_unstable();
            bad(format!(
                "no tensor '{name}' (found: {})",
                if found.is_empty() { "none".into() } else { found.join(", ") }
            ))
        })?;
        Ok(t.to_dtype(DType::F32)?)
    };
    let (w, b) = (get("weight")?, get("bias")?);
    let out = w.dims().first().copied().unwrap_or(0);
    if w.dims() != [out, hidden] || b.dims() != [out] || out == 0 {
        return Err(bad(format!(
            "weight {:?} and bias {:?} do not make a Linear({hidden}, n) for this encoder (hidden size {hidden})",
            w.dims(),
            b.dims()
        )));
    }
    Ok((w, b))
}

/// The ids of the cls, eos, pad and unk tokens, named by `special_tokens_map.json` or
/// `tokenizer_config.json` when present (as transformers' `special_tokens_map`), XLM-R's otherwise.
fn special_ids(dir: &Path, tokenizer: &TextTokenizer) -> Result<BTreeSet<u32>> {
    let mut named: HashMap<String, String> = HashMap::new();
    for file in ["tokenizer_config.json", "special_tokens_map.json"] {
        let path = dir.join(file);
        if !path.exists() {
            continue;
        }
        let value: Value = crate::st::read_json(&path)?;
        for (key, _) in DROPPED {
            let token = match value.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
                _ => None,
            };
            if let Some(t) = token {
                named.insert(key.to_string(), t);
            }
        }
    }
    Ok(DROPPED
        .iter()
        .filter_map(|(key, default)| {
            let token = named.get(*key).map(String::as_str).unwrap_or(*default);
            tokenizer.token_to_id(token)
        })
        .collect())
}
