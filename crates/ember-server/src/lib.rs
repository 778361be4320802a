//! ember's HTTP server: one engine behind the APIs that existing clients already speak.
//!
//! | flavour | endpoints | file |
//! |---|---|---|
//! | OpenAI | `POST /v1/embeddings`, `GET /v1/models` | [`routes::openai`] |
//! | text-embeddings-inference | `POST /embed`, `/embed_sparse`, `/embed_all`, `/tokenize`, `/decode`, `GET /info`, `/health` | [`routes::tei`] |
//! | Cohere / Jina | `POST /v1/rerank` (and TEI's `POST /rerank`) with `--reranker` models | [`routes::rerank`], [`routes::tei`] |
//! | ember | `/v1/collections…`, `POST /v1/chunk` | [`routes::native`] |
//! | Prometheus | `GET /metrics` | [`metrics`] |
//!
//! Every model has a [`ModelQueue`](batcher::ModelQueue) (a [`queue::TokenQueue`]): requests are tokenized on worker
//! threads and packed into batches by a token budget for the one thread that runs the model.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use ember_models::{LoadOptions, SentenceEmbedder};
//! use ember_server::{serve, AppState, ServerConfig};
//!
//! let dir = std::path::Path::new("all-MiniLM-L6-v2");
//! let model = SentenceEmbedder::load("all-MiniLM-L6-v2", dir, &LoadOptions::default())?;
//! let state = AppState::new(vec![("minilm".to_string(), std::sync::Arc::new(model))], None, ServerConfig::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod batcher;
pub mod error;
pub mod input;
pub mod json;
pub mod metrics;
pub mod models;
pub mod queue;
pub mod rerankers;
pub mod routes;
pub mod state;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;

pub use batcher::{EmbedRequest, Input, ModelQueue, QueueConfig, QueueError};
pub use error::{ApiError, ErrorKind, ServerError};
pub use rerankers::{RerankQueue, RerankRequest, RerankerRegistry};
pub use state::{AppState, ServerConfig};

use crate::auth::require_key;
use crate::routes::native::Native;
use crate::routes::openai::OpenAi;
use crate::routes::rerank::Cohere;
use crate::routes::tei::Tei;

/// The whole API, with its layers: the API key (per flavour, in its error shape), metrics and
/// the body limit.
pub fn router(state: AppState) -> Router {
    let openai = routes::openai::routes().route_layer(from_fn_with_state(state.clone(), require_key::<OpenAi>));
    let tei = routes::tei::routes().route_layer(from_fn_with_state(state.clone(), require_key::<Tei>));
    let rerank = routes::rerank::routes().route_layer(from_fn_with_state(state.clone(), require_key::<Cohere>));
    let native = Router::new()
        .merge(routes::native::routes())
        .route("/metrics", get(metrics::metrics_handler))
        .route_layer(from_fn_with_state(state.clone(), require_key::<Native>));
    Router::new()
        .merge(openai)
        .merge(tei)
        .merge(rerank)
        .merge(native)
        .route("/health", get(routes::tei::health))
        .fallback(routes::native::no_route)
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(state.max_body_bytes()))
        .with_state(state)
}

/// Serve `state` on `listener` until `shutdown` resolves; then stop accepting connections,
/// finish the requests in flight, let the model threads drain their queues and wait for the
/// store's background work.
pub async fn serve<S>(listener: tokio::net::TcpListener, state: AppState, shutdown: S) -> Result<(), ServerError>
where
    S: Future<Output = ()> + Send + 'static,
{
    let app = router(state.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    let _ = tokio::task::spawn_blocking(move || state.shutdown()).await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): the usual `shutdown` for [`serve`].
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
