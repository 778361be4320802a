//! The conformance suite every `VectorStore` backend passes: the embedded store always,
//! PostgreSQL + pgvector when `EMBER_TEST_POSTGRES_URL` names a server (scripts/setup-postgres.sh
//! starts one), and Milvus when `EMBER_TEST_MILVUS_URL` does (scripts/setup-milvus.sh starts the
//! Milvus-protocol server of milvus-lite; these are protocol tests, reported as backend
//! `milvus-protocol`, plus the Milvus-only tests in `mod milvus_protocol`). Under `CI=true` a
//! missing server is a failure, never a skip.
//!
//! Each test runs the same function on every backend and, where it can, compares a backend with
//! the embedded store on the same data: filters document by document against
//! `Filter::matches`, exact search hit for hit and score for score, HNSW by recall.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{doc, meta, vector};
use ember_core::Similarity;
use ember_store::{
    BackendError, CollectionConfig, Document, Filter, IndexKind, Precision, Store, StoreError, VectorCollection,
    VectorStore,
};
use serde_json::json;

/// A backend under test; `_guard` keeps its data alive (a temporary directory or schema).
struct Backend {
    name: &'static str,
    store: Arc<dyn VectorStore>,
    _guard: Box<dyn std::any::Any>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Backend { name: "embedded", store: Arc::new(store), _guard: Box::new(dir) }
}

/// Every backend this run can reach: the embedded store, plus PostgreSQL when configured.
fn backends(test: &str) -> Vec<Backend> {
    let mut all = vec![embedded()];
    if let Some(pg) = postgres::backend(test) {
        all.push(pg);
    }
    if let Some(milvus) = milvus_protocol::backend(test) {
        all.push(milvus);
    }
    all
}

fn config(dimension: usize, distance: Similarity, index: IndexKind) -> CollectionConfig {
    CollectionConfig {
        precision: Precision::Float32,
        index,
        ..CollectionConfig::dense("test/model", dimension, distance)
    }
}

fn ids(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| d.id.clone()).collect()
}

#[test]
fn upsert_is_idempotent_and_the_last_write_wins() {
    for b in backends("upsert") {
        let c = b.store.create_collection("docs", config(4, Similarity::Cosine, IndexKind::Flat)).unwrap();
        let batch = vec![doc("a", 1, 4, json!({"n": 1})), doc("b", 2, 4, json!({"n": 2}))];
        c.upsert(batch.clone()).unwrap();
        c.upsert(batch.clone()).unwrap();
        assert_eq!(c.count().unwrap(), 2, "{}", b.name);
        assert_eq!(c.get("a").unwrap().as_ref(), Some(&batch[0]), "{}: reads back exactly", b.name);
        // Replace one, and within one batch the last document with an id wins.
        let newer = doc("a", 7, 4, json!({"n": 10, "tags": ["x"]}));
        let newest = doc("a", 8, 4, json!({"n": 11, "nested": {"k": null}}));
        c.upsert(vec![newer, newest.clone(), doc("c", 3, 4, json!({}))]).unwrap();
        assert_eq!(c.count().unwrap(), 3, "{}", b.name);
        assert_eq!(c.get("a").unwrap(), Some(newest.clone()), "{}", b.name);
        assert_eq!(ids(&c.scan(None).unwrap()), ["a", "b", "c"], "{}", b.name);
        c.upsert(Vec::new()).unwrap();
        assert_eq!(c.count().unwrap(), 3, "{}", b.name);
        // A fresh handle sees the same.
        let again = b.store.collection("docs").unwrap();
        assert_eq!(again.get("a").unwrap(), Some(newest), "{}", b.name);
        assert_eq!(again.config(), c.config(), "{}", b.name);
        assert_eq!(again.info().unwrap().count, 3, "{}", b.name);
    }
}

#[test]
fn delete_counts_the_ids_that_existed() {
    for b in backends("delete") {
        let c = b.store.create_collection("docs", config(3, Similarity::Dot, IndexKind::Flat)).unwrap();
        c.upsert((0..10).map(|i| doc(&format!("d{i}"), i, 3, json!({"i": i}))).collect()).unwrap();
        assert_eq!(c.delete(&["d1", "d2", "missing", "d1"]).unwrap(), 2, "{}", b.name);
        assert_eq!(c.delete(&["d1"]).unwrap(), 0, "{}", b.name);
        assert_eq!(c.delete(&[]).unwrap(), 0, "{}", b.name);
        assert_eq!(c.count().unwrap(), 8, "{}", b.name);
        assert_eq!(c.get("d1").unwrap(), None, "{}", b.name);
        let hits = c.search(&vector(1, 3), 10, None).unwrap();
        assert_eq!(hits.len(), 8, "{}", b.name);
        assert!(hits.iter().all(|h| h.id != "d1" && h.id != "d2"), "{}", b.name);
        // Deleted ids can be written again.
        c.upsert(vec![doc("d1", 1, 3, json!({}))]).unwrap();
        assert_eq!(c.count().unwrap(), 9, "{}", b.name);
    }
}

#[test]
fn pages_concatenate_to_the_whole_collection_in_id_order() {
    for b in backends("scan_page") {
        let c = b.store.create_collection("docs", config(3, Similarity::Cosine, IndexKind::Flat)).unwrap();
        assert_eq!(c.scan_page(None, 10).unwrap(), Vec::<Document>::new(), "{}: an empty collection", b.name);
        // Ids whose byte order differs from a locale's order and from insertion order.
        let names = ["b", "B", "a", "a-1", "a_1", "aa", "Z", "0", "10", "9", "é", "e", "ü", "~", "a.b", "A"];
        let docs: Vec<Document> =
            names.iter().enumerate().map(|(i, id)| doc(id, i as u64, 3, json!({"i": i}))).collect();
        c.upsert(docs[..9].to_vec()).unwrap();
        c.upsert(docs[9..].to_vec()).unwrap();
        c.delete(&["aa"]).unwrap();
        let mut expected: Vec<Document> = docs.into_iter().filter(|d| d.id != "aa").collect();
        expected.sort_by(|x, y| x.id.as_bytes().cmp(y.id.as_bytes()));
        assert_eq!(c.scan(None).unwrap(), expected, "{}: scan is in byte order", b.name);
        for limit in [1, 2, 3, 7, 15, 16, 100] {
            let mut pages = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = c.scan_page(after.as_deref(), limit).unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(page.len() <= limit, "{}: a page of {} for limit {limit}", b.name, page.len());
                after = page.last().map(|d| d.id.clone());
                pages.push(page);
                assert!(pages.len() <= expected.len(), "{}: paging does not end (limit {limit})", b.name);
            }
            let full: Vec<Document> = pages.concat();
            assert_eq!(full, expected, "{}: limit {limit}", b.name);
            // Every page but the last is full.
            assert_eq!(pages.len(), expected.len().div_ceil(limit), "{}: limit {limit}", b.name);
        }
        // Strictly after `after`, whether or not `after` is an id of the collection.
        assert_eq!(ids(&c.scan_page(Some("a"), 3).unwrap()), ["a-1", "a.b", "a_1"], "{}", b.name);
        assert_eq!(ids(&c.scan_page(Some("a0"), 2).unwrap()), ["a_1", "b"], "{}", b.name);
        assert_eq!(ids(&c.scan_page(Some("aa"), 1).unwrap()), ["b"], "{}: a deleted id", b.name);
        assert_eq!(ids(&c.scan_page(Some("~"), 5).unwrap()), ["é", "ü"], "{}: UTF-8 after ASCII", b.name);
        assert_eq!(c.scan_page(Some("ü"), 5).unwrap(), Vec::<Document>::new(), "{}: after the last", b.name);
        assert_eq!(c.scan_page(None, 0).unwrap(), Vec::<Document>::new(), "{}: limit 0", b.name);
        assert_eq!(ids(&c.scan_page(Some("a\0z"), 2).unwrap()), ["a-1", "a.b"], "{}: a NUL in `after`", b.name);
        // The trait's default (for backends without a range read) pages the same way.
        let default = ScanOnly(Arc::clone(&c));
        for (after, limit) in [(None, 4), (Some("a"), 3), (Some("a0"), 2), (Some("aa"), 100), (Some("ü"), 5)] {
            assert_eq!(
                default.scan_page(after, limit).unwrap(),
                c.scan_page(after, limit).unwrap(),
                "{}: default after {after:?}, limit {limit}",
                b.name
            );
        }
    }
}

/// A collection that keeps the trait's default `scan_page`.
#[derive(Debug)]
struct ScanOnly(Arc<dyn VectorCollection>);

impl VectorCollection for ScanOnly {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn name(&self) -> &str {
        self.0.name()
    }
    fn config(&self) -> &CollectionConfig {
        self.0.config()
    }
    fn upsert(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        self.0.upsert(docs)
    }
    fn delete(&self, ids: &[&str]) -> Result<usize, StoreError> {
        self.0.delete(ids)
    }
    fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        self.0.get(id)
    }
    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        effort: Option<usize>,
    ) -> Result<Vec<ember_store::Hit>, StoreError> {
        self.0.search_with_effort(query, k, filter, effort)
    }
    fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError> {
        self.0.scan(filter)
    }
    fn count(&self) -> Result<usize, StoreError> {
        self.0.count()
    }
    fn info(&self) -> Result<ember_store::CollectionInfo, StoreError> {
        self.0.info()
    }
}

