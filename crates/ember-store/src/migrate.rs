//! Moving a collection from one store to another without re-embedding: [`migrate`] copies every
//! document (text, dense vector, sparse vector, token vectors, metadata, exactly as stored) from a
//! collection of any [`VectorStore`] to a collection of any other, in id-ordered batches read with
//! [`VectorCollection::scan_page`].
//!
//! * **The destination** is created with the source's configuration when missing (model id,
//!   dimension, distance, precision, index, text index, sparse and multi-vector fields; the text
//!   index may be left out, see [`MigrateOptions::without_text_index`]). An existing one must hold
//!   vectors of the same model, dimension and distance, and every field the source has, or the
//!   migration stops before writing anything. A destination that cannot hold a field of the
//!   source (pgvector has no multi-vector column yet) refuses the creation, so again nothing is
//!   written.
//! * **Resuming**: with a checkpoint file, after each batch the destination has acknowledged
//!   (fsync'd or committed) the id of its last document and the counts are written to the file
//!   atomically (temporary file, fsync, rename, directory fsync). A later run with the same
//!   checkpoint resumes after that id; the file names the source and the destination, and a run
//!   between other collections refuses it. Upserts replace by id, so a batch copied twice (the
//!   process died after the upsert, before the checkpoint) leaves the destination as one copy.
//! * **The end**: the counts are compared (equal when the destination started empty, at least
//!   the source's otherwise), a sample of documents (the first of each batch, up to
//!   [`MigrateOptions::verify_sample`]) is read back from both sides and compared field by field,
//!   and the checkpoint is removed.
//! * **A source written to meanwhile**: the source is only read. Documents added during the
//!   migration with an id after the current position are copied; those with an id before it are
//!   not, and documents deleted from the source after they were copied stay in the destination,
//!   so the count check fails and says so. [`MigrateOptions::delete_missing`] ends the migration
//!   by deleting from the destination every document the source no longer holds (a merge of both
//!   collections in id order); a run with [`MigrateOptions::restart`] copies everything again.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::CollectionConfig;
use crate::document::Document;
use crate::error::StoreError;
use crate::format::temp_path;
use crate::vector_store::{VectorCollection, VectorStore};

/// What a migration does besides copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Documents read, written and checkpointed together.
    pub batch_size: usize,
    /// Where progress is recorded after every batch, and read back to resume. Without one an
    /// interrupted migration starts from the first document again (which is safe, only slower).
    pub checkpoint: Option<PathBuf>,
    /// Ignore (and replace) an existing checkpoint: copy from the first document.
    pub restart: bool,
    /// Create a missing destination without the source's BM25 text index (for a backend that has
    /// none; the text itself is still copied and can be indexed later).
    pub without_text_index: bool,
    /// After copying, delete from the destination every document the source does not hold.
    pub delete_missing: bool,
    /// How many documents to compare field by field between source and destination at the end.
    pub verify_sample: usize,
    /// Stop after this many batches of this run, leaving the checkpoint to resume from (copying
    /// a large collection in slices). The report then says `complete: false`.
    pub max_batches: Option<usize>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch_size: 1000,
            checkpoint: None,
            restart: false,
            without_text_index: false,
            delete_missing: false,
            verify_sample: 100,
            max_batches: None,
        }
    }
}

/// Reported after every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateProgress {
    /// Documents copied so far, by this run and the runs it resumes.
    pub copied: usize,
    /// The source's document count when the run started.
    pub total: usize,
    /// The last id copied.
    pub last_id: String,
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateReport {
    /// The source, as [`describe`] writes it.
    pub source: String,
    pub destination: String,
    /// Whether this run created the destination collection.
    pub created_destination: bool,
    /// The id this run resumed after (from the checkpoint), when it resumed.
    pub resumed_after: Option<String>,
    /// Documents copied by earlier runs (per the checkpoint) and not read again by this one.
    pub skipped: usize,
    /// Documents copied by this run.
    pub copied: usize,
    /// Batches written by this run.
    pub batches: usize,
    /// Documents deleted from the destination because the source no longer holds them
    /// ([`MigrateOptions::delete_missing`]).
    pub deleted: usize,
    /// Document counts at the end.
    pub source_count: usize,
    pub destination_count: usize,
    /// Documents compared field by field at the end.
    pub verified: usize,
    /// `false` when the run stopped at [`MigrateOptions::max_batches`] before the end.
    pub complete: bool,
    pub seconds: f64,
}

