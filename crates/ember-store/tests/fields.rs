//! The text index (BM25), the sparse field and the multi-vector field: each search equals a
//! brute-force oracle, before and after reopening and compaction, with deletes and filters; bad
//! input is refused with errors naming the collection and the document.

#![allow(clippy::unwrap_used)]

mod common;

use common::{config, meta, vector};
use ember_index::multivector::max_sim;
use ember_index::sparse::{AnalyzerConfig, InvertedIndex, InvertedIndexParams};
use ember_store::{
    Collection, CollectionConfig, Document, Filter, MultiVectorConfig, SparseFieldConfig, Store, StoreError,
    TextIndexConfig,
};
use serde_json::json;

const DIM: usize = 4;
const TOKEN_DIM: usize = 3;

const TEXTS: [&str; 8] = [
    "The cat sat on the mat.",
    "Dogs and cats are running in the park.",
    "A bird in the hand is worth two in the bush.",
    "Running shoes for running fast.",
    "Cats chase mice; the mouse runs.",
    "Nothing in common here at all.",
    "The park has a pond with ducks.",
    "Cat, cat, cat: a very feline text about cats.",
];

fn full_config() -> CollectionConfig {
    CollectionConfig {
        text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
        sparse: Some(SparseFieldConfig { model_id: "test/splade".into() }),
        multivector: Some(MultiVectorConfig { dimension: TOKEN_DIM }),
        ..config(DIM)
    }
}

/// Document `i`: its text, a sparse vector over a few of 10 terms, 1 to 3 token vectors.
fn rich(i: usize) -> Document {
    let sparse: Vec<(u32, f32)> = (0..10u32)
        .filter(|t| (t + i as u32).is_multiple_of(3))
        .map(|t| (t, 0.25 + ((t as usize * 7 + i) % 5) as f32))
        .collect();
    let tokens = (0..1 + i % 3).map(|j| vector((i * 10 + j) as u64, TOKEN_DIM)).collect();
    Document {
        id: format!("d{i}"),
        text: TEXTS[i].into(),
        vector: vector(i as u64, DIM),
        metadata: meta(json!({"n": i, "even": i.is_multiple_of(2)})),
        sparse,
        multivector: tokens,
    }
}

fn filled(dir: &std::path::Path) -> (Store, Collection) {
    let store = Store::open(dir).unwrap();
    let c = store.create_collection("kb", full_config()).unwrap();
    c.upsert((0..TEXTS.len()).map(rich).collect()).unwrap();
    (store, c)
}

fn ids_scores(hits: &[ember_store::Hit]) -> Vec<(String, f32)> {
    hits.iter().map(|h| (h.id.clone(), h.score)).collect()
}

/// BM25 by an exhaustive scan of a fresh inverted index over the live documents.
fn bm25_oracle(
    docs: &[Document],
    query: &str,
    k: usize,
    keep: &(dyn Fn(&Document) -> bool + Sync),
) -> Vec<(String, f32)> {
    let mut index = InvertedIndex::new(InvertedIndexParams::bm25(AnalyzerConfig::english())).unwrap();
    for (i, d) in docs.iter().enumerate() {
        index.insert_text(i, &d.text).unwrap();
    }
    let pass = |i: usize| keep(&docs[i]);
    let hits = index.search_text_exhaustive(query, k, Some(&pass)).unwrap();
    hits.into_iter().map(|h| (docs[h.id].id.clone(), h.score)).collect()
}

/// Sort best first, ties by id (the store breaks ties by point id, which follows insertion here).
fn ranked(mut scored: Vec<(String, f32)>, k: usize) -> Vec<(String, f32)> {
    scored.sort_by(|a, b| {
        b.1.total_cmp(&a.1).then_with(|| a.0[1..].parse::<u32>().unwrap().cmp(&b.0[1..].parse().unwrap()))
    });
    scored.truncate(k);
    scored
}

fn sparse_oracle(docs: &[Document], query: &[(u32, f32)], k: usize) -> Vec<(String, f32)> {
    let scored = docs
        .iter()
        .filter_map(|d| {
            let s: f32 = d.sparse.iter().filter_map(|(t, w)| query.iter().find(|q| q.0 == *t).map(|q| q.1 * w)).sum();
            let shares = d.sparse.iter().any(|(t, _)| query.iter().any(|q| q.0 == *t));
            shares.then(|| (d.id.clone(), s))
        })
        .collect();
    ranked(scored, k)
}

