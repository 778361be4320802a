//! Retrieval (BEIR) and the SQuAD question → context check: embed corpus and queries with the
//! model's document/query prompts, exact cosine top-k, trec_eval-exact metrics.
//!
//! [`run_engine`] evaluates the engine's own retrieval (BM25, learned sparse, hybrid fusion, or
//! dense through the store) on the same metrics: the corpus goes into a scratch ember-store collection and
//! every query goes through [`ember_engine::retrieve_embedded`], the code `ember search` and the
//! server run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ember_core::{EmbedOptions, Similarity};
use ember_engine::fusion::Fusion;
use ember_engine::{retrieve_embedded, Mode, QueryEmbedding, SearchRequest, Source};
use ember_index::{DenseIndex, FlatIndex};
use ember_store::{
    CollectionConfig, Document, SparseFieldConfig, Store, StoreOptions, TextIndexConfig, VectorCollection, VectorStore,
};

use super::{EmbedStep, EvalOptions, SparseStep, TaskKind, TaskResult};
use crate::dataset::RetrievalDataset;
use crate::error::Result;
use crate::metrics::retrieval::{evaluate, Run};

use crate::metrics::retrieval::MTEB_K_VALUES as KS;

/// Rank the corpus for every query: query id → document id → score, top `options.top_k`.
pub fn search(ds: &RetrievalDataset, step: &mut EmbedStep, options: &EvalOptions) -> Result<Run> {
    let opts = |prompt: &Option<String>| EmbedOptions {
        prompt_name: prompt.clone(),
        batch_size: options.batch_size,
        ..EmbedOptions::default()
    };
    let docs: Vec<String> = ds.corpus.iter().map(|d| d.full_text()).collect();
    let doc_refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let doc_vectors = step.embed(&doc_refs, &opts(&options.document_prompt))?;
    let query_refs: Vec<&str> = ds.queries.iter().map(|(_, t)| t.as_str()).collect();
    let query_vectors = step.embed(&query_refs, &opts(&options.query_prompt))?;

    let dim = doc_vectors.first().map_or(0, Vec::len);
    let mut index = FlatIndex::new(dim, Similarity::Cosine);
    for v in &doc_vectors {
        index.add(v)?;
    }
    let mut run: Run = HashMap::new();
    for ((qid, _), qv) in ds.queries.iter().zip(&query_vectors) {
        // One extra hit so that dropping the query's own id still leaves top_k.
        let hits = index.search(qv, options.top_k + usize::from(options.ignore_identical_ids), None)?;
        let ranked: HashMap<String, f32> = hits
            .into_iter()
            .map(|h| (ds.corpus[h.id].id.clone(), h.score))
            .filter(|(doc, _)| !(options.ignore_identical_ids && doc == qid))
            .take(options.top_k)
            .collect();
        run.insert(qid.clone(), ranked);
    }
    Ok(run)
}

/// Retrieval with every metric at every cut-off; main score nDCG@10.
pub fn run(
    model: &str,
    ds: &RetrievalDataset,
    mut step: EmbedStep,
    options: &EvalOptions,
    kind: TaskKind,
) -> Result<TaskResult> {
    let start = Instant::now();
    let run = search(ds, &mut step, options)?;
    let metrics = all_metrics(ds, &run)?;
    let main_metric = match kind {
        // The SQuAD check reports question → context hit@1 (and MRR@10 among the metrics).
        TaskKind::Squad => "hit_rate_at_1",
        _ => "ndcg_at_10",
    };
    Ok(TaskResult::finish(model, &ds.name, kind, main_metric, metrics, start, step))
}

/// How [`run_engine`] searches: the engine request's parts, and where its scratch store lives.
#[derive(Debug, Clone)]
pub struct EngineRetrieval<'a> {
    pub mode: Mode,
    /// Hybrid sources (empty: the engine's default, dense + BM25).
    pub sources: Vec<Source>,
    pub fusion: Fusion,
    pub weights: Vec<f32>,
    /// Candidates per list (default: the engine's, `max(top_k, 100)`).
    pub depth: Option<usize>,
    /// The BM25 index the corpus gets.
    pub text_index: TextIndexConfig,
    /// An empty directory for the scratch store (the caller removes it afterwards).
    pub scratch: &'a Path,
    /// Where the scratch collection lives instead (PostgreSQL, …): it is created there for the
    /// run and dropped afterwards. `None`: an embedded store in `scratch`.
    pub store: Option<Arc<dyn VectorStore>>,
}

/// A scratch collection on an external store, dropped when the run ends (or fails).
struct ScratchCollection {
    store: Arc<dyn VectorStore>,
    name: String,
}

