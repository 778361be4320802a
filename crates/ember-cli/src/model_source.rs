//! Where models come from: the command-line flags shared by every subcommand that loads a model,
//! and the Hugging Face environment variables (read here, at the edge, and nowhere else).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ember_models::{resolve, HubOptions, LoadOptions, SentenceEmbedder};

/// The default model: small, fast, and what sentence-transformers' quickstart uses.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A local model directory, a hub id (`org/name`) or a catalog alias (`minilm`).
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value = "main")]
    pub revision: String,
}

/// Hub options from HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and HF_TOKEN.
pub fn hub_options(revision: &str) -> HubOptions {
    let home = std::env::var_os("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("huggingface")
    });
    let mut hub = HubOptions::with_home(&home);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        hub.endpoint = endpoint.trim_end_matches('/').to_string();
    }
    hub.offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"));
    hub.token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    hub.revision = revision.to_string();
    hub
}

/// Resolve and load the model named by `args`.
pub fn load(args: &ModelArgs) -> anyhow::Result<SentenceEmbedder> {
    let dir = resolve(&args.model, &hub_options(&args.revision))?;
    let model = SentenceEmbedder::load(&args.model, &dir, &LoadOptions::default())
        .with_context(|| format!("loading model '{}' from {}", args.model, dir.display()))?;
    Ok(model)
}