fn maxsim_oracle(docs: &[Document], query: &[Vec<f32>], k: usize) -> Vec<(String, f32)> {
    let scored = docs
        .iter()
        .map(|d| {
            let mut total = 0.0f64;
            for q in query {
                let best = d
                    .multivector
                    .iter()
                    .map(|t| q.iter().zip(t).map(|(a, b)| a * b).sum::<f32>())
                    .fold(f32::NEG_INFINITY, f32::max);
                total += f64::from(best);
            }
            (d.id.clone(), (total / query.len() as f64) as f32)
        })
        .collect();
    ranked(scored, k)
}

fn assert_close(got: &[(String, f32)], want: &[(String, f32)]) {
    assert_eq!(got.iter().map(|g| &g.0).collect::<Vec<_>>(), want.iter().map(|w| &w.0).collect::<Vec<_>>());
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() <= 1e-5 * w.1.abs().max(1.0), "{g:?} vs {w:?}");
    }
}

fn check_all(c: &Collection, live: &[Document]) {
    let all = |_: &Document| true;
    for query in ["running cats", "the park", "cat", "feline bird hand", "zebra"] {
        let got = ids_scores(&c.search_text(query, 5, None).unwrap());
        assert_eq!(got, bm25_oracle(live, query, 5, &all), "{query}");
    }
    let even = Filter::parse("even = true").unwrap();
    let keep_even = |d: &Document| d.metadata["even"] == json!(true);
    assert_eq!(
        ids_scores(&c.search_text("cat park", 10, Some(&even)).unwrap()),
        bm25_oracle(live, "cat park", 10, &keep_even)
    );

    for query in [vec![(0u32, 1.0f32), (3, 0.5)], vec![(1, 2.0), (2, 0.1), (9, 1.0)], vec![(42, 1.0)]] {
        assert_close(&ids_scores(&c.search_sparse(&query, 4, None).unwrap()), &sparse_oracle(live, &query, 4));
    }
    for seed in 0..3 {
        let query: Vec<Vec<f32>> =
            (0..2 + seed).map(|j| vector(1000 + seed as u64 * 10 + j as u64, TOKEN_DIM)).collect();
        assert_close(
            &ids_scores(&c.search_multivector(&query, 5, None, None).unwrap()),
            &maxsim_oracle(live, &query, 5),
        );
        let q0 = &query;
        let m = max_sim(q0, &live[0].multivector);
        assert!((maxsim_oracle(&live[..1], q0, 1)[0].1 - m).abs() < 1e-6);
    }
}

#[test]
fn each_index_equals_its_oracle_before_and_after_reopen_deletes_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = filled(dir.path());
    let mut live: Vec<Document> = (0..TEXTS.len()).map(rich).collect();
    check_all(&c, &live);

    c.delete(&["d1", "d7"]).unwrap();
    live.retain(|d| d.id != "d1" && d.id != "d7");
    check_all(&c, &live);
    assert!(c.search_text("cat", 10, None).unwrap().iter().all(|h| h.id != "d7"));

    // Replacing a document replaces its text, sparse vector and tokens in every index.
    let mut new0 = rich(0);
    new0.text = "zebra stripes".into();
    new0.sparse = vec![(42, 3.0)];
    c.upsert(vec![new0.clone()]).unwrap();
    live[0] = new0;
    check_all(&c, &live);
    drop((c, store));

    let store = Store::open(dir.path()).unwrap();
    let c = store.collection("kb").unwrap();
    assert_eq!(c.get("d0").unwrap().unwrap(), live[0]);
    check_all(&c, &live);
    c.compact().unwrap();
    check_all(&c, &live);
    drop((c, store));
    let store = Store::open(dir.path()).unwrap();
    check_all(&store.collection("kb").unwrap(), &live);
}

#[test]
fn multivector_search_can_be_limited_to_candidates_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = filled(dir.path());
    let live: Vec<Document> = (0..TEXTS.len()).map(rich).collect();
    let query = vec![vector(7, TOKEN_DIM), vector(8, TOKEN_DIM)];
    let candidates: Vec<String> = ["d2", "d5", "nope", "d2", "d6"].iter().map(|s| s.to_string()).collect();
    let got = ids_scores(&c.search_multivector(&query, 10, None, Some(&candidates)).unwrap());
    let subset: Vec<Document> = live.iter().filter(|d| ["d2", "d5", "d6"].contains(&d.id.as_str())).cloned().collect();
    assert_close(&got, &maxsim_oracle(&subset, &query, 10));
    let even = Filter::parse("even = true").unwrap();
    let got = ids_scores(&c.search_multivector(&query, 10, Some(&even), Some(&candidates)).unwrap());
    let even_subset: Vec<Document> = subset.iter().filter(|d| d.id != "d5").cloned().collect();
    assert_close(&got, &maxsim_oracle(&even_subset, &query, 10));
    assert_eq!(got.len(), 2);
}

