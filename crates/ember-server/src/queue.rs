//! The token-budget batching queue: all of the server's concurrency around one model, written
//! once for every kind of model it serves (embedding models, rerankers).
//!
//! A request is prepared (tokenized) on a small pool of worker threads, then queued one entry
//! per sequence. One model thread owns the forward pass: it takes entries in arrival order into a
//! batch until the batch would exceed `max_batch_requests` sequences or `max_batch_tokens` padded
//! token slots (the longest sequence times the count, as [`ember_core::plan_batches`] counts
//! them), runs it, and answers each request once all of its sequences are done. A client batch
//! larger than a model batch is therefore split across several forward passes, transparently.
//!
//! The queue is bounded (`max_queue` sequences waiting): a request that does not fit is refused
//! with [`QueueError::Full`] (HTTP 429), unless the queue is empty, so that a large client batch
//! is never refused for its size alone. A request whose future is dropped (the client went away)
//! takes its waiting entries out of the queue.
//!
//! What a model does with a batch is a [`BatchRunner`]: the queue never looks inside an entry but
//! for its length.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use ember_models::ModelError;
use thiserror::Error;
use tokio::sync::oneshot;

use crate::error::ServerError;
use crate::metrics::Metrics;

/// How a model's queue batches and bounds its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The most padded token slots (sequences × longest sequence) in one forward pass.
    pub max_batch_tokens: usize,
    /// The most sequences in one forward pass.
    pub max_batch_requests: usize,
    /// The most sequences waiting in the queue; past it requests are refused (429).
    pub max_queue: usize,
    /// Threads preparing (tokenizing) requests.
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

/// Why a request was not answered.
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

/// What a model does with a batch of queued sequences.
pub trait BatchRunner: Send + Sync + 'static {
    /// One queued sequence (token ids and whatever the forward pass needs with them).
    type Item: Send + 'static;
    /// One sequence's answer.
    type Output: Send + 'static;

    /// The sequence's length in tokens, for the token budget.
    fn tokens(item: &Self::Item) -> usize;

    /// One forward pass: an answer per item, in order.
    fn run(&self, items: &[&Self::Item]) -> Result<Vec<Self::Output>, ModelError>;
}

type Job = Box<dyn FnOnce() + Send>;

/// A request waiting for its answers.
struct Pending<O> {
    id: u64,
    state: Mutex<Collected<O>>,
}

struct Collected<O> {
    outputs: Vec<Option<O>>,
    remaining: usize,
    reply: Option<oneshot::Sender<Result<Vec<O>, QueueError>>>,
}

/// One sequence in the queue.
struct Entry<I, O> {
    request: Arc<Pending<O>>,
    index: usize,
    item: I,
    enqueued: Instant,
}

struct QueueState<I, O> {
    entries: VecDeque<Entry<I, O>>,
    closed: bool,
}

