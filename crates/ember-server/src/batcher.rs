//! The embedding models' queue: a [`TokenQueue`] whose entries are token sequences, each asking
//! for the output a route needs (pooled vectors for `/v1/embeddings` and `/embed`, sparse vectors
//! for `/embed_sparse`, every token's hidden state for `/embed_all`). Requests are tokenized on
//! the queue's worker threads exactly as [`SentenceEmbedder::embed_texts`] tokenizes them, and
//! pooled vectors are finished (normalised, Matryoshka-truncated) as it finishes them: vectors
//! equal the library's on the same texts, only batched with other requests' inputs.

use std::sync::Arc;

use ember_core::{EmbedOptions, Embeddings, MultiEmbeddings, OutputKinds, SparseVector, TokenVectors};
use ember_models::{ModelError, SentenceEmbedder, SequenceOutput, SequenceResult, Tokens};

use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::queue::{BatchRunner, TokenQueue};
pub use crate::queue::{QueueConfig, QueueError};

/// One input of a request: text, or token ids of the model's own vocabulary (fed as given,
/// special tokens included: what `/tokenize` returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text(String),
    Ids(Vec<u32>),
}

/// What to embed and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedRequest {
    pub inputs: Vec<Input>,
    /// Prompt, normalisation and Matryoshka dimensions (`max_length` and `batch_size` are the
    /// queue's business and ignored).
    pub options: EmbedOptions,
    /// Cut inputs longer than the model's limit (`true`), or refuse them ([`QueueError::TooLong`]).
    pub truncate: bool,
}

/// A request's sparse vectors (`/embed_sparse`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseEmbeddings {
    pub vectors: Vec<SparseVector>,
    pub tokens: usize,
    pub truncated: usize,
}

/// A request's token-level vectors (`/embed_all`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenEmbeddings {
    pub vectors: Vec<TokenVectors>,
    pub tokens: usize,
    pub truncated: usize,
}

/// One queued sequence.
#[derive(Debug)]
pub struct Sequence {
    ids: Vec<u32>,
    /// Leading tokens left out of pooling.
    masked_prefix: usize,
    /// The outputs asked of it, answered in this order.
    wants: Vec<SequenceOutput>,
}

/// Runs an embedding model over a batch of sequences.
#[derive(Debug)]
pub struct EmbedRunner {
    model: Arc<SentenceEmbedder>,
}

impl BatchRunner for EmbedRunner {
    type Item = Sequence;
    type Output = Vec<SequenceResult>;

    fn tokens(item: &Sequence) -> usize {
        item.ids.len()
    }

    fn run(&self, items: &[&Sequence]) -> Result<Vec<Vec<SequenceResult>>, ModelError> {
        let rows: Vec<&[u32]> = items.iter().map(|s| s.ids.as_slice()).collect();
        let masked: Vec<usize> = items.iter().map(|s| s.masked_prefix).collect();
        let wants: Vec<&[SequenceOutput]> = items.iter().map(|s| s.wants.as_slice()).collect();
        self.model.run_sequences(&rows, &masked, &wants)
    }
}

/// What tokenizing a request leaves beside its sequences.
struct Counts {
    tokens: usize,
    truncated: usize,
}

/// The queue of one embedding model: cheap to clone; every clone feeds the same model thread.
#[derive(Debug, Clone)]
pub struct ModelQueue {
    queue: TokenQueue<EmbedRunner>,
}

impl ModelQueue {
    /// Start the model thread and the tokenizer threads of `model`, served as `name`.
    pub fn start(
        name: &str,
        model: Arc<SentenceEmbedder>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        Ok(ModelQueue { queue: TokenQueue::start(name, "model", Arc::new(EmbedRunner { model }), config, metrics)? })
    }

    pub fn name(&self) -> &str {
        self.queue.name()
    }

    pub fn model(&self) -> &Arc<SentenceEmbedder> {
        &self.queue.runner().model
    }

    pub fn config(&self) -> &QueueConfig {
        self.queue.config()
    }

    /// Inputs waiting for the model thread.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// The model thread is running and accepting work.
    pub fn is_healthy(&self) -> bool {
        self.queue.is_healthy()
    }

    /// Stop taking requests, let the model thread finish what is queued, and join it.
    pub fn shutdown(&self) {
        self.queue.shutdown();
    }

    /// Embed a request: tokenize on the tokenizer threads, wait in the queue, run on the model
    /// thread. Dropping the returned future (a client gone away) removes its waiting inputs.
    pub async fn embed(&self, request: EmbedRequest) -> Result<Embeddings, QueueError> {
        let options = request.options.clone();
        let (results, counts) = self.run(request, &[SequenceOutput::Pooled]).await?;
        self.finish_dense(results, counts, &options)
    }

