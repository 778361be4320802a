//! Where collections live: `--store LOCATION` (a directory, `postgres://…` or `milvus://…`), else
//! `$EMBER_STORE`, else the embedded store in `--data-dir`, else `$EMBER_DATA_DIR`, else the
//! user's data directory (`$XDG_DATA_HOME/ember`, `~/.local/share/ember`). Read here, at the edge.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ember_models::SentenceEmbedder;
use ember_store::{open_store, StoreLocation, StoreOptions, VectorCollection, VectorStore};

use crate::model_source::{self, ModelArgs};

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The data directory holding the collections.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where collections live: a directory (the embedded store), a PostgreSQL + pgvector server,
    /// `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require&pool_size=N]`,
    /// or a Milvus server, `milvus://[user:password@]host[:port][/database][?tls=true&token=…]`
    /// (`milvus+https://` for TLS).
    /// Default: `$EMBER_STORE`, else the embedded store in the data directory.
    #[arg(long, conflicts_with = "data_dir")]
    pub store: Option<String>,
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

    /// `--store`, else `$EMBER_STORE` (unless `--data-dir` is given), else the data directory.
    pub fn location(&self) -> anyhow::Result<StoreLocation> {
        let given = match (&self.store, &self.data_dir) {
            (Some(s), _) => Some(s.clone()),
            (None, None) => std::env::var("EMBER_STORE").ok().filter(|s| !s.is_empty()),
            (None, Some(_)) => None,
        };
        match given {
            Some(location) => Ok(StoreLocation::parse(&location)?),
            None => Ok(StoreLocation::Embedded(self.dir())),
        }
    }

    /// The store of any backend.
    pub fn open_any(&self) -> anyhow::Result<Arc<dyn VectorStore>> {
        let location = self.location()?;
        open_store(&location, StoreOptions::default())
            .with_context(|| format!("opening {}", display_location(&location)))
    }
}

/// A store location for messages: the data directory, or the URL without its password.
pub fn display_location(location: &StoreLocation) -> String {
    match location {
        StoreLocation::Embedded(dir) => format!("the data directory {}", dir.display()),
        StoreLocation::Postgres(pg) => pg.redacted_url(),
        StoreLocation::Milvus(milvus) => milvus.redacted_url(),
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
    collection: &dyn VectorCollection,
    given: Option<&str>,
    revision: &str,
) -> anyhow::Result<SentenceEmbedder> {
    let stored = collection.config().model_id.clone();
    let model = given.map_or(stored, stable_model_ref);
    model_source::load(&ModelArgs { model, revision: revision.to_string() })
}
