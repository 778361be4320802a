//! A collection: documents in memory behind a read-write lock, made durable by the write-ahead
//! log (group commit) and folded into segments by the maintenance in `compaction.rs`.
//!
//! Lock order, outermost first: `maintenance` → `writer` → `state` / `queue` / `files`. Readers
//! take only `state` for reading, and writers hold it for writing only while applying an
//! already-durable group in memory, so a reader sees every batch whole or not at all and is never
//! held up by I/O.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use ember_core::CoreError;
use ember_index::sparse::{InvertedIndex, SparseError};
use ember_index::{DenseIndex, Scored};

use crate::config::{CollectionConfig, IndexKind, StoreOptions};
use crate::document::{Document, Hit};
use crate::error::StoreError;
use crate::filter::Filter;
use crate::format::{self, MAX_RECORD_BYTES};
use crate::manifest::Manifest;
use crate::op::{self, Op};
use crate::store::StoreLock;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No library path panics while holding a lock, so poisoning would only follow a bug; the data
    // under every lock here stays consistent at each unlock, so carrying on is safe.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// A summary of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub config: CollectionConfig,
    /// Live documents.
    pub count: usize,
    /// Bytes of every file the collection holds (manifest, segments, logs).
    pub disk_bytes: u64,
    pub segments: usize,
    /// Bytes of write-ahead log not yet folded into a segment.
    pub wal_bytes: u64,
    /// Why the last automatic flush or compaction failed, if it did (it is retried on the next
    /// trigger; the data stays in the log meanwhile).
    pub maintenance_error: Option<String>,
}