impl Drop for ScratchCollection {
    fn drop(&mut self) {
        if let Err(e) = self.store.drop_collection(&self.name) {
            eprintln!(
                "warning: could not drop the scratch collection '{}' on {}: {e}",
                self.name,
                self.store.location()
            );
        }
    }
}

impl EngineRetrieval<'_> {
    fn uses(&self, source: Source) -> bool {
        match self.mode {
            Mode::Hybrid if self.sources.is_empty() => matches!(source, Source::Dense | Source::Bm25),
            Mode::Hybrid => self.sources.contains(&source),
            Mode::Dense => source == Source::Dense,
            Mode::Bm25 => source == Source::Bm25,
            Mode::Sparse => source == Source::Sparse,
            Mode::MultiVector => source == Source::MultiVector,
        }
    }
}

/// Documents stored per write into the scratch collection.
const SCRATCH_BATCH: usize = 1024;

/// What [`search_engine`] found, and how long each query's retrieval took (without embedding
/// it: queries are embedded in batches beforehand).
#[derive(Debug, Clone, Default)]
pub struct EngineRun {
    pub run: Run,
    /// Seconds per query, in query order.
    pub latencies: Vec<f64>,
}

/// Rank the corpus for every query through the engine. `step` embeds (with its cache) when a
/// dense list is searched, `sparse` encodes (with its cache) when a sparse list is; BM25 alone
/// needs no model.
pub fn search_engine(
    ds: &RetrievalDataset,
    step: Option<&mut EmbedStep>,
    sparse: Option<&mut SparseStep>,
    options: &EvalOptions,
    retrieval: &EngineRetrieval<'_>,
) -> Result<EngineRun> {
    if retrieval.uses(Source::MultiVector) {
        return Err(crate::error::EvalError::TaskMismatch {
            task: "retrieval".into(),
            message: "the multivector list is not evaluated yet (dense, bm25, sparse and hybrid are)".into(),
        });
    }
    let texts: Vec<String> = ds.corpus.iter().map(|d| d.full_text()).collect();
    let (doc_vectors, query_vectors, model_id) = if retrieval.uses(Source::Dense) {
        let step = step.ok_or_else(|| crate::error::EvalError::TaskMismatch {
            task: "retrieval".into(),
            message: "a dense or hybrid search needs a model".into(),
        })?;
        let opts = |prompt: &Option<String>| EmbedOptions {
            prompt_name: prompt.clone(),
            batch_size: options.batch_size,
            ..EmbedOptions::default()
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let docs = step.embed(&refs, &opts(&options.document_prompt))?;
        let query_refs: Vec<&str> = ds.queries.iter().map(|(_, t)| t.as_str()).collect();
        let queries = step.embed(&query_refs, &opts(&options.query_prompt))?;
        (Some(docs), Some(queries), step.embedder.model_id().to_string())
    } else {
        (None, None, "none".to_string())
    };
    let texts_ref: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (doc_sparse, query_sparse, sparse_field) = if retrieval.uses(Source::Sparse) {
        let sparse = sparse.ok_or_else(|| crate::error::EvalError::TaskMismatch {
            task: "retrieval".into(),
            message: "a sparse list needs a sparse model".into(),
        })?;
        let docs = sparse.embed(&texts_ref, "document")?;
        let query_refs: Vec<&str> = ds.queries.iter().map(|(_, t)| t.as_str()).collect();
        let queries = sparse.embed(&query_refs, "query")?;
        let field = SparseFieldConfig { model_id: sparse.embedder.model_id().to_string() };
        (Some(docs), Some(queries), Some(field))
    } else {
        (None, None, None)
    };
    // BM25 alone stores a one-value placeholder vector (a collection always has a dense field).
    let dim = doc_vectors.as_ref().and_then(|d| d.first()).map_or(1, Vec::len);
    let config = CollectionConfig {
        text_index: retrieval.uses(Source::Bm25).then(|| retrieval.text_index.clone()),
        sparse: sparse_field,
        ..CollectionConfig::dense(model_id, dim, Similarity::Cosine)
    };
    let (collection, _scratch): (Arc<dyn VectorCollection>, Option<ScratchCollection>) = match &retrieval.store {
        Some(store) => {
            let name = format!("ember-eval-scratch-{}", std::process::id());
            if store.names()?.contains(&name) {
                store.drop_collection(&name)?;
            }
            let collection = store.create_collection(&name, config)?;
            (collection, Some(ScratchCollection { store: Arc::clone(store), name }))
        }
        None => {
            let store_options =
                StoreOptions { wal_flush_bytes: u64::MAX, background_maintenance: false, ..StoreOptions::default() };
            let store = Store::open_with(retrieval.scratch, store_options)?;
            (Arc::new(store.create_collection("corpus", config)?), None)
        }
    };
    let mut docs: Vec<Document> = Vec::with_capacity(SCRATCH_BATCH);
    for (i, (doc, text)) in ds.corpus.iter().zip(texts).enumerate() {
        let vector = doc_vectors.as_ref().map_or_else(|| vec![1.0], |v| v[i].clone());
        let sparse = doc_sparse.as_ref().map(|v| v[i].clone()).unwrap_or_default();
        docs.push(Document { id: doc.id.clone(), text, vector, sparse, ..Document::default() });
        if docs.len() == SCRATCH_BATCH {
            collection.upsert(std::mem::take(&mut docs))?;
        }
    }
    collection.upsert(docs)?;

    let k = options.top_k + usize::from(options.ignore_identical_ids);
    let mut run: Run = HashMap::new();
    let mut latencies = Vec::with_capacity(ds.queries.len());
    for (i, (qid, text)) in ds.queries.iter().enumerate() {
        let request = SearchRequest {
            sources: &retrieval.sources,
            fusion: retrieval.fusion,
            weights: &retrieval.weights,
            depth: retrieval.depth,
            ..SearchRequest::new(text, k, retrieval.mode)
        };
        let query = QueryEmbedding {
            dense: query_vectors.as_ref().map(|q| q[i].clone()),
            sparse: query_sparse.as_ref().map(|q| q[i].clone()),
            ..QueryEmbedding::default()
        };
        let started = Instant::now();
        let response = retrieve_embedded(collection.as_ref(), &request, &query)?;
        latencies.push(started.elapsed().as_secs_f64());
        let ranked: HashMap<String, f32> = response
            .hits
            .into_iter()
            .map(|h| (h.hit.id, h.hit.score))
            .filter(|(doc, _)| !(options.ignore_identical_ids && doc == qid))
            .take(options.top_k)
            .collect();
        run.insert(qid.clone(), ranked);
    }
    Ok(EngineRun { run, latencies })
}

/// The `p`-th percentile (nearest rank) of `values`, 0 when there are none.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()).saturating_sub(1)).copied().unwrap_or(0.0)
}

