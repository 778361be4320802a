//! Finding a model: a local directory, a hub id in the local Hugging Face cache, or a download
//! from the hub (or any server laid out like it) with the hf-hub crate.
//!
//! Environment variables (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE, HF_TOKEN) are read by the binary
//! and passed in as [`HubOptions`]; this library reads no environment.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

use crate::catalog;
use crate::error::{ModelError, Result};
use crate::st::read_json;

/// How to reach the hub and where its cache lives.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Base URL (HF_ENDPOINT), default `https://huggingface.co`.
    pub endpoint: String,
    /// The hub cache directory (`$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// Never download (HF_HUB_OFFLINE=1).
    pub offline: bool,
    /// Branch, tag or commit; default `main`.
    pub revision: String,
    pub token: Option<String>,
}

impl HubOptions {
    /// Defaults relative to a Hugging Face home directory (`$HF_HOME`, usually `~/.cache/huggingface`).
    pub fn with_home(hf_home: &Path) -> Self {
        HubOptions {
            endpoint: "https://huggingface.co".to_string(),
            cache_dir: hf_home.join("hub"),
            offline: false,
            revision: "main".to_string(),
            token: None,
        }
    }
}

/// Files fetched from the hub when present; `config.json` and `tokenizer.json` are required.
const OPTIONAL_FILES: [&str; 5] = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Resolve `name` to a local directory holding the model's files.
pub fn resolve(name: &str, hub: &HubOptions) -> Result<PathBuf> {
    let path = Path::new(name);
    if path.is_dir() {
        if !path.join("config.json").exists() {
            return Err(ModelError::NotAModelDir(path.to_path_buf()));
        }
        return Ok(path.to_path_buf());
    }
    let id = catalog::hub_id_for(name).unwrap_or(name);
    if let Some(dir) = find_in_cache(id, hub) {
        return Ok(dir);
    }
    if hub.offline {
        return Err(ModelError::NotFound(name.to_string()));
    }
    download(id, hub)
}

/// A complete snapshot of `id` at the requested revision in the hub cache, if there is one.
fn find_in_cache(id: &str, hub: &HubOptions) -> Option<PathBuf> {
    let cache = Cache::new(hub.cache_dir.clone());
    let repo = cache.repo(Repo::with_revision(id.to_string(), RepoType::Model, hub.revision.clone()));
    let config = repo.get("config.json")?;
    let dir = config.parent()?.to_path_buf();
    let complete = dir.join("tokenizer.json").exists() && has_weights(&dir);
    complete.then_some(dir)
}

fn has_weights(dir: &Path) -> bool {
    dir.join("model.safetensors").exists() || dir.join("model.safetensors.index.json").exists()
}

fn download(id: &str, hub: &HubOptions) -> Result<PathBuf> {
    let err = |file: &str, message: String| ModelError::Download {
        repo: id.to_string(),
        file: file.to_string(),
        endpoint: hub.endpoint.clone(),
        message,
    };
    let api = ApiBuilder::new()
        .with_endpoint(hub.endpoint.clone())
        .with_cache_dir(hub.cache_dir.clone())
        .with_token(hub.token.clone())
        .with_progress(false)
        .build()
        .map_err(|e| err("", e.to_string()))?;
    let repo = api.repo(Repo::with_revision(id.to_string(), RepoType::Model, hub.revision.clone()));
    let get = |file: &str| repo.get(file).map_err(|e| err(file, e.to_string()));
    let config = get("config.json")?;
    let dir = config.parent().map(Path::to_path_buf).ok_or_else(|| err("config.json", "no parent".into()))?;
    get("tokenizer.json")?;
    for file in OPTIONAL_FILES {
        // Optional files may be absent from the repository; a failure here only matters if
        // a file the model needs is missing, which loading reports by name.
        let _ = repo.get(file);
    }
    match repo.get("model.safetensors") {
        Ok(_) => {}
        Err(first) => {
            let index =
                repo.get("model.safetensors.index.json").map_err(|_| err("model.safetensors", first.to_string()))?;
            for shard in crate::weights::shard_files(&index)? {
                get(&shard)?;
            }
        }
    }
    if dir.join("modules.json").exists() {
        #[derive(serde::Deserialize)]
        struct Entry {
            path: String,
        }
        let modules: Vec<Entry> = read_json(&dir.join("modules.json"))?;
        for m in modules.iter().filter(|m| !m.path.is_empty()) {
            // Pooling and Dense have a config, Dense also weights, Normalize nothing; a file a
            // module needs and the repository lacks is reported by name when loading.
            let _ = repo.get(&format!("{}/config.json", m.path));
            let _ = repo.get(&format!("{}/model.safetensors", m.path));
        }
    }
    Ok(dir)
}
