//! `ember`: embeddings, search and evaluation from the command line.

use clap::{Parser, Subcommand};

mod cmd;
mod input;
mod model_source;
mod output;
mod rerank_source;
mod retrieval_args;
mod store_source;

/// ember — local embeddings equal to sentence-transformers, and fast.
#[derive(Debug, Parser)]
#[command(name = "ember", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Embed texts (one per line, or JSON lines with a `text` field); one vector per input.
    Embed(cmd::embed::EmbedArgs),
    /// Evaluate models on MTEB/BEIR-style datasets (retrieval, STS, pair classification, SQuAD).
    Eval(cmd::eval::EvalArgs),
    /// Similarity of text pairs, or the matrix of several texts.
    Similarity(cmd::similarity::SimilarityArgs),
    /// Score documents against a query with dense, sparse and ColBERT outputs (BGE-M3, SPLADE).
    Score(cmd::score::ScoreArgs),
    /// Inspect models.
    Models {
        #[command(subcommand)]
        command: cmd::models::ModelsCommand,
    },
    /// Score documents against a query with a reranker (cross-encoder or Qwen3-Reranker), best first.
    Rerank(cmd::rerank::RerankArgs),
    /// Read files (.txt, .md, .jsonl), chunk, embed and store them in a collection.
    Ingest(cmd::ingest::IngestArgs),
    /// Search a collection.
    Search(cmd::search::SearchArgs),
    /// Create, list, inspect or drop collections.
    Collections {
        #[command(subcommand)]
        command: cmd::collections::CollectionsCommand,
    },
    /// Print one stored document.
    Get(cmd::get::GetArgs),
    /// Delete documents by id.
    Delete(cmd::delete::DeleteArgs),
    /// Copy a collection to another store (embedded, PostgreSQL) without re-embedding; resumable.
    Migrate(cmd::migrate::MigrateArgs),
    /// Serve models and collections over HTTP (OpenAI, TEI, Cohere/Jina and ember APIs).
    Serve(cmd::serve::ServeArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: cmd::bench::BenchCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => cmd::embed::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Similarity(args) => cmd::similarity::run(args),
        Command::Score(args) => cmd::score::run(args),
        Command::Models { command } => cmd::models::run(command),
        Command::Bench { command } => cmd::bench::run(command),
        Command::Rerank(args) => cmd::rerank::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Search(args) => cmd::search::run(args),
        Command::Collections { command } => cmd::collections::run(command),
        Command::Get(args) => cmd::get::run(args),
        Command::Delete(args) => cmd::delete::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::Serve(args) => cmd::serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
