//! The byte format of an [`InvertedIndex`], so a store can persist it.
//!
//! Little-endian, version 1:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `EMBRSPRS` |
//! | 4 | format version (1) |
//! | 4 + P | parameters as JSON ([`InvertedIndexParams`], analyzer included), length first |
//! | 8 | term count `T` (BM25; 0 for dot product) |
//! | T · (4 + len) | term texts, in term id order: byte length, UTF-8 |
//! | 8 | point count `N` |
//! | N · (4 + 4 + n · 8) | points by increasing id: id, term count `n`, then `n` × (term id, value `f32`) by term id |
//! | 8 | checksum of every byte before it |
//!
//! Only the forward index is written; the postings, lengths and statistics are rebuilt from it
//! on load (in id order, so every posting is an append). A BM25 point's length is the sum of its
//! term frequencies. Loading checks every count, id, order and value and the checksum, so
//! corrupt bytes give an [`IndexError`], never a panic or an index that could panic later.

use rustc_hash::FxHashMap as HashMap;

use super::index::{InvertedIndex, InvertedIndexParams, MAX_SPARSE_ID};
use crate::bytes::{checksum, ByteReader};
use crate::error::IndexError;

const MAGIC: &[u8; 8] = b"EMBRSPRS";
const VERSION: u32 = 1;
const KIND: &str = "sparse";
/// Term frequencies are stored as `f32`, exact below this.
const MAX_TF: f32 = (1 << 24) as f32;

fn corrupt(what: impl Into<String>) -> IndexError {
    IndexError::Corrupt { kind: KIND, what: what.into() }
}

impl InvertedIndex {
    /// The index as bytes (format in [`format`](self)); [`InvertedIndex::from_bytes`] reads them
    /// back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let params = serde_json::to_vec(&self.params).unwrap_or_default();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(params.len() as u32).to_le_bytes());
        out.extend_from_slice(&params);
        out.extend_from_slice(&(self.terms.len() as u64).to_le_bytes());
        for t in &self.terms {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for (id, entries) in self.docs.iter().enumerate() {
            let Some(entries) = entries else { continue };
            out.extend_from_slice(&(id as u32).to_le_bytes());
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for &(term, value) in entries.iter() {
                out.extend_from_slice(&term.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Read an index written by [`InvertedIndex::to_bytes`]; any inconsistency is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<InvertedIndex, IndexError> {
        let mut r = ByteReader::new(bytes, KIND);
        if r.take(8)? != MAGIC {
            return Err(IndexError::BadMagic { kind: KIND });
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion { kind: KIND, found: version, supported: VERSION });
        }
        if bytes.len() < 8 + 4 + 8 {
            return Err(IndexError::Truncated { kind: KIND, needed: 20, available: bytes.len() as u64 });
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(sum);
        if checksum(body) != u64::from_le_bytes(stored) {
            return Err(IndexError::ChecksumMismatch { kind: KIND });
        }
        let mut r = ByteReader::new(&body[12..], KIND);

        let params_len = r.u32()? as usize;
        let params: InvertedIndexParams =
            serde_json::from_slice(r.take(params_len)?).map_err(|e| corrupt(format!("parameters: {e}")))?;
        let mut index = InvertedIndex::new(params).map_err(|e| corrupt(format!("parameters: {e}")))?;
        let bm25 = index.analyzer.is_some();

        let term_count = r.count("term", 4)?;
        if !bm25 && term_count != 0 {
            return Err(corrupt("a dot-product index with a term dictionary"));
        }
        if term_count > u32::MAX as usize {
            return Err(corrupt(format!("{term_count} terms")));
        }
        let mut dictionary = HashMap::with_capacity_and_hasher(term_count, Default::default());
        let mut terms = Vec::with_capacity(term_count);
        for tid in 0..term_count as u32 {
            let len = r.u32()? as usize;
            let text = std::str::from_utf8(r.take(len)?).map_err(|_| corrupt(format!("term {tid} is not UTF-8")))?;
            if dictionary.insert(text.to_string(), tid).is_some() {
                return Err(corrupt(format!("term {text:?} listed twice")));
            }
            terms.push(text.to_string());
        }
        index.dictionary = dictionary;
        index.terms = terms;

        let points = r.count("point", 8)?;
        let mut last: Option<u32> = None;
        for _ in 0..points {
            let id = r.u32()?;
            if id as usize > MAX_SPARSE_ID || last.is_some_and(|l| id <= l) {
                return Err(corrupt(format!("point id {id} out of order or out of range")));
            }
            last = Some(id);
            let n = r.u32()? as usize;
            let raw = r.take(n.checked_mul(8).ok_or_else(|| corrupt("sizes overflow"))?)?;
            let mut entries = Vec::with_capacity(n);
            let mut len = 0f64;
            for c in raw.chunks_exact(8) {
                let term = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let value = f32::from_le_bytes([c[4], c[5], c[6], c[7]]);
                if entries.last().is_some_and(|&(t, _)| term <= t) {
                    return Err(corrupt(format!("point {id}: terms out of order")));
                }
                let valid = if bm25 {
                    (term as usize) < term_count && (1.0..MAX_TF).contains(&value) && value.fract() == 0.0
                } else {
                    value.is_finite() && value > 0.0
                };
                if !valid {
                    return Err(corrupt(format!("point {id}: term {term} has value {value}")));
                }
                len += f64::from(value);
                entries.push((term, value));
            }
            if len >= f64::from(MAX_TF) {
                return Err(corrupt(format!("point {id} has {len} tokens")));
            }
            index.put(id, entries, if bm25 { len as u32 } else { 0 });
        }
        if !r.bytes.is_empty() {
            return Err(IndexError::TrailingBytes { kind: KIND, extra: r.bytes.len() });
        }
        Ok(index)
    }
}
