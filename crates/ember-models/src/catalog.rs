//! ember's catalog of known checkpoints (`catalog.toml`, compiled in): what a model's own files
//! do not say — prompts from model cards, pooling overrides, aliases.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ember_core::PoolingMode;
use serde::Deserialize;

/// One known checkpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub prompts: BTreeMap<String, String>,
    pub pooling: Option<Vec<PoolingMode>>,
    pub normalize: Option<bool>,
    pub max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct CatalogFile {
    model: Vec<CatalogEntry>,
}

/// The compiled-in catalog.
pub fn builtin() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The file is part of the source tree and checked by a unit test, so a parse failure here
        // is a build defect; fall back to an empty catalog rather than abort a user's run.
        toml::from_str::<CatalogFile>(include_str!("catalog.toml")).map(|c| c.model).unwrap_or_default()
    })
}

/// Find the entry for a model name: a hub id, an alias, or a local directory whose final
/// component (or hub cache folder `models--org--name`) names a known model.
pub fn lookup(name: &str) -> Option<&'static CatalogEntry> {
    let trimmed = name.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let cache_name =
        trimmed.split('/').find_map(|part| part.strip_prefix("models--")).map(|p| p.replacen("--", "/", 1));
    builtin().iter().find(|e| {
        e.id.eq_ignore_ascii_case(trimmed)
            || cache_name.as_deref().is_some_and(|c| e.id.eq_ignore_ascii_case(c))
            || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(trimmed) || a.eq_ignore_ascii_case(last))
    })
}

/// Expand an alias to its hub id (`minilm` → `sentence-transformers/all-MiniLM-L6-v2`).
pub fn hub_id_for(name: &str) -> Option<&'static str> {
    builtin().iter().find(|e| e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))).map(|e| e.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_finds_models_by_id_alias_and_path() {
        let parsed: CatalogFile = toml::from_str(include_str!("catalog.toml")).unwrap();
        assert!(parsed.model.len() >= 10);
        let bge = lookup("BAAI/bge-small-en-v1.5").unwrap();
        assert_eq!(bge.prompts["query"], "Represent this sentence for searching relevant passages: ");
        assert_eq!(lookup("/models/e5-small-v2/").unwrap().prompts["document"], "passage: ");
        let nomic = lookup("/hf/hub/models--nomic-ai--nomic-embed-text-v1.5/snapshots/abc").unwrap();
        assert_eq!(nomic.prompts["query"], "search_query: ");
        assert_eq!(hub_id_for("minilm"), Some("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(lookup("no-such-model").is_none());
    }
}
