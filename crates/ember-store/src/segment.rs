//! Segments: immutable, checksummed files of operations, written once (atomically) by a flush
//! or a compaction and applied in manifest order when a collection opens.
//!
//! ```text
//! segment = header("EMBER-SG", 1) | record(op) * n | trailer
//! trailer = record_count: u64 LE | crc32(all bytes before the trailer): u32 LE | "EMBER-SE"
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::document::Document;
use crate::error::StoreError;
use crate::format::{self, FileKind, RecordReader, TailPolicy, HEADER_LEN};
use crate::op::{self, Op};

const TRAILER_MAGIC: &[u8; 8] = b"EMBER-SE";
const TRAILER_LEN: u64 = 20;
/// Documents are grouped into records of about this many payload bytes.
const RECORD_TARGET_BYTES: usize = 1 << 20;
const DELETES_PER_RECORD: usize = 1 << 16;

/// Streams a segment into `<path>.tmp`; [`SegmentWriter::finish`] makes it durable and renames it.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    hasher: crc32fast::Hasher,
    records: u64,
    bytes: u64,
    docs: u64,
    frame: Vec<u8>,
}

impl SegmentWriter {
    pub(crate) fn create(path: &Path) -> Result<Self, StoreError> {
        let tmp = format::temp_path(path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        let mut w = SegmentWriter {
            out: BufWriter::new(file),
            tmp,
            path: path.to_path_buf(),
            hasher: crc32fast::Hasher::new(),
            records: 0,
            bytes: 0,
            docs: 0,
            frame: Vec::new(),
        };
        w.write_raw(&format::header(FileKind::Segment))?;
        Ok(w)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(|e| StoreError::io(&self.tmp, e))
    }

    fn write_payload(&mut self, payload: &[u8]) -> Result<(), StoreError> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        format::frame(payload, &mut frame);
        self.write_raw(&frame)?;
        self.frame = frame;
        self.records += 1;
        Ok(())
    }

    fn encoding_error(&self, reason: String) -> StoreError {
        StoreError::corruption(&self.tmp, self.bytes, format!("cannot encode a segment record: {reason}"))
    }

    /// Write documents, grouped into records of about a mebibyte.
    pub(crate) fn write_documents<'a>(&mut self, docs: impl Iterator<Item = &'a Document>) -> Result<(), StoreError> {
        let mut group: Vec<&Document> = Vec::new();
        let mut group_bytes = 0;
        for doc in docs {
            group_bytes += doc.id.len()
                + doc.text.len()
                + doc.vector.len() * 4
                + doc.sparse.len() * 8
                + doc.multivector.iter().map(|t| t.len() * 4).sum::<usize>()
                + 64;
            group.push(doc);
            if group_bytes >= RECORD_TARGET_BYTES {
                self.write_group(&group)?;
                group.clear();
                group_bytes = 0;
            }
        }
        if !group.is_empty() {
            self.write_group(&group)?;
        }
        Ok(())
    }

    fn write_group(&mut self, group: &[&Document]) -> Result<(), StoreError> {
        let payload = op::encode_upsert(group.iter().copied()).map_err(|e| self.encoding_error(e))?;
        if payload.len() > format::MAX_RECORD_BYTES {
            // A single document this large was refused at upsert; only a group can get here.
            let (a, b) = group.split_at(group.len() / 2);
            if a.is_empty() {
                return Err(self.encoding_error("a document is larger than a record".into()));
            }
            self.write_group(a)?;
            return self.write_group(b);
        }
        self.write_payload(&payload)?;
        self.docs += group.len() as u64;
        Ok(())
    }

    pub(crate) fn write_deletes(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        for chunk in ids.chunks(DELETES_PER_RECORD) {
            let payload = op::encode_delete(chunk.iter().copied()).map_err(|e| self.encoding_error(e))?;
            self.write_payload(&payload)?;
        }
        Ok(())
    }

    /// Write the trailer, fsync, rename into place and fsync the directory. Returns (bytes, docs).
    pub(crate) fn finish(mut self) -> Result<(u64, u64), StoreError> {
        let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
        trailer.extend_from_slice(&self.records.to_le_bytes());
        trailer.extend_from_slice(&self.hasher.clone().finalize().to_le_bytes());
        trailer.extend_from_slice(TRAILER_MAGIC);
        self.write_raw(&trailer)?;
        let file = self.out.into_inner().map_err(|e| StoreError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(file);
        format::rename_durably(&self.tmp, &self.path)?;
        Ok((self.bytes, self.docs))
    }
}

/// Read a segment, handing each operation to `apply` in order. Any damage (a bad checksum, a
/// truncated file, a wrong trailer) is an error naming the file and the offset.
pub(crate) fn read_segment(
    path: &Path,
    mut apply: impl FnMut(u64, Op) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (file, len, head) = format::open_checked(path, FileKind::Segment)?;
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(StoreError::corruption(path, len, "the segment is too short to hold its trailer (truncated?)"));
    }
    let body_end = len - TRAILER_LEN;
    let mut reader = RecordReader::new(BufReader::new(file), path, &head, body_end, TailPolicy::Strict);
    let mut records = 0u64;
    while let Some((offset, payload)) = reader.next_record()? {
        let op = op::decode(&payload).map_err(|reason| StoreError::corruption(path, offset, reason))?;
        apply(offset, op)?;
        records += 1;
    }
    let crc = reader.crc();
    let mut trailer = [0u8; TRAILER_LEN as usize];
    reader.into_inner().read_exact(&mut trailer).map_err(|e| StoreError::io(path, e))?;
    let mut count = [0u8; 8];
    count.copy_from_slice(&trailer[..8]);
    let stored_crc = u32::from_le_bytes([trailer[8], trailer[9], trailer[10], trailer[11]]);
    let reason = if &trailer[12..] != TRAILER_MAGIC {
        Some("the segment trailer is missing (truncated or overwritten)".to_string())
    } else if u64::from_le_bytes(count) != records {
        Some(format!("the trailer counts {} records, the segment holds {records}", u64::from_le_bytes(count)))
    } else if stored_crc != crc {
        Some("the segment checksum does not match its contents".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::corruption(path, body_end, reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn doc(i: usize) -> Document {
        Document {
            id: format!("d{i}"),
            text: "x".repeat(i),
            vector: vec![i as f32; 4],
            metadata: Map::new(),
            ..Document::default()
        }
    }

    #[test]
    fn segments_round_trip_and_every_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg-0000000001.seg");
        let docs: Vec<Document> = (0..5).map(doc).collect();
        let mut w = SegmentWriter::create(&path).unwrap();
        w.write_documents(docs.iter()).unwrap();
        w.write_deletes(&["gone"]).unwrap();
        let (bytes, n) = w.finish().unwrap();
        assert_eq!(n, 5);
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!format::temp_path(&path).exists());

        let mut ops = Vec::new();
        read_segment(&path, |_, op| {
            ops.push(op);
            Ok(())
        })
        .unwrap();
        assert_eq!(ops, vec![Op::Upsert(docs), Op::Delete(vec!["gone".into()])]);

        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            let err = read_segment(&path, |_, _| Ok(())).unwrap_err();
            assert!(err.to_string().contains("seg-0000000001.seg"), "byte {i}: {err}");
        }
        for cut in [0, 10, 16, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(read_segment(&path, |_, _| Ok(())).is_err(), "cut {cut}");
        }
    }
}
