//! The retrieval entry point on a real store with stand-in models: each mode returns its store
//! list, fusing one list returns that list, hybrid fuses as `fusion::fuse` does, explain ranks
//! agree with the lists, a reranker reorders, and ingest fills sparse and token vectors in one
//! pass of the model that provides them.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ember_chunk::TokenCounter;
use ember_core::embedder::BoxError;
use ember_core::{
    EmbedOptions, Embedder, Embeddings, MultiEmbeddings, OutputKinds, RerankOptions, RerankScores, Reranker,
};
use ember_engine::fusion::{fuse, Fusion};
use ember_engine::{
    ingest_with, open_or_create, retrieve, CollectionSettings, EngineError, IngestOptions, Mode, Models, RerankStage,
    SearchRequest, Source, SourceDocument, SourceFormat,
};
use ember_store::{AnalyzerConfig, Collection, MultiVectorConfig, SparseFieldConfig, Store, TextIndexConfig};

fn word_hash(w: &str, n: usize) -> usize {
    blake3::hash(w.as_bytes()).as_bytes()[0] as usize % n
}

fn words(t: &str) -> Vec<String> {
    t.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect()
}

/// Dense: hashed bag of words (16 buckets, normalised). Sparse: word → term id (hash into 64)
/// with weight = count. Token vectors: one 4-d vector per word. Counts its calls by kinds.
struct Multi {
    id: &'static str,
    provides: OutputKinds,
    calls: Mutex<Vec<OutputKinds>>,
}

impl Multi {
    fn new(id: &'static str, provides: OutputKinds) -> Self {
        Multi { id, provides, calls: Mutex::new(Vec::new()) }
    }
}

fn dense(t: &str) -> Vec<f32> {
    let mut v = [0.0f32; 16];
    for w in words(t) {
        v[word_hash(&w, 16)] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / n).collect()
}

fn sparse(t: &str) -> Vec<(u32, f32)> {
    let mut v = std::collections::BTreeMap::new();
    for w in words(t) {
        *v.entry(word_hash(&w, 64) as u32).or_insert(0.0f32) += 1.0;
    }
    v.into_iter().collect()
}

fn tokens(t: &str) -> Vec<Vec<f32>> {
    words(t)
        .iter()
        .map(|w| {
            let h = blake3::hash(w.as_bytes());
            h.as_bytes()[..4].iter().map(|&b| b as f32 / 255.0 - 0.5).collect()
        })
        .collect()
}

impl Embedder for Multi {
    fn model_id(&self) -> &str {
        self.id
    }
    fn dimension(&self) -> usize {
        16
    }
    fn outputs(&self) -> OutputKinds {
        self.provides
    }
    fn embed(&self, texts: &[&str], _: &EmbedOptions) -> Result<Embeddings, BoxError> {
        Ok(Embeddings { vectors: texts.iter().map(|t| dense(t)).collect(), tokens: 0, truncated: 0 })
    }
    fn embed_outputs(&self, texts: &[&str], kinds: OutputKinds, _: &EmbedOptions) -> Result<MultiEmbeddings, BoxError> {
        assert!(kinds.is_subset_of(self.provides), "asked {kinds:?} of {}", self.id);
        self.calls.lock().unwrap().push(kinds);
        Ok(MultiEmbeddings {
            dense: kinds.dense.then(|| texts.iter().map(|t| dense(t)).collect()),
            sparse: kinds.sparse.then(|| texts.iter().map(|t| sparse(t)).collect()),
            multivector: kinds.multivector.then(|| texts.iter().map(|t| tokens(t)).collect()),
            tokens: 0,
            truncated: 0,
        })
    }
}

/// Scores a document by how many times it says "zebra"; counts its calls.
struct ZebraReranker {
    calls: AtomicUsize,
}

impl Reranker for ZebraReranker {
    fn model_id(&self) -> &str {
        "zebra"
    }
    fn score(&self, _: &str, documents: &[&str], _: &RerankOptions) -> Result<RerankScores, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let scores = documents.iter().map(|d| words(d).iter().filter(|w| *w == "zebra").count() as f32).collect();
        Ok(RerankScores { scores, tokens: 0, truncated: 0 })
    }
}

struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

const CORPUS: [&str; 8] = [
    "The cat sat on the mat",
    "Dogs and cats are running in the park",
    "A zebra in the park with a cat",
    "Running shoes for running fast",
    "Cats chase mice and the mouse runs",
    "Nothing in common here at all",
    "The park has a pond with ducks and a zebra zebra",
    "Cat cat cat a feline text about cats",
];

fn sources() -> Vec<SourceDocument> {
    CORPUS
        .iter()
        .enumerate()
        .map(|(i, t)| SourceDocument {
            id: format!("doc{i}"),
            text: t.to_string(),
            source: "test".into(),
            format: SourceFormat::Plain,
            metadata: Default::default(),
        })
        .collect()
}

fn ingested(dir: &std::path::Path, model: &Multi, sparse_model: Option<&Multi>) -> (Store, Collection) {
    let store = Store::open(dir).unwrap();
    let settings = CollectionSettings {
        text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
        sparse: Some(SparseFieldConfig { model_id: sparse_model.map_or(model.id, |s| s.id).into() }),
        multivector: Some(MultiVectorConfig { dimension: 4 }),
        ..CollectionSettings::default()
    };
    let c = open_or_create(&store, "kb", model, settings).unwrap();
    let models = Models { dense: Some(model), sparse: sparse_model.map(|s| s as &dyn Embedder) };
    let options = IngestOptions { max_tokens: 64, overlap_tokens: 0, batch_chunks: 100 };
    ingest_with(&c, models, &Words, &sources(), &options, &mut |_| {}).unwrap();
    (store, c)
}

const ALL: OutputKinds = OutputKinds { dense: true, sparse: true, multivector: true };

fn ids(hits: &[ember_engine::RetrievedHit]) -> Vec<&str> {
    hits.iter().map(|h| h.hit.id.as_str()).collect()
}

#[test]
fn ingest_fills_every_field_in_one_forward_pass_of_a_multi_output_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("m3", ALL);
    let (_store, c) = ingested(dir.path(), &model, None);
    assert_eq!(*model.calls.lock().unwrap(), vec![ALL]);
    let d = c.get("doc2#0").unwrap().unwrap();
    assert_eq!(d.sparse, sparse(CORPUS[2]));
    assert_eq!(d.multivector, tokens(CORPUS[2]));
    assert_eq!(d.vector, dense(CORPUS[2]));
}

#[test]
fn a_separate_sparse_model_fills_the_sparse_field_and_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("dense", OutputKinds { dense: true, sparse: false, multivector: true });
    let splade = Multi::new("splade", OutputKinds::SPARSE);
    let (_store, c) = ingested(dir.path(), &model, Some(&splade));
    assert_eq!(*model.calls.lock().unwrap(), vec![OutputKinds { dense: true, sparse: false, multivector: true }]);
    assert_eq!(*splade.calls.lock().unwrap(), vec![OutputKinds::SPARSE]);
    assert_eq!(c.get("doc4#0").unwrap().unwrap().sparse, sparse(CORPUS[4]));

    let request = SearchRequest::new("cat park", 3, Mode::Sparse);
    let err = retrieve(&c, Models::dense(&model), &request).err().unwrap();
    assert!(matches!(err, EngineError::MissingModel { .. }));
    assert_eq!(err.to_string(), "collection 'kb' needs its sparse model 'splade' for this, and none was given");
    let got = retrieve(&c, Models { dense: Some(&model), sparse: Some(&splade) }, &request).unwrap();
    let want = c.search_sparse(&sparse("cat park"), 3, None).unwrap();
    assert_eq!(ids(&got.hits), want.iter().map(|h| h.id.as_str()).collect::<Vec<_>>());
}

