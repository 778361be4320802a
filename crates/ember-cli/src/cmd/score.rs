//! `ember score`: relevance of documents to a query with a model's dense, sparse (lexical) and
//! ColBERT outputs and their weighted combinations, as FlagEmbedding's BGE-M3 `compute_score`
//! forms them (see `ember_core::scoring`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use ember_core::{EmbedOptions, ModeWeights, OutputKinds, PairScores, ScoreMode, TextOutputs};
use ember_models::SentenceEmbedder;
use serde::Serialize;

use crate::input::{read_texts, InputFormat};
use crate::model_source::{self, ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The query, scored against every document of --documents.
    #[arg(long, short = 'q', requires = "documents", conflicts_with = "pairs")]
    pub query: Option<String>,
    /// Documents, one per line (or JSON lines with a `text` field).
    #[arg(long, short = 'd')]
    pub documents: Option<PathBuf>,
    /// Tab-separated `query<TAB>document` pairs, one per line.
    #[arg(long, conflicts_with = "documents")]
    pub pairs: Option<PathBuf>,
    /// `dense`, `sparse`, `colbert`, `sparse+dense` or `colbert+sparse+dense` (default: the most
    /// complete one the model supports).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<ScoreMode>,
    /// Weights of the combined modes, `dense,sparse,colbert` (BGE-M3's model card: 0.4,0.2,0.4).
    #[arg(long, default_value = "0.4,0.2,0.4", value_parser = parse_weights)]
    pub weights: ModeWeights,
    /// Truncate queries and documents to this many tokens (default: the model's max_seq_length).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Print JSON: one object per pair with the chosen score and every base score.
    #[arg(long)]
    pub json: bool,
}

fn parse_mode(s: &str) -> Result<ScoreMode, String> {
    s.parse().map_err(|e: ember_core::scoring::ScoreParseError| e.to_string())
}

fn parse_weights(s: &str) -> Result<ModeWeights, String> {
    s.parse().map_err(|e: ember_core::scoring::ScoreParseError| e.to_string())
}

#[derive(Serialize)]
struct ScoredPair<'a> {
    index: usize,
    query: &'a str,
    document: &'a str,
    mode: &'static str,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    dense: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sparse: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colbert: Option<f32>,
}

/// The most complete mode a model with `outputs` supports.
pub fn default_mode(outputs: OutputKinds) -> ScoreMode {
    match (outputs.dense, outputs.sparse, outputs.multivector) {
        (true, true, true) => ScoreMode::ColbertSparseDense,
        (true, true, false) => ScoreMode::SparseDense,
        (false, true, _) => ScoreMode::Sparse,
        (false, false, true) => ScoreMode::Colbert,
        _ => ScoreMode::Dense,
    }
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    if args.max_length == Some(0) {
        bail!("--max-length must be at least 1");
    }
    let pairs: Vec<(String, String)> = match (&args.query, &args.documents, &args.pairs) {
        (Some(q), Some(docs), None) => {
            read_texts(docs, InputFormat::Auto, "text")?.into_iter().map(|d| (q.clone(), d)).collect()
        }
        (None, None, Some(path)) => read_pairs(path)?,
        _ => bail!("give --query with --documents FILE, or --pairs FILE"),
    };
    let model = model_source::load_on(&args.model, &args.runtime)?;
    let mode = args.mode.unwrap_or_else(|| default_mode(model.outputs()));
    let (dense, sparse, multivector) = mode.needs();
    let kinds = OutputKinds { dense, sparse, multivector };
    model.check_outputs(kinds)?;
    let options = EmbedOptions { max_length: args.max_length, ..EmbedOptions::default() };
    let scores = score_pairs(&model, &pairs, kinds, &options)?;
    if args.json {
        let rows: Vec<ScoredPair> = pairs
            .iter()
            .zip(&scores)
            .enumerate()
            .map(|(index, ((q, d), s))| ScoredPair {
                index,
                query: q,
                document: d,
                mode: mode.name(),
                score: s.get(mode, args.weights).unwrap_or(f32::NAN),
                dense: s.dense,
                sparse: s.sparse,
                colbert: s.colbert,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for s in &scores {
            println!("{:.6}", s.get(mode, args.weights).unwrap_or(f32::NAN));
        }
    }
    Ok(())
}

/// Embed the distinct queries and the documents once each (one forward pass per batch for every
/// kind) and score each pair.
fn score_pairs(
    model: &SentenceEmbedder,
    pairs: &[(String, String)],
    kinds: OutputKinds,
    options: &EmbedOptions,
) -> anyhow::Result<Vec<PairScores>> {
    let mut queries: Vec<&str> = pairs.iter().map(|(q, _)| q.as_str()).collect();
    queries.sort_unstable();
    queries.dedup();
    let docs: Vec<&str> = pairs.iter().map(|(_, d)| d.as_str()).collect();
    let q = model.embed_outputs_texts(&queries, kinds, options).context("embedding the queries")?;
    let d = model.embed_outputs_texts(&docs, kinds, options).context("embedding the documents")?;
    Ok(pairs
        .iter()
        .enumerate()
        .map(|(j, (query, _))| {
            let qi = queries.binary_search(&query.as_str()).unwrap_or(0);
            PairScores::compute(TextOutputs::of(&q, qi), TextOutputs::of(&d, j))
        })
        .collect())
}

fn read_pairs(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| match line.split_once('\t') {
            Some((q, d)) => Ok((q.to_string(), d.to_string())),
            None => bail!("{}:{}: expected query<TAB>document", path.display(), n + 1),
        })
        .collect()
}