/// Why a migration stopped. Nothing in the source is ever changed; the destination holds the
/// batches acknowledged before the failure, and the checkpoint (when there is one) says which.
#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("{context}: {error}")]
    Source { context: String, error: StoreError },
    #[error("{context}: {error}")]
    Destination { context: String, error: StoreError },
    #[error("the source and the destination are the same collection ({what})")]
    SameCollection { what: String },
    #[error("{destination} cannot take the documents of {source_collection}: {reason}")]
    Incompatible { source_collection: String, destination: String, reason: String },
    #[error("{destination} cannot be created with the configuration of {source_collection}: {reason}")]
    DestinationCannotHold { source_collection: String, destination: String, reason: String },
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    #[error("verifying {destination} against {source_collection}: {reason}")]
    Verification { source_collection: String, destination: String, reason: String },
    #[error("invalid migration options: {reason}")]
    InvalidOptions { reason: String },
}

/// "collection 'kb' in the embedded store at ./data" / "collection 'kb' on postgres://u@h/db".
pub fn describe(store: &dyn VectorStore, collection: &str) -> String {
    match store.backend() {
        "embedded" => format!("collection '{collection}' in the embedded store at {}", store.location()),
        backend => format!("collection '{collection}' on {} ({backend})", store.location()),
    }
}

/// A checkpoint file name for a migration between these two collections: readable, and distinct
/// for distinct stores (a checksum of both descriptions).
pub fn checkpoint_file_name(from: &dyn VectorStore, from_name: &str, to: &dyn VectorStore, to_name: &str) -> String {
    let key = format!("{}\n{}", describe(from, from_name), describe(to, to_name));
    format!("ember-migrate-{from_name}-to-{to_name}-{:08x}.json", crc32fast::hash(key.as_bytes()))
}

/// The checkpoint file's contents (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    format: String,
    version: u32,
    source: String,
    destination: String,
    /// The last id copied and acknowledged by the destination.
    last_id: String,
    /// Documents copied so far (every run together).
    copied: usize,
    /// Whether the destination was empty when the first run began (the final count check then
    /// wants equal counts).
    destination_was_empty: bool,
}

const CHECKPOINT_FORMAT: &str = "ember-migrate-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, MigrateError> {
    let bad = |reason: String| MigrateError::Checkpoint { path: path.to_path_buf(), reason };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot be read: {e}"))),
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("is not an ember migration checkpoint ({e}); remove it or pass --restart")))?;
    if checkpoint.format != CHECKPOINT_FORMAT || checkpoint.version != CHECKPOINT_VERSION {
        return Err(bad(format!(
            "has format {:?} version {}; this build reads {CHECKPOINT_FORMAT:?} version {CHECKPOINT_VERSION}",
            checkpoint.format, checkpoint.version
        )));
    }
    Ok(Some(checkpoint))
}

/// Replace the checkpoint atomically: a crash leaves the old one or the new one, never a torn
/// file.
fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), MigrateError> {
    let bad = |what: &str, e: std::io::Error| MigrateError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("cannot be written ({what}): {e}"),
    };
    let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| MigrateError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("cannot be encoded: {e}"),
    })?;
    let tmp = temp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| bad("creating the temporary file", e))?;
    file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(|e| bad("writing the temporary file", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| bad("renaming the temporary file", e))?;
    sync_parent(path).map_err(|e| bad("syncing its directory", e))
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

fn remove_checkpoint(path: &Path) -> Result<(), MigrateError> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path).map_err(|e| MigrateError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("removed, but its directory could not be synced: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MigrateError::Checkpoint { path: path.to_path_buf(), reason: format!("cannot be removed: {e}") }),
    }
}

