//! TEI's `/embed_sparse` and `/embed_all` in process: sparse vectors from a SPLADE model
//! (splade-tiny, real weights) equal the library's `embed_outputs_texts`, token-level vectors
//! from all-MiniLM-L6-v2 average to its (unnormalised) sentence vectors; both through the batching
//! queue, split across forward passes; models without the output answer TEI's 424.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use ember_core::{EmbedOptions, OutputKinds};
use ember_models::{LoadOptions, SentenceEmbedder};
use ember_server::{AppState, QueueConfig, ServerConfig};
use serde_json::{json, Value};

fn splade() -> Option<Arc<SentenceEmbedder>> {
    static MODEL: OnceLock<Option<Arc<SentenceEmbedder>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = real_model("splade-tiny", "splade-tiny")?;
            Some(Arc::new(SentenceEmbedder::load("splade-tiny", &dir, &LoadOptions::default()).unwrap()))
        })
        .clone()
}

/// MiniLM and splade-tiny, with forward passes of at most three sequences.
fn two_models() -> Option<AppState> {
    let config = ServerConfig {
        queue: QueueConfig { max_batch_requests: 3, ..QueueConfig::default() },
        ..ServerConfig::default()
    };
    let models = vec![("minilm".to_string(), minilm()?), ("splade".to_string(), splade()?)];
    Some(AppState::new(models, None, config).unwrap())
}

fn sparse_of(v: &Value) -> Vec<(u32, f32)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap() as u32, e["value"].as_f64().unwrap() as f32))
        .collect()
}

