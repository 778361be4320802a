//! What a collection is configured with (recorded in its manifest) and how the store behaves.

use ember_core::Similarity;
use ember_index::sparse::{AnalyzerConfig, Bm25Params, InvertedIndex, InvertedIndexParams};
use ember_index::{DenseIndex, FlatIndex, HnswIndex, HnswParams, Quantization, QuantizedFlatIndex};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The precision a collection's vectors are searched at. Vectors are stored as `f32` on disk
/// whatever it says. With a flat index, `Int8` and `Binary` search a quantized copy first and
/// rescore the best candidates with the `f32` vectors; `Float16` is recorded only (searched in
/// `f32`); an HNSW graph always searches `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Float32,
    Float16,
    Int8,
    Binary,
}

/// Which dense index serves a collection's searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IndexKind {
    /// Exact search over every vector.
    #[default]
    Flat,
    /// Approximate search on a hierarchical navigable small-world graph.
    Hnsw { m: usize, ef_construction: usize },
}

/// Candidates per wanted hit that a quantized first pass keeps for rescoring.
const INT8_OVERSAMPLING: usize = 4;
const BINARY_OVERSAMPLING: usize = 10;

impl IndexKind {
    /// A new, empty index for `config`. Adding an index kind is one arm here.
    pub(crate) fn build(config: &CollectionConfig) -> Result<Box<dyn DenseIndex>, StoreError> {
        let (dim, distance) = (config.dimension, config.distance);
        let invalid = |e: ember_index::IndexError| StoreError::InvalidConfig { reason: e.to_string() };
        Ok(match (config.index, config.precision) {
            (IndexKind::Flat, Precision::Float32 | Precision::Float16) => Box::new(FlatIndex::new(dim, distance)),
            (IndexKind::Flat, Precision::Int8) => {
                // Embedding values lie within [-1, 1] for unit vectors; ranges fitted to the data
                // would be tighter, but the collection starts empty and rescoring restores order.
                let q = Quantization::Int8 { lo: vec![-1.0; dim], hi: vec![1.0; dim] };
                Box::new(QuantizedFlatIndex::new(dim, distance, q, INT8_OVERSAMPLING).map_err(invalid)?)
            }
            (IndexKind::Flat, Precision::Binary) => Box::new(
                QuantizedFlatIndex::new(dim, distance, Quantization::Binary, BINARY_OVERSAMPLING).map_err(invalid)?,
            ),
            (IndexKind::Hnsw { m, ef_construction }, _) => {
                let params = HnswParams { m, ef_construction, ..HnswParams::default() };
                Box::new(HnswIndex::new(dim, distance, params).map_err(invalid)?)
            }
        })
    }
}

/// A BM25 index over every document's text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextIndexConfig {
    pub analyzer: AnalyzerConfig,
    pub bm25: Bm25Params,
}

impl TextIndexConfig {
    /// BM25 (k1 = 1.2, b = 0.75) over text analyzed by `analyzer`.
    pub fn new(analyzer: AnalyzerConfig) -> Self {
        TextIndexConfig { analyzer, bm25: Bm25Params::default() }
    }

    pub(crate) fn build(&self) -> Result<InvertedIndex, StoreError> {
        let params = InvertedIndexParams::Bm25 { bm25: self.bm25, analyzer: self.analyzer.clone() };
        InvertedIndex::new(params).map_err(|e| StoreError::InvalidConfig { reason: format!("text index: {e}") })
    }
}

/// A learned sparse vector per document (SPLADE, BGE-M3's lexical weights), scored by dot
/// product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseFieldConfig {
    /// The model whose term ids the vectors use: the dense model itself (BGE-M3) or a separate
    /// sparse model (SPLADE).
    pub model_id: String,
}

/// Token vectors per document for late interaction (MaxSim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiVectorConfig {
    /// Every token vector's length.
    pub dimension: usize,
}

/// Everything fixed when a collection is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// The model that produced the vectors (so a query is embedded with the same one).
    pub model_id: String,
    /// Every vector's length.
    pub dimension: usize,
    pub distance: Similarity,
    pub precision: Precision,
    pub index: IndexKind,
    /// BM25 over the documents' text, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_index: Option<TextIndexConfig>,
    /// A learned sparse vector per document, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<SparseFieldConfig>,
    /// Token vectors per document, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector: Option<MultiVectorConfig>,
}

