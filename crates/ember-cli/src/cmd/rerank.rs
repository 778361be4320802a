//! `ember rerank`: score documents against a query with a reranker (cross-encoder or Qwen3 yes/no
//! LLM) and print them best first.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use ember_core::{rank_by_score, RerankOptions};
use ember_models::{resolve, LoadOptions, RerankModel};

use crate::input::{read_texts, InputFormat};
use crate::model_source::{hub_options, RuntimeArgs};

#[derive(Debug, Args)]
pub struct RerankArgs {
    /// The reranker: a local directory or a hub id (a cross-encoder such as
    /// cross-encoder/ms-marco-MiniLM-L6-v2 or BAAI/bge-reranker-base, or Qwen/Qwen3-Reranker-0.6B).
    #[arg(long, short = 'm')]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value = "main")]
    pub revision: String,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The query.
    #[arg(long, short = 'q')]
    pub query: String,
    /// The documents: one per line, or JSON lines with a text field (`-` for stdin).
    #[arg(long, short = 'd')]
    pub documents: PathBuf,
    /// How the documents file is read.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// The JSON field holding a document's text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Print only the best N.
    #[arg(long)]
    pub top_n: Option<usize>,
    /// The task instruction of instruction-following rerankers (Qwen3-Reranker; default: the
    /// model card's web-search instruction). Other rerankers ignore it.
    #[arg(long)]
    pub instruction: Option<String>,
    /// Cut each (query, document) pair to this many tokens (default: the model's limit).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Print raw scores (logits) instead of the model's activation (sigmoid / P(yes)).
    #[arg(long)]
    pub raw_scores: bool,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = ember_models::rerank::DEFAULT_RERANK_BATCH_SIZE)]
    pub batch_size: usize,
    /// Print JSON: `{"model", "results": [{"rank", "index", "score", "text"}], "tokens", "truncated"}`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RerankArgs) -> anyhow::Result<()> {
    if args.top_n == Some(0) {
        bail!("--top-n must be at least 1");
    }
    if args.max_length == Some(0) || args.batch_size == 0 {
        bail!("--max-length and --batch-size must be at least 1");
    }
    let documents = read_texts(&args.documents, args.format, &args.text_field)?;
    let device = args.runtime.device.open()?;
    let dir = resolve(&args.model, &hub_options(&args.revision))?;
    let options = LoadOptions { device, dtype: args.runtime.dtype.candle() };
    let model = RerankModel::load(&args.model, &dir, &options)
        .with_context(|| format!("loading reranker '{}' from {}", args.model, dir.display()))?;
    let docs: Vec<&str> = documents.iter().map(String::as_str).collect();
    let rerank_options = RerankOptions {
        max_length: args.max_length,
        batch_size: Some(args.batch_size),
        activation: args.raw_scores.then_some(false),
        instruction: args.instruction.clone(),
    };
    let out = model.score_pairs(&args.query, &docs, &rerank_options)?;
    if out.truncated > 0 {
        eprintln!(
            "note: {} of {} (query, document) pairs were longer than {} tokens and were truncated",
            out.truncated,
            docs.len(),
            args.max_length.unwrap_or(model.max_length())
        );
    }
    let mut ranked = rank_by_score(&out.scores);
    ranked.truncate(args.top_n.unwrap_or(ranked.len()));
    if args.json {
        let results: Vec<serde_json::Value> = ranked
            .iter()
            .enumerate()
            .map(|(rank, &(index, score))| {
                serde_json::json!({"rank": rank + 1, "index": index, "score": score, "text": documents[index]})
            })
            .collect();
        let body = serde_json::json!({
            "model": args.model,
            "results": results,
            "tokens": out.tokens,
            "truncated": out.truncated,
        });
        println!("{}", serde_json::to_string(&body)?);
    } else {
        for (rank, &(index, score)) in ranked.iter().enumerate() {
            println!("{}\t{index}\t{score:.6}\t{}", rank + 1, one_line(&documents[index]));
        }
    }
    Ok(())
}

/// A document on one line of the table: newlines and tabs as spaces, long texts shortened.
fn one_line(text: &str) -> String {
    let flat: String = text.chars().map(|c| if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c }).collect();
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(199).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
