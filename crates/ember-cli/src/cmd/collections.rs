//! `ember collections create|list|info|drop`.

use anyhow::bail;
use clap::Subcommand;
use ember_core::Similarity;
use ember_store::{
    AnalyzerConfig, Bm25Params, CollectionConfig, CollectionInfo, IndexKind, Precision, TextIndexConfig,
};
use serde_json::json;

use crate::cmd::ingest::{IndexArg, PrecisionArg};
use crate::model_source::{self, ModelArgs};
use crate::store_source::{stable_model_ref, StoreArgs};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DistanceArg {
    Cosine,
    Dot,
    Euclidean,
    Manhattan,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Create an empty collection, e.g. on PostgreSQL or Milvus:
    /// `ember collections create kb --store postgres://user@host/db --model all-MiniLM-L6-v2`,
    /// `ember collections create kb --store milvus://host:19530 --model all-MiniLM-L6-v2`.
    Create {
        name: String,
        /// The model whose vectors it holds (loaded to learn its dimension unless --dimension is
        /// given too).
        #[arg(long, short = 'm')]
        model: Option<String>,
        /// Vector length; alone (without --model), for vectors computed elsewhere.
        #[arg(long)]
        dimension: Option<usize>,
        #[arg(long, default_value = "main")]
        revision: String,
        #[arg(long, value_enum, default_value_t = DistanceArg::Cosine)]
        distance: DistanceArg,
        /// `flat` (exact) or `hnsw` (approximate graph; on PostgreSQL a pgvector HNSW index).
        #[arg(long, value_enum, default_value_t = IndexArg::Flat)]
        index: IndexArg,
        #[arg(long, default_value_t = 16)]
        hnsw_m: usize,
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        #[arg(long, value_enum, default_value_t = PrecisionArg::Float32)]
        precision: PrecisionArg,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Every collection with its model, dimension and size.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One collection's configuration and statistics.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a collection and its data.
    Drop {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The model id a collection records and its dimension: from the model, or as given.
fn model_and_dimension(
    model: Option<&str>,
    dimension: Option<usize>,
    revision: &str,
) -> anyhow::Result<(String, usize)> {
    match (model, dimension) {
        (Some(m), Some(d)) => Ok((stable_model_ref(m), d)),
        (None, Some(d)) => Ok(("external".to_string(), d)),
        (Some(m), None) => {
            let embedder =
                model_source::load(&ModelArgs { model: stable_model_ref(m), revision: revision.to_string() })?;
            Ok((ember_core::Embedder::model_id(&embedder).to_string(), ember_core::Embedder::dimension(&embedder)))
        }
        (None, None) => bail!("give --model (the model whose vectors the collection holds) or --dimension"),
    }
}

pub fn run(command: CollectionsCommand) -> anyhow::Result<()> {
    match command {
        CollectionsCommand::Create {
            name,
            model,
            dimension,
            revision,
            distance,
            index,
            hnsw_m,
            ef_construction,
            precision,
            store,
        } => {
            let (model_id, dimension) = model_and_dimension(model.as_deref(), dimension, &revision)?;
            let store = store.open_any()?;
            // Every store that can indexes text for BM25 by default (as `ember ingest` does).
            let text_index = store
                .keeps_text_index()
                .then(|| TextIndexConfig { analyzer: AnalyzerConfig::english(), bm25: Bm25Params::default() });
            let config = CollectionConfig {
                text_index,
                sparse: None,
                multivector: None,
                model_id,
                dimension,
                distance: match distance {
                    DistanceArg::Cosine => Similarity::Cosine,
                    DistanceArg::Dot => Similarity::Dot,
                    DistanceArg::Euclidean => Similarity::Euclidean,
                    DistanceArg::Manhattan => Similarity::Manhattan,
                },
                precision: match precision {
                    PrecisionArg::Float32 => Precision::Float32,
                    PrecisionArg::Float16 => Precision::Float16,
                    PrecisionArg::Int8 => Precision::Int8,
                    PrecisionArg::Binary => Precision::Binary,
                },
                index: match index {
                    IndexArg::Flat => IndexKind::Flat,
                    IndexArg::Hnsw => IndexKind::Hnsw { m: hnsw_m, ef_construction },
                },
            };
            store.create_collection(&name, config.clone())?;
            eprintln!(
                "created collection '{name}' on {} ({}): model {}, dimension {}",
                store.location(),
                store.backend(),
                config.model_id,
                config.dimension
            );
        }
        CollectionsCommand::List { json, store } => {
            let list = store.open_any()?.list()?;
            for info in &list {
                if json {
                    println!("{}", info_json(info));
                } else {
                    println!(
                        "{}\t{} documents\t{}\tdim {}",
                        info.name, info.count, info.config.model_id, info.config.dimension
                    );
                }
            }
        }
        CollectionsCommand::Info { name, json, store } => {
            let info = store.open_any()?.collection(&name)?.info()?;
            if json {
                println!("{}", info_json(&info));
            } else {
                println!("name:       {}", info.name);
                println!("model:      {}", info.config.model_id);
                println!("dimension:  {}", info.config.dimension);
                println!("distance:   {:?}", info.config.distance);
                println!("precision:  {:?}", info.config.precision);
                println!("index:      {:?}", info.config.index);
                println!("documents:  {}", info.count);
                println!("disk bytes: {}", info.disk_bytes);
                println!("segments:   {}", info.segments);
            }
        }
        CollectionsCommand::Drop { name, store } => {
            store.open_any()?.drop_collection(&name)?;
            eprintln!("dropped collection '{name}'");
        }
    }
    Ok(())
}

fn info_json(info: &CollectionInfo) -> serde_json::Value {
    json!({
        "name": info.name,
        "model": info.config.model_id,
        "dimension": info.config.dimension,
        "distance": format!("{:?}", info.config.distance).to_lowercase(),
        "precision": format!("{:?}", info.config.precision).to_lowercase(),
        "index": format!("{:?}", info.config.index),
        "count": info.count,
        "disk_bytes": info.disk_bytes,
        "segments": info.segments,
    })
}