    /// [`embed`](Self::embed) for a thread that may block (not an async task): tokenizes on the
    /// calling thread, then waits for the model thread.
    pub fn embed_blocking(&self, request: EmbedRequest) -> Result<Embeddings, QueueError> {
        let options = request.options.clone();
        let (results, counts) = self.run_blocking(request, &[SequenceOutput::Pooled])?;
        self.finish_dense(results.into_iter().flatten().collect(), counts, &options)
    }

    /// Dense, sparse and/or ColBERT outputs of a request's inputs from one forward pass each, as
    /// [`SentenceEmbedder::embed_outputs_texts`] gives them (dense vectors finished), for a
    /// thread that may block.
    pub fn embed_outputs_blocking(
        &self,
        request: EmbedRequest,
        kinds: OutputKinds,
    ) -> Result<MultiEmbeddings, QueueError> {
        let mut wants = Vec::new();
        for (asked, want) in [
            (kinds.dense, SequenceOutput::Pooled),
            (kinds.sparse, SequenceOutput::Sparse),
            (kinds.multivector, SequenceOutput::Colbert),
        ] {
            if asked {
                wants.push(want);
            }
        }
        let options = request.options.clone();
        let (results, counts) = self.run_blocking(request, &wants)?;
        let n = results.len();
        let mut out = MultiEmbeddings {
            dense: kinds.dense.then(|| Vec::with_capacity(n)),
            sparse: kinds.sparse.then(|| Vec::with_capacity(n)),
            multivector: kinds.multivector.then(|| Vec::with_capacity(n)),
            tokens: counts.tokens,
            truncated: counts.truncated,
        };
        for answers in results {
            for (want, answer) in wants.iter().zip(answers) {
                match (want, answer, &mut out) {
                    (SequenceOutput::Pooled, SequenceResult::Pooled(mut v), MultiEmbeddings { dense: Some(d), .. }) => {
                        self.model().finish_vector(&mut v, &options)?;
                        d.push(v);
                    }
                    (SequenceOutput::Sparse, SequenceResult::Sparse(v), MultiEmbeddings { sparse: Some(s), .. }) => {
                        s.push(v);
                    }
                    (
                        SequenceOutput::Colbert,
                        SequenceResult::Tokens(v),
                        MultiEmbeddings { multivector: Some(m), .. },
                    ) => m.push(v),
                    (_, other, _) => return Err(self.wrong_output(&other)),
                }
            }
        }
        Ok(out)
    }