/// Metadata covering every rule of the filter language: nesting, dotted top-level keys, arrays,
/// nulls, mixed types, integers and floats, non-ASCII strings, ISO dates.
fn filter_corpus(dim: usize) -> Vec<Document> {
    let metas = [
        json!({"lang": "en", "year": 2021, "score": 0.5, "draft": false, "date": "2024-03-01", "tags": ["x", "y"]}),
        json!({"lang": "de", "year": 2019, "score": 1.25, "draft": true, "date": "2023-12-31", "tags": []}),
        json!({"lang": "en", "year": 2020.0, "meta": {"author": "Ann", "n": {"deep": 3}}, "tags": "x"}),
        json!({"lang": "fr", "year": "2020", "meta": {"author": "Bob"}, "a.b": 1, "a": {"b": 2}}),
        json!({"lang": null, "year": -5, "score": -0.0024, "meta": "flat", "tags": [1, "1", true, null]}),
        json!({"lang": "é", "year": 1e3, "nums": [1, 2.5, 30], "date": "2024-01-01T00:00:00Z", "a": {"b": 1}}),
        json!({"lang": "EN", "draft": "false", "mixed": [{"k": 1}, [1, 2], "k"], "meta": {"author": null}}),
        json!({}),
        json!({"lang": "en", "year": 2022, "tags": ["y"], "score": 3, "z": "a'b\"c"}),
        json!({"year": 9007199254740993u64, "big": 1.5e300, "neg": -2.5e-3}),
    ];
    metas.iter().enumerate().map(|(i, m)| doc(&format!("f{i}"), i as u64 + 100, dim, m.clone())).collect()
}

const FILTERS: &[&str] = &[
    r#"lang = "en""#,
    r#"lang == 'EN'"#,
    r#"lang != "en""#,
    r#"lang = "é""#,
    "lang = null",
    "lang != null",
    "exists lang",
    "not exists lang",
    "year = 2020",
    "year >= 2020",
    "year < 2020",
    "year > 2020.5 and year <= 2022",
    r#"year = "2020""#,
    r#"year > "2000""#,
    "score > 0.25 and score < 1e0",
    "score >= -1",
    "neg = -2.5e-3 and neg < -0.0024E0",
    "draft = false",
    "draft = true",
    r#"draft = "false""#,
    "draft < true",
    r#"date >= "2024-01-01""#,
    r#"date < "2024-01-01""#,
    r#"tags = "x""#,
    r#"tags != "x""#,
    r#"tags in ["q", "y"]"#,
    "tags = 1",
    "tags = null",
    "tags = true",
    "tags in []",
    "not tags in []",
    "nums > 20",
    "nums < 2",
    r#"meta.author = "Ann""#,
    "meta.author = null",
    "exists meta.author",
    "meta.n.deep >= 3",
    "meta.n.deep.deeper = 3",
    "a.b = 1",
    "a.b = 2",
    r#"mixed = "k""#,
    "mixed = 1",
    r#"z = "a'b\"c""#,
    "year = 9007199254740992",
    "big > 1e299",
    r#"lang = "de" and year = 2019 or lang = "en""#,
    r#"lang = "de" and (year = 2019 or lang = "en")"#,
    r#"NOT (lang = "de" OR year > 2020) AND exists year"#,
    r#"not lang in ["de", "fr", null]"#,
    r#"lang in ["en", 1, true]"#,
];

#[test]
fn filters_select_what_the_filter_language_says() {
    let corpus = filter_corpus(4);
    for b in backends("filters") {
        let c = b.store.create_collection("docs", config(4, Similarity::Cosine, IndexKind::Flat)).unwrap();
        c.upsert(corpus.clone()).unwrap();
        for src in FILTERS {
            let f = Filter::parse(src).unwrap();
            let want: Vec<String> = corpus.iter().filter(|d| f.matches(&d.metadata)).map(|d| d.id.clone()).collect();
            assert_eq!(ids(&c.scan(Some(&f)).unwrap()), want, "{}: scan {src}", b.name);
            let mut found: Vec<String> =
                c.search(&vector(5, 4), 100, Some(&f)).unwrap().into_iter().map(|h| h.id).collect();
            found.sort();
            assert_eq!(found, want, "{}: search {src}", b.name);
        }
    }
}

/// Seeded points around centres, like embeddings of topical text.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..32).map(|i| vector(seed ^ (1000 + i), dim)).collect();
    (0..n)
        .map(|i| {
            let noise = vector(seed.wrapping_mul(31).wrapping_add(i as u64), dim);
            centres[i % 32].iter().zip(noise).map(|(c, e)| c + 0.4 * e).collect()
        })
        .collect()
}

fn load(c: &dyn VectorCollection, points: &[Vec<f32>]) {
    let docs: Vec<Document> = points
        .iter()
        .enumerate()
        .map(|(i, v)| Document {
            id: format!("p{i:05}"),
            text: format!("point {i}"),
            vector: v.clone(),
            metadata: meta(json!({"i": i, "group": i % 7, "even": i % 2 == 0})),
            ..Document::default()
        })
        .collect();
    for batch in docs.chunks(700) {
        c.upsert(batch.to_vec()).unwrap();
    }
}

#[test]
fn exact_search_equals_the_embedded_store_hit_for_hit() {
    let dim = 24;
    let points = clustered(1500, dim, 7);
    let queries = clustered(30, dim, 99);
    let filter = Filter::parse("group in [1, 3] and even = true").unwrap();
    let reference = embedded();
    for distance in [Similarity::Cosine, Similarity::Dot, Similarity::Euclidean, Similarity::Manhattan] {
        let name = format!("{distance:?}").to_lowercase();
        let oracle = reference.store.create_collection(&name, config(dim, distance, IndexKind::Flat)).unwrap();
        load(oracle.as_ref(), &points);
        for b in backends(&format!("exact-{name}")) {
            let created = b.store.create_collection(&name, config(dim, distance, IndexKind::Flat));
            if b.name == "milvus-protocol" && distance == Similarity::Manhattan {
                // Milvus has no L1 metric for float vectors: refused at create, clearly.
                let err = created.unwrap_err().to_string();
                assert!(err.contains("Milvus has no manhattan (L1) metric"), "{err}");
                continue;
            }
            let c = created.unwrap();
            load(c.as_ref(), &points);
            for (qi, q) in queries.iter().enumerate() {
                for (k, f) in [(10, None), (25, Some(&filter)), (1, None)] {
                    let want = oracle.search(q, k, f).unwrap();
                    let got = c.search(q, k, f).unwrap();
                    assert_eq!(got.len(), k, "{} {name} q{qi}", b.name);
                    let pairs = |hits: &[ember_store::Hit]| -> Vec<(String, f32)> {
                        hits.iter().map(|h| (h.id.clone(), h.score)).collect()
                    };
                    assert_eq!(pairs(&got), pairs(&want), "{} {name} q{qi} k={k}", b.name);
                    assert_eq!(got[0].document, want[0].document, "{} {name}", b.name);
                }
            }
        }
    }
}

#[test]
fn hnsw_search_finds_the_exact_neighbours() {
    let dim = 32;
    let points = clustered(3000, dim, 11);
    let queries = clustered(40, dim, 12);
    let reference = embedded();
    let oracle = reference.store.create_collection("exact", config(dim, Similarity::Cosine, IndexKind::Flat)).unwrap();
    load(oracle.as_ref(), &points);
    let rare = Filter::parse("group = 4 and i < 600").unwrap(); // 86 of 3000 pass
    for b in backends("hnsw") {
        for precision in [Precision::Float32, Precision::Float16] {
            let name = format!("hnsw-{precision:?}").to_lowercase();
            let index = IndexKind::Hnsw { m: 16, ef_construction: 64 };
            let c = b
                .store
                .create_collection(&name, CollectionConfig { precision, ..config(dim, Similarity::Cosine, index) })
                .unwrap();
            load(c.as_ref(), &points);
            let (mut found, mut wanted) = (0, 0);
            for q in &queries {
                let truth: Vec<String> = oracle.search(q, 10, None).unwrap().into_iter().map(|h| h.id).collect();
                let got = c.search(q, 10, None).unwrap();
                assert_eq!(got.len(), 10, "{} {name}", b.name);
                assert!(got.windows(2).all(|w| w[0].score >= w[1].score), "{} {name}: best first", b.name);
                found += got.iter().filter(|h| truth.contains(&h.id)).count();
                wanted += truth.len();
                // A rare filter still fills k, with only passing documents.
                let filtered = c.search(q, 50, Some(&rare)).unwrap();
                assert_eq!(filtered.len(), 50, "{} {name}: a filtered search fills k", b.name);
                assert!(filtered.iter().all(|h| rare.matches(&h.document.metadata)), "{} {name}", b.name);
            }
            let recall = found as f64 / wanted as f64;
            eprintln!("{} {name}: recall@10 = {recall:.3}", b.name);
            assert!(recall >= 0.95, "{} {name}: recall@10 {recall:.3} < 0.95", b.name);
        }
    }
}

/// Words with stems, stopwords and case variants, so the analyzer matters.
const WORDS: &[&str] = &[
    "protein",
    "proteins",
    "cell",
    "cells",
    "Cellular",
    "gene",
    "genes",
    "expression",
    "the",
    "of",
    "and",
    "in",
    "cancer",
    "tumor",
    "tumour",
    "mouse",
    "mice",
    "human",
    "study",
    "studies",
    "studied",
    "effect",
    "effects",
    "increase",
    "increased",
    "increasing",
    "risk",
    "patients",
    "patient",
    "treatment",
    "dose",
    "virus",
    "viral",
    "infection",
    "immune",
    "response",
    "responses",
    "blood",
    "brain",
    "neuron",
    "neurons",
    "signal",
    "signalling",
    "pathway",
    "pathways",
    "DNA",
    "RNA",
    "binding",
    "bound",
    "receptor",
    "receptors",
    "is",
    "a",
    "with",
];

