//! A sentence embedder: tokenizer → encoder → pooling → Dense → Normalize, as a
//! sentence-transformers model directory describes it, with prompts, Matryoshka truncation and
//! token-budget batching.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module};
use ember_core::embedder::BoxError;
use ember_core::{
    l2_normalize, plan_batches, pooling, truncate_dimensions, EmbedOptions, Embedder, Embeddings, MultiEmbeddings,
    OutputKinds, PoolingMode, Similarity, UnsupportedOutput,
};

use crate::arch::{ArchConfig, Encoder};
use crate::catalog;
use crate::error::{ModelError, Result};
use crate::heads::OutputHeads;
use crate::st::{DenseActivation, DenseConfig, SentenceConfig};
use crate::tokenizer::{TextTokenizer, Tokens};
use crate::weights;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// Compute dtype (weights are converted on load). f32 is the default; f16 and bf16 run
    /// through candle's kernels (the fast padding-free CPU path is f32 only).
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: Device::Cpu, dtype: DType::F32 }
    }
}

/// Default number of padded token slots per forward pass.
pub const DEFAULT_TOKEN_BUDGET: usize = 16_384;
/// Default inputs per forward pass (sentence-transformers' default batch size).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// What `ember models info` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub path: PathBuf,
    pub architecture: String,
    pub hidden_size: usize,
    pub dimension: usize,
    pub pooling: Vec<PoolingMode>,
    pub normalize: bool,
    pub max_seq_length: usize,
    pub prompts: BTreeMap<String, String>,
    pub default_prompt_name: Option<String>,
    pub similarity: Similarity,
    pub parameters: usize,
    pub vocab_size: usize,
    pub files: Vec<String>,
    /// The kinds of output the model produces: `dense`, `sparse`, `multivector`.
    pub outputs: Vec<String>,
    /// Task heads after the encoder: `none`, `splade`, `bge-m3`.
    pub heads: String,
}

#[derive(Debug)]
struct DenseLayer {
    linear: Linear,
    activation: DenseActivation,
}

/// Inputs tokenized for embedding ([`SentenceEmbedder::tokenize_for_embedding`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingTokens {
    /// One per input, prompt included, truncated to the model's (or the asked) length.
    pub tokens: Vec<Tokens>,
    /// Leading tokens of every input that pooling leaves out: the prompt, when the model's
    /// Pooling module says `include_prompt: false`; 0 otherwise.
    pub masked_prefix: usize,
}

/// What a caller that batches sequences itself (a server's queue) wants from one sequence of a
/// forward pass ([`SentenceEmbedder::run_sequences`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceOutput {
    /// The pooled, Dense-projected vector, before normalisation ([`SentenceEmbedder::embed_tokens`]).
    Pooled,
    /// The sparse head's vector (SPLADE, BGE-M3).
    Sparse,
    /// The ColBERT head's token vectors (BGE-M3).
    Colbert,
    /// The encoder's last hidden state of every token, special tokens included, no pooling
    /// (text-embeddings-inference's `/embed_all`).
    Hidden,
}

/// One sequence's answer from [`SentenceEmbedder::run_sequences`].
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceResult {
    Pooled(Vec<f32>),
    Sparse(ember_core::SparseVector),
    Tokens(ember_core::TokenVectors),
}

/// A loaded embedding model.
#[derive(Debug)]
pub struct SentenceEmbedder {
    id: String,
    dir: PathBuf,
    arch: ArchConfig,
    encoder: Box<dyn Encoder>,
    tokenizer: TextTokenizer,
    config: SentenceConfig,
    dense: Vec<DenseLayer>,
    device: Device,
    dtype: DType,
    parameters: usize,
    dimension: usize,
    /// SPLADE / BGE-M3 heads (`DenseOnly` for plain embedding models).
    heads: OutputHeads,
}

