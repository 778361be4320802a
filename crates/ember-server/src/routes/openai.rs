//! The OpenAI flavour: `POST /v1/embeddings`, `GET /v1/models`, `GET /v1/models/{model}`, with
//! OpenAI's request and response shapes and its error body
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! Inputs longer than the model's limit are truncated (as sentence-transformers and `ember embed`
//! do), and `usage.prompt_tokens` counts the tokens the model saw, special tokens included. Token
//! id inputs are ids of the served model's own vocabulary (not tiktoken's), fed as given.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use ember_core::{EmbedOptions, Embedder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::batcher::EmbedRequest;
use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::input::parse_inputs;
use crate::json::Body;
use crate::models::ServedModel;
use crate::state::AppState;

/// OpenAI's error body.
#[derive(Debug)]
pub struct OpenAi;

impl Flavour for OpenAi {
    fn error_body(e: &ApiError) -> Value {
        let (kind, code) = match e.kind {
            ErrorKind::Unauthorized => ("invalid_request_error", Some("invalid_api_key")),
            ErrorKind::NotFound if e.param.as_deref() == Some("model") => {
                ("invalid_request_error", Some("model_not_found"))
            }
            ErrorKind::NotFound => ("invalid_request_error", Some("not_found")),
            ErrorKind::PayloadTooLarge => ("invalid_request_error", Some("context_length_exceeded")),
            ErrorKind::Overloaded => ("rate_limit_error", Some("rate_limit_exceeded")),
            ErrorKind::NotSupported => ("invalid_request_error", Some("unsupported")),
            ErrorKind::Internal | ErrorKind::Unavailable => ("server_error", None),
            _ => ("invalid_request_error", None),
        };
        json!({"error": {"message": e.message, "type": kind, "param": e.param, "code": code}})
    }

    /// OpenAI answers invalid values with 400, never 422, and a model that cannot embed (a
    /// sparse-only SPLADE model here) with 400 too: the request picked the wrong model.
    fn status(e: &ApiError) -> StatusCode {
        match e.kind {
            ErrorKind::Unprocessable | ErrorKind::NotSupported => StatusCode::BAD_REQUEST,
            kind => kind.status(),
        }
    }
}

type Error = Failure<OpenAi>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*model}", get(get_model))
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    pub input: Value,
    pub model: Option<String>,
    pub dimensions: Option<usize>,
    pub encoding_format: Option<String>,
    /// Accepted and ignored, as OpenAI's end-user tracking id.
    pub user: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<EmbeddingData>,
    pub model: String,
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingData {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

/// A vector as floats, or as base64 of its little-endian `f32` bytes (what the openai SDK asks
/// for by default and decodes with `np.frombuffer(..., dtype="float32")`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Float,
    Base64,
}

async fn embeddings(
    State(state): State<AppState>,
    Body(request, _): Body<EmbeddingsRequest, OpenAi>,
) -> Result<Json<EmbeddingsResponse>, Error> {
    let served = state.models().select(request.model.as_deref())?;
    let inputs = parse_inputs(&request.input, "input")?;
    let encoding = match request.encoding_format.as_deref() {
        None | Some("float") => Encoding::Float,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "encoding_format",
                format!("'{other}' is not one of 'float', 'base64'"),
            )
            .into())
        }
    };
    let options = EmbedOptions { dimensions: check_dimensions(served, request.dimensions)?, ..EmbedOptions::default() };
    let out = served.queue.embed(EmbedRequest { inputs, options, truncate: true }).await?;
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingData {
            object: "embedding",
            index,
            embedding: match encoding {
                Encoding::Float => EmbeddingValue::Float(v),
                Encoding::Base64 => EmbeddingValue::Base64(base64_f32(&v)),
            },
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: served.name.clone(),
        usage: Usage { prompt_tokens: out.tokens, total_tokens: out.tokens },
    }))
}

/// `dimensions` must be between 1 and the model's dimension.
pub(crate) fn check_dimensions(served: &ServedModel, dimensions: Option<usize>) -> Result<Option<usize>, ApiError> {
    let dim = served.model().dimension();
    match dimensions {
        Some(d) if d == 0 || d > dim => Err(ApiError::invalid_field(
            "dimensions",
            format!("{d} is not between 1 and {dim} (the dimension of model '{}')", served.name),
        )),
        other => Ok(other),
    }
}

/// Little-endian `f32` bytes, base64 (standard alphabet, padded).
pub fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Debug, Serialize)]
pub struct ModelObject {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

fn model_object(m: &ServedModel) -> ModelObject {
    ModelObject { id: m.name.clone(), object: "model", created: m.created, owned_by: "ember" }
}

async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList { object: "list", data: state.models().all().iter().map(model_object).collect() })
}

async fn get_model(State(state): State<AppState>, Path(model): Path<String>) -> Result<Json<ModelObject>, Error> {
    Ok(Json(model_object(state.models().select(Some(&model))?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 0x3f800000 → bytes 00 00 80 3f.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn error_body_has_openai_shape() {
        let e = ApiError::not_found("model 'x' is not served here").with_param("model");
        let body = OpenAi::error_body(&e);
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(OpenAi::status(&ApiError::new(ErrorKind::Unprocessable, "x")), StatusCode::BAD_REQUEST);
    }
}
