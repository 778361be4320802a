//! Served rerankers, by name, each with its own queue: the batching pattern of
//! [`batcher`](crate::batcher) for (query, document) pairs. A request's pairs are tokenized off
//! the async workers, queued one entry per pair, and one model thread per reranker takes entries
//! in arrival order into a forward pass while it stays within `max_batch_requests` pairs and
//! `max_batch_tokens` padded token slots; a request is answered when its last pair is scored.
//! Scores equal [`RerankModel::score_pairs`]' (same tokenization, forward pass and activation).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use ember_core::{RerankOptions, RerankScores};
use ember_models::{PairTokens, RerankModel};
use tokio::sync::oneshot;

use crate::batcher::{QueueConfig, QueueError};
use crate::error::{ApiError, ErrorKind, ServerError};
use crate::metrics::Metrics;

/// What to score and how.
#[derive(Debug, Clone, Default)]
pub struct RerankRequest {
    pub query: String,
    pub documents: Vec<String>,
    /// Activation and instruction (`max_length` and `batch_size` are the queue's business).
    pub options: RerankOptions,
    /// Cut pairs longer than the model's limit (`true`), or refuse them ([`QueueError::TooLong`]).
    pub truncate: bool,
}

type Answer = Result<Vec<Vec<f32>>, QueueError>;

#[derive(Debug)]
struct Pending {
    id: u64,
    state: Mutex<Collected>,
}

#[derive(Debug)]
struct Collected {
    logits: Vec<Option<Vec<f32>>>,
    remaining: usize,
    reply: Option<oneshot::Sender<Answer>>,
}

#[derive(Debug)]
struct Entry {
    request: Arc<Pending>,
    index: usize,
    pair: PairTokens,
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
    // The forward pass runs outside these locks under catch_unwind: a poisoned lock still guards
    // consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The queue of one reranker; cheap to clone.
#[derive(Debug, Clone)]
pub struct RerankQueue {
    shared: Arc<Shared>,
    model: Arc<RerankModel>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl RerankQueue {
    /// Start the model thread of `model`, served as `name`.
    pub fn start(
        name: &str,
        model: Arc<RerankModel>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        config.validate()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            config,
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            next_id: AtomicU64::new(1),
            metrics,
        });
        let worker_shared = Arc::clone(&shared);
        let worker_model = Arc::clone(&model);
        let thread = std::thread::Builder::new()
            .name(format!("ember-rerank-{name}"))
            .spawn(move || run_model(&worker_shared, &worker_model))
            .map_err(|source| ServerError::Thread { model: name.to_string(), source })?;
        Ok(RerankQueue { shared, model, thread: Arc::new(Mutex::new(Some(thread))) })
    }

