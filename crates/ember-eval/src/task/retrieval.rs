//! Retrieval (BEIR) and the SQuAD question → context check: embed corpus and queries with the
//! model's document/query prompts, exact cosine top-k, trec_eval-exact metrics.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ember_core::{EmbedOptions, Similarity};
use ember_index::{DenseIndex, FlatIndex};

use super::{EmbedStep, EvalOptions, TaskKind, TaskResult};
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
    let scores = evaluate(&ds.qrels, &run, &KS)?;
    let mut metrics = BTreeMap::new();
    for &k in &KS {
        metrics.insert(format!("ndcg_at_{k}"), scores.ndcg_at[&k]);
        metrics.insert(format!("map_at_{k}"), scores.map_at[&k]);
        metrics.insert(format!("recall_at_{k}"), scores.recall_at[&k]);
        metrics.insert(format!("precision_at_{k}"), scores.precision_at[&k]);
        metrics.insert(format!("mrr_at_{k}"), scores.mrr_at[&k]);
        metrics.insert(format!("hit_rate_at_{k}"), scores.hit_rate_at[&k]);
    }
    let main_metric = match kind {
        // The SQuAD check reports question → context hit@1 (and MRR@10 among the metrics).
        TaskKind::Squad => "hit_rate_at_1",
        _ => "ndcg_at_10",
    };
    Ok(TaskResult::finish(model, &ds.name, kind, main_metric, metrics, start, step))
}
