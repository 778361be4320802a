//! `ember serve --store postgres://…`: the collection endpoints on PostgreSQL + pgvector answer
//! as on the embedded store (same documents, same hits and scores), when `EMBER_TEST_POSTGRES_URL`
//! names a server (scripts/setup-postgres.sh starts one). Under `CI=true` a missing server is a
//! failure, never a skip.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use ember_server::{AppState, ServerConfig};
use ember_store::{open_store, StoreLocation, StoreOptions, VectorStore};
use serde_json::{json, Value};

fn postgres_url() -> Option<String> {
    match std::env::var("EMBER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but EMBER_TEST_POSTGRES_URL is not set (.ci/run starts a server with scripts/setup-postgres.sh)")
        }
        _ => {
            eprintln!("\n!!! SKIPPING the server-on-PostgreSQL test: EMBER_TEST_POSTGRES_URL is not set.\n");
            None
        }
    }
}

fn serve(store: Arc<dyn VectorStore>) -> Option<AppState> {
    let model = minilm()?;
    Some(AppState::new(vec![("minilm".to_string(), model)], Some(store), ServerConfig::default()).unwrap())
}

fn ids(r: &Value) -> Vec<String> {
    r["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

fn scores(r: &Value) -> Vec<f64> {
    r["hits"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect()
}

/// Create, fill and query one collection; the answers to compare.
async fn exercise(state: &AppState, name: &str) -> Vec<Value> {
    let r = post(state, "/v1/collections", json!({"name": name, "text_index": "none"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["model"], MODEL_ID);
    let docs = json!({"documents": [
        {"id": "food", "text": "A man is eating food.", "metadata": {"lang": "en", "year": 2020}},
        {"id": "bread", "text": "A man is eating a piece of bread.", "metadata": {"lang": "en", "year": 2023}},
        {"id": "baby", "text": "The girl is carrying a baby.", "metadata": {"lang": "de", "year": 2023}},
        {"id": "drums", "text": "A monkey is playing drums.", "metadata": {"tags": ["music"]}},
        {"id": "guitar", "text": "A woman plays the guitar.", "metadata": {"lang": "en", "year": 2019}},
    ]});
    let r = post(state, &format!("/v1/collections/{name}/documents"), docs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["upserted"], 5);
    let mut answers = Vec::new();
    for body in [
        json!({"query": "Someone eats a meal", "k": 5}),
        json!({"query": "music", "k": 3}),
        json!({"query": "Someone eats a meal", "filter": "lang = \"en\" and year >= 2020"}),
        json!({"query": "a child", "filter": "not lang = \"en\""}),
    ] {
        let r = post(state, &format!("/v1/collections/{name}/search"), body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        answers.push(r.body);
    }
    let r = get(state, &format!("/v1/collections/{name}/documents/bread?include_vector=true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    answers.push(r.body);
    let r = delete(state, &format!("/v1/collections/{name}/documents"), Some(json!({"ids": ["bread", "nope"]}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    answers.push(r.body);
    let r = post(state, &format!("/v1/collections/{name}/search"), json!({"query": "Someone eats a meal"})).await;
    answers.push(r.body);
    let r = get(state, &format!("/v1/collections/{name}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    answers.push(json!({"count": r.body["count"], "dimension": r.body["dimension"]}));
    // BM25 needs a text index, which this collection was created without: a clear 4xx on both.
    let r = post(state, &format!("/v1/collections/{name}/search"), json!({"query": "bread", "mode": "bm25"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    answers
}

/// A plain test with its own runtime: the synchronous PostgreSQL client must not be opened or
/// called from an async task (the server calls it from blocking threads).
#[test]
fn collections_on_postgres_answer_as_on_the_embedded_store() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let embedded: Arc<dyn VectorStore> = Arc::new(ember_store::Store::open(dir.path()).unwrap());
    let postgres = open_store(&StoreLocation::parse(&url).unwrap(), StoreOptions::default()).unwrap();
    let name = format!("serve_{}", std::process::id());
    let _ = postgres.drop_collection(&name);
    let (Some(on_embedded), Some(on_postgres)) = (serve(embedded), serve(Arc::clone(&postgres))) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let want = runtime.block_on(exercise(&on_embedded, &name));
    let got = runtime.block_on(exercise(&on_postgres, &name));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if w.get("hits").is_some() {
            assert_eq!(ids(g), ids(w), "answer {i}");
            assert!(!ids(w).is_empty(), "answer {i}: no hits");
            for (a, b) in scores(g).iter().zip(scores(w)) {
                assert!((a - b).abs() < 1e-4, "answer {i}: score {a} vs {b}");
            }
        } else if w.get("vector").is_some() {
            assert_eq!(g["text"], w["text"]);
            assert_eq!(g["metadata"], w["metadata"]);
            let (a, b) = (as_vector(&g["vector"]), as_vector(&w["vector"]));
            assert_close(&a, &b, "stored vector");
        } else {
            assert_eq!(g, w, "answer {i}");
        }
    }
    // The listing and drop go to PostgreSQL too.
    let r = runtime.block_on(get(&on_postgres, "/v1/collections"));
    assert!(r.body["collections"].as_array().unwrap().iter().any(|c| c["name"] == name.as_str()), "{}", r.text);
    let r = runtime.block_on(delete(&on_postgres, &format!("/v1/collections/{name}"), None));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!postgres.names().unwrap().contains(&name));
}