    pub fn model(&self) -> &Arc<RerankModel> {
        &self.model
    }

    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    pub fn is_healthy(&self) -> bool {
        !lock(&self.shared.state).closed && lock(&self.thread).as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Score a request's documents: tokenize off the async workers, wait in the queue, run on
    /// the model thread. Dropping the future (a client gone away) removes its waiting pairs.
    pub async fn rerank(&self, request: RerankRequest) -> Result<RerankScores, QueueError> {
        if request.documents.is_empty() {
            return Ok(RerankScores::default());
        }
        self.check_room(request.documents.len())?;
        let model = Arc::clone(&self.model);
        let name = self.shared.name.clone();
        let options = RerankOptions { max_length: None, batch_size: None, ..request.options.clone() };
        let tokenize_options = options.clone();
        let query = request.query;
        let documents = request.documents;
        let truncate = request.truncate;
        let rows = tokio::task::spawn_blocking(move || -> Result<Vec<PairTokens>, QueueError> {
            let docs: Vec<&str> = documents.iter().map(String::as_str).collect();
            let rows = model.tokenize(&query, &docs, &tokenize_options)?;
            if !truncate {
                if let Some(index) = rows.iter().position(|r| r.truncated) {
                    let limit = model.max_length();
                    // The untruncated length, for the message.
                    let long = RerankOptions { max_length: Some(usize::MAX), ..tokenize_options.clone() };
                    let tokens = model
                        .tokenize(&query, &docs[index..=index], &long)
                        .ok()
                        .and_then(|r| r.first().map(|r| r.ids.len()))
                        .filter(|&t| t > limit)
                        .unwrap_or(limit + 1);
                    return Err(QueueError::TooLong { model: name, index, tokens, limit });
                }
            }
            Ok(rows)
        })
        .await
        .map_err(|_| self.lost("tokenizing"))??;
        let tokens = rows.iter().map(|r| r.ids.len()).sum();
        let truncated = rows.iter().filter(|r| r.truncated).count();
        let (rx, guard) = self.enqueue(rows)?;
        let answer = rx.await;
        guard.disarm();
        let logits = answer.map_err(|_| self.lost("scoring"))??;
        let scores = logits.iter().map(|l| self.model.finish_score(l, options.activation)).collect();
        self.shared.metrics.count_embedded(&self.shared.name, logits.len());
        Ok(RerankScores { scores, tokens, truncated })
    }

    /// Stop taking requests, let the model thread finish what is queued, and join it.
    pub fn shutdown(&self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_all();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn closed(&self) -> QueueError {
        QueueError::Closed { model: self.shared.name.clone() }
    }

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

    fn check_room(&self, pairs: usize) -> Result<(), QueueError> {
        let state = lock(&self.shared.state);
        if state.closed {
            return Err(self.closed());
        }
        if !state.entries.is_empty() && state.entries.len() + pairs > self.shared.config.max_queue {
            return Err(self.full());
        }
        Ok(())
    }

    fn enqueue(&self, rows: Vec<PairTokens>) -> Result<(oneshot::Receiver<Answer>, CancelGuard), QueueError> {
        let (tx, rx) = oneshot::channel();
        let n = rows.len();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Arc::new(Pending {
            id,
            state: Mutex::new(Collected { logits: vec![None; n], remaining: n, reply: Some(tx) }),
        });
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
            for (index, pair) in rows.into_iter().enumerate() {
                state.entries.push_back(Entry { request: Arc::clone(&request), index, pair, enqueued: now });
            }
            self.shared.metrics.set_queue_depth(&self.shared.name, state.entries.len());
        }
        self.shared.ready.notify_one();
        Ok((rx, CancelGuard { shared: Some(Arc::clone(&self.shared)), id }))
    }
}

/// Takes a request's pairs out of the queue if its future is dropped before the answer.
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

fn run_model(shared: &Shared, model: &RerankModel) {
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
/// always goes).
fn take_batch(entries: &mut VecDeque<Entry>, config: &QueueConfig) -> Vec<Entry> {
    let mut batch: Vec<Entry> = Vec::new();
    let mut longest = 0;
    while let Some(next) = entries.front() {
        let len = next.pair.ids.len().max(1);
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

fn run_batch(shared: &Shared, model: &RerankModel, batch: Vec<Entry>) {
    let started = Instant::now();
    for e in &batch {
        shared.metrics.observe_queue_time(&shared.name, started.duration_since(e.enqueued).as_secs_f64());
    }
    let rows: Vec<&PairTokens> = batch.iter().map(|e| &e.pair).collect();
    let tokens: usize = rows.iter().map(|r| r.ids.len()).sum();
    let result = catch_unwind(AssertUnwindSafe(|| model.forward(&rows)));
    shared.metrics.observe_batch(&shared.name, batch.len(), tokens, started.elapsed().as_secs_f64());
    let logits = match result {
        Ok(Ok(l)) if l.len() == batch.len() => l,
        other => {
            let message = match other {
                Ok(Ok(l)) => format!("{} scores for {} pairs", l.len(), batch.len()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the forward pass panicked".to_string(),
            };
            for e in &batch {
                if let Some(reply) = lock(&e.request.state).reply.take() {
                    let _ =
                        reply.send(Err(QueueError::Failed { model: shared.name.clone(), message: message.clone() }));
                }
            }
            return;
        }
    };
    for (entry, l) in batch.into_iter().zip(logits) {
        let mut state = lock(&entry.request.state);
        if state.reply.is_none() {
            continue;
        }
        if let Some(slot) = state.logits.get_mut(entry.index) {
            *slot = Some(l);
        }
        state.remaining = state.remaining.saturating_sub(1);
        if state.remaining == 0 {
            let all = state.logits.iter_mut().map(|l| l.take().unwrap_or_default()).collect();
            if let Some(reply) = state.reply.take() {
                let _ = reply.send(Ok(all));
            }
        }
    }
}

/// One served reranker.
#[derive(Debug, Clone)]
pub struct ServedReranker {
    pub name: String,
    pub queue: RerankQueue,
}

/// The served rerankers, in the order given; the first is the default. May be empty.
#[derive(Debug, Default)]
pub struct RerankerRegistry {
    rerankers: Vec<ServedReranker>,
}

impl RerankerRegistry {
    pub fn start(
        rerankers: Vec<(String, Arc<RerankModel>)>,
        queue: &QueueConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        let mut served: Vec<ServedReranker> = Vec::new();
        for (name, model) in rerankers {
            if name.is_empty() {
                return Err(ServerError::Config("a reranker name cannot be empty".to_string()));
            }
            if served.iter().any(|m| m.name == name) {
                return Err(ServerError::Config(format!("two rerankers are named '{name}'")));
            }
            let queue = RerankQueue::start(&name, model, queue.clone(), Arc::clone(metrics))?;
            served.push(ServedReranker { name, queue });
        }
        Ok(RerankerRegistry { rerankers: served })
    }

    pub fn all(&self) -> &[ServedReranker] {
        &self.rerankers
    }

    pub fn names(&self) -> Vec<&str> {
        self.rerankers.iter().map(|m| m.name.as_str()).collect()
    }

    /// The reranker a request names (served name or model id), or the default one. With none
    /// served, a 404 saying how to serve one.
    pub fn select(&self, name: Option<&str>) -> Result<&ServedReranker, ApiError> {
        if self.rerankers.is_empty() {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                "no reranker is served here: start the server with --reranker MODEL (a cross-encoder or Qwen3-Reranker)",
            )
            .with_param("model"));
        }
        let Some(name) = name else {
            return self.rerankers.first().ok_or_else(|| ApiError::internal("no reranker is loaded"));
        };
        self.rerankers
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.rerankers.iter().find(|m| m.queue.model().model_id() == name))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "reranker '{name}' is not served here; available rerankers: {}",
                    self.names().join(", ")
                ))
                .with_param("model")
            })
    }

    pub fn healthy(&self) -> bool {
        self.rerankers.iter().all(|m| m.queue.is_healthy())
    }

    pub fn shutdown(&self) {
        for m in &self.rerankers {
            m.queue.shutdown();
        }
    }
}

impl Drop for RerankerRegistry {
    fn drop(&mut self) {
        self.shutdown();
    }
}
