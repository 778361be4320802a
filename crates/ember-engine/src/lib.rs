//! ember's pipelines, the one engine that the CLI, the server and the evaluation harness all
//! call: ingest (read sources, chunk, embed, store durably) and search (embed the query, search
//! the collection with filters).

pub mod error;
pub mod fusion;
pub mod ingest;
pub mod search;
pub mod source;

pub use error::EngineError;
pub use ingest::{
    ingest, open_or_create, open_or_create_in, CollectionSettings, IngestOptions, IngestProgress, IngestReport,
};
pub use search::{role_options, search, search_in, search_with_effort};
pub use source::{read_sources, SourceDocument, SourceFormat, SourceScan, SourceWarning};