struct Shared<R: BatchRunner> {
    name: String,
    config: QueueConfig,
    state: Mutex<QueueState<R::Item, R::Output>>,
    ready: Condvar,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks (the forward pass runs outside them, under
    // catch_unwind), so a poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The model thread (joined on shutdown) and the preparing threads (which end by themselves once
/// the last clone of the queue, and with it the job channel, is gone).
struct Threads {
    model: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

/// The queue of one model: cheap to clone; every clone feeds the same model thread.
pub struct TokenQueue<R: BatchRunner> {
    shared: Arc<Shared<R>>,
    runner: Arc<R>,
    jobs: mpsc::Sender<Job>,
    threads: Arc<Mutex<Threads>>,
}

impl<R: BatchRunner> Clone for TokenQueue<R> {
    fn clone(&self) -> Self {
        TokenQueue {
            shared: Arc::clone(&self.shared),
            runner: Arc::clone(&self.runner),
            jobs: self.jobs.clone(),
            threads: Arc::clone(&self.threads),
        }
    }
}

impl<R: BatchRunner> std::fmt::Debug for TokenQueue<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenQueue").field("name", &self.shared.name).field("config", &self.shared.config).finish()
    }
}

impl<R: BatchRunner> TokenQueue<R> {
    /// Start the model thread and the preparing threads of `runner`, served as `name`; threads
    /// are named `ember-{kind}-{name}`.
    pub fn start(
        name: &str,
        kind: &str,
        runner: Arc<R>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        config.validate()?;
        let shared = Arc::new(Shared::<R> {
            name: name.to_string(),
            config: config.clone(),
            state: Mutex::new(QueueState { entries: VecDeque::new(), closed: false }),
            ready: Condvar::new(),
            next_id: AtomicU64::new(1),
            metrics,
        });
        let spawn_error = |source| ServerError::Thread { model: name.to_string(), source };
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = Vec::new();
        for i in 0..config.tokenizer_workers {
            let receiver = Arc::clone(&receiver);
            let handle = std::thread::Builder::new()
                .name(format!("ember-tok-{name}-{i}"))
                .spawn(move || loop {
                    let job = lock(&receiver).recv();
                    match job {
                        // A panic while preparing drops the job's reply sender: its request
                        // fails, the thread goes on.
                        Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
                        Err(_) => break,
                    }
                })
                .map_err(spawn_error)?;
            workers.push(handle);
        }
        let worker_shared = Arc::clone(&shared);
        let worker_runner = Arc::clone(&runner);
        let model_thread = std::thread::Builder::new()
            .name(format!("ember-{kind}-{name}"))
            .spawn(move || run_model(&worker_shared, &*worker_runner))
            .map_err(spawn_error)?;
        let threads = Threads { model: Some(model_thread), workers };
        Ok(TokenQueue { shared, runner, jobs, threads: Arc::new(Mutex::new(threads)) })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn runner(&self) -> &Arc<R> {
        &self.runner
    }

    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Sequences waiting for the model thread.
    pub fn depth(&self) -> usize {
        lock(&self.shared.state).entries.len()
    }

    /// The model thread and the preparing threads are running and accepting work.
    pub fn is_healthy(&self) -> bool {
        let threads = lock(&self.threads);
        !lock(&self.shared.state).closed
            && threads.model.as_ref().is_some_and(|t| !t.is_finished())
            && threads.workers.iter().all(|t| !t.is_finished())
    }

    /// Run a request: `prepare` (tokenize) on a preparing thread, its items through the queue
    /// and the model thread; answers in item order, with what `prepare` returned beside them.
    /// `inputs` (the request's size, known before preparing) is checked against the queue's room
    /// first. Dropping the returned future (a client gone away) removes the waiting items.
    pub async fn submit<T, P>(&self, inputs: usize, prepare: P) -> Result<(Vec<R::Output>, T), QueueError>
    where
        T: Send + 'static,
        P: FnOnce() -> Result<(Vec<R::Item>, T), QueueError> + Send + 'static,
    {
        self.check_room(inputs)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(prepare());
            }
        });
        self.jobs.send(job).map_err(|_| self.closed())?;
        let (items, extra) = rx.await.map_err(|_| self.lost("tokenizing"))??;
        let (rx, guard) = self.enqueue(items)?;
        let answer = rx.await;
        guard.disarm();
        Ok((answer.map_err(|_| self.lost("running the model"))??, extra))
    }

    /// [`submit`](Self::submit) for a thread that may block (not an async task): prepares on
    /// the calling thread, then waits for the model thread.
    pub fn submit_blocking<T>(
        &self,
        inputs: usize,
        prepare: impl FnOnce() -> Result<(Vec<R::Item>, T), QueueError>,
    ) -> Result<(Vec<R::Output>, T), QueueError> {
        self.check_room(inputs)?;
        let (items, extra) = prepare()?;
        let (rx, guard) = self.enqueue(items)?;
        let answer = rx.blocking_recv();
        guard.disarm();
        Ok((answer.map_err(|_| self.lost("running the model"))??, extra))
    }

    /// Stop taking requests, let the model thread finish what is queued, and join it.
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

    #[allow(clippy::type_complexity)]
    fn enqueue(
        &self,
        items: Vec<R::Item>,
    ) -> Result<(oneshot::Receiver<Result<Vec<R::Output>, QueueError>>, CancelGuard<R>), QueueError> {
        let (tx, rx) = oneshot::channel();
        let n = items.len();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            let _ = tx.send(Ok(Vec::new()));
            return Ok((rx, CancelGuard { shared: None, id }));
        }
        let request = Arc::new(Pending {
            id,
            state: Mutex::new(Collected {
                outputs: std::iter::repeat_with(|| None).take(n).collect(),
                remaining: n,
                reply: Some(tx),
            }),
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
            for (index, item) in items.into_iter().enumerate() {
                state.entries.push_back(Entry { request: Arc::clone(&request), index, item, enqueued: now });
            }
            self.shared.metrics.set_queue_depth(&self.shared.name, state.entries.len());
        }
        self.shared.ready.notify_one();
        Ok((rx, CancelGuard { shared: Some(Arc::clone(&self.shared)), id }))
    }
}

