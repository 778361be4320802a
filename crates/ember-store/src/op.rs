//! The payload of log and segment records: a batch of upserts or a batch of deletes, in a
//! little-endian binary layout (vectors bit-exact, metadata as a JSON object).
//!
//! ```text
//! op       = 0x01 upsert | count: u32 | document * count
//!          | 0x02 delete | count: u32 | string * count
//! document = id: string | text: string | dim: u32 | f32 LE * dim | metadata: string (a JSON object)
//! string   = len: u32 | UTF-8 bytes
//! ```

use serde_json::{Map, Value};

use crate::document::Document;

const UPSERT: u8 = 1;
const DELETE: u8 = 2;

/// One logged change. A whole `upsert` or `delete` call is one op, so it is applied (and
/// recovered) all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Upsert(Vec<Document>),
    Delete(Vec<String>),
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) -> Result<(), String> {
    let len = u32::try_from(s.len()).map_err(|_| format!("a {}-byte string is too long", s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s);
    Ok(())
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<(), String> {
    let n = u32::try_from(n).map_err(|_| format!("{n} items do not fit one record"))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Encode one document. Errors (a field over 4 GiB) name the problem.
fn put_document(out: &mut Vec<u8>, doc: &Document) -> Result<(), String> {
    put_str(out, doc.id.as_bytes())?;
    put_str(out, doc.text.as_bytes())?;
    put_count(out, doc.vector.len())?;
    out.reserve(doc.vector.len() * 4);
    for x in &doc.vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let meta = serde_json::to_vec(&doc.metadata).map_err(|e| format!("metadata does not serialize: {e}"))?;
    put_str(out, &meta)
}

pub(crate) fn encode_upsert<'a>(docs: impl ExactSizeIterator<Item = &'a Document>) -> Result<Vec<u8>, String> {
    let mut out = vec![UPSERT];
    put_count(&mut out, docs.len())?;
    for doc in docs {
        put_document(&mut out, doc)?;
    }
    Ok(out)
}

pub(crate) fn encode_delete<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<Vec<u8>, String> {
    let mut out = vec![DELETE];
    put_count(&mut out, ids.len())?;
    for id in ids {
        put_str(&mut out, id.as_bytes())?;
    }
    Ok(out)
}

/// A cursor over a payload; every read is bounds-checked so a bad payload is an error, never a panic.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("payload ends inside a {n}-byte field at payload byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("invalid UTF-8 in a string at payload byte {at}"))
    }

    fn document(&mut self) -> Result<Document, String> {
        let id = self.string()?;
        let text = self.string()?;
        let dim = self.u32()? as usize;
        let raw = self.take(dim.checked_mul(4).ok_or("vector length overflows")?)?;
        let vector = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let len = self.u32()? as usize;
        let meta = self.take(len)?;
        let metadata: Map<String, Value> =
            serde_json::from_slice(meta).map_err(|e| format!("metadata of {id:?} is not a JSON object: {e}"))?;
        Ok(Document { id, text, vector, metadata })
    }
}

/// Decode a payload; the error says what is wrong (the caller adds file and offset).
pub(crate) fn decode(bytes: &[u8]) -> Result<Op, String> {
    let mut c = Cursor { bytes, at: 0 };
    let kind = c.take(1)?[0];
    let count = c.u32()? as usize;
    // Each item takes at least 4 bytes, which bounds a corrupt count before allocating for it.
    let cap = count.min(bytes.len() / 4);
    let op = match kind {
        UPSERT => {
            let mut docs = Vec::with_capacity(cap);
            for _ in 0..count {
                docs.push(c.document()?);
            }
            Op::Upsert(docs)
        }
        DELETE => {
            let mut ids = Vec::with_capacity(cap);
            for _ in 0..count {
                ids.push(c.string()?);
            }
            Op::Delete(ids)
        }
        other => return Err(format!("unknown operation {other}")),
    };
    if c.at != bytes.len() {
        return Err(format!("{} unexpected bytes after the operation", bytes.len() - c.at));
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_bit_exactly() {
        let mut metadata = Map::new();
        metadata.insert("lang".into(), "en".into());
        metadata.insert("year".into(), 2021.into());
        metadata.insert("score".into(), serde_json::json!(0.1));
        metadata.insert("nested".into(), serde_json::json!({"a": [1, "b", null, true]}));
        let docs = vec![
            Document {
                id: "a".into(),
                text: "héllo ✓".into(),
                vector: vec![0.1, -0.0, f32::MIN_POSITIVE, 3e38],
                metadata,
            },
            Document { id: "b".into(), text: String::new(), vector: vec![], metadata: Map::new() },
        ];
        let bytes = encode_upsert(docs.iter()).unwrap();
        let Op::Upsert(back) = decode(&bytes).unwrap() else { panic!("not an upsert") };
        assert_eq!(back, docs);
        assert_eq!(back[0].vector[1].to_bits(), (-0.0f32).to_bits());
        let bytes = encode_delete(["x", "", "ü"].into_iter()).unwrap();
        assert_eq!(decode(&bytes).unwrap(), Op::Delete(vec!["x".into(), "".into(), "ü".into()]));
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let docs = [Document { id: "a".into(), text: "t".into(), vector: vec![1.0; 3], metadata: Map::new() }];
        let bytes = encode_upsert(docs.iter()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        assert!(decode(&[9, 0, 0, 0, 0]).unwrap_err().contains("unknown operation 9"));
    }
}
