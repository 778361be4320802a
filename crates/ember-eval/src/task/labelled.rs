//! Tasks on labelled texts: classification (logistic regression on embeddings of the train
//! split, accuracy on the test split) and clustering (k-means with k = number of labels,
//! V-measure). Reranking (MAP and MRR@10 of cosine-ranked candidates) lives here too: it is
//! the other task whose texts come with their judgements attached.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ember_core::{cosine, EmbedOptions};

use super::{EmbedStep, EvalOptions, TaskKind, TaskResult};
use crate::dataset::{LabelledDataset, RerankingDataset};
use crate::error::Result;
use crate::metrics::classification::{evaluate as classify, LogisticRegressionConfig};
use crate::metrics::clustering::cluster_v_measure;
use crate::metrics::reranking::{evaluate as rerank, RerankingInstance};

fn options(o: &EvalOptions, prompt: &Option<String>) -> EmbedOptions {
    EmbedOptions { prompt_name: prompt.clone(), batch_size: o.batch_size, ..EmbedOptions::default() }
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

/// Logistic regression (sklearn defaults as MTEB uses them: C = 1, 100 iterations) trained on
/// every row of `train`, accuracy and F1 on `test`. MTEB additionally undersamples the train
/// split and averages 10 experiments; on a user's own data ember uses the whole train split.
pub fn classification(
    model: &str,
    train: &LabelledDataset,
    test: &LabelledDataset,
    mut step: EmbedStep,
    o: &EvalOptions,
) -> Result<TaskResult> {
    let start = Instant::now();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for l in train.labels.iter().chain(&test.labels) {
        let next = ids.len();
        ids.entry(l.as_str()).or_insert(next);
    }
    let train_y: Vec<usize> = train.labels.iter().map(|l| ids[l.as_str()]).collect();
    let test_y: Vec<usize> = test.labels.iter().map(|l| ids[l.as_str()]).collect();
    let opts = options(o, &o.query_prompt);
    let train_x = step.embed(&refs(&train.texts), &opts)?;
    let test_x = step.embed(&refs(&test.texts), &opts)?;
    let s = classify(&train_x, &train_y, &test_x, &test_y, &LogisticRegressionConfig::default())?;
    let metrics = BTreeMap::from([
        ("accuracy".to_string(), s.accuracy),
        ("f1_macro".to_string(), s.f1_macro),
        ("f1_weighted".to_string(), s.f1_weighted),
    ]);
    Ok(TaskResult::finish(model, &test.name, TaskKind::Classification, "accuracy", metrics, start, step))
}

/// k-means (k = distinct labels, seed 42) on the embeddings, V-measure against the labels.
pub fn clustering(model: &str, ds: &LabelledDataset, mut step: EmbedStep, o: &EvalOptions) -> Result<TaskResult> {
    let start = Instant::now();
    let x = step.embed(&refs(&ds.texts), &options(o, &o.query_prompt))?;
    let v = cluster_v_measure(&x, &ds.labels, 42)?;
    let metrics = BTreeMap::from([
        ("v_measure".to_string(), v.v_measure),
        ("homogeneity".to_string(), v.homogeneity),
        ("completeness".to_string(), v.completeness),
    ]);
    Ok(TaskResult::finish(model, &ds.name, TaskKind::Clustering, "v_measure", metrics, start, step))
}

/// Candidates ranked by cosine similarity to their query; MAP and MRR@10.
pub fn reranking(model: &str, ds: &RerankingDataset, mut step: EmbedStep, o: &EvalOptions) -> Result<TaskResult> {
    let start = Instant::now();
    let queries: Vec<&str> = ds.instances.iter().map(|i| i.query.as_str()).collect();
    let docs: Vec<&str> =
        ds.instances.iter().flat_map(|i| i.positive.iter().chain(&i.negative)).map(String::as_str).collect();
    let qv = step.embed(&queries, &options(o, &o.query_prompt))?;
    let dv = step.embed(&docs, &options(o, &o.document_prompt))?;
    let mut scores: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    let mut at = 0;
    for (item, q) in ds.instances.iter().zip(&qv) {
        let mut score = |n: usize| {
            let s: Vec<f64> = dv[at..at + n].iter().map(|d| f64::from(cosine(q, d))).collect();
            at += n;
            s
        };
        let pos = score(item.positive.len());
        let neg = score(item.negative.len());
        scores.push((pos, neg));
    }
    let instances: Vec<RerankingInstance> =
        scores.iter().map(|(p, n)| RerankingInstance { positive: p, negative: n }).collect();
    let s = rerank(&instances, 10)?;
    let metrics = BTreeMap::from([("map".to_string(), s.map), ("mrr_at_10".to_string(), s.mrr)]);
    Ok(TaskResult::finish(model, &ds.name, TaskKind::Reranking, "map", metrics, start, step))
}