#[tokio::test]
async fn embed_sparse_equals_the_library_through_the_queue() {
    let Some(state) = two_models() else { return };
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = splade().unwrap();
    let want = model.embed_outputs_texts(&refs, OutputKinds::SPARSE, &EmbedOptions::default()).unwrap();
    let want = want.sparse.unwrap();
    let r = post(&state, "/embed_sparse", json!({"model": "splade", "inputs": texts, "truncate": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.body.as_array().unwrap();
    assert_eq!(got.len(), texts.len());
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let g = sparse_of(g);
        assert!(g.windows(2).all(|p| p[0].0 < p[1].0), "input {i}: ids not ascending");
        let mut w = w.clone();
        w.sort_by_key(|e| e.0);
        let ids = |v: &[(u32, f32)]| v.iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(ids(&g), ids(&w), "input {i}: nonzero ids differ");
        for (a, b) in g.iter().zip(&w) {
            worst = worst.max((a.1 - b.1).abs());
        }
    }
    assert!(worst <= 1e-5, "sparse weights differ by {worst}");

    // One string in, one vector out; a long text is refused unless truncating.
    let r = post(&state, "/embed_sparse", json!({"model": "splade", "inputs": refs[0]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let long = "word ".repeat(2000);
    let r = post(&state, "/embed_sparse", json!({"model": "splade", "inputs": [long]})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error_type"], "Validation");
}

#[tokio::test]
async fn embed_all_is_every_tokens_hidden_state() {
    let Some(state) = two_models() else { return };
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let r = post(&state, "/embed_all", json!({"model": "minilm", "inputs": texts, "truncate": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.body.as_array().unwrap();
    assert_eq!(got.len(), texts.len());
    // MiniLM mean-pools its last hidden states: the mean of the token vectors is the sentence
    // vector before normalisation.
    let raw = EmbedOptions { normalize: Some(false), ..EmbedOptions::default() };
    let sentences = minilm().unwrap().embed_texts(&refs, &raw).unwrap().vectors;
    let tokenized = post(&state, "/tokenize", json!({"model": "minilm", "inputs": texts})).await;
    assert_eq!(tokenized.status, 200, "{}", tokenized.text);
    for (i, rows) in got.iter().enumerate() {
        let rows: Vec<Vec<f32>> = rows.as_array().unwrap().iter().map(as_vector).collect();
        let tokens = tokenized.body[i].as_array().unwrap().len().min(256);
        assert_eq!(rows.len(), tokens, "input {i}: one vector per token, special tokens included");
        assert!(rows.iter().all(|r| r.len() == 384), "input {i}: hidden size");
        let mean: Vec<f32> = (0..384).map(|d| rows.iter().map(|r| r[d]).sum::<f32>() / rows.len() as f32).collect();
        let diff = mean.iter().zip(&sentences[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-5, "input {i}: mean token vector differs from the sentence vector by {diff}");
    }
}

#[tokio::test]
async fn models_without_the_output_answer_424() {
    let Some(state) = two_models() else { return };
    let r = post(&state, "/embed_sparse", json!({"model": "minilm", "inputs": "a"})).await;
    assert_eq!(r.status, 424, "{}", r.text);
    assert_eq!(r.body["error_type"], "Backend");
    assert!(r.body["error"].as_str().unwrap().contains("sparse"), "{}", r.text);
    // SPLADE has no pooled vector: /embed and OpenAI's /v1/embeddings say so.
    let r = post(&state, "/embed", json!({"model": "splade", "inputs": "a"})).await;
    assert_eq!(r.status, 424, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("dense"), "{}", r.text);
    let r = post(&state, "/v1/embeddings", json!({"model": "splade", "input": "a"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("dense"), "{}", r.text);
    // Wrong types are the usual 422 naming the field.
    let r = post(&state, "/embed_all", json!({"model": "minilm", "inputs": 7})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("inputs"), "{}", r.text);
    let r = post(&state, "/embed_sparse", json!({"model": "nope", "inputs": "a"})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("splade"), "{}", r.text);
}

fn dot(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    a.iter().map(|(i, x)| b.iter().find(|(j, _)| j == i).map_or(0.0, |(_, y)| x * y)).sum()
}

/// A collection with a SPLADE sparse field over HTTP: documents upserted plainly and chunked both
/// get the served SPLADE model's vectors; a sparse search ranks by the dot product of the
/// library's vectors; hybrid fuses dense, BM25 and sparse.
#[tokio::test]
async fn collections_keep_and_search_the_served_sparse_models_vectors() {
    let (Some(minilm), Some(splade)) = (minilm(), splade()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ember_store::VectorStore> = Arc::new(ember_store::Store::open(dir.path()).unwrap());
    let models = vec![("minilm".to_string(), minilm), ("splade".to_string(), Arc::clone(&splade))];
    let state = AppState::new(models, Some(store), ServerConfig::default()).unwrap();
    let r = post(&state, "/v1/collections", json!({"name": "kb", "model": "minilm", "sparse_model": "nope"})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = post(&state, "/v1/collections", json!({"name": "kb", "model": "minilm", "sparse_model": "minilm"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("has no sparse output"), "{}", r.text);
    let r = post(&state, "/v1/collections", json!({"name": "kb", "model": "minilm", "multivector": true})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = post(&state, "/v1/collections", json!({"name": "kb", "model": "minilm", "sparse_model": "splade"})).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let docs = [
        ("vit", "Vitamin D supplementation improves bone density in older adults."),
        ("volcano", "A volcano erupts when molten rock escapes from a magma chamber."),
        ("protein", "Deep learning models predict protein folding."),
        ("bones", "Calcium intake and bone health in children."),
    ];
    let plain: Vec<Value> = docs[..2].iter().map(|(id, text)| json!({"id": id, "text": text})).collect();
    let r = post(&state, "/v1/collections/kb/documents", json!({"documents": plain})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chunked: Vec<Value> = docs[2..].iter().map(|(id, text)| json!({"id": id, "text": text})).collect();
    let r = post(&state, "/v1/collections/kb/documents", json!({"documents": chunked, "chunk": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let query = "bone density and vitamins";
    let opts = EmbedOptions::default();
    let texts: Vec<&str> = docs.iter().map(|d| d.1).collect();
    let doc_vectors = splade.embed_outputs_texts(&texts, OutputKinds::SPARSE, &opts).unwrap().sparse.unwrap();
    let q = splade.embed_outputs_texts(&[query], OutputKinds::SPARSE, &opts).unwrap().sparse.unwrap().remove(0);
    let mut want: Vec<(f32, &str)> = docs.iter().zip(&doc_vectors).map(|((id, _), v)| (dot(&q, v), *id)).collect();
    want.retain(|w| w.0 > 0.0);
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert!(want.len() >= 2, "the query shares terms with at least two documents");

    let r = post(&state, "/v1/collections/kb/search", json!({"query": query, "mode": "sparse", "k": 4})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), want.len(), "{}", r.text);
    for (h, (score, id)) in hits.iter().zip(&want) {
        // Chunked documents are stored as <id>#<n>.
        let got = h["id"].as_str().unwrap();
        assert!(got == *id || got == format!("{id}#0"), "{got} vs {id}: {}", r.text);
        assert!((h["score"].as_f64().unwrap() as f32 - score).abs() < 1e-3 * score.max(1.0), "{}", r.text);
    }
    let r = post(
        &state,
        "/v1/collections/kb/search",
        json!({"query": query, "mode": "hybrid", "sources": ["dense", "bm25", "sparse"], "k": 2, "explain": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let top = &r.body["hits"][0];
    assert_eq!(top["explain"]["lists"]["sparse"]["rank"], 1, "{}", r.text);
    assert!(top["explain"]["lists"]["dense"]["rank"].is_number(), "{}", r.text);
}
