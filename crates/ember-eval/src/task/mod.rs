//! Tasks: embed what a dataset needs (through the cache), score it, and report every metric
//! with the main score MTEB uses for that task type.

use std::collections::BTreeMap;
use std::time::Instant;

use ember_core::{EmbedOptions, Embedder, SparseVector};
use serde::Serialize;

use crate::cache::{EmbeddingCache, SparseCache};
use crate::error::Result;

pub mod labelled;
pub mod pairs;
pub mod retrieval;

/// The task types ember evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Retrieval,
    Sts,
    PairClassification,
    Classification,
    Clustering,
    Reranking,
    /// Question → context retrieval on a SQuAD file (hit@1 and MRR@10).
    Squad,
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskKind::Retrieval => "retrieval",
            TaskKind::Sts => "sts",
            TaskKind::PairClassification => "pair-classification",
            TaskKind::Classification => "classification",
            TaskKind::Clustering => "clustering",
            TaskKind::Reranking => "reranking",
            TaskKind::Squad => "squad",
        })
    }
}

/// The outcome of one task on one dataset with one model.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub model: String,
    pub dataset: String,
    pub task: TaskKind,
    pub main_metric: String,
    pub main_score: f64,
    pub metrics: BTreeMap<String, f64>,
    /// Wall time of the whole task.
    pub seconds: f64,
    /// Wall time spent embedding (cache misses only).
    pub embed_seconds: f64,
    /// Texts the task needed, and how many of them came from the cache.
    pub texts: usize,
    pub cache_hits: usize,
}

impl TaskResult {
    /// The result of a task that started at `start` and embedded through `step`; the main score
    /// is `metrics[main_metric]`.
    pub fn finish(
        model: &str,
        dataset: &str,
        task: TaskKind,
        main_metric: &str,
        metrics: BTreeMap<String, f64>,
        start: Instant,
        step: EmbedStep,
    ) -> TaskResult {
        TaskResult {
            model: model.to_string(),
            dataset: dataset.to_string(),
            task,
            main_metric: main_metric.to_string(),
            main_score: metrics.get(main_metric).copied().unwrap_or(f64::NAN),
            metrics,
            seconds: start.elapsed().as_secs_f64(),
            embed_seconds: step.embed_seconds,
            texts: step.texts,
            cache_hits: step.cache_hits,
        }
    }
}

/// Options shared by tasks.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Prompt name for queries (and for both sides of symmetric tasks), if the model has one.
    pub query_prompt: Option<String>,
    /// Prompt name for documents.
    pub document_prompt: Option<String>,
    /// Retrieval depth (MTEB keeps the top 1,000).
    pub top_k: usize,
    /// Drop each query's own id from its results (ArguAna).
    pub ignore_identical_ids: bool,
    pub batch_size: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            query_prompt: None,
            document_prompt: None,
            top_k: 1000,
            ignore_identical_ids: false,
            batch_size: None,
        }
    }
}

/// Embeds through an optional cache and keeps the counts a report needs.
pub struct EmbedStep<'a> {
    pub embedder: &'a dyn Embedder,
    pub cache: Option<&'a mut EmbeddingCache>,
    pub embed_seconds: f64,
    pub texts: usize,
    pub cache_hits: usize,
}

impl std::fmt::Debug for EmbedStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedStep").field("model", &self.embedder.model_id()).field("texts", &self.texts).finish()
    }
}

impl<'a> EmbedStep<'a> {
    pub fn new(embedder: &'a dyn Embedder, cache: Option<&'a mut EmbeddingCache>) -> Self {
        EmbedStep { embedder, cache, embed_seconds: 0.0, texts: 0, cache_hits: 0 }
    }

    pub fn embed(&mut self, texts: &[&str], options: &EmbedOptions) -> Result<Vec<Vec<f32>>> {
        let start = Instant::now();
        self.texts += texts.len();
        let vectors = match self.cache.as_deref_mut() {
            Some(cache) => {
                let (v, hits) = cache.embed(self.embedder, texts, options)?;
                self.cache_hits += hits;
                v
            }
            None => {
                self.embedder.embed(texts, options).map_err(|e| crate::error::EvalError::Embed(e.to_string()))?.vectors
            }
        };
        self.embed_seconds += start.elapsed().as_secs_f64();
        Ok(vectors)
    }
}

/// Learned sparse encoding (SPLADE) for the engine's sparse list, through its cache, with the
/// same counters as [`EmbedStep`]. The model's `query`/`document` prompts are used when it has them
/// (what `ember ingest` and `ember search` do).
pub struct SparseStep<'a> {
    pub embedder: &'a dyn Embedder,
    pub cache: Option<&'a mut SparseCache>,
    pub batch_size: Option<usize>,
    pub embed_seconds: f64,
    pub texts: usize,
    pub cache_hits: usize,
}

impl std::fmt::Debug for SparseStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseStep").field("model", &self.embedder.model_id()).field("texts", &self.texts).finish()
    }
}

impl<'a> SparseStep<'a> {
    pub fn new(embedder: &'a dyn Embedder, cache: Option<&'a mut SparseCache>, batch_size: Option<usize>) -> Self {
        SparseStep { embedder, cache, batch_size, embed_seconds: 0.0, texts: 0, cache_hits: 0 }
    }

    /// Sparse vectors of `texts` encoded in `role` (`query` or `document`).
    pub fn embed(&mut self, texts: &[&str], role: &str) -> Result<Vec<SparseVector>> {
        let start = Instant::now();
        let has = self.embedder.prompt_names().iter().any(|p| p == role);
        let options = EmbedOptions {
            prompt_name: has.then(|| role.to_string()),
            batch_size: self.batch_size,
            ..EmbedOptions::default()
        };
        self.texts += texts.len();
        let vectors = match self.cache.as_deref_mut() {
            Some(cache) => {
                let (v, hits) = cache.embed(self.embedder, texts, &options)?;
                self.cache_hits += hits;
                v
            }
            None => crate::cache::embed_sparse(self.embedder, texts, &options)?,
        };
        self.embed_seconds += start.elapsed().as_secs_f64();
        Ok(vectors)
    }
}
