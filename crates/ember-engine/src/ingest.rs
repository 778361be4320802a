//! Ingest: documents → chunks (token budget of the model's tokenizer, exact offsets) → vectors
//! (the model's document prompt) → the store, one durable batch at a time.
//!
//! Re-ingesting is incremental: every chunk records a content hash of its document (text,
//! metadata, chunking settings, model), so unchanged documents are skipped, changed ones are
//! replaced under the same ids (`<doc id>#<chunk number>`) and their surplus old chunks deleted.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use ember_chunk::{ChunkConfig, Chunker, TextFormat, TokenCounter};
use ember_core::{EmbedOptions, Embedder};
use ember_store::{
    Collection, CollectionConfig, Document, IndexKind, Precision, Store, StoreError, VectorCollection, VectorStore,
};
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::error::EngineError;
use crate::search::role_options;
use crate::source::{SourceDocument, SourceFormat};

/// How documents are cut and batched.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Token budget of one chunk (without the model's special tokens).
    pub max_tokens: usize,
    /// Tokens repeated between consecutive chunks.
    pub overlap_tokens: usize,
    /// Chunks embedded and committed together (one fsync per batch).
    pub batch_chunks: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { max_tokens: 256, overlap_tokens: 0, batch_chunks: 128 }
    }
}

/// Where an ingest stands, reported after every committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestProgress {
    pub documents_done: usize,
    pub documents_total: usize,
    pub bytes_done: usize,
    pub bytes_total: usize,
    pub chunks_written: usize,
}

/// What an ingest did, and where its time went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    pub documents: usize,
    pub unchanged: usize,
    pub added: usize,
    pub replaced: usize,
    /// Documents skipped because an earlier one in the same run had their id.
    pub duplicate_ids: Vec<String>,
    pub chunks_written: usize,
    pub chunks_deleted: usize,
    pub bytes: usize,
    pub tokens: usize,
    pub truncated: usize,
    pub chunk_seconds: f64,
    pub embed_seconds: f64,
    pub store_seconds: f64,
    pub total_seconds: f64,
}

/// How a new collection is indexed (an existing one keeps its own settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionSettings {
    pub index: IndexKind,
    pub precision: Precision,
}

