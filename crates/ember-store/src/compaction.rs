//! Keeping the log short: a *flush* folds the logs into one new segment (its net upserts and
//! deletes); a *compaction* folds the logs and every segment into a single segment of the live
//! documents. Both write the new segment atomically, then replace the manifest (the commit
//! point), then remove what it made obsolete; a crash at any step leaves a store that opens to
//! the same documents. Neither changes the in-memory documents, so readers never wait for them.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use crate::collection::{lock, read_lock, Inner, Writer};
use crate::document::Document;
use crate::error::StoreError;
use crate::format::{self, TailPolicy, HEADER_LEN};
use crate::manifest::{self, Manifest, SegmentEntry};
use crate::op::Op;
use crate::segment::SegmentWriter;
use crate::wal;

impl Inner {
    /// Called after a write left the log over `wal_flush_bytes`.
    pub(crate) fn schedule_maintenance(self: &Arc<Self>) {
        if !self.options.background_maintenance {
            self.maintain_and_record();
            return;
        }
        if self.maintenance_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(self);
        let spawned = thread::Builder::new().name(format!("ember-store-{}", self.name)).spawn(move || {
            inner.maintain_and_record();
            inner.maintenance_running.store(false, Ordering::Release);
        });
        match spawned {
            Ok(handle) => {
                // The previous job has finished (the flag was clear); reap its thread.
                if let Some(previous) = lock(&self.background).replace(handle) {
                    let _ = previous.join();
                }
            }
            Err(e) => {
                self.maintenance_running.store(false, Ordering::Release);
                *lock(&self.maintenance_error) = Some(format!("cannot start the maintenance thread: {e}"));
            }
        }
    }

    fn maintain_and_record(&self) {
        let result = self.maintain();
        *lock(&self.maintenance_error) = result.err().map(|e| e.to_string());
    }

    /// Flush the log into a new segment, or compact everything when that would leave more than
    /// `max_segments` segments.
    fn maintain(&self) -> Result<(), StoreError> {
        let _maintenance = lock(&self.maintenance);
        if self.dropped.load(Ordering::Acquire) || lock(&self.writer).len <= self.options.wal_flush_bytes {
            return Ok(());
        }
        let segments = lock(&self.files).manifest.segments.len();
        if segments + 1 > self.options.max_segments {
            self.compact_locked()
        } else {
            self.flush_locked()
        }
    }