#[test]
fn each_mode_returns_its_store_list_and_bm25_needs_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("m3", ALL);
    let (_store, c) = ingested(dir.path(), &model, None);
    let q = "running cats in the park";
    let check = |mode: Mode, models: Models<'_>, want: Vec<ember_store::Hit>| {
        let got = retrieve(&c, models, &SearchRequest::new(q, 5, mode)).unwrap();
        let got: Vec<(String, f32)> = got.hits.iter().map(|h| (h.hit.id.clone(), h.hit.score)).collect();
        let want: Vec<(String, f32)> = want.iter().map(|h| (h.id.clone(), h.score)).collect();
        assert_eq!(got, want, "{mode:?}");
    };
    check(Mode::Dense, Models::dense(&model), c.search(&dense(q), 5, None).unwrap());
    let none = Models { dense: None, sparse: None };
    check(Mode::Bm25, none, c.search_text(q, 5, None).unwrap());
    check(Mode::Sparse, Models::dense(&model), c.search_sparse(&sparse(q), 5, None).unwrap());
    check(Mode::MultiVector, Models::dense(&model), c.search_multivector(&tokens(q), 5, None, None).unwrap());
    let err = retrieve(&c, none, &SearchRequest::new(q, 5, Mode::Dense)).err().unwrap();
    assert_eq!(err.to_string(), "collection 'kb' needs its model 'm3' for this, and none was given");
}

#[test]
fn hybrid_fuses_like_fuse_and_explains_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("m3", ALL);
    let (_store, c) = ingested(dir.path(), &model, None);
    let q = "cat in the park";
    let srcs = [Source::Dense, Source::Bm25, Source::Sparse];
    for fusion in [Fusion::Rrf { k: 60.0 }, Fusion::MinMax, Fusion::Dbsf] {
        let request = SearchRequest { sources: &srcs, fusion, explain: true, ..SearchRequest::new(q, 6, Mode::Hybrid) };
        let got = retrieve(&c, Models::dense(&model), &request).unwrap();
        assert_eq!(got.sources, srcs);
        let lists: Vec<Vec<(String, f32)>> = [
            c.search(&dense(q), 100, None).unwrap(),
            c.search_text(q, 100, None).unwrap(),
            c.search_sparse(&sparse(q), 100, None).unwrap(),
        ]
        .iter()
        .map(|l| l.iter().map(|h| (h.id.clone(), h.score)).collect())
        .collect();
        let want = fuse(&lists, &[], fusion).unwrap();
        assert_eq!(ids(&got.hits), want.iter().take(6).map(|f| f.id.as_str()).collect::<Vec<_>>(), "{fusion:?}");
        for (i, h) in got.hits.iter().enumerate() {
            let e = h.explanation.as_ref().unwrap();
            assert_eq!((e.fused_rank, e.fused_score, h.hit.score), (i + 1, want[i].score, want[i].score));
            assert_eq!(e.rerank_score, None);
            for (list, pos) in lists.iter().zip(&e.lists) {
                match pos.hit {
                    Some(s) => assert_eq!(list[s.rank - 1], (h.hit.id.clone(), s.score)),
                    None => assert!(list.iter().all(|(id, _)| id != &h.hit.id)),
                }
            }
        }
        // Deterministic, ties included.
        assert_eq!(retrieve(&c, Models::dense(&model), &request).unwrap(), got);
    }
}

#[test]
fn hybrid_defaults_to_every_list_the_collection_has_and_fusing_one_list_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("m3", ALL);
    let (_store, c) = ingested(dir.path(), &model, None);
    let q = "zebra park";
    let got = retrieve(&c, Models::dense(&model), &SearchRequest::new(q, 4, Mode::Hybrid)).unwrap();
    assert_eq!(got.sources, [Source::Dense, Source::Bm25, Source::Sparse, Source::MultiVector]);
    assert_eq!(got.hits.len(), 4);
    // The multi-vector list rescored the other lists' candidates only.
    let one = [Source::Bm25];
    let fused_one =
        retrieve(&c, Models::dense(&model), &SearchRequest { sources: &one, ..SearchRequest::new(q, 5, Mode::Hybrid) });
    let alone = retrieve(&c, Models::dense(&model), &SearchRequest::new(q, 5, Mode::Bm25)).unwrap();
    assert_eq!(fused_one.unwrap(), alone);
    let twice = [Source::Bm25, Source::Bm25];
    let err = retrieve(
        &c,
        Models::dense(&model),
        &SearchRequest { sources: &twice, ..SearchRequest::new(q, 5, Mode::Hybrid) },
    );
    assert_eq!(
        err.err().unwrap().to_string(),
        "invalid search request on collection 'kb': source 'bm25' is named twice"
    );
    let weights = [1.0, 2.0, 3.0];
    let err = retrieve(
        &c,
        Models::dense(&model),
        &SearchRequest { sources: &srcs2(), weights: &weights, ..SearchRequest::new(q, 5, Mode::Hybrid) },
    );
    assert_eq!(err.err().unwrap().to_string(), "3 weights given for 2 ranked lists");
}