/// Why an op could not be applied to the in-memory indexes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(transparent)]
    Dense(#[from] CoreError),
    #[error(transparent)]
    Sparse(#[from] SparseError),
}

impl ApplyError {
    fn into_store(self, collection: &str) -> StoreError {
        let collection = collection.to_string();
        match self {
            ApplyError::Dense(source) => StoreError::Index { collection, source },
            ApplyError::Sparse(source) => StoreError::SparseIndex { collection, source },
        }
    }
}

/// The documents, addressed by dense point ids that the indexes use.
#[derive(Debug)]
pub(crate) struct State {
    pub ids: HashMap<String, usize>,
    pub docs: Vec<Option<Arc<Document>>>,
    free: Vec<usize>,
    index: Box<dyn DenseIndex>,
    /// BM25 over the documents' text (collections with a text index).
    text: Option<InvertedIndex>,
    /// Dot product over the documents' sparse vectors (collections with a sparse field).
    sparse: Option<InvertedIndex>,
}

impl State {
    /// Empty indexes for `config`.
    pub(crate) fn new(config: &CollectionConfig) -> Result<Self, StoreError> {
        let text = config.text_index.as_ref().map(|t| t.build()).transpose()?;
        let sparse = match config.sparse {
            Some(_) => Some(
                InvertedIndex::new(ember_index::InvertedIndexParams::dot())
                    .map_err(|e| StoreError::InvalidConfig { reason: format!("sparse field: {e}") })?,
            ),
            None => None,
        };
        Ok(State {
            ids: HashMap::new(),
            docs: Vec::new(),
            free: Vec::new(),
            index: IndexKind::build(config)?,
            text,
            sparse,
        })
    }

    /// Apply one op; returns how many documents it wrote, or for a delete how many existed.
    pub(crate) fn apply(&mut self, op: Op) -> Result<usize, ApplyError> {
        match op {
            Op::Upsert(docs) => {
                let n = docs.len();
                // Check every vector first so a bad one leaves the state untouched.
                if let Some(bad) = docs.iter().find(|d| d.vector.len() != self.index.dim()) {
                    return Err(CoreError::DimensionMismatch { left: self.index.dim(), right: bad.vector.len() }.into());
                }
                for doc in docs {
                    let pid = match self.ids.get(&doc.id) {
                        Some(&pid) => pid,
                        None => {
                            let pid = self.free.pop().unwrap_or(self.docs.len());
                            if pid == self.docs.len() {
                                self.docs.push(None);
                            }
                            self.ids.insert(doc.id.clone(), pid);
                            pid
                        }
                    };
                    self.index.insert(pid, &doc.vector)?;
                    if let Some(text) = &mut self.text {
                        text.insert_text(pid, &doc.text)?;
                    }
                    if let Some(sparse) = &mut self.sparse {
                        sparse.insert_sparse(pid, &doc.sparse)?;
                    }
                    self.docs[pid] = Some(Arc::new(doc));
                }
                Ok(n)
            }
            Op::Delete(ids) => {
                let mut existed = 0;
                for id in ids {
                    if let Some(pid) = self.ids.remove(&id) {
                        self.index.remove(pid);
                        for inverted in [&mut self.text, &mut self.sparse].into_iter().flatten() {
                            inverted.remove(pid);
                        }
                        self.docs[pid] = None;
                        self.free.push(pid);
                        existed += 1;
                    }
                }
                Ok(existed)
            }
        }
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = &Arc<Document>> {
        self.docs.iter().flatten()
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Scored point ids as hits (points gone meanwhile are skipped).
    fn hits(&self, scored: Vec<Scored>) -> Vec<Hit> {
        scored
            .into_iter()
            .filter_map(|s| {
                let doc = self.docs.get(s.id)?.as_deref()?;
                Some(Hit { id: doc.id.clone(), score: s.score, document: doc.clone() })
            })
            .collect()
    }

    /// Whether point `pid` is live and passes `filter`.
    fn passes(&self, pid: usize, filter: Option<&Filter>) -> bool {
        self.docs.get(pid).and_then(Option::as_ref).is_some_and(|d| filter.is_none_or(|f| f.matches(&d.metadata)))
    }
}

/// What is wrong with a sparse vector, if anything: a non-finite or negative weight, a repeated
/// term, or (for stored vectors, `sorted`) terms out of ascending order.
pub(crate) fn sparse_problem(vector: &[(u32, f32)], sorted: bool) -> Option<String> {
    if let Some((term, w)) = vector.iter().find(|(_, w)| !(w.is_finite() && *w >= 0.0)) {
        return Some(format!("the weight of term {term} is {w}, not a finite number ≥ 0"));
    }
    if sorted {
        if let Some(p) = vector.windows(2).find(|p| p[0].0 >= p[1].0) {
            let what = if p[0].0 == p[1].0 { "is repeated" } else { "comes after a larger term" };
            return Some(format!("term {} {what} (terms must be strictly ascending)", p[1].0));
        }
    } else {
        let mut terms: Vec<u32> = vector.iter().map(|e| e.0).collect();
        terms.sort_unstable();
        if let Some(p) = terms.windows(2).find(|p| p[0] == p[1]) {
            return Some(format!("term {} is repeated", p[0]));
        }
    }
    None
}

/// What is wrong with token vectors, if anything: a length other than `dimension`, or a
/// non-finite value.
fn tokens_problem(tokens: &[Vec<f32>], dimension: usize) -> Option<String> {
    for (i, t) in tokens.iter().enumerate() {
        if t.len() != dimension {
            return Some(format!("token {i} has {} values; the collection's token vectors have {dimension}", t.len()));
        }
        if let Some(j) = t.iter().position(|x| !x.is_finite()) {
            return Some(format!("token {i} value {j} is {}", t[j]));
        }
    }
    None
}

/// The active log: appended to by the leader of each commit group.
#[derive(Debug)]
pub(crate) struct Writer {
    pub file: File,
    pub path: PathBuf,
    pub generation: u64,
    pub len: u64,
    /// Set after an I/O error on the log: what is on disk past `len` is unknown, so no further
    /// append is made until the store is reopened (and recovery truncates the torn tail).
    pub failed: Option<String>,
}

#[derive(Debug)]
struct Pending {
    ticket: u64,
    record: Vec<u8>,
    op: Op,
}

/// Writes waiting for the next leader, and results for writers whose group someone else led.
#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    pending: Vec<Pending>,
    done: HashMap<u64, Result<usize, StoreError>>,
}

/// What the maintenance knows about the files, readable without waiting for the maintenance.
#[derive(Debug)]
pub(crate) struct Files {
    pub manifest: Manifest,
    pub manifest_bytes: u64,
    pub next_segment_id: u64,
}

/// What recovery hands over to a new collection handle.
#[derive(Debug)]
pub(crate) struct Opened {
    pub state: State,
    pub writer: Writer,
    pub files: Files,
    pub wal_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub name: String,
    pub dir: PathBuf,
    pub config: CollectionConfig,
    pub options: StoreOptions,
    /// Keeps the store locked while any handle or background job is alive.
    pub _lock: Arc<StoreLock>,
    pub state: RwLock<State>,
    queue: Mutex<Queue>,
    pub writer: Mutex<Writer>,
    pub files: Mutex<Files>,
    /// Bytes of all live log files (the active one and any not yet folded).
    pub wal_bytes: AtomicU64,
    /// Groups written (one fsync each), to check that group commit groups.
    wal_syncs: AtomicU64,
    /// Serializes flushes, compactions and dropping.
    pub maintenance: Mutex<()>,
    pub maintenance_running: AtomicBool,
    pub maintenance_error: Mutex<Option<String>>,
    pub background: Mutex<Option<JoinHandle<()>>>,
    pub dropped: AtomicBool,
}

/// A handle on one collection; clones share it. Reads run concurrently; writes are serialized
/// through the write-ahead log, and concurrent writers share fsyncs.
#[derive(Clone)]
pub struct Collection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection").field("name", &self.inner.name).field("dir", &self.inner.dir).finish()
    }
}