impl SentenceEmbedder {
    /// Load the model in `dir`; `id` names it in errors and output (hub id or path).
    pub fn load(id: &str, dir: &Path, options: &LoadOptions) -> Result<Self> {
        let arch = ArchConfig::load(&dir.join("config.json"))?;
        let mut config = SentenceConfig::load(dir)?;
        if let Some(entry) = catalog::lookup(id).or_else(|| catalog::lookup(&dir.to_string_lossy())) {
            for (name, prompt) in &entry.prompts {
                config.prompts.entry(name.clone()).or_insert_with(|| prompt.clone());
            }
            if !config.from_modules {
                if let Some(p) = &entry.pooling {
                    config.pooling = p.clone();
                }
                config.normalize = entry.normalize.unwrap_or(config.normalize);
            }
            config.max_seq_length = config.max_seq_length.or(entry.max_seq_length);
        }
        let files = weights::weight_files(dir)?;
        let tensors = weights::load_tensors(&files, options.dtype, &options.device)?;
        let parameters = tensors.values().map(|t| t.elem_count()).sum();
        // The heads read tensors the encoder does not (cheap clones: tensors share storage).
        let head_tensors = tensors.clone();
        let vb = weights::encoder_var_builder(tensors, arch.embedding_key(), options.dtype, &options.device, dir)
            .map_err(|e| annotate(e, &files))?;
        let encoder = arch.build(vb, &options.device).map_err(|e| annotate(e, &files))?;
        let max_len = config.max_seq_length.unwrap_or(usize::MAX).min(encoder.max_positions());
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"), config.do_lower_case, max_len)?;
        let weights_path = files.first().cloned().unwrap_or_else(|| dir.to_path_buf());
        let heads = OutputHeads::detect(dir, &arch, &head_tensors, &weights_path, &tokenizer, &options.device)?;
        drop(head_tensors);
        if matches!(heads, OutputHeads::BgeM3(_)) && !config.from_modules {
            // FlagEmbedding's BGE-M3 dense vector: CLS, normalised.
            config.pooling = vec![PoolingMode::Cls];
            config.normalize = true;
        }
        let hidden = encoder.hidden_size() * config.pooling.len();
        let mut dimension = hidden;
        let mut dense = Vec::new();
        for d in &config.dense {
            if d.in_features != dimension {
                return Err(ModelError::invalid(
                    d.dir.join("config.json"),
                    format!("in_features {} does not match the previous output size {dimension}", d.in_features),
                ));
            }
            dense.push(load_dense(d, options)?);
            dimension = d.out_features;
        }
        if let OutputHeads::Splade(head) = &heads {
            // sparse only: its vectors index the vocabulary
            dimension = head.vocab_size();
        }
        // Weights are copied and converted asynchronously on a GPU; finish before handing the
        // model to whichever thread will run it.
        options.device.synchronize()?;
        Ok(SentenceEmbedder {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            arch,
            encoder,
            tokenizer,
            config,
            dense,
            device: options.device.clone(),
            dtype: options.dtype,
            parameters,
            dimension,
            heads,
        })
    }

    pub fn info(&self) -> ModelInfo {
        let mut files: Vec<String> = walk(&self.dir)
            .into_iter()
            .filter_map(|p| p.strip_prefix(&self.dir).ok().map(|p| p.to_string_lossy().into_owned()))
            .collect();
        files.sort();
        ModelInfo {
            id: self.id.clone(),
            path: self.dir.clone(),
            architecture: self.arch.name().to_string(),
            hidden_size: self.arch.hidden_size(),
            dimension: self.dimension,
            pooling: self.config.pooling.clone(),
            normalize: self.config.normalize,
            max_seq_length: self.tokenizer.max_length(),
            prompts: self.config.prompts.clone(),
            default_prompt_name: self.config.default_prompt_name.clone(),
            similarity: self.config.similarity,
            parameters: self.parameters,
            vocab_size: self.tokenizer.vocab_size(),
            files,
            outputs: self.outputs().names().split(',').filter(|n| !n.is_empty()).map(str::to_string).collect(),
            heads: self.heads.name().to_string(),
        }
    }

