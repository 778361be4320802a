//! The payload of log and segment records: a batch of upserts or a batch of deletes, in a
//! little-endian binary layout (vectors bit-exact, metadata as a JSON object).
//!
//! ```text
//! op       = 0x01 upsert | count: u32 | document * count
//!          | 0x02 delete | count: u32 | string * count
//!          | 0x03 upsert with fields | count: u32 | (document fields) * count
//! document = id: string | text: string | dim: u32 | f32 LE * dim | metadata: string (a JSON object)
//! fields   = terms: u32 | (term: u32 | weight: f32 LE) * terms
//!          | tokens: u32 | token_dim: u32 | f32 LE * tokens * token_dim
//! string   = len: u32 | UTF-8 bytes
//! ```
//!
//! A batch in which no document has a sparse vector or token vectors is written as `0x01`, byte
//! for byte as before those fields existed; any other batch is written as `0x03`.

use serde_json::{Map, Value};

use crate::document::Document;

const UPSERT: u8 = 1;
const DELETE: u8 = 2;
const UPSERT_FIELDS: u8 = 3;

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

/// Encode a document's sparse vector and token vectors (the `0x03` extension).
fn put_fields(out: &mut Vec<u8>, doc: &Document) -> Result<(), String> {
    put_count(out, doc.sparse.len())?;
    for &(term, weight) in &doc.sparse {
        out.extend_from_slice(&term.to_le_bytes());
        out.extend_from_slice(&weight.to_le_bytes());
    }
    put_count(out, doc.multivector.len())?;
    let dim = doc.multivector.first().map_or(0, Vec::len);
    if doc.multivector.iter().any(|t| t.len() != dim) {
        return Err("token vectors of different lengths".into());
    }
    put_count(out, dim)?;
    for x in doc.multivector.iter().flatten() {
        out.extend_from_slice(&x.to_le_bytes());
    }
    Ok(())
}

pub(crate) fn encode_upsert<'a>(docs: impl ExactSizeIterator<Item = &'a Document> + Clone) -> Result<Vec<u8>, String> {
    let fields = docs.clone().any(|d| !d.sparse.is_empty() || !d.multivector.is_empty());
    let mut out = vec![if fields { UPSERT_FIELDS } else { UPSERT }];
    put_count(&mut out, docs.len())?;
    for doc in docs {
        put_document(&mut out, doc)?;
        if fields {
            put_fields(&mut out, doc)?;
        }
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
        Ok(Document { id, text, vector, metadata, ..Document::default() })
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let raw = self.take(n.checked_mul(4).ok_or("vector length overflows")?)?;
        Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn document_with_fields(&mut self) -> Result<Document, String> {
        let mut doc = self.document()?;
        let terms = self.u32()? as usize;
        let raw = self.take(terms.checked_mul(8).ok_or("sparse length overflows")?)?;
        doc.sparse = raw
            .chunks_exact(8)
            .map(|b| (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), f32::from_le_bytes([b[4], b[5], b[6], b[7]])))
            .collect();
        let tokens = self.u32()? as usize;
        let dim = self.u32()? as usize;
        let flat = self.f32s(tokens.checked_mul(dim).ok_or("token vectors overflow")?)?;
        if dim == 0 && tokens > 0 {
            return Err(format!("{tokens} token vectors of length 0 in {:?}", doc.id));
        }
        doc.multivector = flat.chunks_exact(dim.max(1)).map(<[f32]>::to_vec).collect();
        Ok(doc)
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
        UPSERT_FIELDS => {
            let mut docs = Vec::with_capacity(cap);
            for _ in 0..count {
                docs.push(c.document_with_fields()?);
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
        // Floats that serde_json's default (not `float_roundtrip`) parser reads back one ULP off.
        metadata.insert("thirds".into(), Value::Array((0..1000).map(|i| serde_json::json!(i as f64 / 3.0)).collect()));
        let docs = vec![
            Document {
                id: "a".into(),
                text: "héllo ✓".into(),
                vector: vec![0.1, -0.0, f32::MIN_POSITIVE, 3e38],
                metadata,
                ..Document::default()
            },
            Document { id: "b".into(), text: String::new(), vector: vec![], ..Document::default() },
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
        let docs = [Document { id: "a".into(), text: "t".into(), vector: vec![1.0; 3], ..Document::default() }];
        let bytes = encode_upsert(docs.iter()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let fields = [Document { sparse: vec![(3, 0.5)], multivector: vec![vec![1.0, 2.0]; 2], ..docs[0].clone() }];
        let with_fields = encode_upsert(fields.iter()).unwrap();
        for cut in 0..with_fields.len() {
            assert!(decode(&with_fields[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        assert!(decode(&[9, 0, 0, 0, 0]).unwrap_err().contains("unknown operation 9"));
    }

    #[test]
    fn sparse_and_token_vectors_use_the_new_tag_and_plain_documents_keep_the_old_bytes() {
        let plain = Document { id: "a".into(), text: "t".into(), vector: vec![0.5, -1.0], ..Document::default() };
        let bytes = encode_upsert([&plain].into_iter()).unwrap();
        let mut expected = vec![UPSERT, 1, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b't', 2, 0, 0, 0];
        expected.extend_from_slice(&0.5f32.to_le_bytes());
        expected.extend_from_slice(&(-1.0f32).to_le_bytes());
        expected.extend_from_slice(&[2, 0, 0, 0, b'{', b'}']);
        assert_eq!(bytes, expected);

        let rich = Document {
            id: "b".into(),
            sparse: vec![(7, 1.5), (2054, 0.25)],
            multivector: vec![vec![1.0, 0.0, -0.0], vec![0.25, 0.5, 3e38]],
            ..plain.clone()
        };
        let bytes = encode_upsert([&plain, &rich].into_iter()).unwrap();
        assert_eq!(bytes[0], UPSERT_FIELDS);
        let Op::Upsert(back) = decode(&bytes).unwrap() else { panic!("not an upsert") };
        assert_eq!(back, vec![plain, rich]);
        assert_eq!(back[1].multivector[0][2].to_bits(), (-0.0f32).to_bits());
        let ragged = Document { multivector: vec![vec![1.0], vec![1.0, 2.0]], ..back[0].clone() };
        assert!(encode_upsert([&ragged].into_iter()).unwrap_err().contains("different lengths"));
    }
}
