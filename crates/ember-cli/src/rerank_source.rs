//! Where `ember search --rerank MODEL` gets its reranker: a local directory or a hub id, resolved
//! like an embedding model, loaded on the CPU as whichever reranker its `config.json` names
//! (BERT / XLM-R cross-encoder, Qwen3 yes/no reranker).

use anyhow::Context;
use ember_core::Reranker;
use ember_models::{load_reranker, LoadOptions};

use crate::model_source::hub_options;

/// Load the reranker `model` at `revision`.
pub fn load(model: &str, revision: &str) -> anyhow::Result<Box<dyn Reranker>> {
    load_reranker(model, &hub_options(revision), &LoadOptions::default())
        .with_context(|| format!("cannot load reranker '{model}'"))
}
