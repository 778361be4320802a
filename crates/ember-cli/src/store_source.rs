//! Where collections live: `--data-dir`, else `$EMBER_DATA_DIR`, else the user's data directory
//! (`$XDG_DATA_HOME/ember`, `~/.local/share/ember`). Read here, at the edge.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ember_models::SentenceEmbedder;
use ember_store::{Collection, Store};

use crate::model_source::{self, ModelArgs};

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The data directory holding the collections.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    pub fn dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("EMBER_DATA_DIR") {
            return PathBuf::from(d);
        }
        let base = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).unwrap_or_else(|| {
            std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), |h| PathBuf::from(h).join(".local/share"))
        });
        base.join("ember")
    }

    pub fn open(&self) -> anyhow::Result<Store> {
        let dir = self.dir();
        Store::open(&dir).with_context(|| format!("opening the data directory {}", dir.display()))
    }
}

/// A model reference that stays valid from any working directory: an existing local directory
/// becomes its absolute path; hub ids and aliases stay as given.
pub fn stable_model_ref(model: &str) -> String {
    let path = std::path::Path::new(model);
    if path.is_dir() {
        if let Ok(abs) = path.canonicalize() {
            return abs.to_string_lossy().into_owned();
        }
    }
    model.to_string()
}

/// Load the model a collection was built with (or `given`, which must be the same one).
pub fn collection_model(
    collection: &Collection,
    given: Option<&str>,
    revision: &str,
) -> anyhow::Result<SentenceEmbedder> {
    let stored = collection.info().config.model_id.clone();
    let model = given.map_or(stored, stable_model_ref);
    model_source::load(&ModelArgs { model, revision: revision.to_string() })
}