/// The collection `name`, created for `embedder` with `settings` if it does not exist yet; an
/// existing one must hold this model's vectors.
pub fn open_or_create(
    store: &Store,
    name: &str,
    embedder: &dyn Embedder,
    settings: CollectionSettings,
) -> Result<Collection, EngineError> {
    match store.collection(name) {
        Ok(c) => {
            check_model(&c, embedder)?;
            Ok(c)
        }
        Err(StoreError::NotFound { .. }) => {
            let config = CollectionConfig {
                model_id: embedder.model_id().to_string(),
                dimension: embedder.dimension(),
                distance: ember_core::Similarity::Cosine,
                precision: settings.precision,
                index: settings.index,
            };
            Ok(store.create_collection(name, config)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// [`open_or_create`] on any backend (`ember_store::VectorStore`: the embedded store,
/// PostgreSQL + pgvector, …).
pub fn open_or_create_in(
    store: &dyn VectorStore,
    name: &str,
    embedder: &dyn Embedder,
    settings: CollectionSettings,
) -> Result<Arc<dyn VectorCollection>, EngineError> {
    match store.collection(name) {
        Ok(c) => {
            check_model(c.as_ref(), embedder)?;
            Ok(c)
        }
        Err(StoreError::NotFound { .. }) => {
            let config = CollectionConfig {
                model_id: embedder.model_id().to_string(),
                dimension: embedder.dimension(),
                distance: ember_core::Similarity::Cosine,
                precision: settings.precision,
                index: settings.index,
            };
            Ok(store.create_collection(name, config)?)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn check_model(collection: &dyn VectorCollection, embedder: &dyn Embedder) -> Result<(), EngineError> {
    let stored = &collection.config().model_id;
    if stored != embedder.model_id() {
        return Err(EngineError::ModelMismatch {
            collection: collection.name().to_string(),
            stored: stored.clone(),
            given: embedder.model_id().to_string(),
        });
    }
    Ok(())
}

/// What the collection holds of one document.
#[derive(Debug, Default)]
struct Stored {
    hashes: HashSet<String>,
    chunk_count: Option<u64>,
    ids: Vec<String>,
}

/// A chunk waiting for its vector.
#[derive(Debug)]
struct Pending {
    id: String,
    text: String,
    metadata: Map<String, Value>,
}

/// Ingest `documents` into `collection` (of any backend; a `&Collection` coerces), chunked with
/// the model's token counter.
pub fn ingest(
    collection: &dyn VectorCollection,
    embedder: &dyn Embedder,
    counter: &dyn TokenCounter,
    documents: &[SourceDocument],
    options: &IngestOptions,
    progress: &mut dyn FnMut(&IngestProgress),
) -> Result<IngestReport, EngineError> {
    let started = Instant::now();
    check_model(collection, embedder)?;
    let embed_options = role_options(embedder, "document");
    let settings = format!(
        "{}|{:?}|{}|{}",
        embedder.model_id(),
        embed_options.prompt_name,
        options.max_tokens,
        options.overlap_tokens
    );
    let plain = Chunker::new(counter, chunk_config(options, TextFormat::Plain))?;
    let markdown = Chunker::new(counter, chunk_config(options, TextFormat::Markdown))?;

    let mut stored: HashMap<String, Stored> = HashMap::new();
    for doc in collection.scan(None)? {
        let Some(Value::String(doc_id)) = doc.metadata.get("doc_id") else { continue };
        let entry = stored.entry(doc_id.clone()).or_default();
        if let Some(Value::String(h)) = doc.metadata.get("content_hash") {
            entry.hashes.insert(h.clone());
        }
        entry.chunk_count = doc.metadata.get("chunk_count").and_then(Value::as_u64);
        entry.ids.push(doc.id);
    }

    let mut report = IngestReport { documents: documents.len(), ..IngestReport::default() };
    let mut state = IngestProgress {
        documents_total: documents.len(),
        bytes_total: documents.iter().map(|d| d.text.len()).sum(),
        ..IngestProgress::default()
    };
    progress(&state);
    let mut seen = HashSet::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut stale: Vec<String> = Vec::new();
    for doc in documents {
        state.documents_done += 1;
        state.bytes_done += doc.text.len();
        report.bytes += doc.text.len();
        if !seen.insert(doc.id.as_str()) {
            report.duplicate_ids.push(doc.id.clone());
            continue;
        }
        let hash = content_hash(doc, &settings);
        let old = stored.remove(&doc.id);
        match &old {
            Some(o) if o.hashes.len() == 1 && o.hashes.contains(&hash) && o.chunk_count == Some(o.ids.len() as u64) => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.replaced += 1,
            None => report.added += 1,
        }
        let t = Instant::now();
        let chunker = if doc.format == SourceFormat::Markdown { &markdown } else { &plain };
        let chunks = chunker.chunk(&doc.text);
        report.chunk_seconds += t.elapsed().as_secs_f64();
        let ids: Vec<String> = (0..chunks.len()).map(|i| format!("{}#{i}", doc.id)).collect();
        if let Some(o) = old {
            let keep: HashSet<&String> = ids.iter().collect();
            stale.extend(o.ids.into_iter().filter(|id| !keep.contains(id)));
        }
        for (i, (chunk, id)) in chunks.iter().zip(ids).enumerate() {
            let mut metadata = doc.metadata.clone();
            metadata.insert("doc_id".into(), doc.id.clone().into());
            metadata.insert("source".into(), doc.source.clone().into());
            metadata.insert("chunk".into(), i.into());
            metadata.insert("chunk_count".into(), chunks.len().into());
            metadata.insert("start".into(), chunk.char_range.start.into());
            metadata.insert("end".into(), chunk.char_range.end.into());
            metadata.insert("byte_start".into(), chunk.byte_range.start.into());
            metadata.insert("byte_end".into(), chunk.byte_range.end.into());
            if !chunk.headings.is_empty() {
                metadata.insert("headings".into(), chunk.headings.clone().into());
            }
            metadata.insert("content_hash".into(), hash.clone().into());
            pending.push(Pending { id, text: chunk.text.clone(), metadata });
        }
        if pending.len() >= options.batch_chunks.max(1) {
            flush(collection, embedder, &embed_options, &mut pending, &mut stale, &mut report)?;
            state.chunks_written = report.chunks_written;
            progress(&state);
        }
    }
    flush(collection, embedder, &embed_options, &mut pending, &mut stale, &mut report)?;
    state.chunks_written = report.chunks_written;
    progress(&state);
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn chunk_config(options: &IngestOptions, format: TextFormat) -> ChunkConfig {
    ChunkConfig::new(options.max_tokens).with_overlap(options.overlap_tokens).with_format(format)
}

/// Embed and durably write the pending chunks, then delete chunks that their documents no
/// longer have (after the write, so a crash in between leaves extra chunks, never missing ones;
/// the next run sees the mixed hashes and rewrites the document).
fn flush(
    collection: &dyn VectorCollection,
    embedder: &dyn Embedder,
    options: &EmbedOptions,
    pending: &mut Vec<Pending>,
    stale: &mut Vec<String>,
    report: &mut IngestReport,
) -> Result<(), EngineError> {
    if !pending.is_empty() {
        let t = Instant::now();
        let texts: Vec<&str> = pending.iter().map(|p| p.text.as_str()).collect();
        let embedded = embedder.embed(&texts, options).map_err(EngineError::Embed)?;
        report.embed_seconds += t.elapsed().as_secs_f64();
        report.tokens += embedded.tokens;
        report.truncated += embedded.truncated;
        let t = Instant::now();
        let docs: Vec<Document> = pending
            .drain(..)
            .zip(embedded.vectors)
            .map(|(p, vector)| Document { id: p.id, text: p.text, vector, metadata: p.metadata })
            .collect();
        report.chunks_written += docs.len();
        collection.upsert(docs)?;
        report.store_seconds += t.elapsed().as_secs_f64();
    }
    if !stale.is_empty() {
        let t = Instant::now();
        let ids: Vec<&str> = stale.iter().map(String::as_str).collect();
        report.chunks_deleted += collection.delete(&ids)?;
        stale.clear();
        report.store_seconds += t.elapsed().as_secs_f64();
    }
    Ok(())
}

fn content_hash(doc: &SourceDocument, settings: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [settings, doc.text.as_str(), &Value::Object(doc.metadata.clone()).to_string()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}
