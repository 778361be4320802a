//! The batching queue under concurrency, and the limits: body size, queue full (429 with
//! Retry-After), cancelled clients, API keys, metrics.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::*;
use ember_core::EmbedOptions;
use ember_server::{EmbedRequest, Input, QueueConfig, ServerConfig};
use serde_json::json;

fn small_batches(max_batch_requests: usize, max_queue: usize) -> ServerConfig {
    ServerConfig {
        queue: QueueConfig { max_batch_tokens: 16384, max_batch_requests, max_queue, tokenizer_workers: 2 },
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_batch_together_and_equal_embed_texts() {
    let Some(state) = state_with(small_batches(8, 4096), None) else { return };
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = reference(&refs, &EmbedOptions::default());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let state = state.clone();
        // Each request a different slice of the texts, so batches mix requests.
        let picked: Vec<usize> = (0..texts.len()).filter(|j| (i + j) % 3 != 0).collect();
        let inputs: Vec<String> = picked.iter().map(|&j| texts[j].clone()).collect();
        tasks.push(tokio::spawn(async move {
            let r = post(&state, "/v1/embeddings", json!({"input": inputs})).await;
            (picked, r)
        }));
    }
    for t in tasks {
        let (picked, r) = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        for (k, &j) in picked.iter().enumerate() {
            assert_close(&as_vector(&r.body["data"][k]["embedding"]), &want[j], &format!("text {j}"));
        }
    }
    let metrics = get(&state, "/metrics").await.text;
    // 24 requests of 5-6 inputs in batches of at most 8: several inputs per batch on average.
    let batches = metric(&metrics, "ember_batch_inputs_count{model=\"minilm\"}");
    let inputs = metric(&metrics, "ember_embedded_inputs_total{model=\"minilm\"}");
    assert!(inputs >= 24.0 * 5.0, "{inputs}");
    assert!(batches <= inputs / 2.0, "{batches} batches for {inputs} inputs");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse::<f64>().unwrap()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn client_batches_larger_than_a_model_batch_are_split() {
    let Some(state) = state_with(small_batches(3, 8), None) else { return };
    // 50 inputs: more than a model batch (3) and than the queue bound (8), into an empty queue.
    let inputs: Vec<String> = (0..50).map(|i| format!("sentence number {i} about {}", "x".repeat(i % 7))).collect();
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let want = reference(&refs, &EmbedOptions::default());
    let r = post(&state, "/v1/embeddings", json!({"input": inputs})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (i, w) in want.iter().enumerate() {
        assert_close(&as_vector(&r.body["data"][i]["embedding"]), w, &format!("input {i}"));
    }
    let metrics = get(&state, "/metrics").await.text;
    assert!(metric(&metrics, "ember_batch_inputs_count{model=\"minilm\"}") >= 17.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_429_with_retry_after() {
    // One input per forward pass, at most 4 waiting.
    let Some(state) = state_with(small_batches(1, 4), None) else { return };
    let long = "queue ".repeat(250);
    let busy = state.clone();
    let inputs: Vec<String> = vec![long; 40];
    let first = tokio::spawn(async move { post(&busy, "/v1/embeddings", json!({"input": inputs})).await });
    wait_until_queued(&state).await;
    for (path, body) in [("/v1/embeddings", json!({"input": ["a", "b"]})), ("/embed", json!({"inputs": ["a", "b"]}))] {
        let r = post(&state, path, body).await;
        assert_eq!(r.status, 429, "{path}: {}", r.text);
        assert_eq!(r.headers["retry-after"], "1");
        let text = r.text.to_lowercase();
        assert!(text.contains("queue is full"), "{}", r.text);
    }
    assert_eq!(first.await.unwrap().status, 200);
    let metrics = get(&state, "/metrics").await.text;
    assert_eq!(metric(&metrics, "ember_queue_rejected_total{model=\"minilm\"}"), 2.0);
}

async fn wait_until_queued(state: &ember_server::AppState) {
    let start = Instant::now();
    while state.models().all()[0].queue.depth() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the request never reached the queue");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_request_leaves_the_queue() {
    let Some(state) = state_with(small_batches(1, 4096), None) else { return };
    let queue = state.models().all()[0].queue.clone();
    let long = "cancel ".repeat(250);
    let request =
        EmbedRequest { inputs: vec![Input::Text(long); 200], options: EmbedOptions::default(), truncate: true };
    let pending = tokio::spawn({
        let queue = queue.clone();
        async move { queue.embed(request).await }
    });
    wait_until_queued(&state).await;
    pending.abort();
    let _ = pending.await;
    let start = Instant::now();
    while queue.depth() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "entries of a dropped request stayed queued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let metrics = get(&state, "/metrics").await.text;
    let cancelled = metric(&metrics, "ember_queue_cancelled_total{model=\"minilm\"}");
    let embedded = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("ember_batch_inputs_count{model=\"minilm\"}").map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or(0.0);
    assert!(cancelled + embedded >= 200.0 - 1.0 && cancelled > 100.0, "cancelled {cancelled}, embedded {embedded}");
    // The queue still serves.
    let r = post(&state, "/v1/embeddings", json!({"input": "still here"})).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_each_shape() {
    let config = ServerConfig { max_body_bytes: 1000, ..ServerConfig::default() };
    let Some(state) = state_with(config, None) else { return };
    let big = json!({"input": "x".repeat(2000), "inputs": "x".repeat(2000)});
    let r = post(&state, "/v1/embeddings", big.clone()).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("1000 bytes"), "{}", r.text);
    let r = post(&state, "/embed", big.clone()).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error_type"], "Validation");
    let r = post(&state, "/v1/chunk", json!({"text": "x".repeat(2000)})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "too_large");
    let r = post(&state, "/v1/embeddings", json!({"input": "small"})).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn api_key_is_required_but_not_for_health() {
    let config = ServerConfig { api_key: Some("s3cret".to_string()), ..ServerConfig::default() };
    let Some(state) = state_with(config, None) else { return };
    let body = json!({"input": "hello"}).to_string();
    let call = |auth: Option<&str>, path: &str, body: &str| {
        let mut r = Request::post(path).header("content-type", "application/json");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::from(body.to_string())).unwrap()
    };
    let r = send(&state, call(None, "/v1/embeddings", &body)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.body["error"]["code"], "invalid_api_key");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("missing API key"));
    let r = send(&state, call(Some("Bearer wrong"), "/v1/embeddings", &body)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["message"], "invalid API key");
    let r = send(&state, call(Some("Bearer s3cret"), "/v1/embeddings", &body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(&state, call(Some("bearer s3cret"), "/v1/embeddings", &body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Each flavour answers in its own shape.
    let r = send(&state, call(Some("Bearer s3cre"), "/embed", "{\"inputs\": \"a\"}")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error_type"], "Unauthorized");
    let r = send(&state, call(None, "/v1/rerank", "{}")).await;
    assert_eq!(r.status, 401);
    assert!(r.body["message"].is_string());
    let r = send(&state, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "unauthorized");
    let r = send(&state, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
    let r = get(&state, "/health").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn metrics_count_requests_per_endpoint() {
    let Some(state) = state() else { return };
    post(&state, "/v1/embeddings", json!({"input": ["a", "b c d"]})).await;
    post(&state, "/v1/embeddings", json!({"input": 3})).await;
    get(&state, "/health").await;
    get(&state, "/no/such/route").await;
    let r = get(&state, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let m = &r.text;
    assert_eq!(metric(m, "ember_http_requests_total{endpoint=\"/v1/embeddings\",method=\"POST\",status=\"200\"}"), 1.0);
    assert_eq!(metric(m, "ember_http_requests_total{endpoint=\"/v1/embeddings\",method=\"POST\",status=\"400\"}"), 1.0);
    assert_eq!(metric(m, "ember_http_requests_total{endpoint=\"unmatched\",method=\"GET\",status=\"404\"}"), 1.0);
    assert_eq!(metric(m, "ember_http_request_duration_seconds_count{endpoint=\"/v1/embeddings\"}"), 2.0);
    assert!(metric(m, "ember_embedded_tokens_total{model=\"minilm\"}") >= 8.0);
    assert_eq!(metric(m, "ember_embedded_inputs_total{model=\"minilm\"}"), 2.0);
    assert!(metric(m, "ember_queue_duration_seconds_count{model=\"minilm\"}") >= 2.0);
    // The /metrics request itself is in flight while rendering.
    assert_eq!(metric(m, "ember_http_requests_inflight"), 1.0);
    assert!(m.contains("# TYPE ember_batch_tokens histogram"));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let Some(state) = state() else { return };
    let r = get(&state, "/v2/nothing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "not_found");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("GET /v2/nothing"));
    let r = get(&state, "/v1/embeddings").await;
    assert_eq!(r.status, 405);
}
