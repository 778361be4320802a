//! Opening a collection: read the manifest, remove what an interrupted flush or compaction left
//! behind, apply the segments in order, replay the logs and cut a torn tail off the last one.
//!
//! Rules: damage anywhere in the manifest or a segment, or before the last record of a log, is
//! an error naming the file and offset (corrupt data is never served); a torn last record of the
//! last log (what a crash during an append leaves, never acknowledged) is dropped silently.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::collection::{Collection, Files, Opened, State, Writer};
use crate::config::StoreOptions;
use crate::error::StoreError;
use crate::format::{self, TailPolicy, HEADER_LEN, RECORD_HEADER_LEN};
use crate::manifest::{self, Manifest, MANIFEST_FILE};
use crate::op::Op;
use crate::segment;
use crate::store::StoreLock;
use crate::wal;

fn apply(state: &mut State, path: &Path, offset: u64, op: Op) -> Result<(), StoreError> {
    state
        .apply(op)
        .map(drop)
        .map_err(|e| StoreError::corruption(path, offset, format!("the record does not fit the collection: {e}")))
}

/// Remove leftovers of interrupted work (temporary files, segments the manifest does not name,
/// logs already folded) and return the generations of the logs to replay, in order.
fn tidy(dir: &Path, manifest: &Manifest) -> Result<Vec<u64>, StoreError> {
    let live: HashSet<u64> = manifest.segments.iter().map(|s| s.id).collect();
    let mut wals = Vec::new();
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let leftover = name.ends_with(".tmp")
            || manifest::parse_segment_file(&name).is_some_and(|id| !live.contains(&id))
            || manifest::parse_wal_file(&name).is_some_and(|g| g < manifest.wal_start);
        if leftover {
            fs::remove_file(entry.path()).map_err(|e| StoreError::io(entry.path(), e))?;
            removed = true;
        } else if let Some(generation) = manifest::parse_wal_file(&name) {
            wals.push(generation);
        }
    }
    if removed {
        format::sync_dir(dir)?;
    }
    wals.sort_unstable();
    for (i, &generation) in wals.iter().enumerate() {
        let expected = manifest.wal_start + i as u64;
        if generation != expected {
            return Err(StoreError::MissingFile {
                path: dir.join(manifest::wal_file(expected)),
                reason: "the write-ahead logs must run without gaps from the manifest's wal_start",
            });
        }
    }
    if wals.is_empty() {
        return Err(StoreError::MissingFile {
            path: dir.join(manifest::wal_file(manifest.wal_start)),
            reason: "the manifest's first write-ahead log always exists",
        });
    }
    Ok(wals)
}

pub(crate) fn open_collection(
    dir: PathBuf,
    name: &str,
    options: StoreOptions,
    lock: Arc<StoreLock>,
) -> Result<Collection, StoreError> {
    let manifest = Manifest::read(&dir)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    if manifest.name != name {
        return Err(StoreError::corruption(
            &manifest_path,
            HEADER_LEN + RECORD_HEADER_LEN,
            format!("the manifest is for collection '{}', found in directory '{name}'", manifest.name),
        ));
    }
    let config = &manifest.config;
    config.validate()?;
    let wals = tidy(&dir, &manifest)?;

    let mut state = State::new(config)?;
    for entry in &manifest.segments {
        let path = dir.join(manifest::segment_file(entry.id));
        if !path.exists() {
            return Err(StoreError::MissingFile { path, reason: "the manifest names this segment" });
        }
        segment::read_segment(&path, |offset, op| apply(&mut state, &path, offset, op))?;
    }

    let mut wal_bytes = 0;
    let mut active = None;
    for (i, &generation) in wals.iter().enumerate() {
        let path = dir.join(manifest::wal_file(generation));
        let last = i + 1 == wals.len();
        let policy = if last { TailPolicy::DropTornTail } else { TailPolicy::Strict };
        let replay = wal::replay(&path, policy, |offset, op| apply(&mut state, &path, offset, op))?;
        if replay.valid_len < replay.file_len {
            // A torn tail: cut it off so new records follow the last whole one.
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(replay.valid_len).and_then(|()| f.sync_all()))
                .map_err(|e| StoreError::io(&path, e))?;
        }
        wal_bytes += replay.valid_len;
        if last {
            active = Some((path, generation, replay.valid_len));
        }
    }
    let Some((path, generation, len)) = active else {
        return Err(StoreError::MissingFile {
            path: dir.join(manifest::wal_file(manifest.wal_start)),
            reason: "no log",
        });
    };
    let file = OpenOptions::new().append(true).open(&path).map_err(|e| StoreError::io(&path, e))?;
    let writer = Writer { file, path, generation, len, failed: None };

    let manifest_bytes = fs::metadata(&manifest_path).map_err(|e| StoreError::io(&manifest_path, e))?.len();
    let next_segment_id = manifest.segments.iter().map(|s| s.id + 1).max().unwrap_or(0).max(manifest.next_segment_id);
    let files = Files { manifest, manifest_bytes, next_segment_id };
    Ok(Collection::from_parts(name.to_string(), dir, options, lock, Opened { state, writer, files, wal_bytes }))
}