#[test]
fn documents_without_the_new_fields_round_trip_and_old_collections_answer_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plain = store.create_collection("plain", config(DIM)).unwrap();
    let d = Document { id: "a".into(), text: "cats".into(), vector: vector(1, DIM), ..Document::default() };
    plain.upsert(vec![d.clone()]).unwrap();
    assert_eq!(plain.get("a").unwrap().unwrap(), d);

    let err = plain.search_text("cats", 3, None).unwrap_err();
    assert!(matches!(&err, StoreError::MissingField { collection, .. } if collection == "plain"));
    assert!(err.to_string().starts_with("collection 'plain' has no BM25 text index; create it with"), "{err}");
    let err = plain.search_sparse(&[(1, 1.0)], 3, None).unwrap_err();
    assert_eq!(err.to_string().split(';').next().unwrap(), "collection 'plain' has no sparse field");
    let err = plain.search_multivector(&[vec![1.0; TOKEN_DIM]], 3, None, None).unwrap_err();
    assert_eq!(err.to_string().split(';').next().unwrap(), "collection 'plain' has no multivector field");

    let with_sparse = Document { sparse: vec![(1, 1.0)], ..d.clone() };
    let err = plain.upsert(vec![with_sparse]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "collection 'plain': document \"a\" is invalid: it has a sparse vector but the collection has no sparse field"
    );
    let with_tokens = Document { multivector: vec![vec![1.0; TOKEN_DIM]], ..d };
    let err = plain.upsert(vec![with_tokens]).unwrap_err();
    assert!(err.to_string().contains("has token vectors but the collection has no multivector field"), "{err}");
}

#[test]
fn bad_sparse_vectors_and_token_vectors_are_refused_naming_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = filled(dir.path());
    let base = rich(0);
    let cases: Vec<(Document, &str)> = vec![
        (Document { sparse: vec![(5, 1.0), (2, 1.0)], ..base.clone() }, "term 2 comes after a larger term"),
        (Document { sparse: vec![(2, 1.0), (2, 0.5)], ..base.clone() }, "term 2 is repeated"),
        (Document { sparse: vec![(2, f32::NAN)], ..base.clone() }, "the weight of term 2 is NaN"),
        (Document { sparse: vec![(2, -1.0)], ..base.clone() }, "the weight of term 2 is -1"),
        (Document { multivector: vec![vec![1.0; TOKEN_DIM], vec![1.0; 2]], ..base.clone() }, "token 1 has 2 values"),
        (Document { multivector: vec![vec![f32::INFINITY; TOKEN_DIM]], ..base.clone() }, "token 0 value 0 is inf"),
    ];
    for (doc, want) in cases {
        let err = c.upsert(vec![rich(3), doc]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("collection 'kb': document \"d0\" is invalid: "), "{msg}");
        assert!(msg.contains(want), "{msg} lacks {want}");
    }
    // Nothing of a refused batch was written.
    assert_eq!(c.get("d0").unwrap().unwrap(), rich(0));

    let err = c.search_sparse(&[(1, 1.0), (1, 2.0)], 3, None).unwrap_err();
    assert_eq!(err.to_string(), "collection 'kb': invalid query: sparse query: term 1 is repeated");
    let err = c.search_sparse(&[(1, f32::INFINITY)], 3, None).unwrap_err();
    assert!(err.to_string().contains("the weight of term 1 is inf"), "{err}");
    let err = c.search_multivector(&[vec![1.0; 5]], 3, None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "collection 'kb': invalid query: query token vectors: token 0 has 5 values; the collection's token vectors have 3"
    );
    // A sparse query in any order is fine.
    assert_eq!(
        ids_scores(&c.search_sparse(&[(3, 0.5), (0, 1.0)], 4, None).unwrap()),
        ids_scores(&c.search_sparse(&[(0, 1.0), (3, 0.5)], 4, None).unwrap())
    );
}
