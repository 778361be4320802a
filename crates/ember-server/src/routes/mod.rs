//! One file per API flavour, each with its request and response types and its error body.

pub mod native;
pub mod openai;
pub mod rerank;
pub mod tei;

use crate::error::ApiError;

/// Run blocking work (store I/O, long tokenizations) off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("a worker task failed: {e}")))?
}
