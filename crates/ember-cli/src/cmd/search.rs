//! `ember search COLLECTION "query" -k 10 [--filter EXPR] [--json]`.

use clap::Args;
use ember_engine::search_in;
use ember_store::{Filter, Hit};
use serde_json::{json, Value};

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
    /// One JSON object per line per hit.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let filter = args.filter.as_deref().map(Filter::parse).transpose()?;
    let store = args.store.open_any()?;
    let collection = store.collection(&args.collection)?;
    let model = collection_model(collection.as_ref(), args.model.as_deref(), &args.revision)?;
    let hits = search_in(collection.as_ref(), &model, &args.query, args.k, filter.as_ref(), args.ef)?;
    for (rank, hit) in hits.iter().enumerate() {
        if args.json {
            println!("{}", hit_json(rank + 1, hit));
        } else {
            let m = &hit.document.metadata;
            let source = m.get("source").and_then(Value::as_str).unwrap_or("");
            let span = match (m.get("start").and_then(Value::as_u64), m.get("end").and_then(Value::as_u64)) {
                (Some(s), Some(e)) => format!(" [{s}..{e})"),
                _ => String::new(),
            };
            let snippet: String = hit.document.text.chars().take(160).collect::<String>().replace('\n', " ");
            let more = if hit.document.text.chars().count() > 160 { "…" } else { "" };
            println!("{:>3}. {:.4}  {}  {source}{span}\n     {snippet}{more}", rank + 1, hit.score, hit.id);
        }
    }
    Ok(())
}

fn hit_json(rank: usize, hit: &Hit) -> Value {
    let m = &hit.document.metadata;
    json!({
        "rank": rank,
        "id": hit.id,
        "score": hit.score,
        "text": hit.document.text,
        "source": m.get("source"),
        "start": m.get("start"),
        "end": m.get("end"),
        "metadata": m,
    })
}
