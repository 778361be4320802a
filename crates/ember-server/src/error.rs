//! Errors: the library's own ([`ServerError`]), the one every handler returns ([`ApiError`]:
//! what went wrong, independent of any API flavour), and the single place where an error becomes
//! an HTTP response ([`Failure`]), in the body shape of the flavour that answers.
//!
//! Each API flavour (a route file) describes its error body by implementing [`Flavour`]; the
//! status code, the `Retry-After` and `WWW-Authenticate` headers are decided here, once.

use std::marker::PhantomData;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember_engine::EngineError;
use ember_models::ModelError;
use ember_store::StoreError;
use thiserror::Error;

use crate::batcher::QueueError;
use ember_store::BackendError;

/// Errors of setting up and running the server.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("invalid server configuration: {0}")]
    Config(String),
    #[error("cannot start a thread for model '{model}': {source}")]
    Thread {
        model: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What kind of failure, which decides the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or invalid request (400).
    BadRequest,
    /// Missing or wrong API key (401).
    Unauthorized,
    /// Unknown model, collection, document or route (404).
    NotFound,
    /// The request conflicts with what exists (409).
    Conflict,
    /// Body or input over a limit (413).
    PayloadTooLarge,
    /// Well-formed but unusable values (422).
    Unprocessable,
    /// The model's queue is full (429, with `Retry-After`).
    Overloaded,
    /// The served model cannot do this (a reranking or sparse request to a dense embedding
    /// model): 501, or what a flavour's reference server answers.
    NotSupported,
    /// The server is shutting down or a model thread stopped (503).
    Unavailable,
    /// A bug or an I/O failure, never the client's input (500).
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A failed request, before it is given a flavour's body shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field at fault (`input`, `dimensions`, `input[3]`), when there is one.
    pub param: Option<String>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), param: None, retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Internal, message)
    }

    /// The field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A field of the wrong type or shape: 422 naming it (400 in flavours without 422).
    pub fn wrong_type(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorKind::Unprocessable, format!("invalid '{field}': {message}")).with_param(field)
    }

    /// A field with the wrong value: 400 naming it.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError::bad_request(format!("invalid '{field}': {message}")).with_param(field)
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        let message = e.to_string();
        match e {
            QueueError::Full { retry_after_secs, .. } => {
                ApiError { retry_after: Some(retry_after_secs), ..ApiError::new(ErrorKind::Overloaded, message) }
            }
            QueueError::TooLong { index, .. } => {
                ApiError::new(ErrorKind::PayloadTooLarge, message).with_param(format!("input[{index}]"))
            }
            QueueError::BadTokenId { index, .. } | QueueError::EmptyIds { index } => {
                ApiError::new(ErrorKind::Unprocessable, message).with_param(format!("input[{index}]"))
            }
            QueueError::Model(inner) => ApiError::from(inner),
            QueueError::Closed { .. } => ApiError::new(ErrorKind::Unavailable, message),
            QueueError::Failed { .. } => ApiError::internal(message),
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let message = e.to_string();
        match e {
            ModelError::UnknownPrompt { .. } => ApiError::bad_request(message).with_param("prompt_name"),
            ModelError::Tokenize { .. } => ApiError::new(ErrorKind::Unprocessable, message),
            ModelError::Core(_) => ApiError::bad_request(message),
            // A model asked for an output it does not produce (dense from SPLADE, sparse from a
            // plain embedding model): the model cannot serve this endpoint.
            ModelError::Unsupported(_) => ApiError::new(ErrorKind::NotSupported, message),
            _ => ApiError::internal(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        let kind = match e {
            StoreError::NotFound { .. } | StoreError::Dropped { .. } => ErrorKind::NotFound,
            StoreError::AlreadyExists { .. } => ErrorKind::Conflict,
            StoreError::InvalidName { .. }
            | StoreError::InvalidConfig { .. }
            | StoreError::InvalidDocument { .. }
            | StoreError::InvalidQuery { .. }
            | StoreError::Filter(_)
            | StoreError::MissingField { .. }
            | StoreError::DimensionMismatch { .. } => ErrorKind::BadRequest,
            StoreError::WriteTooLarge { .. } => ErrorKind::PayloadTooLarge,
            // A search the store's backend cannot run (BM25 on a backend without it): the request
            // asked for the wrong thing, not a server fault.
            StoreError::Backend(BackendError::Unsupported { .. }) => ErrorKind::BadRequest,
            StoreError::Backend(BackendError::Unavailable { .. }) => ErrorKind::Unavailable,
            StoreError::Backend(BackendError::SchemaMismatch { .. }) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(inner) => ApiError::from(inner),
            EngineError::Embed(inner) => match inner.downcast::<QueueError>() {
                Ok(q) => ApiError::from(*q),
                Err(other) => match other.downcast::<ModelError>() {
                    Ok(m) => ApiError::from(*m),
                    Err(other) => ApiError::internal(format!("embedding failed: {other}")),
                },
            },
            EngineError::Chunk(inner) => ApiError::bad_request(inner.to_string()),
            e @ EngineError::ModelMismatch { .. } => ApiError::new(ErrorKind::Conflict, e.to_string()),
            e @ EngineError::Source { .. } => ApiError::internal(e.to_string()),
            e @ (EngineError::MissingModel { .. } | EngineError::Fusion(_) | EngineError::InvalidRequest { .. }) => {
                ApiError::bad_request(e.to_string())
            }
            e @ EngineError::Rerank(_) => ApiError::internal(e.to_string()),
        }
    }
}

/// An API flavour's error body.
pub trait Flavour: Send + Sync + 'static {
    /// The JSON body of `error` in this flavour's shape.
    fn error_body(error: &ApiError) -> serde_json::Value;

    /// The status code; flavours whose reference server answers differently override it.
    fn status(error: &ApiError) -> StatusCode {
        error.kind.status()
    }
}

/// An [`ApiError`] answered in flavour `F`'s shape: what every handler returns on failure.
pub struct Failure<F> {
    pub error: ApiError,
    flavour: PhantomData<F>,
}

impl<F> std::fmt::Debug for Failure<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<F, E: Into<ApiError>> From<E> for Failure<F> {
    fn from(e: E) -> Self {
        Failure { error: e.into(), flavour: PhantomData }
    }
}

/// The one place an error becomes a response.
impl<F: Flavour> IntoResponse for Failure<F> {
    fn into_response(self) -> Response {
        let status = F::status(&self.error);
        let mut response = (status, Json(F::error_body(&self.error))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.error.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