impl Collection {
    pub(crate) fn from_parts(
        name: String,
        dir: PathBuf,
        options: StoreOptions,
        lock: Arc<StoreLock>,
        opened: Opened,
    ) -> Self {
        let Opened { state, writer, files, wal_bytes } = opened;
        let config = files.manifest.config.clone();
        Collection {
            inner: Arc::new(Inner {
                name,
                dir,
                config,
                options,
                _lock: lock,
                state: RwLock::new(state),
                queue: Mutex::new(Queue::default()),
                writer: Mutex::new(writer),
                files: Mutex::new(files),
                wal_bytes: AtomicU64::new(wal_bytes),
                wal_syncs: AtomicU64::new(0),
                maintenance: Mutex::new(()),
                maintenance_running: AtomicBool::new(false),
                maintenance_error: Mutex::new(None),
                background: Mutex::new(None),
                dropped: AtomicBool::new(false),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    fn check_live(&self) -> Result<(), StoreError> {
        if self.inner.dropped.load(Ordering::Acquire) {
            return Err(StoreError::Dropped { name: self.inner.name.clone() });
        }
        Ok(())
    }

    fn invalid(&self, id: &str, reason: impl Into<String>) -> StoreError {
        StoreError::InvalidDocument { collection: self.inner.name.clone(), id: id.to_string(), reason: reason.into() }
    }

    /// Insert or replace documents (by id). Returns once the batch is durable (its log record
    /// fsync'd); the batch becomes visible to readers all at once. A batch with any invalid
    /// document (wrong dimension, non-finite value, empty id) is refused whole and nothing is
    /// written.
    pub fn upsert(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        self.check_live()?;
        if docs.is_empty() {
            return Ok(());
        }
        let dim = self.inner.config.dimension;
        for doc in &docs {
            if doc.id.is_empty() {
                return Err(self.invalid(&doc.id, "the id is empty"));
            }
            if doc.vector.len() != dim {
                return Err(StoreError::DimensionMismatch {
                    collection: self.inner.name.clone(),
                    expected: dim,
                    got: doc.vector.len(),
                });
            }
            if let Some(i) = doc.vector.iter().position(|x| !x.is_finite()) {
                return Err(self.invalid(&doc.id, format!("vector[{i}] is {}", doc.vector[i])));
            }
            self.check_fields(doc)?;
        }
        let payload = op::encode_upsert(docs.iter()).map_err(|reason| self.invalid(&docs[0].id, reason))?;
        self.commit(Op::Upsert(docs), &payload).map(drop)
    }

    /// Check a document's sparse vector and token vectors against the collection's fields.
    fn check_fields(&self, doc: &Document) -> Result<(), StoreError> {
        let config = &self.inner.config;
        if !doc.sparse.is_empty() {
            if config.sparse.is_none() {
                return Err(self.invalid(&doc.id, "it has a sparse vector but the collection has no sparse field"));
            }
            if let Some(reason) = sparse_problem(&doc.sparse, true) {
                return Err(self.invalid(&doc.id, format!("sparse vector: {reason}")));
            }
        }
        if !doc.multivector.is_empty() {
            let Some(field) = config.multivector else {
                return Err(self.invalid(&doc.id, "it has token vectors but the collection has no multivector field"));
            };
            if let Some(reason) = tokens_problem(&doc.multivector, field.dimension) {
                return Err(self.invalid(&doc.id, format!("token vectors: {reason}")));
            }
        }
        Ok(())
    }

    fn missing(&self, field: &'static str, hint: &'static str) -> StoreError {
        StoreError::MissingField { collection: self.inner.name.clone(), field, hint }
    }

    fn invalid_query(&self, reason: String) -> StoreError {
        StoreError::InvalidQuery { collection: self.inner.name.clone(), reason }
    }

    /// Delete documents by id. Returns once durable, with how many of the ids existed.
    pub fn delete(&self, ids: &[&str]) -> Result<usize, StoreError> {
        self.check_live()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let payload = op::encode_delete(ids.iter().copied()).map_err(|reason| self.invalid(ids[0], reason))?;
        self.commit(Op::Delete(ids.iter().map(|s| s.to_string()).collect()), &payload)
    }

    /// Log `op` and apply it. Group commit: every writer queues its record, then waits for the
    /// log; whoever gets it writes and fsyncs every queued record at once, applies them in order,
    /// and leaves the others their results.
    fn commit(&self, op: Op, payload: &[u8]) -> Result<usize, StoreError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(StoreError::WriteTooLarge {
                collection: self.inner.name.clone(),
                bytes: payload.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let mut record = Vec::with_capacity(payload.len() + format::RECORD_HEADER_LEN as usize);
        format::frame(payload, &mut record);
        let ticket = {
            let mut queue = lock(&self.inner.queue);
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.pending.push(Pending { ticket, record, op });
            ticket
        };
        let mut writer = lock(&self.inner.writer);
        let group = {
            let mut queue = lock(&self.inner.queue);
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            std::mem::take(&mut queue.pending)
        };
        let mut results = self.write_group(&mut writer, group);
        let mine = results.remove(&ticket);
        lock(&self.inner.queue).done.extend(results);
        let flush_due = writer.failed.is_none() && writer.len > self.inner.options.wal_flush_bytes;
        drop(writer);
        if flush_due {
            self.inner.schedule_maintenance();
        }
        mine.unwrap_or_else(|| {
            Err(StoreError::WriterFailed {
                collection: self.inner.name.clone(),
                reason: "a write was lost by the group commit".into(),
            })
        })
    }

    /// Append a group's records, fsync, then apply them in memory under one write lock.
    fn write_group(&self, writer: &mut Writer, group: Vec<Pending>) -> HashMap<u64, Result<usize, StoreError>> {
        let name = &self.inner.name;
        let refuse = |err: &dyn Fn() -> StoreError| group.iter().map(|p| (p.ticket, Err(err()))).collect();
        if self.inner.dropped.load(Ordering::Acquire) {
            return refuse(&|| StoreError::Dropped { name: name.clone() });
        }
        if let Some(reason) = &writer.failed {
            return refuse(&|| StoreError::WriterFailed { collection: name.clone(), reason: reason.clone() });
        }
        let mut bytes = Vec::with_capacity(group.iter().map(|p| p.record.len()).sum());
        for p in &group {
            bytes.extend_from_slice(&p.record);
        }
        if let Err(e) = writer.file.write_all(&bytes).and_then(|()| writer.file.sync_data()) {
            // Undo a partial append if we can; either way stop appending: after a failed fsync
            // the kernel's view of the file cannot be trusted (recovery on reopen can).
            let _ = writer.file.set_len(writer.len).and_then(|()| writer.file.sync_all());
            writer.failed = Some(e.to_string());
            let path = writer.path.clone();
            return refuse(&|| StoreError::io(&path, std::io::Error::new(e.kind(), e.to_string())));
        }
        writer.len += bytes.len() as u64;
        self.inner.wal_syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.wal_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let mut state = write_lock(&self.inner.state);
        group
            .into_iter()
            .map(|p| {
                let result = state.apply(p.op).map_err(|e| e.into_store(name));
                (p.ticket, result)
            })
            .collect()
    }

    /// The document stored under `id`.
    pub fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        self.check_live()?;
        let state = read_lock(&self.inner.state);
        Ok(state.ids.get(id).and_then(|&pid| state.docs.get(pid)?.as_deref().cloned()))
    }

    /// The `k` documents most similar to `query` among those matching `filter`, best first. The
    /// filter is applied during the search, so `k` hits come back whenever `k` documents match.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        self.search_with_effort(query, k, filter, None)
    }

    /// [`search`](Self::search) with the effort of an approximate index (HNSW's `ef`; larger is
    /// slower and finds more of the true neighbours); exact and quantized indexes ignore it.
    pub fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        effort: Option<usize>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.check_live()?;
        let name = &self.inner.name;
        if query.len() != self.inner.config.dimension {
            return Err(StoreError::DimensionMismatch {
                collection: name.clone(),
                expected: self.inner.config.dimension,
                got: query.len(),
            });
        }
        if let Some(i) = query.iter().position(|x| !x.is_finite()) {
            return Err(StoreError::InvalidQuery {
                collection: name.clone(),
                reason: format!("query[{i}] is {}", query[i]),
            });
        }
        let state = read_lock(&self.inner.state);
        let passes = |pid: usize| {
            state.docs.get(pid).and_then(Option::as_ref).is_some_and(|d| filter.is_none_or(|f| f.matches(&d.metadata)))
        };
        let scored = state
            .index
            .search_with_effort(query, k, effort, filter.map(|_| &passes as _))
            .map_err(|source| StoreError::Index { collection: name.clone(), source })?;
        Ok(scored
            .into_iter()
            .filter_map(|s| {
                let doc = state.docs.get(s.id)?.as_deref()?;
                Some(Hit { id: doc.id.clone(), score: s.score, document: doc.clone() })
            })
            .collect())
    }

    /// The `k` documents whose text scores highest by BM25 against `query`, among those matching
    /// `filter`, best first. Documents sharing no term with the query are not returned. The
    /// collection needs a text index ([`CollectionConfig::text_index`]).
    pub fn search_text(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        self.check_live()?;
        let state = read_lock(&self.inner.state);
        let Some(text) = &state.text else {
            return Err(self.missing(
                "BM25 text index",
                "create it with one (`ember ingest --text-index english` into a new collection, or \
                 CollectionConfig::text_index) and ingest again",
            ));
        };
        let passes = |pid: usize| state.passes(pid, filter);
        let scored = text
            .search_text(query, k, filter.map(|_| &passes as _))
            .map_err(|source| StoreError::SparseIndex { collection: self.inner.name.clone(), source })?;
        Ok(state.hits(scored))
    }

    /// The `k` documents whose sparse vectors have the highest dot product with `query`
    /// (`(term id, weight)` pairs, any order, each term once, weights finite and ≥ 0), among
    /// those matching `filter`, best first. The collection needs a sparse field.
    pub fn search_sparse(
        &self,
        query: &[(u32, f32)],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.check_live()?;
        if let Some(reason) = sparse_problem(query, false) {
            return Err(self.invalid_query(format!("sparse query: {reason}")));
        }
        let state = read_lock(&self.inner.state);
        let Some(sparse) = &state.sparse else {
            return Err(self
                .missing("sparse field", "create the collection with a sparse model (`ember ingest --sparse-model`)"));
        };
        let passes = |pid: usize| state.passes(pid, filter);
        let scored = sparse
            .search_sparse(query, k, filter.map(|_| &passes as _))
            .map_err(|source| StoreError::SparseIndex { collection: self.inner.name.clone(), source })?;
        Ok(state.hits(scored))
    }

    /// The `k` documents with the highest MaxSim against the query's token vectors, among those
    /// matching `filter` (and among `candidates` when given: ids not in the collection are
    /// skipped), best first. Exact: every (candidate) document is scored. Documents without token
    /// vectors score 0. The collection needs a multivector field.
    pub fn search_multivector(
        &self,
        query: &[Vec<f32>],
        k: usize,
        filter: Option<&Filter>,
        candidates: Option<&[String]>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.check_live()?;
        let Some(field) = self.inner.config.multivector else {
            return Err(self.missing("multivector field", "create the collection with a multi-vector model"));
        };
        if let Some(reason) = tokens_problem(query, field.dimension) {
            return Err(self.invalid_query(format!("query token vectors: {reason}")));
        }
        let state = read_lock(&self.inner.state);
        let pids: Vec<usize> = match candidates {
            Some(ids) => {
                let mut pids: Vec<usize> = ids.iter().filter_map(|id| state.ids.get(id).copied()).collect();
                pids.sort_unstable();
                pids.dedup();
                pids
            }
            None => (0..state.docs.len()).collect(),
        };
        let scored = pids.into_iter().filter(|&pid| state.passes(pid, filter)).filter_map(|pid| {
            let doc = state.docs[pid].as_deref()?;
            Some(Scored { id: pid, score: ember_index::multivector::max_sim(query, &doc.multivector) })
        });
        Ok(state.hits(ember_index::top_k(scored, k)))
    }

    /// Every live document matching `filter` (all of them without one), ordered by id.
    pub fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError> {
        self.check_live()?;
        let state = read_lock(&self.inner.state);
        let mut docs: Vec<Document> = state
            .live()
            .filter(|d| filter.is_none_or(|f| f.matches(&d.metadata)))
            .map(|d| Document::clone(d))
            .collect();
        drop(state);
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(docs)
    }

    /// How many live documents the collection holds.
    pub fn len(&self) -> usize {
        read_lock(&self.inner.state).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn info(&self) -> CollectionInfo {
        let count = self.len();
        let wal_bytes = self.inner.wal_bytes.load(Ordering::Relaxed);
        let files = lock(&self.inner.files);
        let segment_bytes: u64 = files.manifest.segments.iter().map(|s| s.bytes).sum();
        CollectionInfo {
            name: self.inner.name.clone(),
            config: self.inner.config.clone(),
            count,
            disk_bytes: files.manifest_bytes + segment_bytes + wal_bytes,
            segments: files.manifest.segments.len(),
            wal_bytes,
            maintenance_error: lock(&self.inner.maintenance_error).clone(),
        }
    }

    /// Fold the log and every segment into one new segment (and start a fresh log). Readers and
    /// writers carry on meanwhile; writers wait only while the log is switched.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.check_live()?;
        let _maintenance = lock(&self.inner.maintenance);
        self.check_live()?;
        self.inner.compact_locked()
    }

    /// Wait for a running background flush or compaction to finish.
    pub fn wait_for_maintenance(&self) {
        let handle = lock(&self.inner.background).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use ember_core::Similarity;
    use serde_json::Map;

    use super::*;
    use crate::config::{IndexKind, Precision};
    use crate::store::Store;

    #[test]
    fn concurrent_writers_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = CollectionConfig {
            model_id: "m".into(),
            dimension: 2,
            distance: Similarity::Dot,
            precision: Precision::Float32,
            index: IndexKind::Flat,
            text_index: None,
            sparse: None,
            multivector: None,
        };
        let c = store.create_collection("c", config).unwrap();
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let doc = Document {
                            id: format!("{t}-{i}"),
                            text: String::new(),
                            vector: vec![1.0, 0.0],
                            metadata: Map::new(),
                            ..Document::default()
                        };
                        c.upsert(vec![doc]).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(c.len(), 400);
        let syncs = c.inner.wal_syncs.load(Ordering::Relaxed);
        assert!(syncs < 400, "400 writes took {syncs} fsyncs: no group was shared");
        assert!(lock(&c.inner.queue).done.is_empty() && lock(&c.inner.queue).pending.is_empty());
    }
}
