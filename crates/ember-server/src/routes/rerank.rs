//! The Cohere / Jina rerank flavour: `POST /v1/rerank` (and Cohere's `/v2/rerank`), with
//! Cohere's error body `{"message": "..."}`.
//!
//! Request: `query`, `documents` (strings or `{"text": ...}` objects), `top_n`,
//! `return_documents`, `model` (a served reranker; default: the first `--reranker`), and ember's
//! extension `instruction` (Qwen3-Reranker's task instruction). Response:
//! `{"id", "results": [{"index", "relevance_score", "document"?: {"text"}}], "model", "meta"?, "usage"}`,
//! best first. Long documents are truncated (as Cohere does), never refused; `relevance_score` is
//! the model's activated score (sigmoid, softmax label 1, or P(yes)).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ember_core::{rank_by_score, RerankOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::input::type_name;
use crate::json::Body;
use crate::rerankers::RerankRequest;
use crate::state::AppState;

/// Cohere's error body.
#[derive(Debug)]
pub struct Cohere;

impl Flavour for Cohere {
    fn error_body(e: &ApiError) -> Value {
        json!({"message": e.message})
    }
}

type Error = Failure<Cohere>;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/rerank", post(rerank)).route("/v2/rerank", post(rerank))
}

#[derive(Debug, Deserialize)]
pub struct CohereRerankRequest {
    pub model: Option<String>,
    pub query: String,
    pub documents: Vec<Value>,
    pub top_n: Option<usize>,
    pub return_documents: Option<bool>,
    pub instruction: Option<String>,
}

/// The texts of `documents`: strings, or objects with a `text` string. An empty list is valid
/// (it has no results).
fn document_texts(documents: &[Value]) -> Result<Vec<&str>, ApiError> {
    documents
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Value::String(s) => Ok(s.as_str()),
            Value::Object(o) => o.get("text").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid_field(&format!("documents[{i}]"), "an object document needs a string field 'text'")
            }),
            other => Err(ApiError::wrong_type(
                &format!("documents[{i}]"),
                format!("expected a string or an object with 'text', got {}", type_name(other)),
            )),
        })
        .collect()
}

/// The reranker a request names (or the default), with a clearer message when the name is one of
/// the served embedding models.
pub(crate) fn select_reranker<'a>(
    state: &'a AppState,
    name: Option<&str>,
) -> Result<&'a crate::rerankers::ServedReranker, ApiError> {
    state.rerankers().select(name).map_err(|e| match name {
        Some(m) if state.models().select(Some(m)).is_ok() => {
            let served = state.rerankers().names();
            let message = if served.is_empty() {
                format!("model '{m}' is an embedding model, not a reranker; no reranker is served here: start the server with --reranker MODEL")
            } else {
                format!("model '{m}' is an embedding model, not a reranker; served rerankers: {}", served.join(", "))
            };
            ApiError { message, ..e }
        }
        _ => e,
    })
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// More documents than one request may carry (a request must fit the reranker's queue).
pub(crate) fn too_many_documents(count: usize, limit: usize, field: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "too many documents: {count} in one request, at most {limit} (the server's --max-queue); split the request"
        ),
    )
    .with_param(field)
}

async fn rerank(
    State(state): State<AppState>,
    Body(request, _): Body<CohereRerankRequest, Cohere>,
) -> Result<Json<Value>, Error> {
    let texts = document_texts(&request.documents)?;
    if request.top_n == Some(0) {
        return Err(ApiError::invalid_field("top_n", "must be at least 1").into());
    }
    let served = select_reranker(&state, request.model.as_deref())?;
    let limit = served.queue.config().max_queue;
    if texts.len() > limit {
        return Err(too_many_documents(texts.len(), limit, "documents").into());
    }
    let job = RerankRequest {
        query: request.query.clone(),
        documents: texts.iter().map(|t| t.to_string()).collect(),
        options: RerankOptions { instruction: request.instruction.clone(), ..RerankOptions::default() },
        truncate: true,
    };
    let out = served.queue.rerank(job).await?;
    let mut ranked = rank_by_score(&out.scores);
    ranked.truncate(request.top_n.unwrap_or(ranked.len()));
    let return_documents = request.return_documents.unwrap_or(false);
    let results: Vec<Value> = ranked
        .iter()
        .map(|&(index, score)| {
            let mut r = json!({"index": index, "relevance_score": score});
            if return_documents {
                r["document"] = json!({"text": texts[index]});
            }
            r
        })
        .collect();
    let id = format!("rerank-{}", NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    Ok(Json(json!({
        "id": id,
        "results": results,
        "model": served.name,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}, "truncated_documents": out.truncated},
        "usage": {"prompt_tokens": out.tokens, "total_tokens": out.tokens},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_strings_or_objects_with_text() {
        let docs = vec![json!("a"), json!({"text": "b", "title": "t"})];
        assert_eq!(document_texts(&docs).unwrap(), ["a", "b"]);
        let e = document_texts(&[json!("a"), json!({"title": "t"})]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("documents[1]"));
        let e = document_texts(&[json!(3)]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("documents[0]"));
        assert!(document_texts(&[]).unwrap().is_empty());
    }
}
