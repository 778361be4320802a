//! `ember serve`: the HTTP server (OpenAI, TEI, Cohere/Jina and ember's own API) for one or
//! more models, until SIGTERM or SIGINT.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use ember_server::{AppState, QueueConfig, ServerConfig};
use ember_store::{open_store, StoreLocation, StoreOptions};

use crate::model_source::{self, ModelArgs, DEFAULT_MODEL};
use crate::store_source::{display_location, stable_model_ref};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A model to serve: `MODEL` (a local directory, hub id or alias; requests name it by its
    /// directory name, or the id as given) or `NAME=MODEL`. Repeat to serve several; the first
    /// is the default.
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: Vec<String>,
    /// A reranker to serve on `POST /v1/rerank` and TEI's `POST /rerank`: `MODEL` or
    /// `NAME=MODEL` (a cross-encoder or Qwen3-Reranker directory or hub id). Repeat to serve
    /// several; the first is the default.
    #[arg(long)]
    pub reranker: Vec<String>,
    /// Hub revision (branch, tag or commit) of the models.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Serve the collections of this data directory (default: $EMBER_DATA_DIR; without either,
    /// the collection endpoints are off).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve the collections of this store instead: a directory (the embedded store) or an
    /// external one, `postgres://user[:password]@host[:port]/database[?sslmode=…]` (default:
    /// $EMBER_STORE unless --data-dir is given).
    #[arg(long, conflicts_with = "data_dir")]
    pub store: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (the address is printed on standard error).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` (default: $EMBER_API_KEY; none: no key needed).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Padded token slots per forward pass.
    #[arg(long, default_value_t = ember_models::sentence::DEFAULT_TOKEN_BUDGET)]
    pub max_batch_tokens: usize,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 32)]
    pub max_batch_requests: usize,
    /// Inputs waiting per model before requests are refused with 429.
    #[arg(long, default_value_t = 4096)]
    pub max_queue: usize,
    /// Threads tokenizing requests, per model (default: 2).
    #[arg(long, default_value_t = 2)]
    pub tokenizer_workers: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = ember_server::state::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// `NAME=MODEL` or `MODEL`, named by its directory or as given.
fn parse_model_spec(spec: &str) -> anyhow::Result<(String, String)> {
    if let Some((name, model)) = spec.split_once('=') {
        if name.is_empty() || model.is_empty() {
            bail!("--model {spec:?}: expected NAME=MODEL or MODEL");
        }
        return Ok((name.to_string(), model.to_string()));
    }
    let path = Path::new(spec);
    let name = if path.is_dir() {
        path.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| spec.to_string())
    } else {
        spec.to_string()
    };
    Ok((name, spec.to_string()))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut models = Vec::new();
    for spec in &args.model {
        let (name, model) = parse_model_spec(spec)?;
        let model =
            model_source::load(&ModelArgs { model: stable_model_ref(&model), revision: args.revision.clone() })?;
        eprintln!(
            "ember: model '{name}' ({}, {} dimensions, {} tokens)",
            ember_core::Embedder::model_id(&model),
            ember_core::Embedder::dimension(&model),
            model.max_seq_length()
        );
        models.push((name, std::sync::Arc::new(model)));
    }
    let mut rerankers = Vec::new();
    for spec in &args.reranker {
        let (name, model) = parse_model_spec(spec)?;
        let dir = ember_models::resolve(&model, &model_source::hub_options(&args.revision))?;
        let reranker = ember_models::RerankModel::load(&model, &dir, &ember_models::LoadOptions::default())
            .with_context(|| format!("loading reranker '{model}' from {}", dir.display()))?;
        let info = reranker.info();
        eprintln!(
            "ember: reranker '{name}' ({}, {} {}, {} tokens)",
            info.id, info.architecture, info.kind, info.max_length
        );
        rerankers.push((name, std::sync::Arc::new(reranker)));
    }
    let location = match (&args.store, &args.data_dir) {
        (Some(s), _) => Some(StoreLocation::parse(s)?),
        (None, Some(dir)) => Some(StoreLocation::Embedded(dir.clone())),
        (None, None) => match std::env::var("EMBER_STORE").ok().filter(|s| !s.is_empty()) {
            Some(s) => Some(StoreLocation::parse(&s).context("reading $EMBER_STORE")?),
            None => std::env::var_os("EMBER_DATA_DIR").map(|d| StoreLocation::Embedded(PathBuf::from(d))),
        },
    };
    let (store, served_from) = match &location {
        Some(location) => {
            let what = display_location(location);
            let store = open_store(location, StoreOptions::default()).with_context(|| format!("opening {what}"))?;
            (Some(store), Some(what))
        }
        None => (None, None),
    };
    let api_key = args.api_key.clone().or_else(|| std::env::var("EMBER_API_KEY").ok().filter(|k| !k.is_empty()));
    let config = ServerConfig {
        queue: QueueConfig {
            max_batch_tokens: args.max_batch_tokens,
            max_batch_requests: args.max_batch_requests,
            max_queue: args.max_queue,
            tokenizer_workers: args.tokenizer_workers,
        },
        max_body_bytes: args.max_body_bytes,
        api_key,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let state = AppState::with_rerankers(models, rerankers, store, config)?;
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        match &served_from {
            Some(what) => eprintln!("ember: collections in {what}"),
            None => eprintln!("ember: no store (--data-dir or --store): collection endpoints are off"),
        }
        eprintln!("ember: listening on http://{addr}");
        ember_server::serve(listener, state, async {
            ember_server::shutdown_signal().await;
            eprintln!("ember: shutting down: finishing requests in flight");
        })
        .await?;
        eprintln!("ember: stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs() {
        assert_eq!(parse_model_spec("minilm=/m/x").unwrap(), ("minilm".into(), "/m/x".into()));
        assert_eq!(
            parse_model_spec("sentence-transformers/all-MiniLM-L6-v2").unwrap(),
            ("sentence-transformers/all-MiniLM-L6-v2".into(), "sentence-transformers/all-MiniLM-L6-v2".into())
        );
        assert!(parse_model_spec("=x").is_err());
        assert!(parse_model_spec("x=").is_err());
    }
}