/// [`run`] through the engine ([`search_engine`]); main score nDCG@10. The metrics also hold
/// `query_ms_p50` and `query_ms_p99`: the engine's retrieval time per query, embedding excluded.
pub fn run_engine(
    model: &str,
    ds: &RetrievalDataset,
    mut step: Option<EmbedStep>,
    mut sparse: Option<SparseStep>,
    options: &EvalOptions,
    retrieval: &EngineRetrieval<'_>,
) -> Result<TaskResult> {
    let start = Instant::now();
    let found = search_engine(ds, step.as_mut(), sparse.as_mut(), options, retrieval)?;
    let mut metrics = all_metrics(ds, &found.run)?;
    // Retrieval only (store lists, fusion), the query already embedded.
    metrics.insert("query_ms_p50".into(), percentile(&found.latencies, 50.0) * 1e3);
    metrics.insert("query_ms_p99".into(), percentile(&found.latencies, 99.0) * 1e3);
    let mut result = match step {
        Some(step) => TaskResult::finish(model, &ds.name, TaskKind::Retrieval, "ndcg_at_10", metrics, start, step),
        None => TaskResult {
            model: model.to_string(),
            dataset: ds.name.clone(),
            task: TaskKind::Retrieval,
            main_metric: "ndcg_at_10".into(),
            main_score: metrics.get("ndcg_at_10").copied().unwrap_or(f64::NAN),
            metrics,
            seconds: start.elapsed().as_secs_f64(),
            embed_seconds: 0.0,
            texts: 0,
            cache_hits: 0,
        },
    };
    // The sparse model's encoding counts as embedding too.
    if let Some(sparse) = sparse {
        result.embed_seconds += sparse.embed_seconds;
        result.texts += sparse.texts;
        result.cache_hits += sparse.cache_hits;
    }
    Ok(result)
}

fn all_metrics(ds: &RetrievalDataset, run: &Run) -> Result<BTreeMap<String, f64>> {
    let scores = evaluate(&ds.qrels, run, &KS)?;
    let mut metrics = BTreeMap::new();
    for &k in &KS {
        metrics.insert(format!("ndcg_at_{k}"), scores.ndcg_at[&k]);
        metrics.insert(format!("map_at_{k}"), scores.map_at[&k]);
        metrics.insert(format!("recall_at_{k}"), scores.recall_at[&k]);
        metrics.insert(format!("precision_at_{k}"), scores.precision_at[&k]);
        metrics.insert(format!("mrr_at_{k}"), scores.mrr_at[&k]);
        metrics.insert(format!("hit_rate_at_{k}"), scores.hit_rate_at[&k]);
    }
    Ok(metrics)
}