    /// Inputs are truncated to this many tokens, special tokens included.
    /// Counts tokens as this model sees them (no special tokens, no truncation): for chunking.
    pub fn token_count(&self) -> Result<crate::tokenizer::TokenCount> {
        self.tokenizer.token_count()
    }

    pub fn max_seq_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The compute dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn similarity(&self) -> Similarity {
        self.config.similarity
    }

    /// The prompt an option set selects: a literal prompt, a named one, or the model's default.
    pub fn select_prompt(&self, options: &EmbedOptions) -> Result<Option<String>> {
        if let Some(p) = &options.prompt {
            return Ok(Some(p.clone()));
        }
        let name = options.prompt_name.as_ref().or(self.config.default_prompt_name.as_ref());
        match name {
            None => Ok(None),
            Some(name) => match self.config.prompts.get(name) {
                Some(p) => Ok(Some(p.clone())),
                None => Err(ModelError::UnknownPrompt {
                    name: name.clone(),
                    known: if self.config.prompts.is_empty() {
                        "no prompts".to_string()
                    } else {
                        self.config.prompts.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                }),
            },
        }
    }

    /// The token ids the model would see for `texts` under `options` (prompt and truncation
    /// applied).
    pub fn tokenize<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EmbedOptions,
    ) -> Result<Vec<crate::tokenizer::Tokens>> {
        let (inputs, tokenizer) = self.prepare(texts, options)?;
        tokenizer.encode(&inputs)
    }

