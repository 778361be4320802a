//! ember's durable embedded store: named collections of documents (id, text, vector, JSON
//! metadata) in a data directory, searched through a dense index with metadata filters applied
//! during the search.
//!
//! Writes go to a checksummed write-ahead log and are acknowledged only once fsync'd (concurrent
//! writers share fsyncs); the log is folded into immutable segments by flushes and compactions
//! that never block readers. Opening a store replays the log, drops a torn tail left by a crash,
//! and reports any other damage as an error naming the file and offset. Every file starts with a
//! magic and a format version; `docs/store-format.md` describes the layout byte by byte.
//!
//! ```
//! use ember_store::{CollectionConfig, Document, Filter, IndexKind, Precision, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let config = CollectionConfig {
//!     model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
//!     dimension: 2,
//!     distance: ember_core::Similarity::Cosine,
//!     precision: Precision::Float32,
//!     index: IndexKind::Flat,
//!     text_index: None,
//!     sparse: None,
//!     multivector: None,
//! };
//! let docs = store.create_collection("docs", config)?;
//! let metadata = serde_json::json!({"lang": "en", "year": 2021}).as_object().cloned().unwrap_or_default();
//! docs.upsert(vec![Document { id: "a".into(), text: "hello".into(), vector: vec![1.0, 0.0], metadata, ..Document::default() }])?;
//! let filter = Filter::parse(r#"lang = "en" and year >= 2020"#)?;
//! let hits = docs.search(&[0.9, 0.1], 10, Some(&filter))?;
//! assert_eq!(hits[0].id, "a");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod collection;
mod compaction;
mod config;
mod document;
mod error;
pub mod filter;
mod format;
mod manifest;
mod migrate;
#[cfg(feature = "milvus")]
mod milvus;
mod op;
#[cfg(feature = "postgres")]
mod pgvector;
mod recovery;
mod segment;
mod store;
mod vector_store;
mod wal;

pub use collection::{Collection, CollectionInfo};
pub use config::{
    validate_name, CollectionConfig, IndexKind, MultiVectorConfig, Precision, SparseFieldConfig, StoreOptions,
    TextIndexConfig, MAX_NAME_LEN,
};
pub use document::{Document, Hit};
pub use ember_index::sparse::{AnalyzerConfig, Bm25Params};
pub use error::StoreError;
pub use filter::{Filter, FilterError};
pub use format::{FORMAT_VERSION, MAX_RECORD_BYTES};
pub use migrate::{
    checkpoint_file_name, describe, incompatibility, migrate, MigrateError, MigrateOptions, MigrateProgress,
    MigrateReport,
};
#[cfg(feature = "milvus")]
pub use milvus::{FusionRanker, MilvusCollection, MilvusStore};
#[cfg(feature = "postgres")]
pub use pgvector::PgVectorStore;
pub use store::Store;
pub use vector_store::{
    open_store, BackendError, MilvusConnectOptions, PgConnectOptions, SslMode, StoreLocation, VectorCollection,
    VectorStore,
};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_and_errors_cross_threads() {
        send_sync::<crate::Store>();
        send_sync::<crate::Collection>();
        send_sync::<crate::Filter>();
        send_sync::<crate::StoreError>();
    }
}
