//! The batching queue: all of the server's concurrency around a model, in one place.
//!
//! A request's inputs are tokenized on a small pool of tokenizer threads, then queued one entry
//! per input. One model thread owns the forward pass: it takes entries in arrival order into a
//! batch until the batch would exceed `max_batch_requests` inputs or `max_batch_tokens` padded
//! token slots (the longest input times the count, as [`ember_core::plan_batches`] counts them),
//! runs it, and answers each request once all of its inputs are done. A client batch larger than
//! a model batch is therefore split across several forward passes, transparently.
//!
//! The queue is bounded (`max_queue` inputs waiting): a request that does not fit is refused
//! with [`QueueError::Full`] (HTTP 429), unless the queue is empty, so that a large client batch
//! is never refused for its size alone. A request whose future is dropped (the client went away)
//! takes its waiting entries out of the queue.
//!
//! Vectors equal [`SentenceEmbedder::embed_texts`]' on the same texts: the same tokenization,
//! forward pass, pooling and post-processing, only batched with other requests' inputs.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use ember_core::{EmbedOptions, Embeddings};
use ember_models::{ModelError, SentenceEmbedder, Tokens};
use thiserror::Error;
use tokio::sync::oneshot;

use crate::error::ServerError;
use crate::metrics::Metrics;

/// How a model's queue batches and bounds its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The most padded token slots (inputs × longest input) in one forward pass.
    pub max_batch_tokens: usize,
    /// The most inputs in one forward pass.
    pub max_batch_requests: usize,
    /// The most inputs waiting in the queue; past it requests are refused (429).
    pub max_queue: usize,
    /// Threads tokenizing requests.
    pub tokenizer_workers: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_batch_tokens: ember_models::sentence::DEFAULT_TOKEN_BUDGET,
            max_batch_requests: ember_models::sentence::DEFAULT_BATCH_SIZE,
            max_queue: 4096,
            tokenizer_workers: 2,
        }
    }
}

