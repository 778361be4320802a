//! ember's pipelines, the one engine that the CLI, the server and the evaluation harness all
//! call: ingest (read sources, chunk, embed, store durably) and search (embed the query, search
//! the collection with filters).

pub mod error;
pub mod fusion;
pub mod ingest;
pub mod retrieve;
pub mod search;
pub mod source;

pub use error::EngineError;
pub use ingest::{
    ingest, ingest_with, open_or_create, open_or_create_in, CollectionSettings, IngestOptions, IngestProgress,
    IngestReport, Models,
};
pub use retrieve::{
    embed_query, retrieve, retrieve_embedded, Explanation, ListPosition, Mode, QueryEmbedding, RerankStage,
    RetrievedHit, SearchRequest, SearchResponse, Source, DEFAULT_DEPTH,
};
pub use search::{role_options, search, search_with_effort};
pub use source::{read_sources, SourceDocument, SourceFormat, SourceScan, SourceWarning};
