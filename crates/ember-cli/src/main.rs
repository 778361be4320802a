//! `ember`: embeddings, search and evaluation from the command line.

use clap::{Parser, Subcommand};

mod cmd;
mod input;
mod model_source;
mod output;

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
    /// Inspect models.
    Models {
        #[command(subcommand)]
        command: cmd::models::ModelsCommand,
    },
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
        Command::Models { command } => cmd::models::run(command),
        Command::Bench { command } => cmd::bench::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