impl QueueConfig {
    pub fn validate(&self) -> Result<(), ServerError> {
        for (name, value) in [
            ("max_batch_tokens", self.max_batch_tokens),
            ("max_batch_requests", self.max_batch_requests),
            ("max_queue", self.max_queue),
            ("tokenizer_workers", self.tokenizer_workers),
        ] {
            if value == 0 {
                return Err(ServerError::Config(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

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

/// Why a request was not answered with vectors.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error("model '{model}' is busy: its queue is full ({capacity} inputs waiting); retry in {retry_after_secs} s")]
    Full { model: String, capacity: usize, retry_after_secs: u64 },
    #[error(
        "input {index} has {tokens} tokens, more than the {limit} tokens model '{model}' takes; \
         send shorter inputs or set truncate to true"
    )]
    TooLong { model: String, index: usize, tokens: usize, limit: usize },
    #[error("input {index}: token id {id} is not in the vocabulary of model '{model}' ({vocab} tokens)")]
    BadTokenId { model: String, index: usize, id: u32, vocab: usize },
    #[error("input {index} is an empty list of token ids")]
    EmptyIds { index: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model '{model}' is shutting down")]
    Closed { model: String },
    #[error("model '{model}' failed on a batch: {message}")]
    Failed { model: String, message: String },
}

/// A request's tokens, ready to queue.
#[derive(Debug)]
struct Tokenized {
    rows: Vec<Vec<u32>>,
    /// Leading tokens of each row left out of pooling.
    masked: Vec<usize>,
    truncated: usize,
}

type Job = Box<dyn FnOnce() + Send>;
type Answer = Result<Vec<Vec<f32>>, QueueError>;

/// A request waiting for its vectors.
#[derive(Debug)]
struct Pending {
    id: u64,
    options: EmbedOptions,
    state: Mutex<Collected>,
}

#[derive(Debug)]
struct Collected {
    vectors: Vec<Option<Vec<f32>>>,
    remaining: usize,
    reply: Option<oneshot::Sender<Answer>>,
}

/// One input in the queue.
#[derive(Debug)]
struct Entry {
    request: Arc<Pending>,
    index: usize,
    ids: Vec<u32>,
    masked_prefix: usize,
    enqueued: Instant,
}

#[derive(Debug, Default)]
struct QueueState {
    entries: VecDeque<Entry>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    name: String,
    config: QueueConfig,
    state: Mutex<QueueState>,
    ready: Condvar,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks (the forward pass runs outside them, under
    // catch_unwind), so a poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The queue of one model: cheap to clone; every clone feeds the same model thread.
#[derive(Debug, Clone)]
pub struct ModelQueue {
    shared: Arc<Shared>,
    model: Arc<SentenceEmbedder>,
    jobs: mpsc::Sender<Job>,
    threads: Arc<Mutex<Threads>>,
}

/// The model thread (joined on shutdown) and the tokenizer threads (which end by themselves once
/// the last clone of the queue, and with it the job channel, is gone).
#[derive(Debug)]
struct Threads {
    model: Option<JoinHandle<()>>,
    tokenizers: Vec<JoinHandle<()>>,
}

impl ModelQueue {
    /// Start the model thread and the tokenizer threads of `model`, served as `name`.
    pub fn start(
        name: &str,
        model: Arc<SentenceEmbedder>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        config.validate()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            config: config.clone(),
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            next_id: AtomicU64::new(1),
            metrics,
        });
        let spawn_error = |source| ServerError::Thread { model: name.to_string(), source };
        let mut tokenizers = Vec::new();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..config.tokenizer_workers {
            let receiver = Arc::clone(&receiver);
            let handle = std::thread::Builder::new()
                .name(format!("ember-tok-{name}-{i}"))
                .spawn(move || loop {
                    let job = lock(&receiver).recv();
                    match job {
                        // A panic inside the tokenizer drops the job's reply sender: its request
                        // fails, the thread goes on.
                        Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
                        Err(_) => break,
                    }
                })
                .map_err(spawn_error)?;
            tokenizers.push(handle);
        }
        let worker_shared = Arc::clone(&shared);
        let worker_model = Arc::clone(&model);
        let model_thread = std::thread::Builder::new()
            .name(format!("ember-model-{name}"))
            .spawn(move || run_model(&worker_shared, &worker_model))
            .map_err(spawn_error)?;
        let threads = Threads { model: Some(model_thread), tokenizers };
        Ok(ModelQueue { shared, model, jobs, threads: Arc::new(Mutex::new(threads)) })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn model(&self) -> &Arc<SentenceEmbedder> {
        &self.model
    }

    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    /// Inputs waiting for the model thread.
    pub fn depth(&self) -> usize {
        lock(&self.shared.state).entries.len()
    }

    /// The model thread is running and accepting work.
    pub fn is_healthy(&self) -> bool {
        let threads = lock(&self.threads);
        !lock(&self.shared.state).closed
            && threads.model.as_ref().is_some_and(|t| !t.is_finished())
            && threads.tokenizers.iter().all(|t| !t.is_finished())
    }

    /// Embed a request: tokenize on the tokenizer threads, wait in the queue, run on the model
    /// thread. Dropping the returned future (a client gone away) removes its waiting inputs.
    pub async fn embed(&self, request: EmbedRequest) -> Result<Embeddings, QueueError> {
        self.check_room(request.inputs.len())?;
        let (tx, rx) = oneshot::channel();
        let queue = self.clone();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(queue.tokenize(&request).map(|t| (t, request.options)));
            }
        });
        self.jobs.send(job).map_err(|_| self.closed())?;
        let (tokenized, options) = rx.await.map_err(|_| self.lost("tokenizing"))??;
        let tokens = tokenized.rows.iter().map(Vec::len).sum();
        let truncated = tokenized.truncated;
        let (rx, guard) = self.enqueue(tokenized, options)?;
        let answer = rx.await;
        guard.disarm();
        let vectors = answer.map_err(|_| self.lost("embedding"))??;
        Ok(Embeddings { vectors, tokens, truncated })
    }

    /// [`embed`](Self::embed) for a thread that may block (not an async task): tokenizes on the
    /// calling thread, then waits for the model thread.
    pub fn embed_blocking(&self, request: EmbedRequest) -> Result<Embeddings, QueueError> {
        self.check_room(request.inputs.len())?;
        let tokenized = self.tokenize(&request)?;
        let tokens = tokenized.rows.iter().map(Vec::len).sum();
        let truncated = tokenized.truncated;
        let (rx, guard) = self.enqueue(tokenized, request.options)?;
        let answer = rx.blocking_recv();
        guard.disarm();
        let vectors = answer.map_err(|_| self.lost("embedding"))??;
        Ok(Embeddings { vectors, tokens, truncated })
    }

    /// Stop taking requests, let the model thread finish what is queued, and join every thread.
    pub fn shutdown(&self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_all();
        let model_thread = lock(&self.threads).model.take();
        if let Some(thread) = model_thread {
            let _ = thread.join();
        }
    }

    fn closed(&self) -> QueueError {
        QueueError::Closed { model: self.shared.name.clone() }
    }

    /// A reply that never came: the queue closed, or a worker thread failed on the request.
    fn lost(&self, step: &str) -> QueueError {
        if lock(&self.shared.state).closed {
            return self.closed();
        }
        QueueError::Failed { model: self.shared.name.clone(), message: format!("a worker failed while {step}") }
    }

    fn full(&self) -> QueueError {
        self.shared.metrics.queue_rejected(&self.shared.name);
        QueueError::Full {
            model: self.shared.name.clone(),
            capacity: self.shared.config.max_queue,
            retry_after_secs: 1,
        }
    }

    fn check_room(&self, inputs: usize) -> Result<(), QueueError> {
        let state = lock(&self.shared.state);
        if state.closed {
            return Err(self.closed());
        }
        if !state.entries.is_empty() && state.entries.len() + inputs > self.shared.config.max_queue {
            return Err(self.full());
        }
        Ok(())
    }

    /// Token ids of every input, checked against the model's vocabulary and length limit.
    fn tokenize(&self, request: &EmbedRequest) -> Result<Tokenized, QueueError> {
        let model = &self.model;
        let limit = model.max_seq_length();
        let vocab = model.tokenizer().vocab_size();
        let name = &self.shared.name;
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
        let mut rows = Vec::with_capacity(request.inputs.len());
        let mut truncated = 0;
        for (index, input) in request.inputs.iter().enumerate() {
            match input {
                Input::Text(text) => {
                    let tokens = encoded_rows.next().unwrap_or(Tokens { ids: Vec::new(), truncated: false });
                    if tokens.truncated {
                        if !request.truncate {
                            let tokens = self.full_length(text, &options).unwrap_or(limit + 1);
                            return Err(QueueError::TooLong { model: name.clone(), index, tokens, limit });
                        }
                        truncated += 1;
                    }
                    rows.push(tokens.ids);
                }
                Input::Ids(ids) => {
                    if ids.is_empty() {
                        return Err(QueueError::EmptyIds { index });
                    }
                    if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                        return Err(QueueError::BadTokenId { model: name.clone(), index, id, vocab });
                    }
                    let mut ids = ids.clone();
                    if ids.len() > limit {
                        if !request.truncate {
                            return Err(QueueError::TooLong { model: name.clone(), index, tokens: ids.len(), limit });
                        }
                        ids.truncate(limit);
                        truncated += 1;
                    }
                    rows.push(ids);
                }
            }
        }
        // Token ids are fed as given: no prompt, nothing masked.
        let masked = request
            .inputs
            .iter()
            .map(|i| if matches!(i, Input::Text(_)) { encoded.masked_prefix } else { 0 })
            .collect();
        Ok(Tokenized { rows, masked, truncated })
    }

    /// How many tokens `text` has untruncated, special tokens included (for the error message).
    fn full_length(&self, text: &str, options: &EmbedOptions) -> Option<usize> {
        let model = &self.model;
        let prompt = model.select_prompt(options).ok().flatten().unwrap_or_default();
        let specials = model.tokenizer().encode(&[String::new()]).ok()?.first()?.ids.len();
        Some(model.token_count().ok()?.count(&format!("{prompt}{text}")) + specials)
    }

    fn enqueue(
        &self,
        tokenized: Tokenized,
        options: EmbedOptions,
    ) -> Result<(oneshot::Receiver<Answer>, CancelGuard), QueueError> {
        let (tx, rx) = oneshot::channel();
        let n = tokenized.rows.len();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Arc::new(Pending {
            id,
            options,
            state: Mutex::new(Collected { vectors: vec![None; n], remaining: n, reply: Some(tx) }),
        });
        if n == 0 {
            finish(&self.shared, &self.model, &request);
            return Ok((rx, CancelGuard { shared: None, id }));
        }
        {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return Err(self.closed());
            }
            if !state.entries.is_empty() && state.entries.len() + n > self.shared.config.max_queue {
                drop(state);
                return Err(self.full());
            }
            let now = Instant::now();
            for (index, (ids, masked_prefix)) in tokenized.rows.into_iter().zip(tokenized.masked).enumerate() {
                state.entries.push_back(Entry {
                    request: Arc::clone(&request),
                    index,
                    ids,
                    masked_prefix,
                    enqueued: now,
                });
            }
            self.shared.metrics.set_queue_depth(&self.shared.name, state.entries.len());
        }
        self.shared.ready.notify_one();
        Ok((rx, CancelGuard { shared: Some(Arc::clone(&self.shared)), id }))
    }
}

