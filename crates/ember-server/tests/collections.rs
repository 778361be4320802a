//! ember's own API in process: collections, documents, search and the chunker, against the real
//! all-MiniLM-L6-v2 and a temporary store.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ember_core::{cosine, EmbedOptions};
use ember_server::ServerConfig;
use serde_json::json;

fn store_state() -> Option<(ember_server::AppState, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let store = ember_store::Store::open(dir.path()).unwrap();
    Some((state_with(ServerConfig::default(), Some(store))?, dir))
}

#[tokio::test]
async fn collections_lifecycle_and_search() {
    let Some((state, _dir)) = store_state() else { return };
    let r = get(&state, "/v1/collections").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["collections"], json!([]));

    let r = post(&state, "/v1/collections", json!({"name": "docs"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "docs");
    assert_eq!(r.body["model"], MODEL_ID);
    assert_eq!(r.body["served_as"], "minilm");
    assert_eq!(r.body["dimension"], 384);
    assert_eq!(r.body["count"], 0);
    let r = post(&state, "/v1/collections", json!({"name": "docs"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "conflict");
    let r = post(&state, "/v1/collections", json!({"name": "../etc"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = post(&state, "/v1/collections", json!({"name": "x", "model": "nope"})).await;
    assert_eq!(r.status, 404);

    let docs = json!({"documents": [
        {"id": "food", "text": "A man is eating food.", "metadata": {"lang": "en", "year": 2020}},
        {"id": "bread", "text": "A man is eating a piece of bread.", "metadata": {"lang": "en", "year": 2023}},
        {"id": "baby", "text": "The girl is carrying a baby.", "metadata": {"lang": "de", "year": 2023}},
        {"id": "dir/with#odd id", "text": "A monkey is playing drums."},
    ]});
    let r = post(&state, "/v1/collections/docs/documents", docs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["upserted"], 4);
    assert_eq!(get(&state, "/v1/collections/docs").await.body["count"], 4);

    let r = get(&state, "/v1/collections/docs/documents/food?include_vector=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["text"], "A man is eating food.");
    assert_eq!(r.body["metadata"]["year"], 2020);
    let want = reference(&["A man is eating food."], &EmbedOptions::default());
    assert_close(&as_vector(&r.body["vector"]), &want[0], "stored vector");
    let r = get(&state, "/v1/collections/docs/documents/dir/with%23odd%20id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], "dir/with#odd id");
    assert!(r.body.get("vector").is_none());
    let r = get(&state, "/v1/collections/docs/documents/nope").await;
    assert_eq!(r.status, 404);

    let r = post(&state, "/v1/collections/docs/search", json!({"query": "Someone eats a meal", "k": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["id"], "food");
    let q = reference(&["Someone eats a meal"], &EmbedOptions::default());
    let score = hits[0]["score"].as_f64().unwrap() as f32;
    assert!((score - cosine(&q[0], &want[0])).abs() < 1e-4, "{score}");
    let r = post(
        &state,
        "/v1/collections/docs/search",
        json!({"query": "Someone eats a meal", "filter": "lang = \"en\" and year >= 2021"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["bread"]);
    let r = post(&state, "/v1/collections/docs/search", json!({"query": "q", "filter": "year >>= 3"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "filter");
    for k in [json!(0), json!(10_001), json!(u64::MAX)] {
        let r = post(&state, "/v1/collections/docs/search", json!({"query": "q", "k": k})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body["error"]["field"], "k");
    }
    let r = post(&state, "/v1/collections/docs/search", json!({"query": "q", "k": 10_000})).await;
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 4);
    let r = post(&state, "/v1/collections/docs/search", json!({"query": 1})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["field"], "query");

    // BM25 finds only the documents sharing a term; hybrid (RRF, k = 60) explains both lists.
    let r = post(&state, "/v1/collections/docs/search", json!({"query": "bread", "mode": "bm25"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["bread"]);
    let r = post(
        &state,
        "/v1/collections/docs/search",
        json!({"query": "eating bread", "mode": "hybrid", "k": 2, "explain": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let top = &r.body["hits"][0];
    assert_eq!(top["id"], "bread");
    assert_eq!(top["explain"]["lists"]["bm25"]["rank"], 1);
    assert_eq!(top["explain"]["lists"]["dense"]["rank"], 1);
    assert!((top["score"].as_f64().unwrap() - 2.0 / 61.0).abs() < 1e-6, "{}", r.text);
    for (body, field) in [
        (json!({"query": "q", "mode": "fuzzy"}), "mode"),
        (json!({"query": "q", "mode": "hybrid", "fusion": "max"}), "fusion"),
        (json!({"query": "q", "mode": "dense", "weights": [1.0, 2.0]}), "mode"),
        (json!({"query": "q", "mode": "hybrid", "sources": ["dense", "bogus"]}), "sources"),
        (json!({"query": "q", "fusion": "dbsf", "rrf_k": 10.0}), "rrf_k"),
    ] {
        let r = post(&state, "/v1/collections/docs/search", body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
    }
    // No reranker is served here: a clear 404 naming the parameter.
    let r = post(&state, "/v1/collections/docs/search", json!({"query": "q", "rerank": "ce"})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "rerank", "{}", r.text);

    let r = delete(&state, "/v1/collections/docs/documents", Some(json!({"ids": ["food", "nope"]}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["deleted"], 1);
    assert_eq!(get(&state, "/v1/collections/docs").await.body["count"], 3);

    let r = get(&state, "/v1/collections").await;
    assert_eq!(r.body["collections"][0]["name"], "docs");
    let r = delete(&state, "/v1/collections/docs", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&state, "/v1/collections/docs").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "not_found");
    let r = post(&state, "/v1/collections/docs/search", json!({"query": "q"})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn documents_are_checked() {
    let Some((state, _dir)) = store_state() else { return };
    post(&state, "/v1/collections", json!({"name": "c"})).await;
    let long = "word ".repeat(400);
    let cases = [
        (json!({"documents": []}), 400, "documents"),
        (json!({"documents": [{"id": "", "text": "a"}]}), 400, "documents[0].id"),
        (json!({"documents": [{"id": "a", "text": "a"}, {"id": "a", "text": "b"}]}), 400, "documents[1].id"),
        (json!({"documents": [{"id": "a"}]}), 422, "documents[0].text"),
        (json!({"documents": [{"id": "a", "text": "x", "metadata": [1]}]}), 422, "documents[0].metadata"),
        (json!({"documents": [{"id": "a", "text": "x"}, {"id": "b", "text": long}]}), 413, "documents[1].text"),
    ];
    for (body, status, field) in cases {
        let r = post(&state, "/v1/collections/c/documents", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
    }
    assert_eq!(get(&state, "/v1/collections/c").await.body["count"], 0);
    let r = post(
        &state,
        "/v1/collections/c/documents",
        json!({"documents": [{"id": "b", "text": long}], "truncate": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["truncated"], 1);
    let r = post(&state, "/v1/collections/missing/documents", json!({"documents": [{"id": "a", "text": "a"}]})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn collections_of_another_model_are_named() {
    let Some(model) = minilm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = ember_store::Store::open(dir.path()).unwrap();
    let config = ember_store::CollectionConfig {
        model_id: "someone/else".into(),
        dimension: 384,
        distance: ember_core::Similarity::Cosine,
        precision: ember_store::Precision::Float32,
        index: ember_store::IndexKind::Flat,
        text_index: None,
        sparse: None,
        multivector: None,
    };
    store.create_collection("theirs", config).unwrap();
    let state = ember_server::AppState::new(
        vec![("minilm".into(), model)],
        Some(std::sync::Arc::new(store)),
        ServerConfig::default(),
    )
    .unwrap();
    let r = post(&state, "/v1/collections/theirs/search", json!({"query": "q"})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("someone/else"));
    let r = get(&state, "/v1/collections").await;
    assert_eq!(r.body["collections"][0]["served_as"], json!(null));
}

#[tokio::test]
async fn without_a_store_collections_are_off() {
    let Some(state) = state() else { return };
    for r in
        [get(&state, "/v1/collections").await, post(&state, "/v1/collections/x/search", json!({"query": "q"})).await]
    {
        assert_eq!(r.status, 501, "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("--data-dir"));
    }
}

#[tokio::test]
async fn chunk_cuts_with_exact_offsets() {
    let Some(state) = state() else { return };
    let text = "# Title\n\nFirst paragraph about embeddings. It has two sentences.\n\n## Part\n\nÜnïcödé text here, 🚀 and more words to cut. ".repeat(4);
    let r = post(&state, "/v1/chunk", json!({"text": text, "max_tokens": 24, "format": "markdown"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["max_tokens"], 24);
    let chunks = r.body["chunks"].as_array().unwrap();
    assert!(chunks.len() > 3);
    let chars: Vec<char> = text.chars().collect();
    let counter = minilm().unwrap().token_count().unwrap();
    for c in chunks {
        let t = c["text"].as_str().unwrap();
        let (bs, be) = (c["byte_start"].as_u64().unwrap() as usize, c["byte_end"].as_u64().unwrap() as usize);
        assert_eq!(&text[bs..be], t);
        let (s, e) = (c["start"].as_u64().unwrap() as usize, c["end"].as_u64().unwrap() as usize);
        assert_eq!(chars[s..e].iter().collect::<String>(), t);
        assert_eq!(c["tokens"].as_u64().unwrap() as usize, counter.count(t));
        assert!(c["tokens"].as_u64().unwrap() <= 24);
    }
    assert!(chunks.iter().any(|c| c["headings"] == json!(["Title", "Part"])));
    // Default budget: the model's length less its two special tokens.
    let r = post(&state, "/v1/chunk", json!({"text": "short text"})).await;
    assert_eq!(r.body["max_tokens"], 254);
    assert_eq!(r.body["chunks"][0]["text"], "short text");
    for (body, field) in [
        (json!({"text": "a", "max_tokens": 0}), "max_tokens"),
        (json!({"text": "a", "max_tokens": 4, "overlap": 4}), "overlap"),
        (json!({"text": "a", "format": "html"}), "format"),
        (json!({"text": 3}), "text"),
    ] {
        let r = post(&state, "/v1/chunk", body.clone()).await;
        assert!(r.status == 400 || r.status == 422, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
    }
}

#[tokio::test]
async fn documents_can_be_chunked_as_ember_ingest_does() {
    let Some((state, _dir)) = store_state() else { return };
    post(&state, "/v1/collections", json!({"name": "kb"})).await;
    let text = "# Cats\n\nCats sleep most of the day. They purr when content.\n\n# Markets\n\nStock markets fell sharply on Monday after the announcement.";
    let body = json!({
        "documents": [{"id": "guide.md", "text": text, "metadata": {"lang": "en"}}],
        "chunk": {"max_tokens": 16, "format": "markdown"},
    });
    let r = post(&state, "/v1/collections/kb/documents", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["added"], 1);
    let chunks = r.body["chunks_written"].as_u64().unwrap();
    assert!(chunks >= 2, "{}", r.text);
    let r = get(&state, "/v1/collections/kb/documents/guide.md%230").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["metadata"]["doc_id"], "guide.md");
    assert_eq!(r.body["metadata"]["lang"], "en");
    let (s, e) = (r.body["metadata"]["byte_start"].as_u64().unwrap(), r.body["metadata"]["byte_end"].as_u64().unwrap());
    assert_eq!(&text[s as usize..e as usize], r.body["text"].as_str().unwrap());
    // Unchanged on a second run.
    let r = post(&state, "/v1/collections/kb/documents", body).await;
    assert_eq!(r.body["unchanged"], 1, "{}", r.text);
    assert_eq!(r.body["chunks_written"], 0);
    let r = post(&state, "/v1/collections/kb/search", json!({"query": "sleepy kittens", "k": 1})).await;
    assert_eq!(r.body["hits"][0]["metadata"]["headings"], json!(["Cats"]), "{}", r.text);
    // Plain `true`, and bad options.
    let r = post(
        &state,
        "/v1/collections/kb/documents",
        json!({"documents": [{"id": "n.txt", "text": "one two"}], "chunk": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(get(&state, "/v1/collections/kb/documents/n.txt%230").await.status, 200);
    let r = post(
        &state,
        "/v1/collections/kb/documents",
        json!({"documents": [{"id": "n.txt", "text": "x"}], "chunk": {"max_tokens": 4, "overlap": 4}}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "chunk.overlap");
    let r = post(&state, "/v1/collections/kb/documents", json!({"documents": [{"id": "n", "text": "x"}], "chunk": 3}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "chunk");
}
