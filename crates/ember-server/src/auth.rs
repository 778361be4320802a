//! The API key: `Authorization: Bearer <key>` on every endpoint but `/health`.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::state::AppState;

/// The server's key, kept as a BLAKE3 hash. Comparing hashes takes the same time whatever the
/// presented key is (blake3's `Hash` equality is constant-time, and hashing hides the length).
#[derive(Clone)]
pub struct ApiKey(blake3::Hash);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    pub fn new(key: &str) -> Self {
        ApiKey(blake3::hash(key.as_bytes()))
    }

    pub fn matches(&self, presented: &str) -> bool {
        blake3::hash(presented.as_bytes()) == self.0
    }
}

/// Middleware: refuse requests without the right bearer token, in flavour `F`'s error shape.
pub async fn require_key<F: Flavour>(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(key) = state.api_key() {
        let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let message = match token {
            None => "missing API key: send the header 'Authorization: Bearer <key>'",
            Some(t) if !key.matches(t) => "invalid API key",
            Some(_) => return next.run(request).await,
        };
        return Failure::<F>::from(ApiError::new(ErrorKind::Unauthorized, message)).into_response();
    }
    next.run(request).await
}