/// Why documents of a collection configured as `source` cannot go into one configured as
/// `destination` without losing something; `None` when they can. The text index and the
/// precision and index kind may differ: they are derived from what is copied.
pub fn incompatibility(source: &CollectionConfig, destination: &CollectionConfig) -> Option<String> {
    if source.model_id != destination.model_id {
        return Some(format!(
            "the source holds vectors of model '{}', the destination of model '{}'",
            source.model_id, destination.model_id
        ));
    }
    if source.dimension != destination.dimension {
        return Some(format!(
            "the source holds vectors of dimension {}, the destination of dimension {}",
            source.dimension, destination.dimension
        ));
    }
    if source.distance != destination.distance {
        return Some(format!(
            "the source is searched by {:?} similarity, the destination by {:?}",
            source.distance, destination.distance
        ));
    }
    match (&source.sparse, &destination.sparse) {
        (Some(s), None) => {
            return Some(format!("the source has a sparse field (model '{}'), the destination has none", s.model_id))
        }
        (Some(s), Some(d)) if s.model_id != d.model_id => {
            return Some(format!(
                "the source's sparse field holds terms of model '{}', the destination's of model '{}'",
                s.model_id, d.model_id
            ))
        }
        _ => {}
    }
    match (&source.multivector, &destination.multivector) {
        (Some(s), None) => Some(format!(
            "the source has a multi-vector field (token vectors of dimension {}), the destination has none",
            s.dimension
        )),
        (Some(s), Some(d)) if s.dimension != d.dimension => Some(format!(
            "the source's token vectors have dimension {}, the destination's {}",
            s.dimension, d.dimension
        )),
        _ => None,
    }
}

