//! Sentence-pair tasks: STS (Spearman and Pearson correlation of cosine similarity with the gold
//! score) and pair classification (average precision of similarity against 0/1 labels).

use std::collections::BTreeMap;
use std::time::Instant;

use ember_core::{cosine, EmbedOptions};

use super::{EmbedStep, EvalOptions, TaskKind, TaskResult};
use crate::dataset::PairDataset;
use crate::error::{EvalError, Result};
use crate::metrics::{correlation, pair_classification};

/// Vectors of the left and right sentences.
type SideVectors = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Embed both sides of every pair (each distinct sentence once, through the cache).
fn embed_pairs(ds: &PairDataset, step: &mut EmbedStep, options: &EvalOptions) -> Result<SideVectors> {
    let opts = EmbedOptions {
        prompt_name: options.query_prompt.clone(),
        batch_size: options.batch_size,
        ..EmbedOptions::default()
    };
    let left: Vec<&str> = ds.pairs.iter().map(|(a, _, _)| a.as_str()).collect();
    let right: Vec<&str> = ds.pairs.iter().map(|(_, b, _)| b.as_str()).collect();
    Ok((step.embed(&left, &opts)?, step.embed(&right, &opts)?))
}

pub fn run(
    model: &str,
    ds: &PairDataset,
    mut step: EmbedStep,
    options: &EvalOptions,
    kind: TaskKind,
) -> Result<TaskResult> {
    let start = Instant::now();
    let (a, b) = embed_pairs(ds, &mut step, options)?;
    let gold: Vec<f64> = ds.pairs.iter().map(|(_, _, s)| f64::from(*s)).collect();
    let mut metrics = BTreeMap::new();
    let main_metric = match kind {
        TaskKind::Sts => {
            let sims: Vec<f64> = a.iter().zip(&b).map(|(x, y)| f64::from(cosine(x, y))).collect();
            let spearman = correlation::spearman(&sims, &gold)?;
            let pearson = correlation::pearson(&sims, &gold)?;
            metrics.insert("cosine_spearman".to_string(), spearman);
            metrics.insert("cosine_pearson".to_string(), pearson);
            "cosine_spearman"
        }
        TaskKind::PairClassification => {
            let labels: Vec<bool> = gold.iter().map(|&g| g > 0.5).collect();
            let s = pair_classification::evaluate(&a, &b, &labels)?;
            for (name, p) in
                [("cosine", &s.cosine), ("dot", &s.dot), ("euclidean", &s.euclidean), ("manhattan", &s.manhattan)]
            {
                metrics.insert(format!("{name}_ap"), p.ap);
                metrics.insert(format!("{name}_accuracy"), p.accuracy);
                metrics.insert(format!("{name}_f1"), p.f1);
            }
            for (name, v) in [("max_ap", s.max_ap), ("max_accuracy", s.max_accuracy), ("max_f1", s.max_f1)] {
                metrics.insert(name.to_string(), v);
            }
            "max_ap"
        }
        other => {
            return Err(EvalError::TaskMismatch { task: other.to_string(), message: "not a pair task".to_string() })
        }
    };
    Ok(TaskResult::finish(model, &ds.name, kind, main_metric, metrics, start, step))
}