    fn writer_failed(&self, writer: &Writer) -> Result<(), StoreError> {
        match &writer.failed {
            Some(reason) => Err(StoreError::WriterFailed { collection: self.name.clone(), reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Start the next log generation; the current one becomes read-only.
    fn rotate(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let generation = writer.generation + 1;
        let path = self.dir.join(manifest::wal_file(generation));
        wal::create(&path)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(|e| StoreError::io(&path, e))?;
        *writer = Writer { file, path, generation, len: HEADER_LEN, failed: None };
        self.wal_bytes.fetch_add(HEADER_LEN, Ordering::Relaxed);
        Ok(())
    }

    fn next_segment_id(&self) -> u64 {
        let mut files = lock(&self.files);
        let id = files.next_segment_id;
        files.next_segment_id += 1;
        id
    }

    /// Fold the logs before the active one (after rotating) into one new segment.
    fn flush_locked(&self) -> Result<(), StoreError> {
        let wal_start = lock(&self.files).manifest.wal_start;
        let new_generation = {
            let mut writer = lock(&self.writer);
            self.writer_failed(&writer)?;
            self.rotate(&mut writer)?;
            writer.generation
        };
        // The net effect of the frozen logs: the last write to each id wins.
        let mut net: Vec<(String, Option<Document>)> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        let mut set = |id: String, doc: Option<Document>| match position.get(&id) {
            Some(&i) => net[i].1 = doc,
            None => {
                position.insert(id.clone(), net.len());
                net.push((id, doc));
            }
        };
        for generation in wal_start..new_generation {
            let path = self.dir.join(manifest::wal_file(generation));
            wal::replay(&path, TailPolicy::Strict, |_, op| {
                match op {
                    Op::Upsert(docs) => docs.into_iter().for_each(|d| set(d.id.clone(), Some(d))),
                    Op::Delete(ids) => ids.into_iter().for_each(|id| set(id, None)),
                }
                Ok(())
            })?;
        }
        let id = self.next_segment_id();
        let mut segment = SegmentWriter::create(&self.dir.join(manifest::segment_file(id)))?;
        segment.write_documents(net.iter().filter_map(|(_, doc)| doc.as_ref()))?;
        let deletes: Vec<&str> = net.iter().filter(|(_, doc)| doc.is_none()).map(|(id, _)| id.as_str()).collect();
        segment.write_deletes(&deletes)?;
        let (bytes, docs) = segment.finish()?;

        let mut manifest = lock(&self.files).manifest.clone();
        manifest.segments.push(SegmentEntry { id, docs, bytes });
        manifest.wal_start = new_generation;
        manifest.next_segment_id = id + 1;
        self.commit_manifest(manifest)
    }

    /// Fold the logs and all segments into one segment of the live documents. The caller holds
    /// the maintenance lock.
    pub(crate) fn compact_locked(&self) -> Result<(), StoreError> {
        let (new_generation, mut docs) = {
            let mut writer = lock(&self.writer);
            self.writer_failed(&writer)?;
            let files = lock(&self.files);
            let settled = writer.len == HEADER_LEN
                && files.manifest.wal_start == writer.generation
                && files.manifest.segments.len() <= 1;
            drop(files);
            if settled {
                return Ok(());
            }
            self.rotate(&mut writer)?;
            // Holding the writer lock, the documents are exactly the segments plus the frozen logs.
            let docs: Vec<Arc<Document>> = read_lock(&self.state).live().cloned().collect();
            (writer.generation, docs)
        };
        docs.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let id = self.next_segment_id();
        let mut segment = SegmentWriter::create(&self.dir.join(manifest::segment_file(id)))?;
        segment.write_documents(docs.iter().map(|d| d.as_ref()))?;
        let (bytes, count) = segment.finish()?;

        let mut manifest = lock(&self.files).manifest.clone();
        manifest.segments = vec![SegmentEntry { id, docs: count, bytes }];
        manifest.wal_start = new_generation;
        manifest.next_segment_id = id + 1;
        self.commit_manifest(manifest)
    }

    /// Replace the manifest (the commit point), then remove the files it no longer names.
    fn commit_manifest(&self, manifest: Manifest) -> Result<(), StoreError> {
        let bytes = manifest.write(&self.dir)?;
        let wal_start = manifest.wal_start;
        let live: Vec<u64> = manifest.segments.iter().map(|s| s.id).collect();
        {
            let mut files = lock(&self.files);
            files.manifest = manifest;
            files.manifest_bytes = bytes;
        }
        // Best effort: whatever is left behind is removed when the collection is next opened.
        let Ok(entries) = fs::read_dir(&self.dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let obsolete_wal = manifest::parse_wal_file(&name).is_some_and(|g| g < wal_start);
            let obsolete_segment = manifest::parse_segment_file(&name).is_some_and(|id| !live.contains(&id));
            if obsolete_wal || obsolete_segment {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if fs::remove_file(entry.path()).is_ok() && obsolete_wal {
                    self.wal_bytes.fetch_sub(len.min(self.wal_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
                }
            }
        }
        let _ = format::sync_dir(&self.dir);
        Ok(())
    }

    /// Stop the collection for good (it is being dropped): wait for the maintenance and any
    /// in-flight write, then refuse everything.
    pub(crate) fn shut_down(&self) {
        let _maintenance = lock(&self.maintenance);
        self.dropped.store(true, Ordering::Release);
        drop(lock(&self.writer));
    }
}
