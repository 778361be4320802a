//! Ingest: documents → chunks (token budget of the model's tokenizer, exact offsets) → vectors
//! (the model's document prompt) → the store, one durable batch at a time.
//!
//! Re-ingesting is incremental: every chunk records a content hash of its document (text,
//! metadata, chunking settings, model), so unchanged documents are skipped, changed ones are
//! replaced under the same ids (`<doc id>#<chunk number>`) and their surplus old chunks deleted.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use ember_chunk::{ChunkConfig, Chunker, TextFormat, TokenCounter};
use ember_core::{EmbedOptions, Embedder, OutputKinds};
use ember_store::{
    Collection, CollectionConfig, Document, IndexKind, MultiVectorConfig, Precision, SparseFieldConfig, Store,
    StoreError, TextIndexConfig, VectorCollection, VectorStore,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionSettings {
    pub index: IndexKind,
    pub precision: Precision,
    /// BM25 over the chunks' text (`None`: no text index).
    pub text_index: Option<TextIndexConfig>,
    /// A learned sparse vector per chunk, from this model.
    pub sparse: Option<SparseFieldConfig>,
    /// Token vectors per chunk (from the dense model).
    pub multivector: Option<MultiVectorConfig>,
}

/// The models an ingest or a search embeds with: the collection's dense model, and a separate
/// sparse model when the collection's sparse field names another one (SPLADE beside a dense
/// model). A model that provides several outputs (BGE-M3) is only `dense`.
#[derive(Clone, Copy)]
pub struct Models<'a> {
    pub dense: Option<&'a dyn Embedder>,
    pub sparse: Option<&'a dyn Embedder>,
}

impl std::fmt::Debug for Models<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("dense", &self.dense.map(|m| m.model_id()))
            .field("sparse", &self.sparse.map(|m| m.model_id()))
            .finish()
    }
}

impl<'a> Models<'a> {
    /// Just the dense model.
    pub fn dense(embedder: &'a dyn Embedder) -> Self {
        Models { dense: Some(embedder), sparse: None }
    }
}

/// Which model computes which output for a collection, and with which kinds.
pub(crate) struct OutputPlan<'a> {
    /// The dense model and the outputs asked of it.
    pub main: Option<(&'a dyn Embedder, OutputKinds)>,
    /// A separate sparse model.
    pub sparse: Option<&'a dyn Embedder>,
}

