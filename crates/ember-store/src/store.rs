//! The data directory: a `STORE` marker (locked while the store is open) and one directory per
//! collection under `collections/`.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collection::{lock, Collection, CollectionInfo};
use crate::config::{validate_name, CollectionConfig, StoreOptions};
use crate::error::StoreError;
use crate::format::{self, FileKind, HEADER_LEN, RECORD_HEADER_LEN};
use crate::manifest::{self, Manifest, MANIFEST_FILE};
use crate::recovery;
use crate::wal;

pub(crate) const STORE_FILE: &str = "STORE";
pub(crate) const COLLECTIONS_DIR: &str = "collections";
const TEMP_PREFIX: &str = ".tmp-";
const DROPPED_PREFIX: &str = ".dropped-";

/// The exclusive lock on a store directory (an advisory lock on its `STORE` file), held until the
/// store and every collection handle and background job are gone.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

/// A data directory holding collections. Cheap to clone; one process at a time may open a
/// directory (a second `open` fails with [`StoreError::Locked`]).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    dir: PathBuf,
    options: StoreOptions,
    lock: Arc<StoreLock>,
    /// Collections opened so far; every handle on a collection shares one state.
    open: Mutex<HashMap<String, Collection>>,
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        for collection in lock(&self.open).values() {
            collection.wait_for_maintenance();
        }
    }
}

fn marker_payload() -> Vec<u8> {
    serde_json::json!({ "created_by": concat!("ember-store ", env!("CARGO_PKG_VERSION")) }).to_string().into_bytes()
}

impl Store {
    /// Wait for the background work (flushes, compactions) of every open collection: what a
    /// graceful shutdown does before the process exits.
    pub fn wait_for_maintenance(&self) {
        let open: Vec<Collection> = lock(&self.inner.open).values().cloned().collect();
        for collection in open {
            collection.wait_for_maintenance();
        }
    }

    /// Open the store in `dir`, creating it if `dir` is missing or empty.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let marker = dir.join(STORE_FILE);
        if !marker.exists() {
            let tmp = format::temp_path(&marker);
            for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
                let entry = entry.map_err(|e| StoreError::io(dir, e))?;
                if entry.path() != tmp {
                    return Err(StoreError::NotAStore { path: dir.to_path_buf() });
                }
            }
            format::write_atomically(&marker, &format::single_record_file(FileKind::Store, &marker_payload()))?;
        }
        let file = File::open(&marker).map_err(|e| StoreError::io(&marker, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => return Err(StoreError::io(&marker, e)),
        }
        let payload = format::read_single_record(&marker, FileKind::Store)?;
        if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&payload).is_err() {
            return Err(StoreError::corruption(&marker, HEADER_LEN + RECORD_HEADER_LEN, "not a JSON object"));
        }
        let collections = dir.join(COLLECTIONS_DIR);
        if !collections.exists() {
            fs::create_dir(&collections).map_err(|e| StoreError::io(&collections, e))?;
            format::sync_dir(dir)?;
        }
        // Leftovers of an interrupted create or drop.
        for entry in fs::read_dir(&collections).map_err(|e| StoreError::io(&collections, e))? {
            let entry = entry.map_err(|e| StoreError::io(&collections, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) || name.starts_with(DROPPED_PREFIX) {
                fs::remove_dir_all(entry.path()).map_err(|e| StoreError::io(entry.path(), e))?;
            }
        }
        Ok(Store {
            inner: Arc::new(StoreInner {
                dir: dir.to_path_buf(),
                options,
                lock: Arc::new(StoreLock { _file: file }),
                open: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn collections_dir(&self) -> PathBuf {
        self.inner.dir.join(COLLECTIONS_DIR)
    }

    /// The names of every collection, sorted.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.collections_dir();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_name(&name).is_ok() && entry.path().join(MANIFEST_FILE).exists() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Create a collection; fails with [`StoreError::AlreadyExists`] if the name is taken.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection, StoreError> {
        validate_name(name)?;
        config.validate()?;
        let mut open = lock(&self.inner.open);
        let collections = self.collections_dir();
        let dir = collections.join(name);
        if dir.exists() {
            return Err(StoreError::AlreadyExists { name: name.to_string() });
        }
        // Build it under a temporary name and rename it into place, so it appears whole or not at all.
        let tmp = collections.join(format!("{TEMP_PREFIX}{name}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let manifest =
            Manifest { name: name.to_string(), config, segments: Vec::new(), wal_start: 1, next_segment_id: 1 };
        manifest.write(&tmp)?;
        wal::create(&tmp.join(manifest::wal_file(1)))?;
        format::rename_durably(&tmp, &dir)?;
        let collection =
            recovery::open_collection(dir, name, self.inner.options.clone(), Arc::clone(&self.inner.lock))?;
        open.insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// A handle on an existing collection (opened, and recovered, on first use).
    pub fn collection(&self, name: &str) -> Result<Collection, StoreError> {
        validate_name(name)?;
        let mut open = lock(&self.inner.open);
        if let Some(collection) = open.get(name) {
            return Ok(collection.clone());
        }
        let dir = self.collections_dir().join(name);
        if !dir.join(MANIFEST_FILE).exists() {
            return Err(StoreError::NotFound { name: name.to_string(), available: self.names()? });
        }
        let collection =
            recovery::open_collection(dir, name, self.inner.options.clone(), Arc::clone(&self.inner.lock))?;
        open.insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// Every collection's summary, by name.
    pub fn list(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        self.names()?.iter().map(|name| Ok(self.collection(name)?.info())).collect()
    }

    /// Delete a collection and its files. Existing handles on it fail with [`StoreError::Dropped`].
    pub fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let mut open = lock(&self.inner.open);
        let collections = self.collections_dir();
        let dir = collections.join(name);
        if !dir.join(MANIFEST_FILE).exists() {
            return Err(StoreError::NotFound { name: name.to_string(), available: self.names()? });
        }
        if let Some(collection) = open.remove(name) {
            collection.wait_for_maintenance();
            collection.inner.shut_down();
        }
        // Renaming is the commit point; a crash before the removal finishes is tidied on open.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let grave = collections.join(format!("{DROPPED_PREFIX}{name}-{nanos}"));
        format::rename_durably(&dir, &grave)?;
        let _ = fs::remove_dir_all(&grave);
        Ok(())
    }
}
