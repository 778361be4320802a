//! The text-embeddings-inference flavour: `POST /embed`, `/tokenize`, `/decode`, `GET /info`,
//! `/health`, with TEI's request and response shapes and its error body
//! `{"error": "...", "error_type": "Validation" | "Tokenizer" | "Overloaded" | "Backend" | "Empty" | "Unhealthy"}`.
//!
//! As in TEI, `/embed` refuses inputs over the model's limit unless `"truncate": true`, and
//! normalises unless `"normalize": false`. ember extension: an optional `model` field picks one
//! of several served models (TEI serves one).
//!
//! `/rerank` scores with the served reranker (`ember serve --reranker`): `{query, texts,
//! raw_scores, return_text, truncate, model?, instruction?}` → `[{index, score, text?}]` best
//! first, sigmoid (or the model's activation) unless `raw_scores`; pairs over the model's limit
//! are refused (413) unless `truncate`. Without a reranker it answers 424 as TEI does.
//!
//! `/embed_sparse` answers `[[{index, value}…]…]` (nonzero weights by vocabulary id, ascending)
//! from a model with a sparse head (SPLADE, BGE-M3); `/embed_all` answers every token's last
//! hidden state `[[[f32…]…]…]` (special tokens included, no pooling, no normalisation), as TEI
//! does, from any model. Both go through the model's batching queue. A model without a sparse
//! head, and `/predict` (ember serves no classification models), answer 424 with
//! `error_type: "Backend"`, what TEI answers a model that cannot do them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ember_core::{rank_by_score, EmbedOptions, Embedder, RerankOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::batcher::{EmbedRequest, Input};
use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::input::parse_inputs;
use crate::json::Body;
use crate::models::ServedModel;
use crate::rerankers::RerankRequest;
use crate::routes::blocking;
use crate::routes::openai::check_dimensions;
use crate::state::AppState;
use ember_models::SequenceOutput;

/// TEI's error body.
#[derive(Debug)]
pub struct Tei;

impl Flavour for Tei {
    fn error_body(e: &ApiError) -> Value {
        let error_type = match e.kind {
            ErrorKind::Overloaded => "Overloaded",
            ErrorKind::NotSupported | ErrorKind::Internal => "Backend",
            ErrorKind::Unavailable => "Unhealthy",
            ErrorKind::Unauthorized => "Unauthorized",
            _ if e.message.contains("tokeniz") => "Tokenizer",
            _ if e.param.as_deref() == Some("inputs") && e.message.contains("empty") => "Empty",
            _ => "Validation",
        };
        json!({"error": e.message, "error_type": error_type})
    }

    /// TEI answers a model that cannot serve an endpoint with 424 Failed Dependency.
    fn status(e: &ApiError) -> StatusCode {
        match e.kind {
            ErrorKind::NotSupported => StatusCode::FAILED_DEPENDENCY,
            kind => kind.status(),
        }
    }
}

type Error = Failure<Tei>;

/// Every TEI route but `/health` (which answers without an API key).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/embed", post(embed))
        .route("/tokenize", post(tokenize))
        .route("/decode", post(decode))
        .route("/info", get(info))
        .route("/embed_sparse", post(embed_sparse))
        .route("/embed_all", post(embed_all))
        .route("/rerank", post(rerank))
        .route("/predict", post(not_classifier))
}

/// `GET /health`: 200 while every model thread runs, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> Response {
    if state.models().healthy() && state.rerankers().healthy() {
        StatusCode::OK.into_response()
    } else {
        Failure::<Tei>::from(ApiError::new(ErrorKind::Unavailable, "a model thread has stopped")).into_response()
    }
}

#[derive(Debug, Deserialize)]
pub struct EmbedBody {
    pub inputs: Value,
    #[serde(default = "yes")]
    pub normalize: bool,
    #[serde(default)]
    pub truncate: bool,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
    pub dimensions: Option<usize>,
    pub model: Option<String>,
}

fn yes() -> bool {
    true
}

async fn embed(
    State(state): State<AppState>,
    Body(body, _): Body<EmbedBody, Tei>,
) -> Result<Json<Vec<Vec<f32>>>, Error> {
    let served = state.models().select(body.model.as_deref())?;
    let inputs = parse_inputs(&body.inputs, "inputs")?;
    check_direction(body.truncation_direction.as_deref())?;
    let options = EmbedOptions {
        prompt_name: body.prompt_name,
        normalize: Some(body.normalize),
        dimensions: check_dimensions(served, body.dimensions)?,
        ..EmbedOptions::default()
    };
    let out = served.queue.embed(EmbedRequest { inputs, options, truncate: body.truncate }).await?;
    Ok(Json(out.vectors))
}