    fn prepare<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EmbedOptions,
    ) -> Result<(Vec<String>, Cow<'_, TextTokenizer>)> {
        let prompt = self.select_prompt(options)?;
        let inputs = texts
            .iter()
            .map(|t| match &prompt {
                Some(p) => format!("{p}{}", t.as_ref()),
                None => t.as_ref().to_string(),
            })
            .collect();
        let tokenizer = match options.max_length {
            Some(n) if n != self.tokenizer.max_length() => {
                Cow::Owned(self.tokenizer.with_max_length(n.min(self.encoder.max_positions()))?)
            }
            _ => Cow::Borrowed(&self.tokenizer),
        };
        Ok((inputs, tokenizer))
    }

    /// Embed `texts`; one vector per text, in input order.
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S], options: &EmbedOptions) -> Result<Embeddings> {
        self.check_outputs(OutputKinds::DENSE)?;
        let prepared = self.tokenize_for_embedding(texts, options)?;
        let tokens = &prepared.tokens;
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in plan_batches(&lengths, DEFAULT_TOKEN_BUDGET, batch_size) {
            let rows: Vec<&[u32]> = batch.indices.iter().map(|&i| tokens[i].ids.as_slice()).collect();
            let masked = vec![prepared.masked_prefix; rows.len()];
            let pooled = self.embed_tokens(&rows, &masked)?;
            for (&i, v) in batch.indices.iter().zip(pooled) {
                vectors[i] = v;
            }
        }
        for v in &mut vectors {
            self.finish_vector(v, options)?;
        }
        Ok(Embeddings {
            vectors,
            tokens: lengths.iter().sum(),
            truncated: tokens.iter().filter(|t| t.truncated).count(),
        })
    }

    /// The first half of [`embed_texts`](Self::embed_texts): `texts` tokenized with the prompt
    /// and truncation that `options` select, and how many leading tokens pooling leaves out.
    /// A caller that batches inputs itself (a server's queue) runs this, then
    /// [`embed_tokens`](Self::embed_tokens) and [`finish_vector`](Self::finish_vector).
    pub fn tokenize_for_embedding<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EmbedOptions,
    ) -> Result<EmbeddingTokens> {
        let prompt = self.select_prompt(options)?;
        let (inputs, tokenizer) = self.prepare(texts, options)?;
        let masked_prefix = match (&prompt, self.config.include_prompt) {
            (Some(p), false) => tokenizer.prompt_length(p)?,
            _ => 0,
        };
        Ok(EmbeddingTokens { tokens: tokenizer.encode(&inputs)?, masked_prefix })
    }

    /// One forward pass over already tokenized sequences (at most the model's positions each):
    /// pooled, Dense-projected vectors, before normalisation. `masked_prefix[i]` leading tokens
    /// of `rows[i]` are left out of pooling (see [`EmbeddingTokens`]).
    pub fn embed_tokens(&self, rows: &[&[u32]], masked_prefix: &[usize]) -> Result<Vec<Vec<f32>>> {
        self.check_outputs(OutputKinds::DENSE)?;
        self.forward_pooled(rows, masked_prefix)
    }

    /// One forward pass over already tokenized sequences, each answered with what `wants` asks
    /// of it, in that order (sequences of one batch may ask for different outputs, one sequence
    /// for several: the encoder runs once, the pooling and heads that any sequence needs run over
    /// the batch). An output the model does not have is an [`UnsupportedOutput`] error before
    /// anything runs.
    pub fn run_sequences(
        &self,
        rows: &[&[u32]],
        masked_prefix: &[usize],
        wants: &[&[SequenceOutput]],
    ) -> Result<Vec<Vec<SequenceResult>>> {
        if wants.len() != rows.len() || masked_prefix.len() != rows.len() {
            return Err(ModelError::Inference(format!(
                "{} sequences with {} output lists and {} masked prefixes",
                rows.len(),
                wants.len(),
                masked_prefix.len()
            )));
        }
        let any = |o: SequenceOutput| wants.iter().any(|w| w.contains(&o));
        let kinds = OutputKinds {
            dense: any(SequenceOutput::Pooled),
            sparse: any(SequenceOutput::Sparse),
            multivector: any(SequenceOutput::Colbert),
        };
        self.check_outputs(kinds)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let hidden = self.encoder.forward_packed(&rows.concat(), &lengths, &self.device)?;
        let mut pooled =
            if kinds.dense { self.pool_hidden(&hidden, &lengths, masked_prefix)? } else { Vec::new() }.into_iter();
        let heads = self.heads.run(&hidden, self.encoder.hidden_size(), rows, kinds)?;
        let mut sparse = heads.sparse.unwrap_or_default().into_iter();
        let mut colbert = heads.multivector.unwrap_or_default().into_iter();
        let h = self.encoder.hidden_size();
        let mut at = 0;
        let mut out = Vec::with_capacity(rows.len());
        for (&asked, &n) in wants.iter().zip(&lengths) {
            // Every sequence's pooled/head outputs were computed; each takes its own in order.
            let (mut p, mut s, mut c) = (pooled.next(), sparse.next(), colbert.next());
            let mut answers = Vec::with_capacity(asked.len());
            for &want in asked {
                let missing = || ModelError::Inference(format!("the model gave no {want:?} output for a sequence"));
                answers.push(match want {
                    SequenceOutput::Pooled => SequenceResult::Pooled(p.take().ok_or_else(missing)?),
                    SequenceOutput::Sparse => SequenceResult::Sparse(s.take().ok_or_else(missing)?),
                    SequenceOutput::Colbert => SequenceResult::Tokens(c.take().ok_or_else(missing)?),
                    SequenceOutput::Hidden => {
                        SequenceResult::Tokens(hidden[at * h..(at + n) * h].chunks(h).map(<[f32]>::to_vec).collect())
                    }
                });
            }
            out.push(answers);
            at += n;
        }
        Ok(out)
    }

    /// The kinds of output this model produces (dense unless it has SPLADE or BGE-M3 heads).
    pub fn outputs(&self) -> OutputKinds {
        self.heads.outputs()
    }

    /// The heads after the encoder.
    pub fn heads(&self) -> &OutputHeads {
        &self.heads
    }

    /// An [`UnsupportedOutput`] error unless the model produces every kind in `kinds`.
    pub fn check_outputs(&self, kinds: OutputKinds) -> Result<()> {
        let available = self.outputs();
        if kinds.is_subset_of(available) {
            return Ok(());
        }
        let missing = OutputKinds {
            dense: kinds.dense && !available.dense,
            sparse: kinds.sparse && !available.sparse,
            multivector: kinds.multivector && !available.multivector,
        };
        Err(UnsupportedOutput { model: self.id.clone(), requested: missing.names(), available: available.names() }
            .into())
    }

    /// Dense vectors, sparse vectors and/or token vectors (ColBERT) of `texts` from one forward
    /// pass per batch: the kinds `kinds` asks for are `Some`, in input order. Dense vectors are
    /// finished as [`embed_texts`](Self::embed_texts) finishes them (normalisation, Matryoshka
    /// `dimensions`); sparse and token vectors are the heads' own (see [`crate::heads`]).
    pub fn embed_outputs_texts<S: AsRef<str>>(
        &self,
        texts: &[S],
        kinds: OutputKinds,
        options: &EmbedOptions,
    ) -> Result<MultiEmbeddings> {
        self.check_outputs(kinds)?;
        if kinds == OutputKinds::default() {
            return Ok(MultiEmbeddings::default());
        }
        let prepared = self.tokenize_for_embedding(texts, options)?;
        let tokens = &prepared.tokens;
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let n = texts.len();
        let mut dense: Vec<Vec<f32>> = if kinds.dense { vec![Vec::new(); n] } else { Vec::new() };
        let mut sparse = if kinds.sparse { vec![Vec::new(); n] } else { Vec::new() };
        let mut multivector = if kinds.multivector { vec![Vec::new(); n] } else { Vec::new() };
        let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        for batch in plan_batches(&lengths, DEFAULT_TOKEN_BUDGET, batch_size) {
            let rows: Vec<&[u32]> = batch.indices.iter().map(|&i| tokens[i].ids.as_slice()).collect();
            let row_lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
            let hidden = self.encoder.forward_packed(&rows.concat(), &row_lengths, &self.device)?;
            if kinds.dense {
                let masked = vec![prepared.masked_prefix; rows.len()];
                for (&i, v) in batch.indices.iter().zip(self.pool_hidden(&hidden, &row_lengths, &masked)?) {
                    dense[i] = v;
                }
            }
            let out = self.heads.run(&hidden, self.encoder.hidden_size(), &rows, kinds)?;
            for (&i, v) in batch.indices.iter().zip(out.sparse.into_iter().flatten()) {
                sparse[i] = v;
            }
            for (&i, v) in batch.indices.iter().zip(out.multivector.into_iter().flatten()) {
                multivector[i] = v;
            }
        }
        for v in &mut dense {
            self.finish_vector(v, options)?;
        }
        Ok(MultiEmbeddings {
            dense: kinds.dense.then_some(dense),
            sparse: kinds.sparse.then_some(sparse),
            multivector: kinds.multivector.then_some(multivector),
            tokens: lengths.iter().sum(),
            truncated: tokens.iter().filter(|t| t.truncated).count(),
        })
    }

    /// The vocabulary entry a sparse vector's id stands for (`##ing`, `▁the`).
    pub fn vocabulary_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Normalise and truncate (Matryoshka) one pooled vector as `options` say: the last step of
    /// [`embed_texts`](Self::embed_texts).
    pub fn finish_vector(&self, v: &mut Vec<f32>, options: &EmbedOptions) -> Result<()> {
        let normalize = options.normalize.unwrap_or(self.config.normalize);
        if normalize {
            l2_normalize(v);
        }
        if let Some(d) = options.dimensions {
            truncate_dimensions(v, d)?;
            if normalize {
                l2_normalize(v);
            }
        }
        Ok(())
    }

    /// The model's tokenizer, with ember's settings (truncation at the model's length).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Run one batch and pool each sequence; Dense modules applied.
    fn forward_pooled(&self, rows: &[&[u32]], masked_prefix: &[usize]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let hidden = self.encoder.forward_packed(&rows.concat(), &lengths, &self.device)?;
        self.pool_hidden(&hidden, &lengths, masked_prefix)
    }

    /// Pool each sequence of the encoder's packed output; Dense modules applied.
    fn pool_hidden(&self, hidden: &[f32], lengths: &[usize], masked_prefix: &[usize]) -> Result<Vec<Vec<f32>>> {
        let b = lengths.len();
        let h = self.encoder.hidden_size();
        let mut pooled = Vec::with_capacity(b);
        let mut at = 0;
        for (i, &n) in lengths.iter().enumerate() {
            let mut v = Vec::with_capacity(h * self.config.pooling.len());
            let masked = masked_prefix.get(i).copied().unwrap_or(0);
            pooling::pool(&self.config.pooling, &hidden[at * h..(at + n) * h], h, masked, &mut v);
            pooled.push(v);
            at += n;
        }
        if self.dense.is_empty() {
            return Ok(pooled);
        }
        let width = pooled.first().map_or(0, Vec::len);
        let mut x = Tensor::from_vec(pooled.concat(), (b, width), &self.device)?.to_dtype(self.dtype)?;
        for d in &self.dense {
            x = d.linear.forward(&x)?;
            x = match d.activation {
                DenseActivation::Identity => x,
                DenseActivation::Tanh => x.tanh()?,
                DenseActivation::Relu => x.relu()?,
                DenseActivation::Gelu => x.gelu_erf()?,
                DenseActivation::Sigmoid => candle_nn::ops::sigmoid(&x)?,
            };
        }
        Ok(x.to_dtype(DType::F32)?.to_vec2()?)
    }
}

