//! The write-ahead log: `header("EMBER-WL", 1) | record(op) *`, appended by group commit and
//! fsync'd before a write is acknowledged. Logs are numbered by generation (`wal-<gen>.log`);
//! a flush or compaction starts a new generation and folds the older ones into a segment.

use std::io::BufReader;
use std::path::Path;

use crate::error::StoreError;
use crate::format::{self, FileKind, RecordReader, TailPolicy};
use crate::op::{self, Op};

/// What replaying a log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalReplay {
    /// Where the valid records end.
    pub valid_len: u64,
    pub file_len: u64,
}

/// A new, empty log (just its header), created atomically.
pub(crate) fn create(path: &Path) -> Result<(), StoreError> {
    format::write_atomically(path, &format::header(FileKind::Wal))
}

/// Replay a log, handing each operation to `apply` in order. With `DropTornTail`, a torn last
/// record is skipped (the caller truncates it); checksum damage before it is an error.
pub(crate) fn replay(
    path: &Path,
    policy: TailPolicy,
    mut apply: impl FnMut(u64, Op) -> Result<(), StoreError>,
) -> Result<WalReplay, StoreError> {
    let (file, file_len, head) = format::open_checked(path, FileKind::Wal)?;
    let mut reader = RecordReader::new(BufReader::new(file), path, &head, file_len, policy);
    while let Some((offset, payload)) = reader.next_record()? {
        let op = op::decode(&payload).map_err(|reason| StoreError::corruption(path, offset, reason))?;
        apply(offset, op)?;
    }
    let valid_len = reader.torn_at().unwrap_or(reader.offset());
    Ok(WalReplay { valid_len, file_len })
}