/// Takes a request's entries out of the queue if its future is dropped before the answer.
struct CancelGuard {
    shared: Option<Arc<Shared>>,
    id: u64,
}

impl CancelGuard {
    fn disarm(mut self) {
        self.shared = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut state = lock(&shared.state);
            let before = state.entries.len();
            state.entries.retain(|e| e.request.id != self.id);
            let removed = before - state.entries.len();
            shared.metrics.set_queue_depth(&shared.name, state.entries.len());
            drop(state);
            if removed > 0 {
                shared.metrics.queue_cancelled(&shared.name, removed);
            }
        }
    }
}

/// The model thread: take a batch, run it, answer; until closed and drained.
fn run_model(shared: &Shared, model: &SentenceEmbedder) {
    loop {
        let batch = {
            let mut state = lock(&shared.state);
            while state.entries.is_empty() && !state.closed {
                state = shared.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.entries.is_empty() {
                return;
            }
            let batch = take_batch(&mut state.entries, &shared.config);
            shared.metrics.set_queue_depth(&shared.name, state.entries.len());
            batch
        };
        run_batch(shared, model, batch);
    }
}

/// Entries from the front, in order, while the batch stays within both budgets (the first entry
/// always goes, whatever its length).
fn take_batch(entries: &mut VecDeque<Entry>, config: &QueueConfig) -> Vec<Entry> {
    let mut batch: Vec<Entry> = Vec::new();
    let mut longest = 0;
    while let Some(next) = entries.front() {
        let len = next.ids.len().max(1);
        let fits =
            batch.len() < config.max_batch_requests && (batch.len() + 1) * longest.max(len) <= config.max_batch_tokens;
        if !batch.is_empty() && !fits {
            break;
        }
        longest = longest.max(len);
        if let Some(entry) = entries.pop_front() {
            batch.push(entry);
        }
    }
    batch
}

fn run_batch(shared: &Shared, model: &SentenceEmbedder, batch: Vec<Entry>) {
    let started = Instant::now();
    let metrics = &shared.metrics;
    for e in &batch {
        metrics.observe_queue_time(&shared.name, started.duration_since(e.enqueued).as_secs_f64());
    }
    let rows: Vec<&[u32]> = batch.iter().map(|e| e.ids.as_slice()).collect();
    let masked: Vec<usize> = batch.iter().map(|e| e.masked_prefix).collect();
    let tokens: usize = rows.iter().map(|r| r.len()).sum();
    let result = catch_unwind(AssertUnwindSafe(|| model.embed_tokens(&rows, &masked)));
    metrics.observe_batch(&shared.name, batch.len(), tokens, started.elapsed().as_secs_f64());
    let vectors = match result {
        Ok(Ok(v)) if v.len() == batch.len() => v,
        other => {
            let message = match other {
                Ok(Ok(v)) => format!("{} vectors for {} inputs", v.len(), batch.len()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the forward pass panicked".to_string(),
            };
            for e in &batch {
                fail(&e.request, QueueError::Failed { model: shared.name.clone(), message: message.clone() });
            }
            return;
        }
    };
    for (entry, vector) in batch.into_iter().zip(vectors) {
        let done = {
            let mut state = lock(&entry.request.state);
            if state.reply.is_none() {
                continue;
            }
            if let Some(slot) = state.vectors.get_mut(entry.index) {
                *slot = Some(vector);
            }
            state.remaining = state.remaining.saturating_sub(1);
            state.remaining == 0
        };
        if done {
            finish(shared, model, &entry.request);
        }
    }
}

/// Post-process and send a request's vectors.
fn finish(shared: &Shared, model: &SentenceEmbedder, request: &Pending) {
    let (vectors, reply) = {
        let mut state = lock(&request.state);
        let vectors: Vec<Vec<f32>> = state.vectors.iter_mut().map(|v| v.take().unwrap_or_default()).collect();
        (vectors, state.reply.take())
    };
    let Some(reply) = reply else { return };
    let mut answer = Ok(vectors);
    if let Ok(vectors) = &mut answer {
        for v in vectors.iter_mut() {
            if let Err(e) = model.finish_vector(v, &request.options) {
                answer = Err(QueueError::Model(e));
                break;
            }
        }
    }
    if let Ok(vectors) = &answer {
        shared.metrics.count_embedded(&shared.name, vectors.len());
    }
    let _ = reply.send(answer);
}

fn fail(request: &Pending, error: QueueError) {
    if let Some(reply) = lock(&request.state).reply.take() {
        let _ = reply.send(Err(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: usize) -> Entry {
        let request = Arc::new(Pending {
            id: 1,
            options: EmbedOptions::default(),
            state: Mutex::new(Collected { vectors: Vec::new(), remaining: 0, reply: None }),
        });
        Entry { request, index: 0, ids: vec![1; len], masked_prefix: 0, enqueued: Instant::now() }
    }

    fn lengths(batch: &[Entry]) -> Vec<usize> {
        batch.iter().map(|e| e.ids.len()).collect()
    }

    #[test]
    fn batches_respect_both_budgets_in_arrival_order() {
        let config = QueueConfig { max_batch_tokens: 40, max_batch_requests: 3, max_queue: 100, tokenizer_workers: 1 };
        let mut q: VecDeque<Entry> = [5, 10, 3, 4, 30, 2].into_iter().map(entry).collect();
        assert_eq!(lengths(&take_batch(&mut q, &config)), [5, 10, 3]);
        // 4 alone, then 4 with 30 would cost 60 slots.
        assert_eq!(lengths(&take_batch(&mut q, &config)), [4]);
        assert_eq!(lengths(&take_batch(&mut q, &config)), [30]);
        assert_eq!(lengths(&take_batch(&mut q, &config)), [2]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_input_over_the_token_budget_runs_alone() {
        let config = QueueConfig { max_batch_tokens: 8, max_batch_requests: 8, max_queue: 100, tokenizer_workers: 1 };
        let mut q: VecDeque<Entry> = [50, 1].into_iter().map(entry).collect();
        assert_eq!(lengths(&take_batch(&mut q, &config)), [50]);
        assert_eq!(lengths(&take_batch(&mut q, &config)), [1]);
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = QueueConfig { max_queue: 0, ..QueueConfig::default() };
        assert!(config.validate().is_err());
    }
}
