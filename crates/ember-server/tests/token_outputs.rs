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