/// `/embed_sparse` and `/embed_all`: TEI's `/embed` body without `normalize` and `dimensions`.
#[derive(Debug, Deserialize)]
pub struct TokenLevelBody {
    pub inputs: Value,
    #[serde(default)]
    pub truncate: bool,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
    pub model: Option<String>,
}

impl TokenLevelBody {
    fn request(self) -> Result<EmbedRequest, ApiError> {
        let inputs = parse_inputs(&self.inputs, "inputs")?;
        check_direction(self.truncation_direction.as_deref())?;
        let options = EmbedOptions { prompt_name: self.prompt_name, ..EmbedOptions::default() };
        Ok(EmbedRequest { inputs, options, truncate: self.truncate })
    }
}

/// One nonzero weight of a sparse vector: TEI's `SparseValue`.
#[derive(Debug, Serialize)]
pub struct SparseValue {
    pub index: u32,
    pub value: f32,
}

async fn embed_sparse(
    State(state): State<AppState>,
    Body(body, _): Body<TokenLevelBody, Tei>,
) -> Result<Json<Vec<Vec<SparseValue>>>, Error> {
    let served = state.models().select(body.model.as_deref())?;
    let out = served.queue.embed_sparse(body.request()?).await?;
    let vectors = out
        .vectors
        .into_iter()
        .map(|v| v.into_iter().map(|(index, value)| SparseValue { index, value }).collect())
        .collect();
    Ok(Json(vectors))
}

async fn embed_all(
    State(state): State<AppState>,
    Body(body, _): Body<TokenLevelBody, Tei>,
) -> Result<Json<Vec<Vec<Vec<f32>>>>, Error> {
    let served = state.models().select(body.model.as_deref())?;
    let out = served.queue.embed_tokens(body.request()?, SequenceOutput::Hidden).await?;
    Ok(Json(out.vectors))
}

