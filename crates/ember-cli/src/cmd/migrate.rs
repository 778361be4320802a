//! `ember migrate --from NAME [--from-store LOC] --to-store LOC [--to NAME]`: copy a collection
//! between stores (the embedded store, PostgreSQL + pgvector, any location `--store` takes)
//! without re-embedding, resumable after an interruption.
//!
//! Collections and stores are separate options, as in every other command (a collection name
//! plus `--store`), so a `postgres://…?sslmode=…` URL is never confused with a collection name.
//! Progress goes to a checkpoint file after every batch (default: a file named after both
//! collections in the working directory); running the same command again resumes after the last
//! batch it records.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ember_store::{checkpoint_file_name, migrate, MigrateOptions, MigrateProgress, StoreLocation, VectorStore};
use indicatif::{ProgressBar, ProgressStyle};

use crate::store_source::{display_location, StoreArgs};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The collection to copy.
    #[arg(long)]
    pub from: String,
    /// Where it lives: a directory (the embedded store) or `postgres://…`. Default: `$EMBER_STORE`,
    /// else the embedded store in `$EMBER_DATA_DIR` (as `--store` in other commands).
    #[arg(long)]
    pub from_store: Option<String>,
    /// The destination collection's name (default: the source's). Created with the source's
    /// configuration when missing; an existing one must have the same model, dimension, distance
    /// and fields.
    #[arg(long)]
    pub to: Option<String>,
    /// Where to copy it: a directory or `postgres://…`. Default: as `--from-store`.
    #[arg(long)]
    pub to_store: Option<String>,
    /// Documents read, written and checkpointed together.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// The checkpoint file (default: `ember-migrate-<from>-to-<to>-<checksum>.json` in the
    /// working directory). Removed when the migration completes.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Copy from the first document, ignoring an existing checkpoint.
    #[arg(long)]
    pub restart: bool,
    /// Create the destination without the source's BM25 text index (for a store without BM25;
    /// the text is still copied).
    #[arg(long)]
    pub no_text_index: bool,
    /// After copying, delete from the destination the documents the source does not hold (e.g.
    /// deleted from the source during the migration).
    #[arg(long)]
    pub delete_missing: bool,
    /// Documents compared field by field between source and destination at the end.
    #[arg(long, default_value_t = 100)]
    pub verify: usize,
    /// Stop after this many batches (the checkpoint resumes the rest).
    #[arg(long)]
    pub max_batches: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A location as typed, or the default store (`$EMBER_STORE`, else the data directory).
fn location(given: Option<&str>) -> anyhow::Result<StoreLocation> {
    let args = StoreArgs { data_dir: None, store: given.map(str::to_string) };
    Ok(match args.location()? {
        // Absolute, so the checkpoint names the same store from any working directory.
        StoreLocation::Embedded(dir) => StoreLocation::Embedded(std::path::absolute(&dir).unwrap_or(dir)),
        other => other,
    })
}

fn open(location: &StoreLocation, side: &str) -> anyhow::Result<Arc<dyn VectorStore>> {
    ember_store::open_store(location, ember_store::StoreOptions::default())
        .with_context(|| format!("opening the {side} store, {}", display_location(location)))
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let from_location = location(args.from_store.as_deref())?;
    let to_location = match &args.to_store {
        Some(_) => location(args.to_store.as_deref())?,
        None => from_location.clone(),
    };
    let from = open(&from_location, "source")?;
    // One store directory is opened once (it is locked while open).
    let to = if to_location == from_location { Arc::clone(&from) } else { open(&to_location, "destination")? };
    let to_name = args.to.clone().unwrap_or_else(|| args.from.clone());
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| PathBuf::from(checkpoint_file_name(from.as_ref(), &args.from, to.as_ref(), &to_name)));
    let options = MigrateOptions {
        batch_size: args.batch,
        checkpoint: Some(checkpoint.clone()),
        restart: args.restart,
        without_text_index: args.no_text_index,
        delete_missing: args.delete_missing,
        verify_sample: args.verify,
        max_batches: args.max_batches,
    };
    let bar = (std::io::stderr().is_terminal() && !args.json).then(|| {
        let bar = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} documents {msg} [{elapsed_precise}, eta {eta}]")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut on_progress = |p: &MigrateProgress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total.max(p.copied) as u64);
            bar.set_position(p.copied as u64);
            bar.set_message(format!("(last id {})", p.last_id));
        }
    };
    let result = migrate(from.as_ref(), &args.from, to.as_ref(), &to_name, &options, &mut on_progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result.with_context(|| {
        if checkpoint.exists() {
            format!(
                "migration stopped; {} records what was copied, and running the same command again resumes from there",
                checkpoint.display()
            )
        } else {
            "migration stopped".to_string()
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    if report.complete {
        eprintln!(
            "migrated {} to {}: {} documents copied, {} skipped (copied by an earlier run), {} deleted, {} verified; \
             {} documents there; {:.2} s",
            report.source,
            report.destination,
            report.copied,
            report.skipped,
            report.deleted,
            report.verified,
            report.destination_count,
            report.seconds
        );
    } else {
        eprintln!(
            "stopped after {} batches: {} documents copied, {} skipped, {} of {} there; {:.2} s; run again to resume \
             from {}",
            report.batches,
            report.copied,
            report.skipped,
            report.destination_count,
            report.source_count,
            report.seconds,
            checkpoint.display()
        );
    }
    Ok(())
}