fn srcs2() -> [Source; 2] {
    [Source::Dense, Source::Bm25]
}

#[test]
fn a_reranker_reorders_the_fused_hits_and_is_not_called_without_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let model = Multi::new("m3", ALL);
    let (_store, c) = ingested(dir.path(), &model, None);
    let reranker = ZebraReranker { calls: AtomicUsize::new(0) };
    let srcs = srcs2();
    let request = SearchRequest {
        sources: &srcs,
        rerank: Some(RerankStage { reranker: &reranker, top_n: 5 }),
        explain: true,
        ..SearchRequest::new("cat park", 5, Mode::Hybrid)
    };
    let plain = retrieve(&c, Models::dense(&model), &SearchRequest { rerank: None, ..request }).unwrap();
    let got = retrieve(&c, Models::dense(&model), &request).unwrap();
    assert_eq!(reranker.calls.load(Ordering::SeqCst), 1);
    // doc6 says zebra twice, doc2 once: they lead whatever their fused ranks; the rest keep
    // their fused order.
    let zebra_free: Vec<&str> = ids(&plain.hits).into_iter().filter(|id| *id != "doc6#0" && *id != "doc2#0").collect();
    let mut want: Vec<&str> = ["doc6#0", "doc2#0"].into_iter().filter(|id| ids(&plain.hits).contains(id)).collect();
    want.extend(zebra_free);
    assert_eq!(ids(&got.hits), want);
    assert_ne!(ids(&got.hits), ids(&plain.hits));
    let first = got.hits[0].explanation.as_ref().unwrap();
    assert_eq!(first.rerank_score, Some(2.0));
    assert_eq!(got.hits[0].hit.score, 2.0);
    let fused_first = plain.hits.iter().position(|h| h.hit.id == got.hits[0].hit.id).unwrap();
    assert_eq!(first.fused_rank, fused_first + 1);

    let nothing = SearchRequest { mode: Mode::Bm25, query: "xylophone", ..request };
    assert!(retrieve(&c, Models::dense(&model), &nothing).unwrap().hits.is_empty());
    assert_eq!(reranker.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn hybrid_on_a_dense_only_collection_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let model = Multi::new("m3", ALL);
    let c = open_or_create(&store, "plain", &model, CollectionSettings::default()).unwrap();
    let err = retrieve(&c, Models::dense(&model), &SearchRequest::new("q", 3, Mode::Hybrid)).err().unwrap();
    assert!(
        err.to_string().starts_with("invalid search request on collection 'plain': hybrid search needs a second list"),
        "{err}"
    );
    let err = retrieve(&c, Models::dense(&model), &SearchRequest::new("q", 3, Mode::Bm25)).err().unwrap();
    assert!(err.to_string().starts_with("collection 'plain' has no BM25 text index; create it with"), "{err}");
}

