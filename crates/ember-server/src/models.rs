//! The models a server serves, by name, each with its own queue.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ember_core::embedder::BoxError;
use ember_core::{EmbedOptions, Embedder, Embeddings, MultiEmbeddings, OutputKinds};
use ember_models::SentenceEmbedder;

use crate::batcher::{EmbedRequest, Input, ModelQueue, QueueConfig};
use crate::error::{ApiError, ServerError};
use crate::metrics::Metrics;

/// One served model.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The name requests select it by (`model` field).
    pub name: String,
    pub queue: ModelQueue,
    /// When it was loaded (seconds since the epoch), for `GET /v1/models`.
    pub created: u64,
}

impl ServedModel {
    pub fn model(&self) -> &Arc<SentenceEmbedder> {
        self.queue.model()
    }

    /// An [`Embedder`] whose forward passes run on this model's queue, for the engine's
    /// pipelines (search, ingest). Call it from a thread that may block.
    pub fn queued_embedder(&self) -> QueuedEmbedder {
        QueuedEmbedder { queue: self.queue.clone() }
    }
}

/// The served models, in the order given; the first is the default.
#[derive(Debug)]
pub struct ModelRegistry {
    models: Vec<ServedModel>,
}

impl ModelRegistry {
    /// Start a queue for every `(name, model)`.
    pub fn start(
        models: Vec<(String, Arc<SentenceEmbedder>)>,
        queue: &QueueConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        if models.is_empty() {
            return Err(ServerError::Config("at least one model is needed".to_string()));
        }
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut served: Vec<ServedModel> = Vec::new();
        for (name, model) in models {
            if name.is_empty() {
                return Err(ServerError::Config("a model name cannot be empty".to_string()));
            }
            if served.iter().any(|m| m.name == name) {
                return Err(ServerError::Config(format!("two models are named '{name}'")));
            }
            let queue = ModelQueue::start(&name, model, queue.clone(), Arc::clone(metrics))?;
            served.push(ServedModel { name, queue, created });
        }
        Ok(ModelRegistry { models: served })
    }

    pub fn all(&self) -> &[ServedModel] {
        &self.models
    }

    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// The model a request names (by served name, or by the model's id), or the default one
    /// when it names none. An unknown name is a 404 naming the available ones.
    pub fn select(&self, name: Option<&str>) -> Result<&ServedModel, ApiError> {
        let Some(name) = name else {
            return self.models.first().ok_or_else(|| ApiError::internal("no model is loaded"));
        };
        self.models
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.models.iter().find(|m| m.model().model_id() == name))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "model '{name}' is not served here; available models: {}",
                    self.names().join(", ")
                ))
                .with_param("model")
            })
    }

    /// The served model whose id a collection records.
    pub fn by_model_id(&self, model_id: &str) -> Option<&ServedModel> {
        self.models.iter().find(|m| m.model().model_id() == model_id)
    }

    /// Every model thread is running.
    pub fn healthy(&self) -> bool {
        self.models.iter().all(|m| m.queue.is_healthy())
    }

    /// Finish queued work and stop every model thread.
    pub fn shutdown(&self) {
        for m in &self.models {
            m.queue.shutdown();
        }
    }
}

impl Drop for ModelRegistry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A model seen through its queue: what the engine's pipelines embed with, so that every
/// forward pass of the server runs on the model's own thread.
#[derive(Debug, Clone)]
pub struct QueuedEmbedder {
    queue: ModelQueue,
}

impl Embedder for QueuedEmbedder {
    fn model_id(&self) -> &str {
        self.queue.model().model_id()
    }

    fn dimension(&self) -> usize {
        self.queue.model().dimension()
    }

    fn prompt_names(&self) -> Vec<String> {
        self.queue.model().prompt_names()
    }

    fn embed(&self, texts: &[&str], options: &EmbedOptions) -> Result<Embeddings, BoxError> {
        Ok(self.queue.embed_blocking(request(texts, options))?)
    }

    fn outputs(&self) -> OutputKinds {
        self.queue.model().outputs()
    }

    fn vocabulary_token(&self, id: u32) -> Option<String> {
        self.queue.model().vocabulary_token(id)
    }

    /// Dense, sparse and ColBERT outputs through the queue, one forward pass per text.
    fn embed_outputs(
        &self,
        texts: &[&str],
        kinds: OutputKinds,
        options: &EmbedOptions,
    ) -> Result<MultiEmbeddings, BoxError> {
        Ok(self.queue.embed_outputs_blocking(request(texts, options), kinds)?)
    }
}

/// Texts the engine embeds: cut at the model's limit, as the library does.
fn request(texts: &[&str], options: &EmbedOptions) -> EmbedRequest {
    let inputs = texts.iter().map(|t| Input::Text(t.to_string())).collect();
    EmbedRequest { inputs, options: options.clone(), truncate: true }
}