fn load_dense(d: &DenseConfig, options: &LoadOptions) -> Result<DenseLayer> {
    let path = d.dir.join("model.safetensors");
    let mut tensors = weights::load_tensors(std::slice::from_ref(&path), options.dtype, &options.device)?;
    let weight = tensors
        .remove("linear.weight")
        .ok_or_else(|| ModelError::Weights { path: path.clone(), message: "no tensor 'linear.weight'".to_string() })?;
    if weight.dims() != [d.out_features, d.in_features] {
        return Err(ModelError::Weights {
            path,
            message: format!(
                "linear.weight has shape {:?}, config says [{}, {}]",
                weight.dims(),
                d.out_features,
                d.in_features
            ),
        });
    }
    let bias = if d.bias { tensors.remove("linear.bias") } else { None };
    Ok(DenseLayer { linear: Linear::new(weight, bias), activation: d.activation })
}

/// Weight-shape errors from candle do not say which file; add it.
fn annotate(e: ModelError, files: &[PathBuf]) -> ModelError {
    match e {
        ModelError::Tensor(inner) => {
            ModelError::Weights { path: files.first().cloned().unwrap_or_default(), message: inner.to_string() }
        }
        other => other,
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                out.push(p);
            }
        }
    }
    out
}

impl Embedder for SentenceEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn prompt_names(&self) -> Vec<String> {
        self.config.prompts.keys().cloned().collect()
    }

    fn embed(&self, texts: &[&str], options: &EmbedOptions) -> Result<Embeddings, BoxError> {
        Ok(self.embed_texts(texts, options)?)
    }

    fn outputs(&self) -> OutputKinds {
        self.heads.outputs()
    }

    fn vocabulary_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    fn embed_outputs(
        &self,
        texts: &[&str],
        kinds: OutputKinds,
        options: &EmbedOptions,
    ) -> Result<MultiEmbeddings, BoxError> {
        // The model's own error type, so an unsupported kind stays an `UnsupportedOutput` to
        // downcast: unwrap it from ModelError.
        self.embed_outputs_texts(texts, kinds, options).map_err(|e| match e {
            ModelError::Unsupported(u) => Box::new(u) as BoxError,
            other => Box::new(other) as BoxError,
        })
    }
}
