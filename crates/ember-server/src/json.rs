//! The JSON body extractor: the body limit (413) and malformed or mistyped JSON (400/422 naming
//! the field) answered in the flavour's error shape.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::state::AppState;

/// A request body of type `T`, rejected in flavour `F`'s shape.
#[derive(Debug)]
pub struct Body<T, F>(pub T, pub PhantomData<F>);

impl<T, F> FromRequest<AppState> for Body<T, F>
where
    T: DeserializeOwned,
    F: Flavour,
{
    type Rejection = Failure<F>;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = match Bytes::from_request(request, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("the request body is larger than the server's limit of {} bytes", state.max_body_bytes()),
                )
                .into());
            }
            Err(rejection) => {
                return Err(
                    ApiError::bad_request(format!("cannot read the request body: {}", rejection.body_text())).into()
                )
            }
        };
        parse(&bytes).map(|v| Body(v, PhantomData)).map_err(Failure::from)
    }
}

/// Deserialize `bytes`, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        if let Err(e) = de.end() {
            return Err(ApiError::bad_request(format!("the request body is not valid JSON: {e}")));
        }
    }
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::bad_request(format!("the request body is not valid JSON: {inner}"));
        }
        let message = inner.to_string();
        // A missing field's path is its parent's; name the field itself.
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let field = match (missing, path.as_str()) {
            (Some(f), "." | "") => f.to_string(),
            (Some(f), p) => format!("{p}.{f}"),
            (None, ".") => String::new(),
            (None, p) => p.to_string(),
        };
        let message = strip_position(&message);
        if field.is_empty() {
            ApiError::new(ErrorKind::Unprocessable, format!("invalid request: {message}"))
        } else {
            ApiError::new(ErrorKind::Unprocessable, format!("invalid '{field}': {message}")).with_param(field)
        }
    })
}

/// serde_json's " at line 1 column 42" suffix says nothing to an API client.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Req {
        input: String,
        k: Option<usize>,
        nested: Option<Vec<Inner>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        id: String,
    }

    #[test]
    fn names_the_field_at_fault() {
        let e = parse::<Req>(br#"{"input": 3}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unprocessable);
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(e.message.starts_with("invalid 'input': invalid type: integer `3`, expected a string"), "{e:?}");
        let e = parse::<Req>(br#"{"k": 1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(e.message.contains("missing field `input`"));
        let e = parse::<Req>(br#"{"input": "a", "nested": [{"id": "x"}, {"id": 2}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("nested[1].id"));
        let e = parse::<Req>(br#"{"input": "a", "k": -1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("k"));
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        for body in [&b"{\"input\": "[..], b"not json", b"", b"{\"input\": \"a\"} trailing"] {
            let e = parse::<Req>(body).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest, "{e:?}");
        }
    }
}
