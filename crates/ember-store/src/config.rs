//! What a collection is configured with (recorded in its manifest) and how the store behaves.

use ember_core::Similarity;
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
        // Refuse now a collection that could not be opened later.
        IndexKind::build(self).map(drop)
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
        assert!(matches!(CollectionConfig { dimension: 0, ..flat }.validate(), Err(StoreError::InvalidConfig { .. })));
    }
}
