//! `ember search COLLECTION "query" -k 10 [--mode dense|bm25|sparse|multivector|hybrid]
//! [--fusion rrf|weighted|minmax|dbsf] [--rrf-k 60] [--weights 0.5,0.5] [--filter EXPR]
//! [--rerank MODEL --rerank-top 100] [--explain] [--json]`.

use clap::Args;
use ember_core::{Embedder, Reranker};
use ember_engine::{retrieve, Explanation, Mode, Models, RerankStage, RetrievedHit, SearchRequest, Source};
use ember_models::SentenceEmbedder;
use ember_store::{Filter, VectorCollection};
use serde_json::{json, Value};

use crate::model_source::{self, ModelArgs};
use crate::rerank_source;
use crate::retrieval_args::{Retrieval, RetrievalArgs};
use crate::store_source::{collection_model, StoreArgs};

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub collection: String,
    pub query: String,
    /// How many hits.
    #[arg(short = 'k', long, default_value_t = 10)]
    pub k: usize,
    /// Metadata filter, e.g. `lang = "en" and year >= 2020`.
    #[arg(long)]
    pub filter: Option<String>,
    /// The collection's model is used; naming it again is allowed, another one is an error.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// HNSW collections: the candidate list size (`ef`; default 64). Larger finds more of the
    /// true neighbours, more slowly. Exact and quantized collections ignore it.
    #[arg(long)]
    pub ef: Option<usize>,
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// Rerank the best fused hits with this cross-encoder.
    #[arg(long)]
    pub rerank: Option<String>,
    /// How many fused hits the reranker scores.
    #[arg(long, default_value_t = 100)]
    pub rerank_top: usize,
    /// Show each hit's rank and score in every list, its fused rank and score, and its rerank
    /// score.
    #[arg(long)]
    pub explain: bool,
    /// One JSON object per line per hit.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The models a search needs, loaded: none for BM25 alone.
struct Loaded {
    dense: Option<SentenceEmbedder>,
    sparse: Option<SentenceEmbedder>,
}

fn load_models(args: &SearchArgs, collection: &dyn VectorCollection, retrieval: &Retrieval) -> anyhow::Result<Loaded> {
    let needs_dense = match retrieval.mode {
        Mode::Bm25 => false,
        Mode::Hybrid => retrieval.sources.is_empty() || retrieval.sources.iter().any(|&s| s != Source::Bm25),
        _ => true,
    };
    let dense = needs_dense.then(|| collection_model(collection, args.model.as_deref(), &args.revision)).transpose()?;
    let config = collection.config();
    let wants_sparse = match retrieval.mode {
        Mode::Sparse => true,
        Mode::Hybrid => retrieval.sources.is_empty() || retrieval.sources.contains(&Source::Sparse),
        _ => false,
    };
    let sparse = match &config.sparse {
        Some(field) if wants_sparse && field.model_id != config.model_id => {
            Some(model_source::load(&ModelArgs { model: field.model_id.clone(), revision: args.revision.clone() })?)
        }
        _ => None,
    };
    Ok(Loaded { dense, sparse })
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let retrieval = args.retrieval.parse()?;
    let filter = args.filter.as_deref().map(Filter::parse).transpose()?;
    let store = args.store.open_any()?;
    let collection = store.collection(&args.collection)?;
    if retrieval.mode == Mode::Bm25 && collection.config().text_index.is_none() {
        // Say so before loading anything.
        collection.search_text(&args.query, 1, None)?;
    }
    let loaded = load_models(&args, collection.as_ref(), &retrieval)?;
    // The single call site of the reranker loader (see rerank_source.rs).
    let reranker: Option<Box<dyn Reranker>> =
        args.rerank.as_deref().map(|m| rerank_source::load(m, &args.revision)).transpose()?;
    let models = Models {
        dense: loaded.dense.as_ref().map(|m| m as &dyn Embedder),
        sparse: loaded.sparse.as_ref().map(|m| m as &dyn Embedder),
    };
    let request = SearchRequest {
        query: &args.query,
        k: args.k,
        mode: retrieval.mode,
        sources: &retrieval.sources,
        fusion: retrieval.fusion,
        weights: &retrieval.weights,
        depth: retrieval.depth,
        filter: filter.as_ref(),
        effort: args.ef,
        rerank: reranker.as_deref().map(|reranker| RerankStage { reranker, top_n: args.rerank_top }),
        explain: args.explain,
    };
    let response = retrieve(collection.as_ref(), models, &request)?;
    for (rank, hit) in response.hits.iter().enumerate() {
        if args.json {
            println!("{}", hit_json(rank + 1, hit));
        } else {
            print_hit(rank + 1, hit);
        }
    }
    Ok(())
}

fn print_hit(rank: usize, hit: &RetrievedHit) {
    let (m, text) = (&hit.hit.document.metadata, &hit.hit.document.text);
    let source = m.get("source").and_then(Value::as_str).unwrap_or("");
    let span = match (m.get("start").and_then(Value::as_u64), m.get("end").and_then(Value::as_u64)) {
        (Some(s), Some(e)) => format!(" [{s}..{e})"),
        _ => String::new(),
    };
    let snippet: String = text.chars().take(160).collect::<String>().replace('\n', " ");
    let more = if text.chars().count() > 160 { "…" } else { "" };
    println!("{rank:>3}. {:.4}  {}  {source}{span}\n     {snippet}{more}", hit.hit.score, hit.hit.id);
    if let Some(e) = &hit.explanation {
        println!("     {}", explain_line(e));
    }
}

/// `fused #2 0.0325 | dense #1 0.8123 | bm25 #3 7.1000 | sparse - | rerank 4.20`.
fn explain_line(e: &Explanation) -> String {
    let mut parts = vec![format!("fused #{} {:.4}", e.fused_rank, e.fused_score)];
    for list in &e.lists {
        parts.push(match list.hit {
            Some(h) => format!("{} #{} {:.4}", list.source.name(), h.rank, h.score),
            None => format!("{} -", list.source.name()),
        });
    }
    if let Some(r) = e.rerank_score {
        parts.push(format!("rerank {r:.4}"));
    }
    parts.join(" | ")
}

fn hit_json(rank: usize, hit: &RetrievedHit) -> Value {
    let m = &hit.hit.document.metadata;
    let mut out = json!({
        "rank": rank,
        "id": hit.hit.id,
        "score": hit.hit.score,
        "text": hit.hit.document.text,
        "source": m.get("source"),
        "start": m.get("start"),
        "end": m.get("end"),
        "metadata": m,
    });
    if let Some(e) = &hit.explanation {
        out["explain"] = e.to_json();
    }
    out
}