/// A protocol test: the same ingest and searches (dense, sparse, hybrid dense + sparse with each
/// fusion, filtered, reranked) on the Milvus-protocol server named by `EMBER_TEST_MILVUS_URL`
/// (milvus-lite, scripts/setup-milvus.sh) as on the embedded store: the same hits, scores within
/// 1e-5. The engine fuses the per-list searches itself, the same way on every backend. Under
/// `CI=true` a missing server, or a build without ember-store's `milvus` feature, fails.
#[test]
fn hybrid_on_milvus_equals_the_embedded_store_protocol() {
    use ember_store::{open_store, BackendError, Filter, StoreError, StoreLocation, StoreOptions, VectorStore};
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let url = match std::env::var("EMBER_TEST_MILVUS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(!ci, "CI=true but EMBER_TEST_MILVUS_URL is not set (scripts/setup-milvus.sh starts a server)");
            eprintln!("\n!!! SKIPPING the engine's Milvus protocol test: EMBER_TEST_MILVUS_URL is not set.\n");
            return;
        }
    };
    let milvus = match open_store(&StoreLocation::parse(&url).unwrap(), StoreOptions::default()) {
        Ok(store) => store,
        Err(StoreError::Backend(BackendError::NotEnabled { .. })) if !ci => {
            eprintln!("\n!!! SKIPPING the engine's Milvus protocol test: ember-store's `milvus` feature is off.\n");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded: Arc<dyn VectorStore> = Arc::new(Store::open(dir.path()).unwrap());
    let model = Multi::new("m3", OutputKinds { dense: true, sparse: true, multivector: false });
    let name = format!("engine_kb_{}", std::process::id());
    let _ = milvus.drop_collection(&name);
    let settings = CollectionSettings {
        sparse: Some(SparseFieldConfig { model_id: "m3".into() }),
        ..CollectionSettings::default()
    };
    let options = IngestOptions { max_tokens: 64, overlap_tokens: 0, batch_chunks: 100 };
    let mut docs = sources();
    for (i, d) in docs.iter_mut().enumerate() {
        d.metadata = serde_json::json!({"n": i, "even": i % 2 == 0}).as_object().cloned().unwrap();
    }
    let collections: Vec<Arc<dyn ember_store::VectorCollection>> = [&embedded, &milvus]
        .iter()
        .map(|store| {
            let c = ember_engine::open_or_create_in(store.as_ref(), &name, &model, settings.clone()).unwrap();
            ingest_with(c.as_ref(), Models::dense(&model), &Words, &docs, &options, &mut |_| {}).unwrap();
            c
        })
        .collect();
    assert_eq!(collections[1].backend(), "milvus");
    assert_eq!(collections[1].count().unwrap(), collections[0].count().unwrap());
    let reranker = ZebraReranker { calls: AtomicUsize::new(0) };
    let even = Filter::parse("even = true").unwrap();
    let dense_sparse = [Source::Dense, Source::Sparse];
    let mut compared = 0;
    for q in ["cat in the park", "zebra park", "running cats", "mice and mouse", "xylophone"] {
        for fusion in [Fusion::Rrf { k: 60.0 }, Fusion::MinMax, Fusion::Dbsf] {
            for (filter, rerank) in [(None, false), (Some(&even), false), (None, true)] {
                for mode in [Mode::Dense, Mode::Sparse, Mode::Hybrid] {
                    let request = SearchRequest {
                        sources: if mode == Mode::Hybrid { &dense_sparse } else { &[] },
                        fusion,
                        filter,
                        rerank: rerank.then_some(RerankStage { reranker: &reranker, top_n: 5 }),
                        ..SearchRequest::new(q, 5, mode)
                    };
                    let results: Vec<Vec<(String, f32)>> = collections
                        .iter()
                        .map(|c| {
                            retrieve(c.as_ref(), Models::dense(&model), &request)
                                .unwrap()
                                .hits
                                .iter()
                                .map(|h| (h.hit.id.clone(), h.hit.score))
                                .collect()
                        })
                        .collect();
                    let what = format!("{q:?} {mode:?} {fusion:?} filter={} rerank={rerank}", filter.is_some());
                    let id_list = |r: &[(String, f32)]| r.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
                    assert_eq!(id_list(&results[1]), id_list(&results[0]), "{what}");
                    for (m, e) in results[1].iter().zip(&results[0]) {
                        assert!((m.1 - e.1).abs() <= 1e-5, "{what}: {} scores {} vs {}", m.0, m.1, e.1);
                    }
                    compared += usize::from(!results[0].is_empty());
                }
            }
        }
    }
    assert!(compared >= 100, "only {compared} non-empty comparisons");
    milvus.drop_collection(&name).unwrap();
}