/// Copy collection `from_name` of `from` into collection `to_name` of `to` (see the module
/// documentation), calling `progress` after every batch. The source is only read.
pub fn migrate(
    from: &dyn VectorStore,
    from_name: &str,
    to: &dyn VectorStore,
    to_name: &str,
    options: &MigrateOptions,
    progress: &mut dyn FnMut(&MigrateProgress),
) -> Result<MigrateReport, MigrateError> {
    let started = Instant::now();
    if options.batch_size == 0 {
        return Err(MigrateError::InvalidOptions { reason: "the batch size must be at least 1".into() });
    }
    let source_name = describe(from, from_name);
    let destination_name = describe(to, to_name);
    if source_name == destination_name {
        return Err(MigrateError::SameCollection { what: source_name });
    }
    let source_error =
        |context: &str, error: StoreError| MigrateError::Source { context: format!("{context} {source_name}"), error };
    let destination_error = |context: &str, error: StoreError| MigrateError::Destination {
        context: format!("{context} {destination_name}"),
        error,
    };

    let source = from.collection(from_name).map_err(|e| source_error("opening the source", e))?;

    // Where to start: after the checkpoint's last id, when it is this migration's.
    let mut checkpoint = match (&options.checkpoint, options.restart) {
        (Some(path), false) => read_checkpoint(path)?,
        _ => None,
    };
    if let (Some(path), Some(found)) = (&options.checkpoint, &checkpoint) {
        if found.source != source_name || found.destination != destination_name {
            return Err(MigrateError::Checkpoint {
                path: path.clone(),
                reason: format!(
                    "belongs to the migration from {} to {}, not this one from {source_name} to {destination_name}; \
                     pass another checkpoint file, or --restart to replace it",
                    found.source, found.destination
                ),
            });
        }
        match to.collection(to_name) {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(MigrateError::Checkpoint {
                    path: path.clone(),
                    reason: format!(
                        "says {} documents were copied up to id {:?}, but {destination_name} does not exist (dropped \
                         since?); pass --restart to copy everything",
                        found.copied, found.last_id
                    ),
                })
            }
            Err(e) => return Err(destination_error("opening the destination", e)),
        }
    }
    let (destination, created_destination) =
        open_or_create_destination(source.config(), to, to_name, options, &source_name, &destination_name)?;
    let total = source.count().map_err(|e| source_error("counting the documents of", e))?;
    let destination_was_empty = match &checkpoint {
        Some(c) => c.destination_was_empty,
        None => destination.count().map_err(|e| destination_error("counting the documents of", e))? == 0,
    };
    let resumed_after = checkpoint.as_ref().map(|c| c.last_id.clone());
    let skipped = checkpoint.as_ref().map_or(0, |c| c.copied);

    let mut after = resumed_after.clone();
    let mut copied = 0usize;
    let mut batches = 0usize;
    let mut sample: Vec<String> = Vec::new();
    let mut complete = true;
    loop {
        if options.max_batches.is_some_and(|max| batches >= max) {
            complete = false;
            break;
        }
        let page = source
            .scan_page(after.as_deref(), options.batch_size)
            .map_err(|e| source_error("reading documents of", e))?;
        let Some(last) = page.last().map(|d| d.id.clone()) else { break };
        sample.push(page[0].id.clone());
        let n = page.len();
        destination.upsert(page).map_err(|e| {
            destination_error(&format!("writing {n} documents (ids after {:?}) to", after.as_deref().unwrap_or("")), e)
        })?;
        copied += n;
        batches += 1;
        // The destination has acknowledged the batch: record it.
        let now = Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            source: source_name.clone(),
            destination: destination_name.clone(),
            last_id: last.clone(),
            copied: skipped + copied,
            destination_was_empty,
        };
        if let Some(path) = &options.checkpoint {
            write_checkpoint(path, &now)?;
        }
        checkpoint = Some(now);
        progress(&MigrateProgress { copied: skipped + copied, total, last_id: last.clone() });
        after = Some(last);
    }

    let mut report = MigrateReport {
        source: source_name.clone(),
        destination: destination_name.clone(),
        created_destination,
        resumed_after,
        skipped,
        copied,
        batches,
        deleted: 0,
        source_count: total,
        destination_count: 0,
        verified: 0,
        complete,
        seconds: 0.0,
    };
    if !complete {
        report.destination_count = destination.count().map_err(|e| destination_error("counting", e))?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    if options.delete_missing {
        report.deleted = delete_missing(source.as_ref(), destination.as_ref(), options.batch_size).map_err(
            |(side, e)| match side {
                Side::Source => source_error("reading (to find documents it no longer holds)", e),
                Side::Destination => destination_error("deleting documents the source no longer holds from", e),
            },
        )?;
    }

    // Verify: counts, then a sample field by field.
    let source_count = source.count().map_err(|e| source_error("counting the documents of", e))?;
    let destination_count = destination.count().map_err(|e| destination_error("counting the documents of", e))?;
    report.source_count = source_count;
    report.destination_count = destination_count;
    let verification = |reason: String| MigrateError::Verification {
        source_collection: source_name.clone(),
        destination: destination_name.clone(),
        reason,
    };
    let exact = destination_was_empty || options.delete_missing;
    if (exact && destination_count != source_count) || destination_count < source_count {
        return Err(verification(format!(
            "the source holds {source_count} documents and the destination {destination_count}{}; the source was \
             probably written to during the migration: run again with --restart (and --delete-missing to remove \
             documents the source no longer holds)",
            if exact { "" } else { " (fewer)" }
        )));
    }
    if let Some(last) = checkpoint.as_ref().map(|c| c.last_id.clone()) {
        sample.push(last);
    }
    let step = sample.len().div_ceil(options.verify_sample.max(1)).max(1);
    for id in sample.iter().step_by(step).take(options.verify_sample) {
        let Some(want) = source.get(id).map_err(|e| source_error("reading (to verify)", e))? else {
            continue; // deleted from the source since it was copied
        };
        let got = destination.get(id).map_err(|e| destination_error("reading (to verify)", e))?;
        match got {
            Some(got) if got == want => report.verified += 1,
            Some(got) => return Err(verification(format!("document {id:?} differs: {}", difference(&want, &got)))),
            None => return Err(verification(format!("document {id:?} is missing from the destination"))),
        }
    }
    if let Some(path) = &options.checkpoint {
        remove_checkpoint(path)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Which field of two documents with the same id differ (for messages).
fn difference(want: &Document, got: &Document) -> &'static str {
    if want.text != got.text {
        "the text"
    } else if want.vector != got.vector {
        "the vector"
    } else if want.metadata != got.metadata {
        "the metadata"
    } else if want.sparse != got.sparse {
        "the sparse vector"
    } else {
        "the token vectors"
    }
}

fn open_or_create_destination(
    source: &CollectionConfig,
    to: &dyn VectorStore,
    to_name: &str,
    options: &MigrateOptions,
    source_name: &str,
    destination_name: &str,
) -> Result<(Arc<dyn VectorCollection>, bool), MigrateError> {
    let destination_error = |context: &str, error: StoreError| MigrateError::Destination {
        context: format!("{context} {destination_name}"),
        error,
    };
    let existing = match to.collection(to_name) {
        Ok(c) => Some(c),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(destination_error("opening the destination", e)),
    };
    let (collection, created) = match existing {
        Some(c) => (c, false),
        None => {
            let mut config = source.clone();
            if options.without_text_index {
                config.text_index = None;
            }
            match to.create_collection(to_name, config) {
                Ok(c) => (c, true),
                // Created meanwhile by someone else: checked below like any existing one.
                Err(StoreError::AlreadyExists { .. }) => {
                    (to.collection(to_name).map_err(|e| destination_error("opening the destination", e))?, false)
                }
                Err(StoreError::InvalidConfig { reason }) => {
                    let hint = if source.text_index.is_some() && !options.without_text_index {
                        " (a destination without BM25 text search takes the documents with --no-text-index: the \
                         text is still copied)"
                    } else {
                        ""
                    };
                    return Err(MigrateError::DestinationCannotHold {
                        source_collection: source_name.to_string(),
                        destination: destination_name.to_string(),
                        reason: format!("{reason}{hint}"),
                    });
                }
                Err(e) => return Err(destination_error("creating the destination", e)),
            }
        }
    };
    if let Some(reason) = incompatibility(source, collection.config()) {
        return Err(MigrateError::Incompatible {
            source_collection: source_name.to_string(),
            destination: destination_name.to_string(),
            reason,
        });
    }
    Ok((collection, created))
}

enum Side {
    Source,
    Destination,
}

/// Delete from `destination` every document whose id `source` does not hold: both collections
/// are walked once in id order, side by side. Returns how many were deleted.
fn delete_missing(
    source: &dyn VectorCollection,
    destination: &dyn VectorCollection,
    batch: usize,
) -> Result<usize, (Side, StoreError)> {
    let mut deleted = 0;
    let mut source_ids: std::collections::VecDeque<String> = Default::default();
    let mut source_after: Option<String> = None;
    let mut source_done = false;
    let mut destination_after: Option<String> = None;
    loop {
        let page = destination.scan_page(destination_after.as_deref(), batch).map_err(|e| (Side::Destination, e))?;
        let Some(last) = page.last().map(|d| d.id.clone()) else { break };
        let mut missing: Vec<String> = Vec::new();
        for doc in &page {
            loop {
                while source_ids.front().is_some_and(|s| s.as_str() < doc.id.as_str()) {
                    source_ids.pop_front();
                }
                if !source_ids.is_empty() || source_done {
                    break;
                }
                let more = source.scan_page(source_after.as_deref(), batch).map_err(|e| (Side::Source, e))?;
                match more.last() {
                    Some(d) => source_after = Some(d.id.clone()),
                    None => source_done = true,
                }
                source_ids.extend(more.into_iter().map(|d| d.id));
            }
            if source_ids.front() != Some(&doc.id) {
                missing.push(doc.id.clone());
            }
        }
        if !missing.is_empty() {
            let ids: Vec<&str> = missing.iter().map(String::as_str).collect();
            deleted += destination.delete(&ids).map_err(|e| (Side::Destination, e))?;
        }
        destination_after = Some(last);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MultiVectorConfig, SparseFieldConfig};
    use ember_core::Similarity;

    #[test]
    fn incompatibilities_name_both_sides() {
        let base = CollectionConfig::dense("m1", 4, Similarity::Cosine);
        assert_eq!(incompatibility(&base, &base), None);
        let cases = [
            (CollectionConfig { model_id: "m2".into(), ..base.clone() }, "model 'm1', the destination of model 'm2'"),
            (CollectionConfig { dimension: 8, ..base.clone() }, "dimension 4, the destination of dimension 8"),
            (
                CollectionConfig { distance: Similarity::Dot, ..base.clone() },
                "Cosine similarity, the destination by Dot",
            ),
        ];
        for (other, needle) in cases {
            let reason = incompatibility(&base, &other).unwrap();
            assert!(reason.contains(needle), "{reason}");
        }
        let sparse = CollectionConfig { sparse: Some(SparseFieldConfig { model_id: "s".into() }), ..base.clone() };
        assert!(incompatibility(&sparse, &base).unwrap().contains("sparse field (model 's')"));
        assert_eq!(incompatibility(&base, &sparse), None, "a destination may have more fields");
        let multi = CollectionConfig { multivector: Some(MultiVectorConfig { dimension: 2 }), ..base.clone() };
        assert!(incompatibility(&multi, &base).unwrap().contains("multi-vector field"));
        let wider = CollectionConfig { multivector: Some(MultiVectorConfig { dimension: 3 }), ..base.clone() };
        assert!(incompatibility(&multi, &wider).unwrap().contains("dimension 2, the destination's 3"));
    }
}
