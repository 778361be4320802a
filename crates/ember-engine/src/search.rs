//! Search: embed the query with the model's query prompt, then search the collection.

use ember_core::{EmbedOptions, Embedder};
use ember_store::{Filter, Hit, VectorCollection};

use crate::error::EngineError;
use crate::ingest::check_model;

/// Embedding options for a role (`query` or `document`): the model's prompt of that name when it
/// has one, none otherwise.
pub fn role_options(embedder: &dyn Embedder, role: &str) -> EmbedOptions {
    let has = embedder.prompt_names().iter().any(|p| p == role);
    EmbedOptions { prompt_name: has.then(|| role.to_string()), ..EmbedOptions::default() }
}

/// The `k` chunks of `collection` (of any backend; a `&Collection` coerces) closest to `query`,
/// among those passing `filter`.
pub fn search(
    collection: &dyn VectorCollection,
    embedder: &dyn Embedder,
    query: &str,
    k: usize,
    filter: Option<&Filter>,
) -> Result<Vec<Hit>, EngineError> {
    search_with_effort(collection, embedder, query, k, filter, None)
}

/// [`search`] with an approximate index's search effort (HNSW's `ef`).
pub fn search_with_effort(
    collection: &dyn VectorCollection,
    embedder: &dyn Embedder,
    query: &str,
    k: usize,
    filter: Option<&Filter>,
    effort: Option<usize>,
) -> Result<Vec<Hit>, EngineError> {
    check_model(collection, embedder)?;
    let options = role_options(embedder, "query");
    let embedded = embedder.embed(&[query], &options).map_err(EngineError::Embed)?;
    let vector = embedded.vectors.into_iter().next().unwrap_or_default();
    Ok(collection.search_with_effort(&vector, k, filter, effort)?)
}