impl CollectionConfig {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.dimension == 0 {
            return Err(StoreError::InvalidConfig { reason: "dimension must be at least 1".into() });
        }
        if let IndexKind::Hnsw { m, ef_construction } = self.index {
            if m < 2 || ef_construction == 0 {
                return Err(StoreError::InvalidConfig {
                    reason: format!(
                        "hnsw needs m >= 2 and ef_construction >= 1 (got m={m}, ef_construction={ef_construction})"
                    ),
                });
            }
        }
        if let Some(sparse) = &self.sparse {
            if sparse.model_id.is_empty() {
                return Err(StoreError::InvalidConfig { reason: "the sparse field needs a model id".into() });
            }
        }
        if self.multivector.is_some_and(|m| m.dimension == 0) {
            return Err(StoreError::InvalidConfig { reason: "multivector dimension must be at least 1".into() });
        }
        // Refuse now a collection that could not be opened later.
        if let Some(text) = &self.text_index {
            text.build()?;
        }
        IndexKind::build(self).map(drop)
    }

    /// A dense-only configuration (no text index, sparse or multi-vector field).
    pub fn dense(model_id: impl Into<String>, dimension: usize, distance: Similarity) -> Self {
        CollectionConfig {
            model_id: model_id.into(),
            dimension,
            distance,
            precision: Precision::Float32,
            index: IndexKind::Flat,
            text_index: None,
            sparse: None,
            multivector: None,
        }
    }
}

/// How the store maintains itself. The defaults suit a server; tests shrink the thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// When the active write-ahead log grows past this many bytes, its contents are folded into a
    /// new segment and a fresh log is started.
    pub wal_flush_bytes: u64,
    /// When a flush would leave more segments than this, all segments and the log are compacted
    /// into one segment instead.
    pub max_segments: usize,
    /// Run flushes and compactions triggered by writes on a background thread (`true`), or in the
    /// writing thread after its write is durable (`false`). Readers are never blocked either way.
    pub background_maintenance: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { wal_flush_bytes: 64 << 20, max_segments: 8, background_maintenance: true }
    }
}

/// The longest collection name.
pub const MAX_NAME_LEN: usize = 64;

/// Collection names become directory names: ASCII letters, digits, `_`, `-` and `.`, starting with
/// a letter or digit, at most [`MAX_NAME_LEN`] bytes.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("a name cannot be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("a name is at most 64 bytes long")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("a name starts with an ASCII letter or digit")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        Some("a name may only hold ASCII letters, digits, '_', '-' and '.' (no path separators)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["docs", "a", "scifact-v2", "My_Coll.1", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "-x", "sp ace", "é", &"x".repeat(65), "a\0b"] {
            assert!(matches!(validate_name(bad), Err(StoreError::InvalidName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn config_serializes_readably_and_is_validated() {
        let config = CollectionConfig {
            model_id: "m".into(),
            dimension: 3,
            distance: Similarity::Dot,
            precision: Precision::Int8,
            index: IndexKind::Hnsw { m: 16, ef_construction: 200 },
            text_index: None,
            sparse: None,
            multivector: None,
        };
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"model_id": "m", "dimension": 3, "distance": "dot", "precision": "int8",
                               "index": {"kind": "hnsw", "m": 16, "ef_construction": 200}})
        );
        assert!(config.validate().is_ok());
        let bad = CollectionConfig { index: IndexKind::Hnsw { m: 1, ef_construction: 200 }, ..config.clone() };
        assert!(matches!(bad.validate(), Err(StoreError::InvalidConfig { .. })));
        let flat = CollectionConfig { index: IndexKind::Flat, ..config.clone() };
        assert!(flat.validate().is_ok());
        assert!(matches!(
            CollectionConfig { dimension: 0, ..flat.clone() }.validate(),
            Err(StoreError::InvalidConfig { .. })
        ));
        let bad = CollectionConfig { multivector: Some(MultiVectorConfig { dimension: 0 }), ..flat.clone() };
        assert!(bad.validate().unwrap_err().to_string().contains("multivector dimension"));
        let mut text = TextIndexConfig::new(AnalyzerConfig::plain());
        text.bm25.b = 2.0;
        let bad = CollectionConfig { text_index: Some(text), ..flat };
        assert!(bad.validate().unwrap_err().to_string().contains("text index"));
    }

    #[test]
    fn manifests_without_the_new_fields_still_parse_and_fields_round_trip() {
        let old = r#"{"model_id": "m", "dimension": 3, "distance": "cosine", "precision": "float32",
                      "index": {"kind": "flat"}}"#;
        let config: CollectionConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config, CollectionConfig::dense("m", 3, Similarity::Cosine));
        let full = CollectionConfig {
            text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
            sparse: Some(SparseFieldConfig { model_id: "naver/splade-v3".into() }),
            multivector: Some(MultiVectorConfig { dimension: 4 }),
            ..config
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<CollectionConfig>(&json).unwrap(), full);
        assert!(full.validate().is_ok());
    }
}
