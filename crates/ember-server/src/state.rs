//! What every handler shares: the models, the store, the metrics and the limits.

use std::sync::Arc;

use ember_models::{RerankModel, SentenceEmbedder};
use ember_store::VectorStore;

use crate::auth::ApiKey;
use crate::batcher::QueueConfig;
use crate::error::{ApiError, ErrorKind, ServerError};
use crate::metrics::Metrics;
use crate::models::ModelRegistry;
use crate::rerankers::RerankerRegistry;

/// Default request body limit: 8 MiB (an OpenAI request of 2048 inputs of a few kilobytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;

/// How the server behaves: validated values, built by the binary from its flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub queue: QueueConfig,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// When set, every endpoint but `/health` needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { queue: QueueConfig::default(), max_body_bytes: DEFAULT_MAX_BODY_BYTES, api_key: None }
    }
}

/// The server's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    models: ModelRegistry,
    rerankers: RerankerRegistry,
    store: Option<Arc<dyn VectorStore>>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    api_key: Option<ApiKey>,
}

impl AppState {
    /// Start a queue per model (named as given; the first is the default) and share `store`
    /// (collections are served only with one).
    pub fn new(
        models: Vec<(String, Arc<SentenceEmbedder>)>,
        store: Option<Arc<dyn VectorStore>>,
        config: ServerConfig,
    ) -> Result<Self, ServerError> {
        Self::with_rerankers(models, Vec::new(), store, config)
    }

    /// [`new`](Self::new), also serving `rerankers` (each with its own queue; the first is the
    /// default of the rerank endpoints).
    pub fn with_rerankers(
        models: Vec<(String, Arc<SentenceEmbedder>)>,
        rerankers: Vec<(String, Arc<RerankModel>)>,
        store: Option<Arc<dyn VectorStore>>,
        config: ServerConfig,
    ) -> Result<Self, ServerError> {
        if config.max_body_bytes == 0 {
            return Err(ServerError::Config("max_body_bytes must be at least 1".to_string()));
        }
        if config.api_key.as_deref() == Some("") {
            return Err(ServerError::Config("the API key cannot be empty".to_string()));
        }
        let metrics = Arc::new(Metrics::default());
        let models = ModelRegistry::start(models, &config.queue, &metrics)?;
        let rerankers = RerankerRegistry::start(rerankers, &config.queue, &metrics)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                models,
                rerankers,
                store,
                metrics,
                max_body_bytes: config.max_body_bytes,
                api_key: config.api_key.as_deref().map(ApiKey::new),
            }),
        })
    }

    pub fn models(&self) -> &ModelRegistry {
        &self.inner.models
    }

    pub fn rerankers(&self) -> &RerankerRegistry {
        &self.inner.rerankers
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    pub fn api_key(&self) -> Option<&ApiKey> {
        self.inner.api_key.as_ref()
    }

    /// The store, or a clear error when the server was started without one.
    pub fn store(&self) -> Result<&Arc<dyn VectorStore>, ApiError> {
        self.inner.store.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotSupported,
                "collections are not enabled: start the server with a store (ember serve --data-dir DIR, or \
                 --store postgres://…)",
            )
        })
    }

    /// Finish queued work, stop the model threads and wait for the store's background work:
    /// what a graceful shutdown does once the last request is answered.
    pub fn shutdown(&self) {
        self.inner.models.shutdown();
        self.inner.rerankers.shutdown();
        if let Some(store) = &self.inner.store {
            store.wait_for_maintenance();
        }
    }
}
