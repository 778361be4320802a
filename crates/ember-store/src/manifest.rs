//! A collection's manifest: its config and which segments and logs hold its data. Replacing the
//! manifest (atomically) is the commit point of every flush and compaction.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::CollectionConfig;
use crate::error::StoreError;
use crate::format::{self, FileKind, HEADER_LEN, RECORD_HEADER_LEN};

pub(crate) const MANIFEST_FILE: &str = "MANIFEST";

/// One segment the collection is built from; segments are applied in manifest order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentEntry {
    pub id: u64,
    /// Documents the segment writes (its deletes not counted).
    pub docs: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub name: String,
    pub config: CollectionConfig,
    pub segments: Vec<SegmentEntry>,
    /// Logs with a generation below this are folded into the segments; the rest are replayed in
    /// generation order, and the first of them must exist.
    pub wal_start: u64,
    pub next_segment_id: u64,
}

impl Manifest {
    pub(crate) fn read(dir: &Path) -> Result<Manifest, StoreError> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Err(StoreError::MissingFile { path, reason: "every collection directory has a MANIFEST" });
        }
        let payload = format::read_single_record(&path, FileKind::Manifest)?;
        serde_json::from_slice(&payload).map_err(|e| {
            StoreError::corruption(&path, HEADER_LEN + RECORD_HEADER_LEN, format!("the manifest is not valid: {e}"))
        })
    }

    /// Write atomically; returns the file's size.
    pub(crate) fn write(&self, dir: &Path) -> Result<u64, StoreError> {
        let path = dir.join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| StoreError::corruption(&path, 0, e.to_string()))?;
        let bytes = format::single_record_file(FileKind::Manifest, &json);
        format::write_atomically(&path, &bytes)?;
        Ok(bytes.len() as u64)
    }
}

pub(crate) fn segment_file(id: u64) -> String {
    format!("seg-{id:010}.seg")
}

pub(crate) fn wal_file(generation: u64) -> String {
    format!("wal-{generation:010}.log")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn parse_segment_file(name: &str) -> Option<u64> {
    parse_numbered(name, "seg-", ".seg")
}

pub(crate) fn parse_wal_file(name: &str) -> Option<u64> {
    parse_numbered(name, "wal-", ".log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_segment_file(&segment_file(42)), Some(42));
        assert_eq!(parse_wal_file(&wal_file(7)), Some(7));
        assert_eq!(parse_wal_file("wal-0000000007.log.tmp"), None);
        assert_eq!(parse_segment_file("seg-.seg"), None);
        assert_eq!(parse_segment_file("seg-+1.seg"), None);
    }
}