/// A seeded text of `len` words, skewed toward the first words (as real text is).
fn words_text(seed: u64, len: usize) -> String {
    vector(seed, len)
        .iter()
        .map(|x| {
            let u = (x + 1.0) / 2.0;
            WORDS[((u * u) * WORDS.len() as f32) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn text_corpus(n: usize, seed: u64, dim: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            let len = 3 + (i * 7 + seed as usize) % 40 + if i % 13 == 0 { 150 } else { 0 };
            Document {
                id: format!("t{i:04}"),
                text: if i % 97 == 5 { "the of and".into() } else { words_text(seed * 10_000 + i as u64, len) },
                vector: vector(seed + i as u64, dim),
                metadata: meta(json!({"group": i % 5, "even": i % 2 == 0})),
                ..Document::default()
            }
        })
        .collect()
}

/// `got` equals the oracle's best `k`: the same ids in the same order, scores within 1e-4. Ties
/// are ordered by id (PostgreSQL ranks so; the embedded store breaks ties by its internal slot,
/// so both lists are reordered by id within ties), and of the last tie group, which `k` may cut,
/// `got` holds members of the oracle's group. `wide` is the oracle's answer for more than `k`,
/// so that the last tie group is seen whole.
fn assert_same_ranking(got: &[ember_store::Hit], wide: &[ember_store::Hit], k: usize, what: &str) {
    let by_score_then_id = |hits: &[ember_store::Hit]| -> Vec<(String, f32)> {
        let mut v: Vec<(String, f32)> = hits.iter().map(|h| (h.id.clone(), h.score)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let wide = by_score_then_id(wide);
    let got = by_score_then_id(got);
    assert_eq!(got.len(), wide.len().min(k), "{what}: hit count");
    let Some(last) = got.last().map(|h| h.1) else { return };
    let settled = got.iter().filter(|h| (h.1 - last).abs() > 1e-4).count();
    assert_eq!(
        got[..settled].iter().map(|h| &h.0).collect::<Vec<_>>(),
        wide[..settled].iter().map(|h| &h.0).collect::<Vec<_>>(),
        "{what}: ids\n got {got:?}\nwant {:?}",
        &wide[..k.min(wide.len())]
    );
    for ((id, g), (_, w)) in got.iter().zip(&wide) {
        assert!((g - w).abs() <= 1e-4, "{what}: {id} scores {g}, the embedded store {w}");
    }
    let group: Vec<&String> = wide.iter().filter(|h| (h.1 - last).abs() <= 1e-4).map(|h| &h.0).collect();
    for (id, _) in &got[settled..] {
        assert!(group.contains(&id), "{what}: {id} is not among the oracle's hits tied at {last}: {group:?}");
    }
}

#[test]
fn bm25_search_equals_the_embedded_store() {
    use ember_index::sparse::LengthNorm;
    use ember_store::{AnalyzerConfig, Bm25Params, TextIndexConfig};
    let dim = 8;
    let corpus = text_corpus(700, 3, dim);
    let even = Filter::parse("even = true and group in [1, 2, 4]").unwrap();
    let queries: Vec<String> = (0..40)
        .map(|q| words_text(50_000 + q, 1 + q as usize % 6))
        .chain(["cells cells proteins".into(), "unknownword tumour".into(), "the of".into(), String::new()])
        .collect();
    let reference = embedded();
    let texts = [
        TextIndexConfig::new(AnalyzerConfig::english()),
        TextIndexConfig {
            analyzer: AnalyzerConfig::plain(),
            bm25: Bm25Params { k1: 0.9, b: 0.4, length_norm: LengthNorm::Exact },
        },
    ];
    for (ti, text) in texts.into_iter().enumerate() {
        let name = format!("text{ti}");
        let cfg = CollectionConfig { text_index: Some(text), ..config(dim, Similarity::Cosine, IndexKind::Flat) };
        for b in backends(&format!("bm25_{ti}")).into_iter().filter(|b| b.store.keeps_text_index()) {
            let oracle = reference.store.create_collection(&format!("{name}-{}", b.name), cfg.clone()).unwrap();
            let c = b.store.create_collection(&name, cfg.clone()).unwrap();
            let check = |c: &dyn VectorCollection, oracle: &dyn VectorCollection, stage: &str| {
                let mut matched = 0;
                for q in &queries {
                    for (k, f) in [(10, None), (3, None), (25, Some(&even)), (1000, None)] {
                        let wide = oracle.search_text(q, k + 60, f).unwrap();
                        let got = c.search_text(q, k, f).unwrap();
                        assert_same_ranking(&got, &wide, k, &format!("{} {name} {stage} {q:?} k={k}", b.name));
                        if let Some(f) = f {
                            assert!(got.iter().all(|h| f.matches(&h.document.metadata)));
                        }
                        matched += got.len();
                    }
                }
                assert!(matched > 2000, "{} {name} {stage}: only {matched} hits in all", b.name);
            };
            for batch in corpus.chunks(300) {
                oracle.upsert(batch.to_vec()).unwrap();
                c.upsert(batch.to_vec()).unwrap();
            }
            check(c.as_ref(), oracle.as_ref(), "loaded");
            // Deletes, re-upserts with new text, replacements within a batch, an empty text.
            let gone: Vec<&str> = corpus.iter().step_by(5).map(|d| d.id.as_str()).collect();
            assert_eq!(c.delete(&gone).unwrap(), oracle.delete(&gone).unwrap());
            let mut again: Vec<Document> = corpus.iter().step_by(10).cloned().collect();
            for (i, d) in again.iter_mut().enumerate() {
                d.text = if i % 9 == 0 { String::new() } else { words_text(90_000 + i as u64, 5 + i % 30) };
            }
            let mut replaced = corpus[1].clone();
            replaced.text = "brain brain brain neurons".into();
            again.push(corpus[1].clone());
            again.push(replaced);
            oracle.upsert(again.clone()).unwrap();
            c.upsert(again).unwrap();
            check(c.as_ref(), oracle.as_ref(), "after deletes and re-upserts");
            // A fresh handle recovers the text index from the collection's config.
            let reopened = b.store.collection(&name).unwrap();
            assert_eq!(reopened.config(), &cfg, "{}", b.name);
            check(reopened.as_ref(), oracle.as_ref(), "reopened");
        }
    }
    // A collection without a text index says so.
    for b in backends("bm25_missing") {
        let c = b.store.create_collection("plain", config(dim, Similarity::Cosine, IndexKind::Flat)).unwrap();
        let err = c.search_text("cells", 3, None).unwrap_err().to_string();
        // A backend that keeps no ember text index (Milvus) says it does not support BM25.
        let says = if b.store.keeps_text_index() { "BM25 text index" } else { "does not support BM25 text search" };
        assert!(err.contains(says), "{}: {err}", b.name);
    }
}

fn sparse_vector(seed: u64, terms: usize, vocab: u32) -> Vec<(u32, f32)> {
    let v = vector(seed, terms * 2);
    let mut out: Vec<(u32, f32)> = v
        .chunks(2)
        .map(|p| {
            let u = (p[0] + 1.0) / 2.0;
            (((u * u * u) * vocab as f32) as u32 % vocab, (p[1] + 1.0) * 1.5 + 0.01)
        })
        .collect();
    out.sort_by_key(|e| e.0);
    out.dedup_by_key(|e| e.0);
    out
}

#[test]
fn sparse_search_equals_the_embedded_store() {
    use ember_store::SparseFieldConfig;
    let dim = 8;
    let cfg = CollectionConfig {
        sparse: Some(SparseFieldConfig { model_id: "test/splade".into() }),
        ..config(dim, Similarity::Dot, IndexKind::Flat)
    };
    let corpus: Vec<Document> = (0..800)
        .map(|i| Document {
            id: format!("s{i:04}"),
            text: format!("doc {i}"),
            vector: vector(i, dim),
            metadata: meta(json!({"group": i % 5, "even": i % 2 == 0})),
            // Some documents have no sparse vector; one has a term near u32's end (embedded only).
            sparse: if i % 50 == 7 { Vec::new() } else { sparse_vector(i + 7, 5 + i as usize % 60, 3000) },
            ..Document::default()
        })
        .collect();
    let queries: Vec<Vec<(u32, f32)>> = (0..40).map(|q| sparse_vector(20_000 + q, 2 + q as usize % 25, 3000)).collect();
    let filter = Filter::parse("group in [0, 3] or even = false").unwrap();
    for b in backends("sparse_search") {
        let reference = embedded();
        let oracle = reference.store.create_collection("sparse", cfg.clone()).unwrap();
        for batch in corpus.chunks(333) {
            oracle.upsert(batch.to_vec()).unwrap();
        }
        let c = b.store.create_collection("sparse", cfg.clone()).unwrap();
        for batch in corpus.chunks(333) {
            c.upsert(batch.to_vec()).unwrap();
        }
        assert_eq!(c.get("s0003").unwrap().as_ref(), Some(&corpus[3]), "{}: reads back exactly", b.name);
        assert_eq!(c.get("s0007").unwrap().unwrap().sparse, vec![], "{}", b.name);
        let check = |c: &dyn VectorCollection, stage: &str| {
            let mut matched = 0;
            for (qi, q) in queries.iter().enumerate() {
                for (k, f) in [(10, None), (20, Some(&filter)), (1, None)] {
                    let wide = oracle.search_sparse(q, k + 60, f).unwrap();
                    let got = c.search_sparse(q, k, f).unwrap();
                    assert_same_ranking(&got, &wide, k, &format!("{} sparse {stage} q{qi} k={k}", b.name));
                    matched += got.len();
                }
            }
            assert!(matched > 800, "{} {stage}: {matched}", b.name);
        };
        check(c.as_ref(), "loaded");
        let gone: Vec<&str> = corpus.iter().step_by(3).map(|d| d.id.as_str()).collect();
        assert_eq!(c.delete(&gone).unwrap(), oracle.delete(&gone).unwrap());
        let again: Vec<Document> = corpus
            .iter()
            .step_by(6)
            .map(|d| Document { sparse: sparse_vector(d.vector.len() as u64 * 1000 + 3, 12, 3000), ..d.clone() })
            .collect();
        c.upsert(again.clone()).unwrap();
        oracle.upsert(again).unwrap();
        check(c.as_ref(), "after deletes and re-upserts");
        check(b.store.collection("sparse").unwrap().as_ref(), "reopened");
        // Bad sparse input is refused with the reason, and nothing of the batch is written.
        let mut bad = corpus[1].clone();
        bad.sparse = vec![(3, 1.0), (2, 1.0)];
        let err = c.upsert(vec![corpus[2].clone(), bad]).unwrap_err();
        assert!(err.to_string().contains("comes after a larger term"), "{}: {err}", b.name);
        let err = c.search_sparse(&[(1, -1.0)], 3, None).unwrap_err();
        assert!(err.to_string().contains("sparse query: the weight of term 1 is -1"), "{}: {err}", b.name);
        assert_eq!(c.search_sparse(&[(1, 0.0)], 3, None).unwrap(), vec![], "{}", b.name);
        let plain = b.store.create_collection("plain", config(dim, Similarity::Dot, IndexKind::Flat)).unwrap();
        let err = plain.upsert(vec![corpus[1].clone()]).unwrap_err();
        assert!(err.to_string().contains("the collection has no sparse field"), "{}: {err}", b.name);
        let err = plain.search_sparse(&[(1, 1.0)], 3, None).unwrap_err();
        assert!(err.to_string().contains("sparse field"), "{}: {err}", b.name);
    }
}

#[test]
fn mismatched_and_invalid_input_is_refused_whole() {
    for b in backends("invalid") {
        let c = b.store.create_collection("docs", config(3, Similarity::Cosine, IndexKind::Flat)).unwrap();
        c.upsert(vec![doc("keep", 1, 3, json!({}))]).unwrap();
        let err = c.upsert(vec![doc("ok", 2, 3, json!({})), doc("short", 3, 2, json!({}))]).unwrap_err();
        assert!(
            matches!(&err, StoreError::DimensionMismatch { collection, expected: 3, got: 2 } if collection == "docs"),
            "{}: {err}",
            b.name
        );
        let mut nan = doc("nan", 4, 3, json!({}));
        nan.vector[1] = f32::NAN;
        let err = c.upsert(vec![doc("ok", 2, 3, json!({})), nan]).unwrap_err();
        assert!(matches!(&err, StoreError::InvalidDocument { id, .. } if id == "nan"), "{}: {err}", b.name);
        assert!(err.to_string().contains("vector[1] is NaN"), "{}: {err}", b.name);
        let err = c.upsert(vec![doc("", 5, 3, json!({}))]).unwrap_err();
        assert!(err.to_string().contains("the id is empty"), "{}: {err}", b.name);
        assert_eq!(ids(&c.scan(None).unwrap()), ["keep"], "{}: nothing of a refused batch is written", b.name);
        let err = c.search(&[1.0, 0.0], 3, None).unwrap_err();
        assert!(matches!(err, StoreError::DimensionMismatch { expected: 3, got: 2, .. }), "{}: {err}", b.name);
        let err = c.search(&[1.0, f32::INFINITY, 0.0], 3, None).unwrap_err();
        assert!(err.to_string().contains("query[1] is inf"), "{}: {err}", b.name);
        assert_eq!(c.search(&[1.0, 0.0, 0.0], 0, None).unwrap(), vec![], "{}", b.name);
        assert_eq!(c.search(&[1.0, 0.0, 0.0], usize::MAX, None).unwrap().len(), 1, "{}", b.name);
    }
}

#[test]
fn collections_are_created_listed_and_dropped() {
    for b in backends("collections") {
        let s = &b.store;
        assert_eq!(s.names().unwrap(), Vec::<String>::new(), "{}", b.name);
        let alpha = s.create_collection("alpha", config(2, Similarity::Cosine, IndexKind::Flat)).unwrap();
        s.create_collection("Beta.2", config(5, Similarity::Dot, IndexKind::Hnsw { m: 8, ef_construction: 32 }))
            .unwrap();
        alpha.upsert(vec![doc("x", 1, 2, json!({}))]).unwrap();
        let err = s.create_collection("alpha", config(2, Similarity::Cosine, IndexKind::Flat)).unwrap_err();
        assert!(matches!(&err, StoreError::AlreadyExists { name } if name == "alpha"), "{}: {err}", b.name);
        assert_eq!(s.names().unwrap(), ["Beta.2", "alpha"], "{}", b.name);
        let list = s.list().unwrap();
        assert_eq!(list.iter().map(|i| (i.name.as_str(), i.count)).collect::<Vec<_>>(), [("Beta.2", 0), ("alpha", 1)]);
        assert_eq!(list[0].config.index, IndexKind::Hnsw { m: 8, ef_construction: 32 }, "{}", b.name);
        let err = s.collection("gamma").unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound { name, available } if name == "gamma" && available == &["Beta.2", "alpha"]),
            "{}: {err}",
            b.name
        );
        for bad in ["", "a/b", "../x", "sp ace", "drop table x;--"] {
            assert!(matches!(
                s.create_collection(bad, config(2, Similarity::Cosine, IndexKind::Flat)),
                Err(StoreError::InvalidName { .. })
            ));
            assert!(matches!(s.collection(bad), Err(StoreError::InvalidName { .. })));
        }
        let err = s.create_collection("zero", config(0, Similarity::Cosine, IndexKind::Flat)).unwrap_err();
        assert!(matches!(err, StoreError::InvalidConfig { .. }), "{}: {err}", b.name);
        s.drop_collection("alpha").unwrap();
        let got = alpha.get("x");
        assert!(matches!(got, Err(StoreError::Dropped { .. })), "{}: {got:?}", b.name);
        assert!(matches!(alpha.upsert(vec![doc("y", 2, 2, json!({}))]), Err(StoreError::Dropped { .. })), "{}", b.name);
        assert!(matches!(s.drop_collection("alpha"), Err(StoreError::NotFound { .. })), "{}", b.name);
        assert_eq!(s.names().unwrap(), ["Beta.2"], "{}", b.name);
        // The name can be used again, for a collection of another shape.
        let again = s.create_collection("alpha", config(3, Similarity::Euclidean, IndexKind::Flat)).unwrap();
        assert_eq!(again.count().unwrap(), 0, "{}", b.name);
    }
}

#[test]
fn unreachable_servers_and_unknown_backends_are_clear_errors() {
    use ember_store::{open_store, StoreLocation, StoreOptions};
    let err = StoreLocation::parse("qdrant://localhost:6334").unwrap_err();
    assert!(err.to_string().contains("unknown store scheme 'qdrant://'"), "{err}");
    // Nothing listens on port 1.
    let location = StoreLocation::parse("milvus://ann:hunter2@127.0.0.1:1?retries=1&connect_timeout=2").unwrap();
    let started = std::time::Instant::now();
    let err = open_store(&location, StoreOptions::default()).unwrap_err();
    let message = err.to_string();
    if cfg!(feature = "milvus") {
        assert!(matches!(err, StoreError::Backend(BackendError::Unavailable { attempts: 2, .. })), "{message}");
        assert!(message.starts_with("connect on milvus://ann:***@127.0.0.1:1 failed after 2 attempt(s)"), "{message}");
        assert!(started.elapsed().as_secs() < 15, "gave up after {:?}", started.elapsed());
    } else {
        assert_eq!(message, "milvus is not enabled in this build (rebuild ember with the `milvus` cargo feature)");
    }
    assert!(!message.contains("hunter2"), "{message}");
    // Nothing listens on port 1; `retries=1` keeps the test short.
    let location = StoreLocation::parse("postgres://ann:hunter2@127.0.0.1:1/db?retries=1&connect_timeout=2").unwrap();
    let started = std::time::Instant::now();
    let err = open_store(&location, StoreOptions::default()).unwrap_err();
    let message = err.to_string();
    if cfg!(feature = "postgres") {
        assert!(matches!(err, StoreError::Backend(BackendError::Unavailable { attempts: 2, .. })), "{message}");
        assert!(
            message.starts_with("connect on postgres://ann:***@127.0.0.1:1/db failed after 2 attempt(s)"),
            "{message}"
        );
        assert!(started.elapsed().as_secs() < 10, "gave up after {:?}", started.elapsed());
    } else {
        assert_eq!(message, "postgres is not enabled in this build (rebuild ember with the `postgres` cargo feature)");
    }
    assert!(!message.contains("hunter2"), "{message}");
}

/// The PostgreSQL side: connection from the environment, one schema per test, and the tests
/// only PostgreSQL has (a server that goes away mid-request, a schema changed behind ember).
mod postgres {
    use super::*;

    pub(super) fn url() -> Option<String> {
        match std::env::var("EMBER_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "CI=true but EMBER_TEST_POSTGRES_URL is not set: the PostgreSQL + pgvector conformance tests must \
                 run in CI (.ci/run starts a server with scripts/setup-postgres.sh)"
            ),
            _ => {
                eprintln!(
                    "\n!!! SKIPPING the PostgreSQL + pgvector conformance tests: EMBER_TEST_POSTGRES_URL is not set.\n\
                     !!! Run: eval \"$(bash scripts/setup-postgres.sh | tail -n 1)\" and test again.\n"
                );
                None
            }
        }
    }

    #[cfg(not(feature = "postgres"))]
    pub(super) fn backend(_test: &str) -> Option<Backend> {
        if url().is_some() && std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and EMBER_TEST_POSTGRES_URL is set, but ember-store was built without the `postgres` feature"
            );
        }
        None
    }

    #[cfg(feature = "postgres")]
    pub(super) use with_feature::*;

    #[cfg(feature = "postgres")]
    mod with_feature {
        use std::time::Duration;

        use ember_store::{PgConnectOptions, PgVectorStore};

        use super::*;

        /// Drops the test's schema (and everything in it) at the end.
        pub(crate) struct Schema {
            url: String,
            name: String,
        }

        impl Drop for Schema {
            fn drop(&mut self) {
                if let Ok(mut client) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
                }
            }
        }

        pub(crate) fn admin(url: &str) -> ::postgres::Client {
            ::postgres::Client::connect(url, ::postgres::NoTls).unwrap()
        }

        /// A fresh schema for `test`, and the store URL that works in it.
        pub(crate) fn schema(test: &str) -> Option<(Schema, String)> {
            let url = url()?;
            let name = format!("ember_test_{}_{}", test.replace('-', "_"), std::process::id());
            let mut client = admin(&url);
            client
                .batch_execute(&format!(
                    "CREATE EXTENSION IF NOT EXISTS vector; DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                ))
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let store_url = format!("{url}{sep}options=-c%20search_path%3D{name},public");
            Some((Schema { url, name }, store_url))
        }

        pub(crate) fn backend(test: &str) -> Option<Backend> {
            let (schema, url) = schema(test)?;
            let store = PgVectorStore::connect(&PgConnectOptions::parse(&url).unwrap()).unwrap();
            Some(Backend { name: "postgres", store: Arc::new(store), _guard: Box::new(schema) })
        }

        fn connect(url: &str) -> PgVectorStore {
            PgVectorStore::connect(&PgConnectOptions::parse(url).unwrap()).unwrap()
        }

        /// Kill the session that runs an upsert while it waits for a lock: with retries off the
        /// upsert fails naming the server and the operation, and nothing of its batch is written;
        /// with retries it is redone on a new connection and everything is written once.
        #[test]
        fn a_server_that_goes_away_mid_upsert_leaves_nothing_half_written() {
            let Some((_schema, url)) = schema("goes_away") else { return };
            for retries in [0, 3] {
                let store = connect(&format!("{url}&retries={retries}&application_name=ember_victim_{retries}"));
                let name = format!("docs{retries}");
                let c = store.create_collection(&name, config(8, Similarity::Cosine, IndexKind::Flat)).unwrap();
                c.upsert(vec![doc("before", 1, 8, json!({}))]).unwrap();
                let table: String = admin(&url)
                    .query_one("SELECT table_name FROM ember_collections WHERE name = $1", &[&name])
                    .unwrap()
                    .get(0);
                let schema_name = &_schema.name;
                let mut locker = admin(&url);
                let mut tx = locker.transaction().unwrap();
                tx.batch_execute(&format!("LOCK TABLE {schema_name}.{table} IN ACCESS EXCLUSIVE MODE")).unwrap();
                let batch: Vec<Document> = (0..200).map(|i| doc(&format!("d{i}"), i, 8, json!({"i": i}))).collect();
                let writer = {
                    let c = Arc::clone(&c);
                    std::thread::spawn(move || c.upsert(batch))
                };
                // Wait until the upsert is blocked on the lock, then terminate its session.
                let mut killer = admin(&url);
                let app = format!("ember_victim_{retries}");
                let mut killed = 0;
                for _ in 0..200 {
                    killed = killer
                        .query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = $1 AND wait_event_type = 'Lock'",
                            &[&app],
                        )
                        .unwrap()
                        .len();
                    if killed > 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                assert_eq!(killed, 1, "the upsert never waited on the lock");
                // Let the retry (if any) get the lock after a moment.
                std::thread::sleep(Duration::from_millis(100));
                tx.commit().unwrap();
                let result = writer.join().unwrap();
                if retries == 0 {
                    let err = result.unwrap_err();
                    let message = err.to_string();
                    assert!(
                        matches!(err, StoreError::Backend(BackendError::Unavailable { attempts: 1, .. })),
                        "{message}"
                    );
                    assert!(message.starts_with(&format!("upsert (collection '{name}') on postgres://")), "{message}");
                    assert!(message.contains("127.0.0.1") || message.contains("localhost"), "{message}");
                    assert_eq!(ids(&c.scan(None).unwrap()), ["before"], "nothing of the batch is written");
                } else {
                    result.unwrap();
                    assert_eq!(c.count().unwrap(), 201, "the retried batch is written whole, once");
                    assert_eq!(c.get("d199").unwrap().unwrap().metadata["i"], json!(199));
                }
                // The store recovers on its own: the next calls get fresh connections.
                assert!(c.get("before").unwrap().is_some());
            }
        }

        /// Every pooled connection is ended by the server (a restart looks the same): reads are
        /// retried on fresh connections, and a delete finds its connection dead before sending.
        #[test]
        fn dropped_connections_are_replaced() {
            let Some((_schema, url)) = schema("reconnect") else { return };
            let store = connect(&format!("{url}&application_name=ember_reconnect&pool_size=2"));
            let c = store.create_collection("docs", config(4, Similarity::Dot, IndexKind::Flat)).unwrap();
            c.upsert((0..5).map(|i| doc(&format!("d{i}"), i, 4, json!({}))).collect()).unwrap();
            let kill = || {
                admin(&url)
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ember_reconnect'",
                        &[],
                    )
                    .unwrap()
                    .len()
            };
            assert!(kill() >= 1);
            assert_eq!(c.search(&vector(1, 4), 3, None).unwrap().len(), 3);
            assert!(kill() >= 1);
            assert_eq!(c.delete(&["d0", "d1"]).unwrap(), 2);
            assert!(kill() >= 1);
            assert_eq!(c.count().unwrap(), 3);
        }

        /// An HNSW collection's searches go through pgvector's index (so the recall test above
        /// measures the index, not an exact scan), and a flat one has no index to use.
        #[test]
        fn hnsw_collections_are_searched_through_the_index() {
            let Some((schema, url)) = schema("plan") else { return };
            let store = connect(&url);
            let points = clustered(2000, 16, 3);
            for (name, index, precision) in [
                ("graph", IndexKind::Hnsw { m: 16, ef_construction: 64 }, Precision::Float32),
                ("half", IndexKind::Hnsw { m: 16, ef_construction: 64 }, Precision::Float16),
                ("flat", IndexKind::Flat, Precision::Float32),
            ] {
                let c = store
                    .create_collection(name, CollectionConfig { precision, ..config(16, Similarity::Dot, index) })
                    .unwrap();
                load(c.as_ref(), &points);
                let mut admin = admin(&url);
                let table: String = admin
                    .query_one("SELECT table_name FROM ember_collections WHERE name = $1", &[&name])
                    .unwrap()
                    .get(0);
                admin.batch_execute(&format!("ANALYZE {}.{table}", schema.name)).unwrap();
                let probe = format!("{:?}", vector(9, 16)).replace(' ', "");
                let column = if precision == Precision::Float16 { "(embedding::halfvec(16))" } else { "embedding" };
                let cast = if precision == Precision::Float16 { "::halfvec(16)" } else { "" };
                let plan: Vec<String> = admin
                    .query(
                        &format!(
                            "EXPLAIN SELECT id FROM {}.{table} ORDER BY {column} <#> '{probe}'::vector(16){cast} LIMIT 20",
                            schema.name
                        ),
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let plan = plan.join("\n");
                let uses_index = plan.contains(&format!("Index Scan using {table}_hnsw"));
                assert_eq!(uses_index, name != "flat", "{name}: {plan}");
            }
        }

        /// A text index's postings and statistics tables are counted in the collection's size,
        /// dropped with it, and a missing one is reported when the collection is opened.
        #[test]
        fn text_index_tables_live_and_die_with_their_collection() {
            use ember_store::{AnalyzerConfig, TextIndexConfig};
            let Some((schema, url)) = schema("text_tables") else { return };
            let store = connect(&url);
            let cfg = CollectionConfig {
                text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
                ..config(4, Similarity::Cosine, IndexKind::Flat)
            };
            let c = store.create_collection("docs", cfg.clone()).unwrap();
            c.upsert(text_corpus(50, 1, 4)).unwrap();
            let mut admin = admin(&url);
            let table: String =
                admin.query_one("SELECT table_name FROM ember_collections WHERE name = 'docs'", &[]).unwrap().get(0);
            let exists = |admin: &mut ::postgres::Client, t: &str| -> bool {
                admin
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.{t}", schema.name)])
                    .unwrap()
                    .get(0)
            };
            let postings: i64 =
                admin.query_one(&format!("SELECT count(*) FROM {}.{table}_terms", schema.name), &[]).unwrap().get(0);
            assert!(postings > 100, "{postings} postings for 50 documents");
            let table_only: i64 = admin
                .query_one(&format!("SELECT pg_total_relation_size('{}.{table}')", schema.name), &[])
                .unwrap()
                .get(0);
            assert!(c.info().unwrap().disk_bytes as i64 > table_only, "the postings count in the size");
            admin.batch_execute(&format!("ALTER TABLE {}.{table}_stats RENAME TO moved", schema.name)).unwrap();
            let message = store.collection("docs").unwrap_err().to_string();
            assert!(message.contains(&format!("its text index table {table}_stats is missing")), "{message}");
            admin.batch_execute(&format!("ALTER TABLE {}.moved RENAME TO {table}_stats", schema.name)).unwrap();
            store.drop_collection("docs").unwrap();
            for t in [table.clone(), format!("{table}_terms"), format!("{table}_stats")] {
                assert!(!exists(&mut admin, &t), "{t} outlived its collection");
            }
        }

        /// Concurrent upserts and deletes of overlapping documents keep the postings and BM25's
        /// statistics consistent: afterwards, BM25 on PostgreSQL equals an embedded collection
        /// holding the documents PostgreSQL ended up with.
        #[test]
        fn concurrent_writers_keep_bm25_statistics_exact() {
            use ember_store::{AnalyzerConfig, TextIndexConfig};
            let Some((_schema, url)) = schema("concurrent_text") else { return };
            let store = connect(&format!("{url}&pool_size=4"));
            let cfg = CollectionConfig {
                text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
                ..config(4, Similarity::Cosine, IndexKind::Flat)
            };
            let c = store.create_collection("docs", cfg.clone()).unwrap();
            let writers: Vec<_> = (0..4u64)
                .map(|w| {
                    let c = Arc::clone(&c);
                    std::thread::spawn(move || {
                        for round in 0..6u64 {
                            // Overlapping ids, different texts per writer and round.
                            let mut docs = text_corpus(120, 10 * w + round + 1, 4);
                            docs.retain(|d| d.id.as_str() < "t0120");
                            c.upsert(docs.iter().skip((w as usize * 17) % 40).cloned().collect()).unwrap();
                            let gone: Vec<String> =
                                (0..10).map(|i| format!("t{:04}", (w * 31 + round * 7 + i * 11) % 120)).collect();
                            let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
                            c.delete(&gone).unwrap();
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            let reference = embedded();
            let oracle = reference.store.create_collection("docs", cfg).unwrap();
            let survivors = c.scan(None).unwrap();
            assert!(survivors.len() > 50, "{} documents survived", survivors.len());
            oracle.upsert(survivors).unwrap();
            for q in 0..30 {
                let query = words_text(70_000 + q, 1 + q as usize % 5);
                let wide = oracle.search_text(&query, 70, None).unwrap();
                let got = c.search_text(&query, 10, None).unwrap();
                assert_same_ranking(&got, &wide, 10, &format!("concurrent {query:?}"));
            }
        }

        /// A table changed behind ember's back is named, not misread.
        #[test]
        fn schema_changes_behind_embers_back_are_reported() {
            let Some((schema, url)) = schema("mismatch") else { return };
            let store = connect(&url);
            store.create_collection("docs", config(4, Similarity::Cosine, IndexKind::Flat)).unwrap();
            let mut admin = admin(&url);
            let table: String =
                admin.query_one("SELECT table_name FROM ember_collections WHERE name = 'docs'", &[]).unwrap().get(0);
            admin
                .batch_execute(&format!("ALTER TABLE {}.{table} ALTER COLUMN embedding TYPE vector(5)", schema.name))
                .unwrap_or_else(|_| {
                    admin
                        .batch_execute(&format!(
                            "ALTER TABLE {0}.{table} DROP COLUMN embedding; ALTER TABLE {0}.{table} ADD COLUMN embedding vector(5)",
                            schema.name
                        ))
                        .unwrap()
                });
            let err = store.collection("docs").unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, StoreError::Backend(BackendError::SchemaMismatch { .. })), "{message}");
            assert!(
                message.contains(&format!("column {table}.embedding is vector(5), expected vector(4)")),
                "{message}"
            );
            admin.batch_execute(&format!("UPDATE {}.ember_collections SET format = 99", schema.name)).unwrap();
            let message = store.collection("docs").unwrap_err().to_string();
            assert!(message.contains("format 99; this build reads format 1"), "{message}");
            // A document PostgreSQL cannot hold is refused with the reason.
            let c = store.create_collection("other", config(2, Similarity::Cosine, IndexKind::Flat)).unwrap();
            let mut bad = doc("nul", 1, 2, json!({}));
            bad.text = "a\0b".into();
            let message = c.upsert(vec![bad]).unwrap_err().to_string();
            assert!(message.contains("the text holds a NUL character"), "{message}");
            let err = store
                .create_collection(
                    "huge",
                    config(2001, Similarity::Cosine, IndexKind::Hnsw { m: 16, ef_construction: 64 }),
                )
                .unwrap_err();
            assert!(err.to_string().contains("at most 2000 dimensions"), "{err}");
        }
    }
}

/// The Milvus side: protocol tests against the Milvus-protocol server named by
/// `EMBER_TEST_MILVUS_URL` (milvus-lite's in CI), one database per test, and the tests only
/// Milvus has (the server going away mid-request, schemas changed behind ember's back, sparse and
/// native hybrid search against the embedded store).
mod milvus_protocol {
    use super::*;

    pub(super) fn url() -> Option<String> {
        match std::env::var("EMBER_TEST_MILVUS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "CI=true but EMBER_TEST_MILVUS_URL is not set: the Milvus protocol tests must run in CI (.ci/run \
                 starts a milvus-lite server with scripts/setup-milvus.sh)"
            ),
            _ => {
                eprintln!(
                    "\n!!! SKIPPING the Milvus protocol tests: EMBER_TEST_MILVUS_URL is not set.\n\
                     !!! Run: eval \"$(bash scripts/setup-milvus.sh | tail -n 1)\" and test again.\n"
                );
                None
            }
        }
    }

    #[cfg(not(feature = "milvus"))]
    pub(super) fn backend(_test: &str) -> Option<Backend> {
        if url().is_some() && std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and EMBER_TEST_MILVUS_URL is set, but ember-store was built without the `milvus` feature");
        }
        None
    }

    #[cfg(feature = "milvus")]
    pub(super) use with_feature::*;

    #[cfg(feature = "milvus")]
    mod with_feature {
        use std::collections::{BTreeMap, HashMap};
        use std::io::{Read, Write};
        use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Mutex;
        use std::time::Duration;

        use ember_store::{
            FusionRanker, MilvusConnectOptions, MilvusStore, MultiVectorConfig, SparseFieldConfig, TextIndexConfig,
        };
        use milvus::v2::prelude as sdk;

        use super::*;

        /// A client for what ember does not do: databases, collections made behind its back.
        pub(crate) struct Admin {
            runtime: tokio::runtime::Runtime,
            client: sdk::ClientV2,
        }

        pub(crate) fn admin(url: &str) -> Admin {
            let options = MilvusConnectOptions::parse(url).unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let mut config = sdk::ConnectConfig::new().uri(options.endpoint());
            if let Some(db) = &options.database {
                config = config.database(db.clone());
            }
            let client = runtime.block_on(sdk::ClientV2::new(&config)).unwrap();
            Admin { runtime, client }
        }

        impl Admin {
            /// A collection with ember's field names, `dense` of `dim`, and these properties.
            fn create_raw(&self, name: &str, dim: u32, properties: HashMap<String, String>) {
                let schema = sdk::CollectionSchema::new()
                    .add_field(
                        sdk::FieldSchema::new()
                            .name("id")
                            .data_type(sdk::DataType::VarChar)
                            .primary_key(true)
                            .max_length(64),
                    )
                    .add_field(sdk::FieldSchema::new().name("text").data_type(sdk::DataType::VarChar).max_length(64))
                    .add_field(sdk::FieldSchema::new().name("metadata").data_type(sdk::DataType::Json))
                    .add_field(
                        sdk::FieldSchema::new().name("dense").data_type(sdk::DataType::FloatVector).dimension(dim),
                    );
                let request = sdk::CreateCollectionRequest::builder()
                    .collection_name(name)
                    .schema(schema)
                    .index_params(vec![sdk::IndexParam::new()
                        .field_name("dense")
                        .index_type(sdk::IndexType::Flat)
                        .metric_type(sdk::MetricType::Cosine)])
                    .properties(properties)
                    .build()
                    .unwrap();
                self.runtime.block_on(self.client.create_collection(request)).unwrap();
            }
        }

        /// Drops the test's database (and every collection in it) at the end.
        pub(crate) struct Database {
            url: String,
            name: String,
        }

        impl Drop for Database {
            fn drop(&mut self) {
                drop_database(&self.url, &self.name);
            }
        }

        fn drop_database(url: &str, name: &str) {
            let in_db = admin(&format!("{url}/{name}"));
            let Ok(request) = sdk::ListCollectionsRequest::builder().build() else { return };
            if let Ok(listed) = in_db.runtime.block_on(in_db.client.list_collections(request)) {
                for c in listed.collection_names() {
                    if let Ok(request) = sdk::DropCollectionRequest::builder().collection_name(c).build() {
                        let _ = in_db.runtime.block_on(in_db.client.drop_collection(request));
                    }
                }
            }
            let root = admin(url);
            if let Ok(request) = sdk::DropDatabaseRequest::builder().database_name(name).build() {
                let _ = root.runtime.block_on(root.client.drop_database(request));
            }
        }

        /// A fresh database for `test`, and the store URL that works in it.
        pub(crate) fn database(test: &str) -> Option<(Database, String)> {
            let url = url()?;
            let name = format!("ember_t_{}_{}", test.replace('-', "_"), std::process::id());
            drop_database(&url, &name);
            let root = admin(&url);
            let request = sdk::CreateDatabaseRequest::builder().database_name(&name).build().unwrap();
            root.runtime.block_on(root.client.create_database(request)).unwrap();
            let store_url = format!("{url}/{name}");
            Some((Database { url, name }, store_url))
        }

        pub(crate) fn connect(url: &str) -> MilvusStore {
            MilvusStore::connect(&MilvusConnectOptions::parse(url).unwrap()).unwrap()
        }

        pub(crate) fn backend(test: &str) -> Option<Backend> {
            let (database, url) = database(test)?;
            Some(Backend { name: "milvus-protocol", store: Arc::new(connect(&url)), _guard: Box::new(database) })
        }

        /// A deterministic sparse vector (strictly ascending terms, weights > 0); empty for every
        /// 17th seed, as a document the sparse model found no term for.
        fn sparse(seed: u64) -> Vec<(u32, f32)> {
            if seed.is_multiple_of(17) {
                return Vec::new();
            }
            let v = vector(seed.wrapping_add(5_000), 16);
            let terms: BTreeMap<u32, f32> =
                (0..8).map(|j| ((v[2 * j].abs() * 60.0) as u32, (v[2 * j + 1].abs() * 4.0).max(0.01))).collect();
            terms.into_iter().collect()
        }

        fn sparse_config(dim: usize, index: IndexKind) -> CollectionConfig {
            CollectionConfig {
                sparse: Some(SparseFieldConfig { model_id: "test/splade".into() }),
                ..config(dim, Similarity::Dot, index)
            }
        }

        fn sparse_docs(n: u64, dim: usize) -> Vec<Document> {
            (0..n)
                .map(|i| Document {
                    sparse: sparse(i),
                    ..doc(&format!("s{i:04}"), i, dim, json!({"i": i, "odd": i % 2 == 1, "tags": [i % 3]}))
                })
                .collect()
        }

        fn pairs(hits: &[ember_store::Hit]) -> Vec<(String, f32)> {
            hits.iter().map(|h| (h.id.clone(), h.score)).collect()
        }

        fn assert_same_hits(got: &[ember_store::Hit], want: &[ember_store::Hit], what: &str) {
            let (got, want) = (pairs(got), pairs(want));
            assert_eq!(
                got.iter().map(|p| &p.0).collect::<Vec<_>>(),
                want.iter().map(|p| &p.0).collect::<Vec<_>>(),
                "{what}: ids"
            );
            for ((id, g), (_, w)) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5, "{what}: {id} scores {g} vs {w}");
            }
        }

        /// Sparse search, documents with sparse vectors read back, and both through filters:
        /// the same hits and scores as the embedded store.
        #[test]
        fn sparse_search_equals_the_embedded_store() {
            let Some((_db, url)) = database("sparse") else { return };
            let store = connect(&url);
            let reference = embedded();
            let docs = sparse_docs(400, 8);
            let oracle = reference.store.create_collection("s", sparse_config(8, IndexKind::Flat)).unwrap();
            oracle.upsert(docs.clone()).unwrap();
            let c = store.create_collection("s", sparse_config(8, IndexKind::Flat)).unwrap();
            c.upsert(docs[..250].to_vec()).unwrap();
            c.upsert(docs[250..].to_vec()).unwrap();
            assert_eq!(c.count().unwrap(), 400);
            for i in [0, 1, 17, 399] {
                let id = format!("s{i:04}");
                assert_eq!(c.get(&id).unwrap().as_ref(), Some(&docs[i]), "{id} reads back exactly");
            }
            assert_eq!(c.scan(None).unwrap(), docs, "scan reads every document back exactly, by id");
            let odd = Filter::parse("odd = true and tags in [1, 2]").unwrap();
            let (mut compared, mut nonempty) = (0, 0);
            for q in 0..40u64 {
                let query = sparse(10_000 + q);
                for (k, filter) in [(10, None), (5, Some(&odd)), (1, None)] {
                    let want = oracle.search_sparse(&query, k, filter).unwrap();
                    let got = c.search_sparse(&query, k, filter).unwrap();
                    assert_same_hits(&got, &want, &format!("sparse q{q} k={k}"));
                    if let (Some(g), Some(w)) = (got.first(), want.first()) {
                        assert_eq!(g.document, w.document);
                    }
                    compared += 1;
                    nonempty += usize::from(!want.is_empty());
                }
            }
            assert!(nonempty * 10 >= compared * 8, "most queries find something ({nonempty} of {compared})");
            let err = c.search_sparse(&[(1, 1.0), (1, 2.0)], 3, None).unwrap_err();
            assert!(err.to_string().contains("term 1 is repeated"), "{err}");
            let mut bad = docs[1].clone();
            bad.sparse = vec![(5, 1.0), (u32::MAX - 1, 1.0)];
            let err = c.upsert(vec![bad]).unwrap_err();
            assert!(err.to_string().contains("reserved by the milvus backend"), "{err}");
        }

        /// Milvus's own hybrid search with RRF (k = 60) fuses the dense and sparse lists as ember's
        /// RRF does: Σ 1 / (60 + rank), rank from 1, over the embedded store's per-list results.
        #[test]
        fn native_hybrid_search_fuses_like_embers_rrf() {
            let Some((_db, url)) = database("hybrid") else { return };
            let store = connect(&url);
            let reference = embedded();
            let docs = sparse_docs(300, 8);
            let oracle = reference.store.create_collection("h", sparse_config(8, IndexKind::Flat)).unwrap();
            oracle.upsert(docs.clone()).unwrap();
            store.create_collection("h", sparse_config(8, IndexKind::Flat)).unwrap().upsert(docs).unwrap();
            let c = store.milvus_collection("h").unwrap();
            let (per_list, limit) = (20, 10);
            for q in 0..15u64 {
                let (dense, sparse) = (vector(20_000 + q, 8), sparse(30_000 + q));
                let mut expected: HashMap<String, f64> = HashMap::new();
                let lists = [
                    oracle.search(&dense, per_list, None).unwrap(),
                    oracle.search_sparse(&sparse, per_list, None).unwrap(),
                ];
                for list in &lists {
                    for (rank, hit) in list.iter().enumerate() {
                        *expected.entry(hit.id.clone()).or_default() += 1.0 / (60.0 + rank as f64 + 1.0);
                    }
                }
                let mut best: Vec<f64> = expected.values().copied().collect();
                best.sort_by(|a, b| b.total_cmp(a));
                best.truncate(limit);
                let got =
                    c.hybrid_search_native(&dense, &sparse, per_list, limit, &FusionRanker::Rrf { k: 60 }).unwrap();
                assert_eq!(got.len(), limit, "q{q}");
                for ((id, score), want) in got.iter().zip(&best) {
                    let fused = expected.get(id).copied().unwrap_or(f64::NAN);
                    assert!((f64::from(*score) - fused).abs() < 1e-5, "q{q} {id}: Milvus {score}, ember's RRF {fused}");
                    assert!((f64::from(*score) - want).abs() < 1e-5, "q{q} {id}: rank order {score} vs {want}");
                }
                let weighted = c
                    .hybrid_search_native(
                        &dense,
                        &sparse,
                        per_list,
                        limit,
                        &FusionRanker::Weighted { weights: vec![0.7, 0.3] },
                    )
                    .unwrap();
                assert_eq!(weighted.len(), limit, "q{q}");
                assert!(weighted.windows(2).all(|w| w[0].1 >= w[1].1), "q{q}: best first");
                assert!(weighted.iter().all(|(id, _)| expected.contains_key(id)), "q{q}: only ids of the two lists");
            }
        }

        /// A TCP proxy in front of the server that can cut a request in the middle and go away.
        struct Proxy {
            port: u16,
            state: Arc<ProxyState>,
        }

        struct ProxyState {
            upstream: SocketAddr,
            /// Cut the connection once this many more bytes went to the server (0: never).
            cut_after: AtomicUsize,
            sent: AtomicUsize,
            cuts: AtomicUsize,
            stopped: AtomicBool,
            open: Mutex<Vec<TcpStream>>,
        }

        impl Proxy {
            fn start(upstream: SocketAddr) -> Proxy {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                listener.set_nonblocking(true).unwrap();
                let port = listener.local_addr().unwrap().port();
                let state = Arc::new(ProxyState {
                    upstream,
                    cut_after: AtomicUsize::new(0),
                    sent: AtomicUsize::new(0),
                    cuts: AtomicUsize::new(0),
                    stopped: AtomicBool::new(false),
                    open: Mutex::new(Vec::new()),
                });
                let shared = Arc::clone(&state);
                std::thread::spawn(move || {
                    while !shared.stopped.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((client, _)) => Proxy::serve(&shared, client),
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                    // The listener is dropped: new connections are refused.
                });
                Proxy { port, state }
            }

            fn serve(state: &Arc<ProxyState>, client: TcpStream) {
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(state.upstream) else { return };
                {
                    let mut open = state.open.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut from_server, mut to_client) = (server, client);
                let shared = Arc::clone(state);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match from_client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let cut = shared.cut_after.load(Ordering::SeqCst);
                        if cut > 0 && shared.sent.fetch_add(n, Ordering::SeqCst) + n >= cut {
                            // Part of the request reached the server; the rest never will.
                            shared.cut_after.store(0, Ordering::SeqCst);
                            shared.cuts.fetch_add(1, Ordering::SeqCst);
                            let _ = from_client.shutdown(Shutdown::Both);
                            let _ = to_server.shutdown(Shutdown::Both);
                            break;
                        }
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Write);
                });
            }

            fn cut_after(&self, bytes: usize) {
                self.state.sent.store(0, Ordering::SeqCst);
                self.state.cut_after.store(bytes, Ordering::SeqCst);
            }

            fn cuts(&self) -> usize {
                self.state.cuts.load(Ordering::SeqCst)
            }

            /// Refuse new connections and close every open one: the server is gone.
            fn stop(&self) {
                self.state.stopped.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                for s in self.state.open.lock().unwrap().drain(..) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }

        /// The connection is cut in the middle of an upsert's request: with retries off the
        /// upsert fails naming the server and the operation, and nothing of its batch is written;
        /// with retries it is sent again and written whole, once. Then the server goes away for
        /// good: a clear error, after the retries, and no panic.
        #[test]
        fn a_server_that_goes_away_mid_upsert_leaves_nothing_half_written() {
            let Some((_db, url)) = database("goes_away") else { return };
            let options = MilvusConnectOptions::parse(&url).unwrap();
            let upstream: SocketAddr = options.address.parse().unwrap();
            let db = options.database.clone().unwrap();
            let direct = connect(&url);
            for retries in [0u32, 3] {
                let proxy = Proxy::start(upstream);
                let via = format!("milvus://127.0.0.1:{}/{db}?retries={retries}", proxy.port);
                let store = connect(&via);
                let name = format!("docs{retries}");
                let c = store.create_collection(&name, config(32, Similarity::Cosine, IndexKind::Flat)).unwrap();
                c.upsert(vec![doc("before", 1, 32, json!({}))]).unwrap();
                let batch: Vec<Document> =
                    (0..500).map(|i| doc(&format!("d{i}"), i, 32, json!({"i": i, "pad": "x".repeat(40)}))).collect();
                proxy.cut_after(20_000);
                let result = c.upsert(batch);
                assert_eq!(proxy.cuts(), 1, "the proxy cut the upsert's request");
                let check = direct.collection(&name).unwrap();
                if retries == 0 {
                    let err = result.unwrap_err();
                    let message = err.to_string();
                    assert!(
                        matches!(err, StoreError::Backend(BackendError::Unavailable { attempts: 1, .. })),
                        "{message}"
                    );
                    let prefix =
                        format!("upsert (collection '{name}') on milvus://127.0.0.1:{}/{db} failed", proxy.port);
                    assert!(message.starts_with(&prefix), "{message}");
                    assert_eq!(ids(&check.scan(None).unwrap()), ["before"], "nothing of the batch is written");
                } else {
                    result.unwrap();
                    assert_eq!(check.count().unwrap(), 501, "the retried batch is written whole, once");
                    assert_eq!(check.get("d499").unwrap().unwrap().metadata["i"], json!(499));
                    assert!(c.get("before").unwrap().is_some(), "the store goes on after the cut");
                }
                proxy.stop();
                let started = std::time::Instant::now();
                let err = c.count().unwrap_err();
                let message = err.to_string();
                assert!(
                    matches!(err, StoreError::Backend(BackendError::Unavailable { attempts, .. }) if attempts == retries + 1),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("on milvus://127.0.0.1:{}/{db} failed after", proxy.port)),
                    "{message}"
                );
                assert!(started.elapsed() < Duration::from_secs(20), "gave up after {:?}", started.elapsed());
            }
        }

        /// The filter parts pushed down to Milvus (`Filter::to_milvus_prefilter`) keep every
        /// document the filter matches, on the corpus that covers every rule of the language, and
        /// do narrow the candidates (the filter test above checks the final results).
        #[test]
        fn pushed_down_prefilters_keep_every_matching_document() {
            let Some((_db, url)) = database("prefilter") else { return };
            let store = connect(&url);
            let corpus = filter_corpus(4);
            store
                .create_collection("docs", config(4, Similarity::Cosine, IndexKind::Flat))
                .unwrap()
                .upsert(corpus.clone())
                .unwrap();
            let admin = admin(&url);
            let (mut pushed, mut narrowed, mut exact) = (0, 0, 0);
            for src in FILTERS {
                let f = Filter::parse(src).unwrap();
                let Some(pre) = f.to_milvus_prefilter("metadata") else { continue };
                pushed += 1;
                let request = sdk::QueryRequest::builder()
                    .collection_name("ember_docs")
                    .filter(pre.clone())
                    .output_fields(["id"])
                    .consistency_level(sdk::ConsistencyLevel::Strong)
                    .build()
                    .unwrap();
                let response = admin.runtime.block_on(admin.client.query(request)).unwrap();
                let got: std::collections::BTreeSet<String> = response
                    .results()
                    .get_output_field("id")
                    .and_then(|f| f.as_varchar())
                    .map(|ids| ids.iter().cloned().collect())
                    .unwrap_or_default();
                let want: std::collections::BTreeSet<String> =
                    corpus.iter().filter(|d| f.matches(&d.metadata)).map(|d| d.id.clone()).collect();
                assert!(got.is_superset(&want), "{src}: the prefilter {pre} lost {:?}", want.difference(&got));
                narrowed += usize::from(got.len() < corpus.len());
                exact += usize::from(got == want);
            }
            eprintln!("{pushed} of {} filters pushed down; {narrowed} narrowed; {exact} exact", FILTERS.len());
            assert!(pushed >= 12 && narrowed >= 12, "{pushed} pushed down, {narrowed} narrowed");
        }

        /// The dense field gets Milvus's HNSW index (with the collection's M and efConstruction)
        /// or FLAT, with the distance's metric, and the sparse field an inverted index, so the
        /// recall test above measures Milvus's index, not an exact scan.
        #[test]
        fn collections_get_the_index_and_metric_their_config_names() {
            let Some((_db, url)) = database("indexes") else { return };
            let store = connect(&url);
            let admin = admin(&url);
            for (name, cfg, field, index, metric, params) in [
                (
                    "graph",
                    config(8, Similarity::Cosine, IndexKind::Hnsw { m: 12, ef_construction: 48 }),
                    "dense",
                    sdk::IndexType::Hnsw,
                    sdk::MetricType::Cosine,
                    Some(("12", "48")),
                ),
                (
                    "flat",
                    config(8, Similarity::Euclidean, IndexKind::Flat),
                    "dense",
                    sdk::IndexType::Flat,
                    sdk::MetricType::L2,
                    None,
                ),
                ("dot", sparse_config(8, IndexKind::Flat), "dense", sdk::IndexType::Flat, sdk::MetricType::Ip, None),
                (
                    "sparse",
                    sparse_config(8, IndexKind::Flat),
                    "sparse",
                    sdk::IndexType::SparseInvertedIndex,
                    sdk::MetricType::Ip,
                    None,
                ),
            ] {
                store.create_collection(name, cfg).unwrap();
                let request = sdk::DescribeIndexRequest::builder()
                    .collection_name(format!("ember_{name}"))
                    .field_name(field)
                    .build()
                    .unwrap();
                let described = admin.runtime.block_on(admin.client.describe_index(request)).unwrap();
                let desc = described.indexes().iter().find(|d| d.get_field_name() == field).unwrap();
                assert_eq!((desc.get_index_type(), desc.get_metric_type()), (index, metric), "{name}");
                if let Some((m, ef_construction)) = params {
                    let extra = desc.get_extra_params();
                    let found = |k: &str| extra.get(k).cloned().unwrap_or_else(|| format!("{extra:?}"));
                    assert!(found("M").contains(m), "{name}: {extra:?}");
                    assert!(found("efConstruction").contains(ef_construction), "{name}: {extra:?}");
                }
            }
        }

        /// Collections changed or made behind ember's back are named, not misread; configs and
        /// documents Milvus cannot hold are refused with the reason.
        #[test]
        fn schema_changes_behind_embers_back_are_reported() {
            let Some((_db, url)) = database("mismatch") else { return };
            let store = connect(&url);
            let admin = admin(&url);
            let ember_config = serde_json::to_string(&config(4, Similarity::Cosine, IndexKind::Flat)).unwrap();
            let props = |format: &str| {
                HashMap::from([
                    ("ember.format".to_string(), format.to_string()),
                    ("ember.config".to_string(), ember_config.clone()),
                ])
            };
            admin.create_raw("ember_rogue", 4, HashMap::new());
            admin.create_raw("ember_shifted", 5, props("1"));
            admin.create_raw("ember_future", 4, props("99"));
            admin.create_raw("ember_fine", 4, props("1"));
            for (name, needle) in [
                ("rogue", "has no 'ember.format' property (ember did not create it)"),
                ("shifted", "field dense has dimension 5, expected 4 (the collection's config)"),
                ("future", "it has format 99; this build reads format 1"),
            ] {
                let err = store.collection(name).unwrap_err();
                let message = err.to_string();
                assert!(matches!(err, StoreError::Backend(BackendError::SchemaMismatch { .. })), "{message}");
                assert!(message.starts_with(&format!("collection '{name}' on milvus://")), "{message}");
                assert!(message.contains(needle), "{name}: {message}");
            }
            // A well-formed one made by another client opens, with the recorded config.
            let fine = store.collection("fine").unwrap();
            assert_eq!(fine.config(), &config(4, Similarity::Cosine, IndexKind::Flat));
            let err = fine.upsert(vec![doc("x", 1, 5, json!({}))]).unwrap_err();
            assert!(matches!(err, StoreError::DimensionMismatch { expected: 4, got: 5, .. }), "{err}");
            for (bad, needle) in [
                (
                    CollectionConfig {
                        text_index: Some(TextIndexConfig::new(ember_store::AnalyzerConfig::english())),
                        ..config(4, Similarity::Cosine, IndexKind::Flat)
                    },
                    "does not keep ember's BM25 text index",
                ),
                (
                    CollectionConfig {
                        multivector: Some(MultiVectorConfig { dimension: 4 }),
                        ..config(4, Similarity::Cosine, IndexKind::Flat)
                    },
                    "does not store a multi-vector field",
                ),
                (config(40_000, Similarity::Cosine, IndexKind::Flat), "at most 32768 dimensions"),
                (config(4, Similarity::Manhattan, IndexKind::Flat), "no manhattan (L1) metric"),
            ] {
                let err = store.create_collection("refused", bad).unwrap_err();
                assert!(matches!(err, StoreError::InvalidConfig { .. }), "{err}");
                assert!(err.to_string().contains(needle), "{err}");
            }
            assert!(!store.names().unwrap().contains(&"refused".to_string()));
            let c = store.create_collection("other", config(2, Similarity::Cosine, IndexKind::Flat)).unwrap();
            let mut long = doc("long", 1, 2, json!({}));
            long.text = "é".repeat(40_000);
            let err = c.upsert(vec![doc("ok", 2, 2, json!({})), long]).unwrap_err();
            assert!(err.to_string().contains("the text is 80000 bytes"), "{err}");
            let mut sparse_doc = doc("sp", 1, 2, json!({}));
            sparse_doc.sparse = vec![(1, 1.0)];
            let err = c.upsert(vec![sparse_doc]).unwrap_err();
            assert!(err.to_string().contains("the collection has no sparse field"), "{err}");
            assert_eq!(c.count().unwrap(), 0, "refused batches write nothing");
            let err = c.search_sparse(&[(1, 1.0)], 3, None).unwrap_err();
            assert!(matches!(err, StoreError::MissingField { .. }), "{err}");
            // ember's BM25 and MaxSim are not Milvus's: unsupported, and saying so.
            let err = c.search_text("cats", 3, None).unwrap_err();
            assert_eq!(err.to_string(), "the milvus backend does not support BM25 text search");
            let err = c.search_multivector(&[vec![1.0, 0.0]], 3, None, None).unwrap_err();
            assert_eq!(err.to_string(), "the milvus backend does not support multi-vector search");
        }
    }
}
