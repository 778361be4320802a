//! Shared by the server's integration tests: the real all-MiniLM-L6-v2 (fetched by the project's
//! script when missing; a test fails under CI=true when it cannot be had, never skips there),
//! states, and requests sent through the router in process.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use ember_core::{cosine, EmbedOptions};
use ember_models::{LoadOptions, SentenceEmbedder};
use ember_server::{router, AppState, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A real test model, fetched by scripts/fetch-models.sh when missing.
pub fn real_model(key: &str, dir_name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ember-test-models"));
    let dir = base.join(dir_name);
    if !dir.join(".complete").exists() {
        let ok = Command::new("bash")
            .arg(repo_root().join("scripts/fetch-models.sh"))
            .arg(key)
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !dir.join(".complete").exists() {
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "could not fetch {dir_name}");
            eprintln!("\n*** SKIPPED: test model {dir_name} is unavailable ***\n");
            return None;
        }
    }
    Some(dir)
}

/// all-MiniLM-L6-v2, loaded once per test binary.
pub fn minilm() -> Option<Arc<SentenceEmbedder>> {
    static MODEL: OnceLock<Option<Arc<SentenceEmbedder>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = real_model("minilm", "all-MiniLM-L6-v2")?;
            Some(Arc::new(SentenceEmbedder::load(MODEL_ID, &dir, &LoadOptions::default()).unwrap()))
        })
        .clone()
}

pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// A state serving MiniLM as `minilm`.
pub fn state_with(config: ServerConfig, store: Option<ember_store::Store>) -> Option<AppState> {
    let model = minilm()?;
    let store = store.map(|s| Arc::new(s) as Arc<dyn ember_store::VectorStore>);
    Some(AppState::new(vec![("minilm".to_string(), model)], store, config).unwrap())
}

pub fn state() -> Option<AppState> {
    state_with(ServerConfig::default(), None)
}

/// A reply: status, headers and the body parsed as JSON (`Value::Null` when empty, a string
/// when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn reply(response: Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.clone()))
    };
    Reply { status, headers, body, text }
}

pub async fn send(state: &AppState, request: Request<Body>) -> Reply {
    reply(router(state.clone()).oneshot(request).await.unwrap()).await
}

pub async fn post(state: &AppState, path: &str, body: Value) -> Reply {
    post_raw(state, path, body.to_string()).await
}

pub async fn post_raw(state: &AppState, path: &str, body: impl Into<Body>) -> Reply {
    let request = Request::post(path).header("content-type", "application/json").body(body.into()).unwrap();
    send(state, request).await
}

pub async fn get(state: &AppState, path: &str) -> Reply {
    send(state, Request::get(path).body(Body::empty()).unwrap()).await
}

pub async fn delete(state: &AppState, path: &str, body: Option<Value>) -> Reply {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(state, Request::delete(path).header("content-type", "application/json").body(body).unwrap()).await
}

/// The reference: `SentenceEmbedder::embed_texts` on the same texts.
pub fn reference(texts: &[&str], options: &EmbedOptions) -> Vec<Vec<f32>> {
    minilm().unwrap().embed_texts(texts, options).unwrap().vectors
}

pub fn as_vector(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// Same vector up to float noise: cosine ≥ 0.99999 and every component within 1e-5.
pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let max = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max <= 1e-5, "{what}: max difference {max}");
    assert!(cosine(got, want) >= 0.99999, "{what}: cosine {}", cosine(got, want));
}

/// Texts of varied lengths (one past MiniLM's 256-token limit).
pub fn texts() -> Vec<String> {
    let mut t: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "",
        "Ünïcödé, emoji 🚀 and 中文 mixed in one sentence.",
        "Two men pushed carts through the woods.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    t.push("word ".repeat(400));
    t.push("A somewhat longer sentence that talks about embeddings, batching and queues for a while. ".repeat(3));
    t
}
