//! The rerank endpoints (Cohere/Jina `POST /v1/rerank`, TEI `POST /rerank`) with the tiny
//! reranker fixtures of ember-models (a BERT cross-encoder and a Qwen3 yes/no reranker): scores
//! equal `RerankModel::score_pairs` on the same pairs, whatever the batching; shapes as the
//! reference servers answer; clear 4xx errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use ember_core::RerankOptions;
use ember_models::{LoadOptions, RerankModel};
use ember_server::{AppState, QueueConfig, ServerConfig};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    repo_root().join("crates/ember-models/tests/fixtures/rerank").join(name)
}

/// The BERT cross-encoder fixture with MiniLM's tokenizer beside it.
fn bert_reranker() -> Option<Arc<RerankModel>> {
    let tok = real_model("minilm", "all-MiniLM-L6-v2")?;
    let dir = std::env::temp_dir().join(format!("ember-server-rerank-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-bert-reranker").join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(tok.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    Some(Arc::new(RerankModel::load("tiny-bert-reranker", &dir, &LoadOptions::default()).unwrap()))
}

fn qwen_reranker() -> Arc<RerankModel> {
    let dir = fixture("tiny-qwen3-reranker");
    Arc::new(RerankModel::load("tiny-qwen3-reranker", &dir, &LoadOptions::default()).unwrap())
}

fn rerank_state(config: ServerConfig) -> Option<(AppState, Arc<RerankModel>, Arc<RerankModel>)> {
    let bert = bert_reranker()?;
    let qwen = qwen_reranker();
    let rerankers = vec![("bert".to_string(), Arc::clone(&bert)), ("qwen".to_string(), Arc::clone(&qwen))];
    let state = AppState::with_rerankers(vec![("minilm".to_string(), minilm()?)], rerankers, None, config).unwrap();
    Some((state, bert, qwen))
}

const QUERY: &str = "How many people live in Berlin?";

fn documents() -> Vec<String> {
    vec![
        "Berlin has a population of 3,520,031 registered inhabitants.".to_string(),
        "New York City is famous for the Metropolitan Museum of Art.".to_string(),
        "Berlin ist die Hauptstadt Deutschlands.".to_string(),
        String::new(),
        "Berlin is the capital of Germany. ".repeat(200),
    ]
}

fn library(model: &RerankModel, options: &RerankOptions) -> Vec<f32> {
    let docs = documents();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    model.score_pairs(QUERY, &refs, options).unwrap().scores
}

fn close(got: &Value, want: f32, what: &str) {
    let got = got.as_f64().unwrap() as f32;
    assert!((got - want).abs() <= 1e-6, "{what}: {got} vs {want}");
}

#[tokio::test]
async fn cohere_rerank_equals_the_library() {
    let Some((state, bert, qwen)) = rerank_state(ServerConfig::default()) else { return };
    let docs = documents();
    let want = library(&bert, &RerankOptions::default());
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
    // Strings and {"text"} objects mixed; top_n and return_documents.
    let mixed: Vec<Value> =
        docs.iter().enumerate().map(|(i, d)| if i % 2 == 0 { json!(d) } else { json!({"text": d, "id": i}) }).collect();
    let r = post(
        &state,
        "/v1/rerank",
        json!({"model": "bert", "query": QUERY, "documents": mixed, "top_n": 3, "return_documents": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["model"], "bert");
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (k, res) in results.iter().enumerate() {
        let index = order[k];
        assert_eq!(res["index"], index);
        close(&res["relevance_score"], want[index], &format!("result {k}"));
        assert_eq!(res["document"]["text"], docs[index]);
    }
    let tokens = bert
        .score_pairs(QUERY, &docs.iter().map(String::as_str).collect::<Vec<_>>(), &RerankOptions::default())
        .unwrap()
        .tokens;
    assert_eq!(r.body["usage"]["total_tokens"], tokens);
    // Default model (the first reranker), no documents returned, all results.
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": docs})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), docs.len());
    assert!(results.iter().all(|x| x.get("document").is_none()));
    // The Qwen3 reranker by its model id, with an instruction.
    let instruction = "Given a question, find the passage in German";
    let want =
        library(&qwen, &RerankOptions { instruction: Some(instruction.to_string()), ..RerankOptions::default() });
    let r = post(
        &state,
        "/v2/rerank",
        json!({"model": "tiny-qwen3-reranker", "query": QUERY, "documents": docs, "instruction": instruction}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for res in r.body["results"].as_array().unwrap() {
        let i = res["index"].as_u64().unwrap() as usize;
        close(&res["relevance_score"], want[i], &format!("qwen document {i}"));
    }
}

#[tokio::test]
async fn tei_rerank_equals_the_library() {
    let Some((state, bert, _)) = rerank_state(ServerConfig::default()) else { return };
    let docs = documents();
    let want = library(&bert, &RerankOptions::default());
    let raw = library(&bert, &RerankOptions { activation: Some(false), ..RerankOptions::default() });
    let r =
        post(&state, "/rerank", json!({"query": QUERY, "texts": docs, "truncate": true, "return_text": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body.as_array().unwrap();
    assert_eq!(results.len(), docs.len());
    let mut last = f64::INFINITY;
    for res in results {
        let i = res["index"].as_u64().unwrap() as usize;
        close(&res["score"], want[i], &format!("document {i}"));
        assert_eq!(res["text"], docs[i]);
        assert!(res["score"].as_f64().unwrap() <= last, "best first");
        last = res["score"].as_f64().unwrap();
    }
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": docs, "truncate": true, "raw_scores": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for res in r.body.as_array().unwrap() {
        let i = res["index"].as_u64().unwrap() as usize;
        close(&res["score"], raw[i], &format!("raw document {i}"));
        assert!(res.get("text").is_none());
    }
}

#[tokio::test]
async fn many_concurrent_requests_get_the_library_scores() {
    // Small batches: requests are split across forward passes and mixed with each other.
    let config = ServerConfig {
        queue: QueueConfig { max_batch_requests: 3, max_batch_tokens: 400, ..QueueConfig::default() },
        ..ServerConfig::default()
    };
    let Some((state, _, qwen)) = rerank_state(config) else { return };
    let want = library(&qwen, &RerankOptions::default());
    let docs = documents();
    let requests = (0..6).map(|_| {
        let state = state.clone();
        let docs = docs.clone();
        async move { post(&state, "/rerank", json!({"model": "qwen", "query": QUERY, "texts": docs})).await }
    });
    for r in futures_join(requests).await {
        assert_eq!(r.status, 200, "{}", r.text);
        for res in r.body.as_array().unwrap() {
            let i = res["index"].as_u64().unwrap() as usize;
            close(&res["score"], want[i], &format!("document {i}"));
        }
    }
}

async fn futures_join<F: std::future::Future<Output = Reply> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn no_documents_give_no_results() {
    let Some((state, _, _)) = rerank_state(ServerConfig::default()) else { return };
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"], json!([]));
    assert_eq!(r.body["usage"]["total_tokens"], 0);
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn oversized_requests_are_refused_clearly() {
    let config =
        ServerConfig { queue: QueueConfig { max_queue: 4, ..QueueConfig::default() }, ..ServerConfig::default() };
    let Some((state, _, _)) = rerank_state(config) else { return };
    let docs = documents();
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": docs})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("too many documents: 5"), "{}", r.text);
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": docs})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("too many documents"), "{}", r.text);
    // TEI refuses a pair over the model's limit unless truncate is set (the BERT fixture takes 512).
    let long = vec!["Berlin is the capital of Germany. ".repeat(200)];
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": long})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("more than the 512 tokens"), "{}", r.text);
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": long, "truncate": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Cohere truncates long documents, as Cohere does.
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": long})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["meta"]["truncated_documents"], 1);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let Some((state, _, _)) = rerank_state(ServerConfig::default()) else { return };
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": ["a", 3]})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("documents[1]"), "{}", r.text);
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": ["a"], "top_n": 0})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = post(&state, "/v1/rerank", json!({"model": "nope", "query": QUERY, "documents": ["a"]})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("available rerankers: bert, qwen"), "{}", r.text);
}

#[tokio::test]
async fn without_a_reranker_the_endpoints_say_how_to_serve_one() {
    let Some(state) = state() else { return };
    let r = post(&state, "/v1/rerank", json!({"query": QUERY, "documents": ["a"]})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("--reranker"), "{}", r.text);
    let r = post(&state, "/rerank", json!({"query": QUERY, "texts": ["a"]})).await;
    assert_eq!(r.status, 424, "{}", r.text);
    assert_eq!(r.body["error_type"], "Backend");
    assert!(r.body["error"].as_str().unwrap().contains("--reranker"), "{}", r.text);
}

#[tokio::test]
async fn info_lists_the_rerankers() {
    let Some((state, _, _)) = rerank_state(ServerConfig::default()) else { return };
    let r = get(&state, "/info").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rerankers = r.body["rerankers"].as_array().unwrap();
    assert_eq!(rerankers.len(), 2);
    assert_eq!(rerankers[0]["name"], "bert");
    assert_eq!(rerankers[0]["model_type"]["reranker"]["kind"], "cross-encoder");
    assert_eq!(rerankers[0]["max_input_length"], 512);
    assert_eq!(rerankers[1]["model_type"]["reranker"]["architecture"], "qwen3");
}

#[tokio::test]
async fn served_over_a_real_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((state, bert, _)) = rerank_state(ServerConfig::default()) else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ember_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let body = json!({"query": QUERY, "texts": ["Berlin has 3.5 million inhabitants."]}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /rerank HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let want = bert.score_pairs(QUERY, &["Berlin has 3.5 million inhabitants."], &RerankOptions::default()).unwrap();
    close(&json[0]["score"], want.scores[0], "socket");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A collection search with `"rerank"` orders the candidates by the served reranker's scores,
/// which equal the library's, and explains each hit's rerank score.
#[tokio::test]
async fn collection_search_reranks_with_a_served_reranker() {
    let dir = tempfile::tempdir().unwrap();
    let store = ember_store::Store::open(dir.path()).unwrap();
    let Some(bert) = bert_reranker() else { return };
    let Some(model) = minilm() else { return };
    let rerankers = vec![("bert".to_string(), Arc::clone(&bert))];
    let state = AppState::with_rerankers(
        vec![("minilm".to_string(), model)],
        rerankers,
        Some(std::sync::Arc::new(store)),
        ServerConfig::default(),
    )
    .unwrap();
    let r = post(&state, "/v1/collections", json!({"name": "docs"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let docs = documents();
    let body: Vec<Value> = docs
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.is_empty())
        .map(|(i, t)| json!({"id": format!("d{i}"), "text": t}))
        .collect();
    let r = post(&state, "/v1/collections/docs/documents", json!({"documents": body, "truncate": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(
        &state,
        "/v1/collections/docs/search",
        json!({"query": QUERY, "k": 4, "mode": "hybrid", "rerank": "bert", "rerank_top": 4, "explain": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 4);
    let texts: Vec<&str> = hits.iter().map(|h| h["text"].as_str().unwrap()).collect();
    let want = bert.score_pairs(QUERY, &texts, &RerankOptions::default()).unwrap().scores;
    for (h, w) in hits.iter().zip(&want) {
        close(&h["explain"]["rerank_score"], *w, h["id"].as_str().unwrap());
    }
    assert!(want.windows(2).all(|p| p[0] >= p[1]), "hits not in rerank order: {want:?}");
}
