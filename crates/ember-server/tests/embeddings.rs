//! The embedding endpoints (OpenAI and TEI flavours) in process, against the real
//! all-MiniLM-L6-v2: vectors equal `SentenceEmbedder::embed_texts` on the same texts, whatever
//! the batching; every error path answers in its flavour's shape, never 500.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use ember_core::EmbedOptions;
use serde_json::json;

#[tokio::test]
async fn openai_embeddings_equal_embed_texts() {
    let Some(state) = state() else { return };
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = reference(&refs, &EmbedOptions::default());
    let r = post(&state, "/v1/embeddings", json!({"model": "minilm", "input": texts})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["model"], "minilm");
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), texts.len());
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_close(&as_vector(&d["embedding"]), &want[i], &format!("input {i}"));
    }
    let tokens = minilm().unwrap().embed_texts(&refs, &EmbedOptions::default()).unwrap().tokens;
    assert_eq!(r.body["usage"]["prompt_tokens"], tokens);
    assert_eq!(r.body["usage"]["total_tokens"], tokens);

    // A single string, and the model named by its id.
    let r = post(&state, "/v1/embeddings", json!({"model": MODEL_ID, "input": texts[0]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_close(&as_vector(&r.body["data"][0]["embedding"]), &want[0], "single");
    // No model: the default one.
    let r = post(&state, "/v1/embeddings", json!({"input": [texts[1]]})).await;
    assert_close(&as_vector(&r.body["data"][0]["embedding"]), &want[1], "default model");
}

#[tokio::test]
async fn openai_base64_is_little_endian_f32() {
    let Some(state) = state() else { return };
    let want = reference(&["A man is eating food."], &EmbedOptions::default());
    let r = post(
        &state,
        "/v1/embeddings",
        json!({"model": "minilm", "input": ["A man is eating food."], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b64 = r.body["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let got: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_close(&got, &want[0], "base64");
}

#[tokio::test]
async fn dimensions_truncate_and_renormalise() {
    let Some(state) = state() else { return };
    let options = EmbedOptions { dimensions: Some(64), ..EmbedOptions::default() };
    let want = reference(&["The girl is carrying a baby."], &options);
    let r = post(&state, "/v1/embeddings", json!({"input": "The girl is carrying a baby.", "dimensions": 64})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = as_vector(&r.body["data"][0]["embedding"]);
    assert_eq!(got.len(), 64);
    assert_close(&got, &want[0], "dimensions");
    let r = post(&state, "/embed", json!({"inputs": "The girl is carrying a baby.", "dimensions": 64})).await;
    assert_close(&as_vector(&r.body[0]), &want[0], "tei dimensions");
}

#[tokio::test]
async fn token_ids_embed_like_their_text() {
    let Some(state) = state() else { return };
    let text = "Two men pushed carts through the woods.";
    let want = reference(&[text], &EmbedOptions::default());
    let r = post(&state, "/tokenize", json!({"inputs": text})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<u64> = r.body[0].as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect();
    for input in [json!(ids), json!([ids])] {
        let r = post(&state, "/v1/embeddings", json!({"input": input})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_close(&as_vector(&r.body["data"][0]["embedding"]), &want[0], "ids");
        assert_eq!(r.body["usage"]["prompt_tokens"], ids.len());
    }
    let r = post(&state, "/embed", json!({"inputs": [ids]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_close(&as_vector(&r.body[0]), &want[0], "tei ids");
}

#[tokio::test]
async fn openai_errors_have_openai_shape() {
    let Some(state) = state() else { return };
    let cases = [
        (json!({"input": 5}), 400, Some("input")),
        (json!({"model": "minilm"}), 400, Some("input")),
        (json!({"input": []}), 400, Some("input")),
        (json!({"input": ["a", 3]}), 400, Some("input[1]")),
        (json!({"input": [[1, 2], [-1]]}), 400, Some("input[1][0]")),
        (json!({"input": [[101, 99999999]]}), 400, Some("input[0]")),
        (json!({"input": "a", "dimensions": "x"}), 400, Some("dimensions")),
        (json!({"input": "a", "dimensions": 0}), 400, Some("dimensions")),
        (json!({"input": "a", "dimensions": 385}), 400, Some("dimensions")),
        (json!({"input": "a", "encoding_format": "int8"}), 400, Some("encoding_format")),
        (json!({"input": "a", "model": 3}), 400, Some("model")),
        (json!({"input": "a", "model": "gpt-4"}), 404, Some("model")),
    ];
    for (body, status, param) in cases {
        let r = post(&state, "/v1/embeddings", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        let e = &r.body["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {}", r.text);
        assert!(e["type"].is_string(), "{body}: {}", r.text);
        assert_eq!(e["param"].as_str(), param, "{body}: {}", r.text);
        assert!(e.get("code").is_some(), "{body}: {}", r.text);
    }
    let r = post(&state, "/v1/embeddings", json!({"input": "a", "model": "gpt-4"})).await;
    assert_eq!(r.body["error"]["code"], "model_not_found");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("available models: minilm"), "{}", r.text);
    for raw in ["{\"input\": ", "not json", ""] {
        let r = post_raw(&state, "/v1/embeddings", raw.to_string()).await;
        assert_eq!(r.status, 400, "{raw:?}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn models_are_listed() {
    let Some(state) = state() else { return };
    let r = get(&state, "/v1/models").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["data"][0]["id"], "minilm");
    assert_eq!(r.body["data"][0]["object"], "model");
    assert_eq!(r.body["data"][0]["owned_by"], "ember");
    let r = get(&state, "/v1/models/minilm").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], "minilm");
    let r = get(&state, &format!("/v1/models/{MODEL_ID}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&state, "/v1/models/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn several_models_are_selected_by_name() {
    let Some(model) = minilm() else { return };
    let models = vec![("a".to_string(), model.clone()), ("b".to_string(), model)];
    let state = ember_server::AppState::new(models, None, ember_server::ServerConfig::default()).unwrap();
    let want = reference(&["hello"], &EmbedOptions::default());
    for name in ["a", "b"] {
        let r = post(&state, "/v1/embeddings", json!({"model": name, "input": "hello"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["model"], name);
        assert_close(&as_vector(&r.body["data"][0]["embedding"]), &want[0], name);
    }
    let r = post(&state, "/v1/embeddings", json!({"model": "c", "input": "hello"})).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("available models: a, b"));
    let r = post(&state, "/embed", json!({"model": "c", "inputs": "hello"})).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"].as_str().unwrap().contains("available models: a, b"), "{}", r.text);
    assert_eq!(r.body["error_type"], "Validation");
    let r = get(&state, "/v1/models").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn tei_embed_equals_embed_texts() {
    let Some(state) = state() else { return };
    let texts = texts();
    let short: Vec<&str> = texts.iter().map(String::as_str).filter(|t| t.len() < 1000).collect();
    let want = reference(&short, &EmbedOptions::default());
    let r = post(&state, "/embed", json!({"inputs": short})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (i, v) in r.body.as_array().unwrap().iter().enumerate() {
        assert_close(&as_vector(v), &want[i], &format!("tei input {i}"));
    }
    // A single string still answers a list of vectors.
    let r = post(&state, "/embed", json!({"inputs": short[0]})).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // normalize: false.
    let raw = reference(&short[..1], &EmbedOptions { normalize: Some(false), ..EmbedOptions::default() });
    let r = post(&state, "/embed", json!({"inputs": short[0], "normalize": false})).await;
    assert_close(&as_vector(&r.body[0]), &raw[0], "unnormalised");
}

#[tokio::test]
async fn tei_refuses_long_inputs_unless_truncating() {
    let Some(state) = state() else { return };
    let long = "word ".repeat(400);
    let r = post(&state, "/embed", json!({"inputs": ["short", long]})).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error_type"], "Validation");
    let message = r.body["error"].as_str().unwrap();
    assert!(message.contains("input 1 has 402 tokens, more than the 256 tokens"), "{message}");
    let r = post(&state, "/embed", json!({"inputs": [long.clone()], "truncate": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let want = reference(&[long.as_str()], &EmbedOptions::default());
    assert_close(&as_vector(&r.body[0]), &want[0], "truncated");
    // OpenAI truncates, as sentence-transformers does.
    let r = post(&state, "/v1/embeddings", json!({"input": [long]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["usage"]["prompt_tokens"], 256);
    // Token ids over the limit, not truncating.
    let ids: Vec<u32> = std::iter::once(101).chain(std::iter::repeat_n(2773, 300)).chain([102]).collect();
    let r = post(&state, "/embed", json!({"inputs": [ids]})).await;
    assert_eq!(r.status, 413, "{}", r.text);
}

#[tokio::test]
async fn tei_errors_have_tei_shape() {
    let Some(state) = state() else { return };
    let cases = [
        ("/embed", json!({"inputs": 3}), 422),
        ("/embed", json!({"inputs": []}), 400),
        ("/embed", json!({"inputs": "a", "normalize": "yes"}), 422),
        ("/embed", json!({"inputs": "a", "prompt_name": "nope"}), 400),
        ("/embed", json!({"inputs": "a", "truncation_direction": "Left"}), 422),
        ("/embed", json!({"inputs": "a", "truncation_direction": "Up"}), 400),
        ("/embed", json!({"input": "a"}), 422),
        ("/tokenize", json!({"inputs": [[1, 2]]}), 422),
        ("/decode", json!({"ids": "abc"}), 422),
        ("/decode", json!({"ids": [1, -2]}), 422),
    ];
    for (path, body, status) in cases {
        let r = post(&state, path, body.clone()).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.text);
        assert!(r.body["error"].as_str().is_some_and(|m| !m.is_empty()), "{path} {body}: {}", r.text);
        assert!(r.body["error_type"].is_string(), "{path} {body}: {}", r.text);
    }
    let r = post(&state, "/embed", json!({"inputs": []})).await;
    assert_eq!(r.body["error_type"], "Empty");
    let r = post(&state, "/embed", json!({"inputs": "a", "prompt_name": "nope"})).await;
    assert!(r.body["error"].as_str().unwrap().contains("unknown prompt name 'nope'"), "{}", r.text);
}

#[tokio::test]
async fn tokenize_and_decode() {
    let Some(state) = state() else { return };
    let text = "Hello, World! Embeddings.";
    let r = post(&state, "/tokenize", json!({"inputs": [text, "second"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tokens = r.body[0].as_array().unwrap();
    let want = minilm().unwrap().tokenize(&[text], &EmbedOptions::default()).unwrap();
    let ids: Vec<u32> = tokens.iter().map(|t| t["id"].as_u64().unwrap() as u32).collect();
    assert_eq!(ids, want[0].ids);
    assert_eq!(tokens[0]["special"], true);
    assert_eq!(tokens[0]["text"], "[CLS]");
    assert!(tokens[0]["start"].is_null());
    for t in &tokens[1..tokens.len() - 1] {
        let (s, e) = (t["start"].as_u64().unwrap() as usize, t["stop"].as_u64().unwrap() as usize);
        assert_eq!(t["text"].as_str().unwrap(), &text[s..e]);
        assert_eq!(t["special"], false);
    }
    assert_eq!(r.body[1].as_array().unwrap().len(), 3);
    let r = post(&state, "/tokenize", json!({"inputs": text, "add_special_tokens": false})).await;
    assert_eq!(r.body[0].as_array().unwrap().len(), ids.len() - 2);

    let r = post(&state, "/decode", json!({"ids": ids})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!(["hello, world! embeddings."]));
    let r = post(&state, "/decode", json!({"ids": [ids.clone(), ids], "skip_special_tokens": false})).await;
    assert_eq!(r.body[0], "[CLS] hello, world! embeddings. [SEP]");
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    // Ids outside the vocabulary decode to nothing rather than failing.
    let r = post(&state, "/decode", json!({"ids": [7592, 4294967295u64]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!(["hello"]));
}

#[tokio::test]
async fn info_and_health() {
    let Some(state) = state() else { return };
    let r = get(&state, "/info").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["model_id"], "minilm");
    assert_eq!(r.body["max_input_length"], 256);
    assert_eq!(r.body["model_type"]["embedding"]["pooling"], "mean");
    assert_eq!(r.body["max_batch_tokens"], 16384);
    assert_eq!(r.body["dimension"], 384);
    let r = get(&state, "/health").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn unsupported_model_kinds_answer_clearly() {
    let Some(state) = state() else { return };
    // A dense model has no sparse head; ember serves no classifiers (see tests/token_outputs.rs
    // for the sparse and token-level outputs of models that have them).
    for (path, says) in [("/embed_sparse", "sparse"), ("/predict", "classifier")] {
        let r = post(&state, path, json!({"inputs": "a"})).await;
        assert_eq!(r.status, 424, "{path}: {}", r.text);
        assert_eq!(r.body["error_type"], "Backend");
        assert!(r.body["error"].as_str().unwrap().contains(says), "{}", r.text);
    }
    // Without --reranker: TEI's 424, Cohere's 404, both saying how to serve one.
    let r = post(&state, "/rerank", json!({"query": "q", "texts": ["a"]})).await;
    assert_eq!(r.status, 424, "{}", r.text);
    assert_eq!(r.body["error_type"], "Backend");
    assert!(r.body["error"].as_str().unwrap().contains("--reranker"), "{}", r.text);
    let rerank = json!({"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1});
    for path in ["/v1/rerank", "/v2/rerank"] {
        let r = post(&state, path, rerank.clone()).await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(r.body["message"].as_str().unwrap().contains("no reranker is served here"), "{}", r.text);
    }
    let r = post(&state, "/v1/rerank", json!({"model": "minilm", "query": "q", "documents": ["a"]})).await;
    assert_eq!(r.status, 404);
    assert!(r.body["message"].as_str().unwrap().contains("is an embedding model, not a reranker"));
    let r = post(&state, "/v1/rerank", json!({"query": "q", "documents": [3]})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("documents[0]"));
    let r = post(&state, "/v1/rerank", json!({"documents": ["a"]})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("query"));
}
