//! The bytes every store file shares: a 16-byte header (magic + version) and checksummed
//! records, plus the atomic-replace and directory-sync primitives. `docs/store-format.md` is the
//! prose version of this module.
//!
//! ```text
//! header  = magic: [u8; 8] | version: u32 LE | reserved: u32 LE (0)
//! record  = len: u32 LE | header_crc: u32 LE | payload_crc: u32 LE | payload: [u8; len]
//!           header_crc = crc32(len as 4 LE bytes), payload_crc = crc32(payload), len >= 1
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: u64 = 16;
pub(crate) const RECORD_HEADER_LEN: u64 = 12;
/// The largest record payload (the length field is a `u32`).
pub const MAX_RECORD_BYTES: usize = u32::MAX as usize;

/// The kinds of file in a store, each with its own magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Store,
    Manifest,
    Wal,
    Segment,
}

impl FileKind {
    pub(crate) fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Store => b"EMBER-ST",
            FileKind::Manifest => b"EMBER-MF",
            FileKind::Wal => b"EMBER-WL",
            FileKind::Segment => b"EMBER-SG",
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileKind::Store => "store",
            FileKind::Manifest => "manifest",
            FileKind::Wal => "write-ahead log",
            FileKind::Segment => "segment",
        }
    }
}

pub(crate) fn header(kind: FileKind) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(kind.magic());
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// Check a file's first bytes: the magic first (so a foreign file says "not ours"), then the version.
pub(crate) fn check_header(path: &Path, kind: FileKind, bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(StoreError::BadMagic { path: path.to_path_buf(), expected: kind.name() });
    }
    if bytes.len() < HEADER_LEN as usize {
        return Err(StoreError::corruption(path, 0, "the file is shorter than its 16-byte header"));
    }
    let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if found != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion { path: path.to_path_buf(), found, supported: FORMAT_VERSION });
    }
    Ok(())
}

/// Append one framed record to `out`. The caller keeps payloads under [`MAX_RECORD_BYTES`].
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_RECORD_BYTES);
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What a reader does with a damaged end of its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TailPolicy {
    /// Every byte must belong to a valid record (segments, manifests, logs that were rotated).
    Strict,
    /// A torn last record (short, zero-filled, or with a bad checksum and nothing after it) is
    /// what a crash during an append leaves: stop before it. Damage before the last record is
    /// still corruption.
    DropTornTail,
}

/// Reads framed records from `start` to `end` of a file, checking every checksum.
#[derive(Debug)]
pub(crate) struct RecordReader<R> {
    src: R,
    path: PathBuf,
    offset: u64,
    end: u64,
    policy: TailPolicy,
    /// crc32 of every byte consumed (segments checksum the whole file in their trailer).
    hasher: crc32fast::Hasher,
    /// Set when the reader stopped at a torn tail: the offset where valid data ends.
    torn_at: Option<u64>,
}

impl<R: Read> RecordReader<R> {
    /// `src` is positioned at `start`; `prefix` (the bytes before `start`) seeds the running crc.
    pub(crate) fn new(src: R, path: &Path, prefix: &[u8], end: u64, policy: TailPolicy) -> Self {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(prefix);
        RecordReader { src, path: path.to_path_buf(), offset: prefix.len() as u64, end, policy, hasher, torn_at: None }
    }

    /// The offset of the next record (the end of the valid data once `next` returned `None`).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn torn_at(&self) -> Option<u64> {
        self.torn_at
    }

    pub(crate) fn crc(&self) -> u32 {
        self.hasher.clone().finalize()
    }

    pub(crate) fn into_inner(self) -> R {
        self.src
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.src.read_exact(buf).map_err(|e| StoreError::io(&self.path, e))
    }

    /// The rest of the region is only zeros (what a crash can leave after a preallocated append).
    fn rest_is_zero(&mut self, already: &[u8]) -> Result<bool, StoreError> {
        if already.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        let mut rest = Vec::new();
        let want = self.end - self.offset - already.len() as u64;
        (&mut self.src).take(want).read_to_end(&mut rest).map_err(|e| StoreError::io(&self.path, e))?;
        Ok(rest.iter().all(|&b| b == 0))
    }

    fn torn_or(&mut self, torn: bool, reason: String) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        if torn && self.policy == TailPolicy::DropTornTail {
            self.torn_at = Some(self.offset);
            return Ok(None);
        }
        Err(StoreError::corruption(&self.path, self.offset, reason))
    }

    /// The next record as (offset, payload), or `None` at the end (or at a dropped torn tail).
    pub(crate) fn next_record(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let rest = self.end - self.offset;
        if rest == 0 {
            return Ok(None);
        }
        if rest < RECORD_HEADER_LEN {
            let mut partial = vec![0u8; rest as usize];
            self.read_exact(&mut partial)?;
            return self.torn_or(true, format!("{rest} stray bytes where a 12-byte record header should be"));
        }
        let mut head = [0u8; RECORD_HEADER_LEN as usize];
        self.read_exact(&mut head)?;
        let len_bytes = [head[0], head[1], head[2], head[3]];
        let len = u32::from_le_bytes(len_bytes) as u64;
        let header_crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let payload_crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if crc32fast::hash(&len_bytes) != header_crc {
            let zero = self.rest_is_zero(&head)?;
            return self.torn_or(zero, "record header checksum mismatch".into());
        }
        if len == 0 {
            return Err(StoreError::corruption(&self.path, self.offset, "empty record"));
        }
        if RECORD_HEADER_LEN + len > rest {
            return self.torn_or(true, format!("a {len}-byte record runs past the end of the data"));
        }
        let mut payload = vec![0u8; len as usize];
        self.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != payload_crc {
            let last = RECORD_HEADER_LEN + len == rest;
            return self.torn_or(last, "record checksum mismatch".into());
        }
        self.hasher.update(&head);
        self.hasher.update(&payload);
        let at = self.offset;
        self.offset += RECORD_HEADER_LEN + len;
        Ok(Some((at, payload)))
    }
}