/// Plan who embeds what. `want` says which outputs are needed; the sparse output comes from the
/// dense model when it is the sparse field's model, else from `models.sparse`, which must be it.
pub(crate) fn plan_outputs<'a>(
    collection: &dyn VectorCollection,
    models: Models<'a>,
    want: OutputKinds,
) -> Result<OutputPlan<'a>, EngineError> {
    let config = collection.config();
    let name = collection.name().to_string();
    let mut main_kinds = OutputKinds { dense: want.dense, sparse: false, multivector: want.multivector };
    let mut sparse = None;
    if want.sparse {
        let field = config.sparse.as_ref().ok_or_else(|| {
            EngineError::Store(StoreError::MissingField {
                collection: name.clone(),
                field: "sparse field",
                hint: "create the collection with a sparse model (`ember ingest --sparse-model`)",
            })
        })?;
        match (models.dense, models.sparse) {
            (_, Some(s)) if s.model_id() == field.model_id => sparse = Some(s),
            (Some(d), _) if d.model_id() == field.model_id => main_kinds.sparse = true,
            _ => {
                return Err(EngineError::MissingModel {
                    collection: name,
                    what: format!("its sparse model '{}'", field.model_id),
                })
            }
        }
    }
    if want.multivector && config.multivector.is_none() {
        return Err(EngineError::Store(StoreError::MissingField {
            collection: name,
            field: "multivector field",
            hint: "create the collection with a multi-vector model",
        }));
    }
    let needs_main = main_kinds.dense || main_kinds.sparse || main_kinds.multivector;
    let main = match (needs_main, models.dense) {
        (false, _) => None,
        (true, Some(d)) => {
            check_model(collection, d)?;
            Some((d, main_kinds))
        }
        (true, None) => {
            return Err(EngineError::MissingModel {
                collection: name,
                what: format!("its model '{}'", config.model_id),
            })
        }
    };
    Ok(OutputPlan { main, sparse })
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
            let config = new_config(embedder, &settings);
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
            let config = new_config(embedder, &settings);
            Ok(store.create_collection(name, config)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The configuration of a new collection for `embedder`'s vectors.
fn new_config(embedder: &dyn Embedder, settings: &CollectionSettings) -> CollectionConfig {
    CollectionConfig {
        model_id: embedder.model_id().to_string(),
        dimension: embedder.dimension(),
        distance: ember_core::Similarity::Cosine,
        precision: settings.precision,
        index: settings.index,
        text_index: settings.text_index.clone(),
        sparse: settings.sparse.clone(),
        multivector: settings.multivector,
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
    ingest_with(collection, Models::dense(embedder), counter, documents, options, progress)
}

/// [`ingest`] into a collection that may have a sparse field (filled by `models.sparse`, or by
/// the dense model when it is the field's model) and a multi-vector field (filled by the dense
/// model in the same forward pass). A text index needs nothing: the store indexes the text.
pub fn ingest_with(
    collection: &dyn VectorCollection,
    models: Models<'_>,
    counter: &dyn TokenCounter,
    documents: &[SourceDocument],
    options: &IngestOptions,
    progress: &mut dyn FnMut(&IngestProgress),
) -> Result<IngestReport, EngineError> {
    let started = Instant::now();
    let config = collection.config();
    let want = OutputKinds { dense: true, sparse: config.sparse.is_some(), multivector: config.multivector.is_some() };
    let plan = plan_outputs(collection, models, want)?;
    let Some((embedder, _)) = plan.main else {
        return Err(EngineError::MissingModel { collection: collection.name().into(), what: "its dense model".into() });
    };
    let embed_options = role_options(embedder, "document");
    let mut settings = format!(
        "{}|{:?}|{}|{}",
        embedder.model_id(),
        embed_options.prompt_name,
        options.max_tokens,
        options.overlap_tokens
    );
    // Only collections with a separate sparse model hash it, so existing hashes stay valid.
    if let Some(sparse) = plan.sparse {
        settings.push_str(&format!("|sparse={}", sparse.model_id()));
    }
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
            flush(collection, &plan, &embed_options, &mut pending, &mut stale, &mut report)?;
            state.chunks_written = report.chunks_written;
            progress(&state);
        }
    }
    flush(collection, &plan, &embed_options, &mut pending, &mut stale, &mut report)?;
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
    plan: &OutputPlan<'_>,
    options: &EmbedOptions,
    pending: &mut Vec<Pending>,
    stale: &mut Vec<String>,
    report: &mut IngestReport,
) -> Result<(), EngineError> {
    if !pending.is_empty() {
        let t = Instant::now();
        let texts: Vec<&str> = pending.iter().map(|p| p.text.as_str()).collect();
        let embedded = embed_documents(plan, &texts, options)?;
        report.embed_seconds += t.elapsed().as_secs_f64();
        report.tokens += embedded.tokens;
        report.truncated += embedded.truncated;
        let t = Instant::now();
        let n = pending.len();
        let mut sparse = embedded.sparse.unwrap_or_default().into_iter();
        let mut tokens = embedded.multivector.unwrap_or_default().into_iter();
        let dense = embedded.dense.unwrap_or_default();
        if dense.len() != n {
            return Err(EngineError::Embed(format!("the model returned {} vectors for {n} texts", dense.len()).into()));
        }
        let docs: Vec<Document> = pending
            .drain(..)
            .zip(dense)
            .map(|(p, vector)| Document {
                id: p.id,
                text: p.text,
                vector,
                metadata: p.metadata,
                sparse: sparse.next().unwrap_or_default(),
                multivector: tokens.next().unwrap_or_default(),
            })
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

/// Embed documents' texts with every output the plan names: one call to the dense model (dense,
/// and sparse and token vectors when it supplies them), one to a separate sparse model.
fn embed_documents(
    plan: &OutputPlan<'_>,
    texts: &[&str],
    options: &EmbedOptions,
) -> Result<ember_core::MultiEmbeddings, EngineError> {
    let mut out = match plan.main {
        Some((embedder, kinds)) => embedder.embed_outputs(texts, kinds, options).map_err(EngineError::Embed)?,
        None => ember_core::MultiEmbeddings::default(),
    };
    if let Some(sparse) = plan.sparse {
        let opts = role_options(sparse, "document");
        let more = sparse.embed_outputs(texts, OutputKinds::SPARSE, &opts).map_err(EngineError::Embed)?;
        out.sparse = more.sparse;
        out.tokens += more.tokens;
    }
    Ok(out)
}

fn content_hash(doc: &SourceDocument, settings: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [settings, doc.text.as_str(), &Value::Object(doc.metadata.clone()).to_string()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}