/// Takes a request's entries out of the queue if its future is dropped before the answer.
struct CancelGuard<R: BatchRunner> {
    shared: Option<Arc<Shared<R>>>,
    id: u64,
}

impl<R: BatchRunner> CancelGuard<R> {
    fn disarm(mut self) {
        self.shared = None;
    }
}

impl<R: BatchRunner> Drop for CancelGuard<R> {
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
fn run_model<R: BatchRunner>(shared: &Shared<R>, runner: &R) {
    loop {
        let batch = {
            let mut state = lock(&shared.state);
            while state.entries.is_empty() && !state.closed {
                state = shared.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.entries.is_empty() {
                return;
            }
            let batch = take_batch(&mut state.entries, &shared.config, R::tokens);
            shared.metrics.set_queue_depth(&shared.name, state.entries.len());
            batch
        };
        run_batch(shared, runner, batch);
    }
}

/// Entries from the front, in order, while the batch stays within both budgets (the first entry
/// always goes, whatever its length).
fn take_batch<I, O>(
    entries: &mut VecDeque<Entry<I, O>>,
    config: &QueueConfig,
    tokens: impl Fn(&I) -> usize,
) -> Vec<Entry<I, O>> {
    let mut batch: Vec<Entry<I, O>> = Vec::new();
    let mut longest = 0;
    while let Some(next) = entries.front() {
        let len = tokens(&next.item).max(1);
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

fn run_batch<R: BatchRunner>(shared: &Shared<R>, runner: &R, batch: Vec<Entry<R::Item, R::Output>>) {
    let started = Instant::now();
    let metrics = &shared.metrics;
    for e in &batch {
        metrics.observe_queue_time(&shared.name, started.duration_since(e.enqueued).as_secs_f64());
    }
    let items: Vec<&R::Item> = batch.iter().map(|e| &e.item).collect();
    let tokens: usize = items.iter().map(|i| R::tokens(i)).sum();
    let result = catch_unwind(AssertUnwindSafe(|| runner.run(&items)));
    metrics.observe_batch(&shared.name, batch.len(), tokens, started.elapsed().as_secs_f64());
    let outputs = match result {
        Ok(Ok(v)) if v.len() == batch.len() => v,
        other => {
            let message = match other {
                Ok(Ok(v)) => format!("{} answers for {} inputs", v.len(), batch.len()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the forward pass panicked".to_string(),
            };
            for e in &batch {
                fail(&e.request, QueueError::Failed { model: shared.name.clone(), message: message.clone() });
            }
            return;
        }
    };
    for (entry, output) in batch.into_iter().zip(outputs) {
        let mut state = lock(&entry.request.state);
        if state.reply.is_none() {
            continue;
        }
        if let Some(slot) = state.outputs.get_mut(entry.index) {
            *slot = Some(output);
        }
        state.remaining = state.remaining.saturating_sub(1);
        if state.remaining == 0 {
            let outputs: Option<Vec<R::Output>> = state.outputs.iter_mut().map(Option::take).collect();
            if let Some(reply) = state.reply.take() {
                let answer = outputs.ok_or_else(|| QueueError::Failed {
                    model: shared.name.clone(),
                    message: "an input was answered twice and another never".to_string(),
                });
                let _ = reply.send(answer);
            }
        }
    }
}

fn fail<O>(request: &Pending<O>, error: QueueError) {
    if let Some(reply) = lock(&request.state).reply.take() {
        let _ = reply.send(Err(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: usize) -> Entry<usize, ()> {
        let request = Arc::new(Pending {
            id: 1,
            state: Mutex::new(Collected { outputs: Vec::new(), remaining: 0, reply: None }),
        });
        Entry { request, index: 0, item: len, enqueued: Instant::now() }
    }

    fn lengths(batch: &[Entry<usize, ()>]) -> Vec<usize> {
        batch.iter().map(|e| e.item).collect()
    }

    fn take(q: &mut VecDeque<Entry<usize, ()>>, config: &QueueConfig) -> Vec<usize> {
        lengths(&take_batch(q, config, |&n| n))
    }

    #[test]
    fn batches_respect_both_budgets_in_arrival_order() {
        let config = QueueConfig { max_batch_tokens: 40, max_batch_requests: 3, max_queue: 100, tokenizer_workers: 1 };
        let mut q: VecDeque<_> = [5, 10, 3, 4, 30, 2].into_iter().map(entry).collect();
        assert_eq!(take(&mut q, &config), [5, 10, 3]);
        // 4 alone, then 4 with 30 would cost 60 slots.
        assert_eq!(take(&mut q, &config), [4]);
        assert_eq!(take(&mut q, &config), [30]);
        assert_eq!(take(&mut q, &config), [2]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_input_over_the_token_budget_runs_alone() {
        let config = QueueConfig { max_batch_tokens: 8, max_batch_requests: 8, max_queue: 100, tokenizer_workers: 1 };
        let mut q: VecDeque<_> = [50, 1].into_iter().map(entry).collect();
        assert_eq!(take(&mut q, &config), [50]);
        assert_eq!(take(&mut q, &config), [1]);
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = QueueConfig { max_queue: 0, ..QueueConfig::default() };
        assert!(config.validate().is_err());
    }

    /// A runner that doubles numbers and records its batches' sizes.
    struct Doubler {
        batches: Mutex<Vec<usize>>,
    }

    impl BatchRunner for Doubler {
        type Item = u32;
        type Output = u32;
        fn tokens(_: &u32) -> usize {
            1
        }
        fn run(&self, items: &[&u32]) -> Result<Vec<u32>, ModelError> {
            lock(&self.batches).push(items.len());
            Ok(items.iter().map(|&&x| x * 2).collect())
        }
    }

    #[test]
    fn answers_come_back_in_item_order_across_split_batches() {
        let config = QueueConfig { max_batch_tokens: 100, max_batch_requests: 3, max_queue: 100, tokenizer_workers: 1 };
        let runner = Arc::new(Doubler { batches: Mutex::new(Vec::new()) });
        let queue = TokenQueue::start("doubler", "test", Arc::clone(&runner), config, Arc::new(Metrics::default()))
            .expect("start the queue");
        let (out, extra) = queue.submit_blocking(7, || Ok(((1..=7).collect(), "prepared"))).expect("answered");
        assert_eq!(out, [2, 4, 6, 8, 10, 12, 14]);
        assert_eq!(extra, "prepared");
        // Seven items with at most three per forward pass: 3 + 3 + 1.
        assert_eq!(*lock(&runner.batches), [3, 3, 1]);
        queue.shutdown();
        assert!(matches!(queue.submit_blocking(1, || Ok((vec![1], ()))), Err(QueueError::Closed { .. })));
    }
}