/// Open a file for reading and check its header; returns the file positioned after the header,
/// its length and the header bytes.
pub(crate) fn open_checked(path: &Path, kind: FileKind) -> Result<(File, u64, Vec<u8>), StoreError> {
    let mut file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    (&mut file).take(HEADER_LEN).read_to_end(&mut head).map_err(|e| StoreError::io(path, e))?;
    check_header(path, kind, &head)?;
    Ok((file, len, head))
}

/// A small file of one kind holding exactly one record (the store marker and manifests).
pub(crate) fn read_single_record(path: &Path, kind: FileKind) -> Result<Vec<u8>, StoreError> {
    let (file, len, head) = open_checked(path, kind)?;
    let mut reader = RecordReader::new(io::BufReader::new(file), path, &head, len, TailPolicy::Strict);
    let Some((_, payload)) = reader.next_record()? else {
        return Err(StoreError::corruption(path, HEADER_LEN, "the file holds no record"));
    };
    if reader.offset() != len {
        return Err(StoreError::corruption(path, reader.offset(), "unexpected bytes after the record"));
    }
    Ok(payload)
}

/// `header | record(payload)`, the layout of single-record files.
pub(crate) fn single_record_file(kind: FileKind, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header(kind).to_vec();
    frame(payload, &mut bytes);
    bytes
}

/// The temporary name a file is written under before it is renamed into place.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replace `path` with `bytes` atomically: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory. A crash leaves either the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = temp_path(path);
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| StoreError::io(&tmp, e))?;
    drop(file);
    rename_durably(&tmp, path)
}

/// Rename and fsync the destination's directory.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|e| StoreError::io(to, e))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// fsync a directory so the entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], policy: TailPolicy) -> Result<(Vec<Vec<u8>>, Option<u64>), StoreError> {
        let head = &bytes[..HEADER_LEN as usize];
        let mut reader =
            RecordReader::new(&bytes[HEADER_LEN as usize..], Path::new("f"), head, bytes.len() as u64, policy);
        let mut out = Vec::new();
        while let Some((_, p)) = reader.next_record()? {
            out.push(p);
        }
        Ok((out, reader.torn_at()))
    }

    fn file(records: &[&[u8]]) -> Vec<u8> {
        let mut bytes = header(FileKind::Wal).to_vec();
        for r in records {
            frame(r, &mut bytes);
        }
        bytes
    }

    #[test]
    fn frames_round_trip_and_headers_are_checked() {
        let bytes = file(&[b"one", b"two!"]);
        assert_eq!(read_all(&bytes, TailPolicy::Strict).unwrap(), (vec![b"one".to_vec(), b"two!".to_vec()], None));
        assert!(check_header(Path::new("f"), FileKind::Wal, &bytes).is_ok());
        assert!(matches!(check_header(Path::new("f"), FileKind::Segment, &bytes), Err(StoreError::BadMagic { .. })));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            check_header(Path::new("f"), FileKind::Wal, &v2),
            Err(StoreError::UnsupportedVersion { found: 2, supported: 1, .. })
        ));
    }

    #[test]
    fn torn_tails_are_dropped_and_middle_damage_is_reported() {
        let bytes = file(&[b"first", b"second", b"third"]);
        let third_at = bytes.len() as u64 - 12 - 5;
        // Every truncation inside the last record keeps the first two.
        for cut in third_at as usize..bytes.len() {
            let (got, torn) = read_all(&bytes[..cut], TailPolicy::DropTornTail).unwrap();
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(torn, if cut == third_at as usize { None } else { Some(third_at) });
            assert!(read_all(&bytes[..cut], TailPolicy::Strict).is_err() || cut == third_at as usize);
        }
        // A zero-filled tail is torn too.
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0u8; 40]);
        assert_eq!(read_all(&zeros, TailPolicy::DropTornTail).unwrap().0.len(), 3);
        // A flipped bit in the last record's payload: torn (it cannot have been acknowledged intact).
        let mut last = bytes.clone();
        *last.last_mut().unwrap() ^= 1;
        assert_eq!(read_all(&last, TailPolicy::DropTornTail).unwrap().0.len(), 2);
        // A flipped bit in the middle record: corruption at that record's offset, whatever the policy.
        let second_at = HEADER_LEN + 12 + 5;
        for flip in [second_at as usize + 1, second_at as usize + 14] {
            let mut mid = bytes.clone();
            mid[flip] ^= 0x10;
            let err = read_all(&mid, TailPolicy::DropTornTail).unwrap_err();
            assert!(matches!(err, StoreError::Corruption { offset, .. } if offset == second_at), "{err}");
        }
    }
}