    /// The model's sparse vectors (SPLADE, BGE-M3's sparse head) of a request's inputs.
    pub async fn embed_sparse(&self, request: EmbedRequest) -> Result<SparseEmbeddings, QueueError> {
        let (results, counts) = self.run(request, &[SequenceOutput::Sparse]).await?;
        let vectors = results
            .into_iter()
            .map(|r| match r {
                SequenceResult::Sparse(v) => Ok(v),
                other => Err(self.wrong_output(&other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(SparseEmbeddings { vectors, tokens: counts.tokens, truncated: counts.truncated })
    }

    /// Every token's last hidden state (`Hidden`) or the ColBERT head's token vectors
    /// (`Colbert`) of a request's inputs.
    pub async fn embed_tokens(
        &self,
        request: EmbedRequest,
        want: SequenceOutput,
    ) -> Result<TokenEmbeddings, QueueError> {
        let (results, counts) = self.run(request, &[want]).await?;
        let vectors = results
            .into_iter()
            .map(|r| match r {
                SequenceResult::Tokens(v) => Ok(v),
                other => Err(self.wrong_output(&other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(TokenEmbeddings { vectors, tokens: counts.tokens, truncated: counts.truncated })
    }

    /// One output per input (`wants` of one element), from the queue.
    async fn run(
        &self,
        request: EmbedRequest,
        wants: &[SequenceOutput],
    ) -> Result<(Vec<SequenceResult>, Counts), QueueError> {
        self.check_wants(wants)?;
        let model = Arc::clone(self.model());
        let name = self.name().to_string();
        let n = request.inputs.len();
        let wants = wants.to_vec();
        let (results, counts) = self.queue.submit(n, move || prepare(&model, &name, &request, &wants)).await?;
        self.queue.metrics().count_embedded(self.name(), results.len());
        Ok((results.into_iter().flatten().collect(), counts))
    }

    fn run_blocking(
        &self,
        request: EmbedRequest,
        wants: &[SequenceOutput],
    ) -> Result<(Vec<Vec<SequenceResult>>, Counts), QueueError> {
        self.check_wants(wants)?;
        let model = Arc::clone(self.model());
        let name = self.name().to_string();
        let n = request.inputs.len();
        let (results, counts) = self.queue.submit_blocking(n, || prepare(&model, &name, &request, wants))?;
        self.queue.metrics().count_embedded(self.name(), results.len());
        Ok((results, counts))
    }

    /// An [`UnsupportedOutput`](ember_core::UnsupportedOutput) error, before queueing, for an
    /// output the model does not produce.
    fn check_wants(&self, wants: &[SequenceOutput]) -> Result<(), QueueError> {
        let kinds = OutputKinds {
            dense: wants.contains(&SequenceOutput::Pooled),
            sparse: wants.contains(&SequenceOutput::Sparse),
            multivector: wants.contains(&SequenceOutput::Colbert),
        };
        Ok(self.model().check_outputs(kinds)?)
    }

    fn finish_dense(
        &self,
        results: Vec<SequenceResult>,
        counts: Counts,
        options: &EmbedOptions,
    ) -> Result<Embeddings, QueueError> {
        let mut vectors = Vec::with_capacity(results.len());
        for r in results {
            let SequenceResult::Pooled(mut v) = r else { return Err(self.wrong_output(&r)) };
            self.model().finish_vector(&mut v, options)?;
            vectors.push(v);
        }
        Ok(Embeddings { vectors, tokens: counts.tokens, truncated: counts.truncated })
    }

    fn wrong_output(&self, got: &SequenceResult) -> QueueError {
        let kind = match got {
            SequenceResult::Pooled(_) => "a pooled vector",
            SequenceResult::Sparse(_) => "a sparse vector",
            SequenceResult::Tokens(_) => "token vectors",
        };
        QueueError::Failed { model: self.name().to_string(), message: format!("the model thread answered {kind}") }
    }
}

/// Token ids of every input, checked against the model's vocabulary and length limit, as queued
/// sequences asking for `wants`.
fn prepare(
    model: &SentenceEmbedder,
    name: &str,
    request: &EmbedRequest,
    wants: &[SequenceOutput],
) -> Result<(Vec<Sequence>, Counts), QueueError> {
    let limit = model.max_seq_length();
    let vocab = model.tokenizer().vocab_size();
    let texts: Vec<&str> = request
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Text(t) => Some(t.as_str()),
            Input::Ids(_) => None,
        })
        .collect();
    let options = EmbedOptions { max_length: None, batch_size: None, ..request.options.clone() };
    let encoded = model.tokenize_for_embedding(&texts, &options)?;
    let mut encoded_rows = encoded.tokens.into_iter();
    let mut items = Vec::with_capacity(request.inputs.len());
    let mut truncated = 0;
    let mut tokens = 0;
    for (index, input) in request.inputs.iter().enumerate() {
        let (ids, masked_prefix) = match input {
            Input::Text(text) => {
                let row = encoded_rows.next().unwrap_or(Tokens { ids: Vec::new(), truncated: false });
                if row.truncated {
                    if !request.truncate {
                        let tokens = full_length(model, text, &options).unwrap_or(limit + 1);
                        return Err(QueueError::TooLong { model: name.to_string(), index, tokens, limit });
                    }
                    truncated += 1;
                }
                (row.ids, encoded.masked_prefix)
            }
            Input::Ids(ids) => {
                if ids.is_empty() {
                    return Err(QueueError::EmptyIds { index });
                }
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(QueueError::BadTokenId { model: name.to_string(), index, id, vocab });
                }
                let mut ids = ids.clone();
                if ids.len() > limit {
                    if !request.truncate {
                        return Err(QueueError::TooLong { model: name.to_string(), index, tokens: ids.len(), limit });
                    }
                    ids.truncate(limit);
                    truncated += 1;
                }
                // Token ids are fed as given: no prompt, nothing masked.
                (ids, 0)
            }
        };
        tokens += ids.len();
        items.push(Sequence { ids, masked_prefix, wants: wants.to_vec() });
    }
    Ok((items, Counts { tokens, truncated }))
}

/// How many tokens `text` has untruncated, special tokens included (for the error message).
fn full_length(model: &SentenceEmbedder, text: &str, options: &EmbedOptions) -> Option<usize> {
    let prompt = model.select_prompt(options).ok().flatten().unwrap_or_default();
    let specials = model.tokenizer().encode(&[String::new()]).ok()?.first()?.ids.len();
    Some(model.token_count().ok()?.count(&format!("{prompt}{text}")) + specials)
}
