//! Served rerankers, by name, each with its own [`TokenQueue`] of (query, document) pairs: a
//! request's pairs are tokenized on the queue's worker threads, queued one entry per pair, and
//! one model thread per reranker takes entries in arrival order into a forward pass while it
//! stays within `max_batch_requests` pairs and `max_batch_tokens` padded token slots; a request
//! is answered when its last pair is scored. Scores equal [`RerankModel::score_pairs`]' (same
//! tokenization, forward pass and activation).

use std::sync::Arc;

use ember_core::{RerankOptions, RerankScores};
use ember_models::{ModelError, PairTokens, RerankModel};

use crate::batcher::{QueueConfig, QueueError};
use crate::error::{ApiError, ErrorKind, ServerError};
use crate::metrics::Metrics;
use crate::queue::{BatchRunner, TokenQueue};

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

/// Runs a reranker over a batch of tokenized pairs: one row of logits per pair.
#[derive(Debug)]
pub struct RerankRunner {
    model: Arc<RerankModel>,
}

impl BatchRunner for RerankRunner {
    type Item = PairTokens;
    type Output = Vec<f32>;

    fn tokens(item: &PairTokens) -> usize {
        item.ids.len()
    }

    fn run(&self, items: &[&PairTokens]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.model.forward(items)
    }
}

/// The queue of one reranker; cheap to clone.
#[derive(Debug, Clone)]
pub struct RerankQueue {
    queue: TokenQueue<RerankRunner>,
}

impl RerankQueue {
    /// Start the model thread of `model`, served as `name`.
    pub fn start(
        name: &str,
        model: Arc<RerankModel>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        Ok(RerankQueue { queue: TokenQueue::start(name, "rerank", Arc::new(RerankRunner { model }), config, metrics)? })
    }

    pub fn model(&self) -> &Arc<RerankModel> {
        &self.queue.runner().model
    }

    pub fn config(&self) -> &QueueConfig {
        self.queue.config()
    }

    pub fn is_healthy(&self) -> bool {
        self.queue.is_healthy()
    }

    /// Score a request's documents: tokenize on the queue's worker threads, wait in the queue,
    /// run on the model thread. Dropping the future (a client gone away) removes its waiting
    /// pairs.
    pub async fn rerank(&self, request: RerankRequest) -> Result<RerankScores, QueueError> {
        if request.documents.is_empty() {
            return Ok(RerankScores::default());
        }
        let model = Arc::clone(self.model());
        let name = self.queue.name().to_string();
        let options = RerankOptions { max_length: None, batch_size: None, ..request.options.clone() };
        let tokenize_options = options.clone();
        let n = request.documents.len();
        let (logits, rows_info) = self
            .queue
            .submit(n, move || {
                let docs: Vec<&str> = request.documents.iter().map(String::as_str).collect();
                let rows = model.tokenize(&request.query, &docs, &tokenize_options)?;
                if !request.truncate {
                    if let Some(index) = rows.iter().position(|r| r.truncated) {
                        let limit = model.max_length();
                        // The untruncated length, for the message.
                        let long = RerankOptions { max_length: Some(usize::MAX), ..tokenize_options.clone() };
                        let tokens = model
                            .tokenize(&request.query, &docs[index..=index], &long)
                            .ok()
                            .and_then(|r| r.first().map(|r| r.ids.len()))
                            .filter(|&t| t > limit)
                            .unwrap_or(limit + 1);
                        return Err(QueueError::TooLong { model: name, index, tokens, limit });
                    }
                }
                let tokens = rows.iter().map(|r| r.ids.len()).sum::<usize>();
                let truncated = rows.iter().filter(|r| r.truncated).count();
                Ok((rows, (tokens, truncated)))
            })
            .await?;
        let (tokens, truncated) = rows_info;
        let scores = logits.iter().map(|l| self.model().finish_score(l, options.activation)).collect();
        self.queue.metrics().count_embedded(self.queue.name(), logits.len());
        Ok(RerankScores { scores, tokens, truncated })
    }

    /// Stop taking requests, let the model thread finish what is queued, and join it.
    pub fn shutdown(&self) {
        self.queue.shutdown();
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