fn check_direction(direction: Option<&str>) -> Result<(), ApiError> {
    match direction {
        None => Ok(()),
        Some(d) if d.eq_ignore_ascii_case("right") => Ok(()),
        Some(d) if d.eq_ignore_ascii_case("left") => Err(ApiError::new(
            ErrorKind::Unprocessable,
            "truncation_direction 'Left' is not supported yet; ember truncates on the right",
        )
        .with_param("truncation_direction")),
        Some(other) => {
            Err(ApiError::invalid_field("truncation_direction", format!("'{other}' is not 'Right' or 'Left'")))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenizeBody {
    pub inputs: Value,
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
    pub prompt_name: Option<String>,
    pub model: Option<String>,
}

/// One token: TEI's `SimpleToken`.
#[derive(Debug, Serialize)]
pub struct SimpleToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

async fn tokenize(
    State(state): State<AppState>,
    Body(body, _): Body<TokenizeBody, Tei>,
) -> Result<Json<Vec<Vec<SimpleToken>>>, Error> {
    let served = state.models().select(body.model.as_deref())?;
    let texts = texts_only(parse_inputs(&body.inputs, "inputs")?)?;
    let model = served.model().clone();
    let options = EmbedOptions { prompt_name: body.prompt_name, ..EmbedOptions::default() };
    let prompt = model.select_prompt(&options).map_err(ApiError::from)?.unwrap_or_default();
    let add_special = body.add_special_tokens;
    let tokens = blocking(move || {
        texts
            .iter()
            .map(|t| {
                let tokens = model.tokenizer().encode_detailed(&format!("{prompt}{t}"), add_special)?;
                Ok(tokens
                    .into_iter()
                    .map(|d| SimpleToken { id: d.id, text: d.text, special: d.special, start: d.start, stop: d.stop })
                    .collect())
            })
            .collect::<Result<Vec<_>, ember_models::ModelError>>()
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(tokens))
}

fn texts_only(inputs: Vec<Input>) -> Result<Vec<String>, ApiError> {
    inputs
        .into_iter()
        .map(|i| match i {
            Input::Text(t) => Ok(t),
            Input::Ids(_) => Err(ApiError::wrong_type("inputs", "expected a string or an array of strings")),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct DecodeBody {
    pub ids: Value,
    #[serde(default = "yes")]
    pub skip_special_tokens: bool,
    pub model: Option<String>,
}

async fn decode(
    State(state): State<AppState>,
    Body(body, _): Body<DecodeBody, Tei>,
) -> Result<Json<Vec<String>>, Error> {
    let served = state.models().select(body.model.as_deref())?;
    if body.ids.is_string() {
        return Err(ApiError::wrong_type("ids", "expected token ids or arrays of token ids, got a string").into());
    }
    let sequences: Vec<Vec<u32>> = parse_inputs(&body.ids, "ids")?
        .into_iter()
        .map(|i| match i {
            Input::Ids(ids) => Ok(ids),
            Input::Text(_) => Err(ApiError::wrong_type("ids", "expected token ids, got a string")),
        })
        .collect::<Result<_, _>>()?;
    let model = served.model().clone();
    let skip = body.skip_special_tokens;
    let texts = blocking(move || {
        sequences
            .iter()
            .map(|ids| model.tokenizer().decode(ids, skip).map_err(ApiError::from))
            .collect::<Result<Vec<String>, ApiError>>()
    })
    .await?;
    Ok(Json(texts))
}

/// TEI's `/info`, for the default model (or `?model=`-less: TEI serves one model).
async fn info(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let served = state.models().select(None)?;
    Ok(Json(info_json(served, &state)))
}

fn info_json(served: &ServedModel, state: &AppState) -> Value {
    let model = served.model();
    let info = model.info();
    let queue = served.queue.config();
    json!({
        "model_id": served.name,
        "model_sha": null,
        "model_dtype": "float32",
        // TEI calls a SPLADE model's pooling "splade".
        "model_type": {"embedding": {"pooling": if info.heads == "splade" {
            Some("splade".to_string())
        } else {
            info.pooling.first().map(|p| p.to_string())
        }}},
        "outputs": info.outputs,
        "prompts": info.prompts,
        "default_prompt_name": info.default_prompt_name,
        "max_concurrent_requests": queue.max_queue,
        "max_input_length": model.max_seq_length(),
        "max_batch_tokens": queue.max_batch_tokens,
        "max_batch_requests": queue.max_batch_requests,
        "max_client_batch_size": null,
        "auto_truncate": false,
        "tokenization_workers": queue.tokenizer_workers,
        "dimension": model.dimension(),
        "models": state.models().names(),
        "rerankers": state.rerankers().all().iter().map(|r| {
            let info = r.queue.model().info();
            json!({
                "name": r.name,
                "model_id": info.id,
                "model_type": {"reranker": {"kind": info.kind, "architecture": info.architecture, "num_labels": info.num_labels, "activation": info.activation}},
                "max_input_length": info.max_length,
            })
        }).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
        "sha": null,
        "docker_label": null,
    })
}

fn unsupported(needs: &str, state: &AppState) -> Error {
    ApiError::new(
        ErrorKind::NotSupported,
        format!(
            "{needs}, which ember serve does not serve; the models served here are embedding models ({})",
            state.models().names().join(", ")
        ),
    )
    .into()
}

#[derive(Debug, Deserialize)]
pub struct RerankBody {
    pub query: String,
    pub texts: Vec<String>,
    #[serde(default)]
    pub raw_scores: bool,
    #[serde(default)]
    pub return_text: bool,
    #[serde(default)]
    pub truncate: bool,
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
    pub instruction: Option<String>,
}

async fn rerank(State(state): State<AppState>, Body(body, _): Body<RerankBody, Tei>) -> Result<Json<Value>, Error> {
    check_direction(body.truncation_direction.as_deref())?;
    let served = match crate::routes::rerank::select_reranker(&state, body.model.as_deref()) {
        Ok(s) => s,
        Err(e) if state.rerankers().all().is_empty() => {
            return Err(ApiError { kind: ErrorKind::NotSupported, ..e }.into());
        }
        Err(e) => return Err(e.into()),
    };
    let limit = served.queue.config().max_queue;
    if body.texts.len() > limit {
        return Err(crate::routes::rerank::too_many_documents(body.texts.len(), limit, "texts").into());
    }
    let job = RerankRequest {
        query: body.query,
        documents: body.texts.clone(),
        options: RerankOptions {
            activation: body.raw_scores.then_some(false),
            instruction: body.instruction,
            ..RerankOptions::default()
        },
        truncate: body.truncate,
    };
    let out = served.queue.rerank(job).await?;
    let ranked: Vec<Value> = rank_by_score(&out.scores)
        .into_iter()
        .map(|(index, score)| {
            let mut r = json!({"index": index, "score": score});
            if body.return_text {
                r["text"] = json!(body.texts[index]);
            }
            r
        })
        .collect();
    Ok(Json(Value::Array(ranked)))
}

async fn not_classifier(State(state): State<AppState>) -> Error {
    unsupported("`/predict` needs a classifier model", &state)
}
