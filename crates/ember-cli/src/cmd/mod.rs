//! One file per subcommand.

pub mod bench;
pub mod collections;
pub mod delete;
pub mod embed;
pub mod eval;
pub mod get;
pub mod ingest;
pub mod migrate;
pub mod models;
pub mod rerank;
pub mod score;
pub mod search;
pub mod serve;
pub mod similarity;
