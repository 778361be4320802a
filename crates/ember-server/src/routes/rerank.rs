//! The Cohere / Jina rerank flavour: `POST /v1/rerank` (and Cohere's `/v2/rerank`), with
//! Cohere's error body `{"message": "..."}`.
//!
//! The request is parsed and checked (query, documents as strings or `{"text": ...}` objects,
//! `top_n`, `return_documents`), but no reranker (cross-encoder) model can be served yet, so a
//! valid request is answered 501 naming what is missing.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::input::type_name;
use crate::json::Body;
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
pub struct RerankRequest {
    pub model: Option<String>,
    pub query: String,
    pub documents: Vec<Value>,
    pub top_n: Option<usize>,
    pub return_documents: Option<bool>,
}

/// The texts of `documents`: strings, or objects with a `text` string.
fn document_texts(documents: &[Value]) -> Result<Vec<&str>, ApiError> {
    if documents.is_empty() {
        return Err(ApiError::invalid_field("documents", "the list is empty; send at least one document"));
    }
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

async fn rerank(
    State(state): State<AppState>,
    Body(request, _): Body<RerankRequest, Cohere>,
) -> Result<Json<Value>, Error> {
    document_texts(&request.documents)?;
    if request.top_n == Some(0) {
        return Err(ApiError::invalid_field("top_n", "must be at least 1").into());
    }
    let served = state.models().names().join(", ");
    let message = match request.model.as_deref() {
        Some(m) if state.models().select(Some(m)).is_ok() => {
            format!("model '{m}' is an embedding model, not a reranker; ember serve cannot load reranker (cross-encoder) models yet")
        }
        Some(m) => format!(
            "model '{m}' is not served here, and ember serve cannot load reranker (cross-encoder) models yet; served embedding models: {served}"
        ),
        None => format!(
            "no reranker model is loaded: ember serve cannot load reranker (cross-encoder) models yet; served embedding models: {served}"
        ),
    };
    Err(ApiError::new(ErrorKind::NotSupported, message).with_param("model").into())
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
        assert!(document_texts(&[]).is_err());
    }
}
