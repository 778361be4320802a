//! Documents as Milvus columns and back, and ember collection names as Milvus names.

use std::collections::BTreeMap;

use milvus::v2::prelude::FieldData;
use serde_json::{Map, Value};

use crate::document::Document;

/// The fields of an ember collection in Milvus.
pub(super) const ID: &str = "id";
pub(super) const TEXT: &str = "text";
pub(super) const METADATA: &str = "metadata";
pub(super) const DENSE: &str = "dense";
pub(super) const SPARSE: &str = "sparse";

/// Milvus refuses an empty sparse vector (and one without a nonzero weight), which ember allows
/// (a document the sparse model found no term for). Such a document is stored with this one
/// term, weight 1, which no query holds (query terms equal to it are dropped, document terms
/// equal to it are refused), and read back without it.
pub(super) const PLACEHOLDER_TERM: u32 = u32::MAX - 1;

/// The longest id and text Milvus's `VarChar` fields hold (bytes).
pub(super) const MAX_ID_BYTES: usize = 4096;
pub(super) const MAX_TEXT_BYTES: usize = 65_535;

/// Collection names in Milvus: letters, digits and `_`, starting with a letter or `_`. An ember
/// name (letters, digits, `_`, `-`, `.`) maps to `ember_` + the name with `_` → `_u`, `-` → `_h`,
/// `.` → `_d`: one Milvus name per ember name, and back.
pub(super) fn milvus_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str("ember_");
    for c in name.chars() {
        match c {
            '_' => out.push_str("_u"),
            '-' => out.push_str("_h"),
            '.' => out.push_str("_d"),
            c => out.push(c),
        }
    }
    out
}

/// The ember name of a Milvus collection ember created, `None` for any other collection.
pub(super) fn ember_name(milvus: &str) -> Option<String> {
    let rest = milvus.strip_prefix("ember_")?;
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '_' => out.push(match chars.next()? {
                'u' => '_',
                'h' => '-',
                'd' => '.',
                _ => return None,
            }),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

pub(super) use crate::filter::milvus::quote;

/// Documents as the columns of one upsert request.
pub(super) fn columns(docs: &[&Document], sparse: bool) -> Vec<FieldData> {
    let mut out = vec![
        FieldData::VarChar { name: ID.into(), values: docs.iter().map(|d| d.id.clone()).collect() },
        FieldData::VarChar { name: TEXT.into(), values: docs.iter().map(|d| d.text.clone()).collect() },
        FieldData::Json {
            name: METADATA.into(),
            values: docs.iter().map(|d| Value::Object(d.metadata.clone())).collect(),
        },
        FieldData::FloatVector { name: DENSE.into(), values: docs.iter().map(|d| d.vector.clone()).collect() },
    ];
    if sparse {
        let values = docs
            .iter()
            .map(|d| {
                let mut v: BTreeMap<u32, f32> = d.sparse.iter().copied().collect();
                if !v.values().any(|w| *w != 0.0) {
                    v.insert(PLACEHOLDER_TERM, 1.0);
                }
                v
            })
            .collect();
        out.push(FieldData::SparseFloatVector { name: SPARSE.into(), values });
    }
    out
}

/// The output fields a read asks for.
pub(super) fn output_fields(sparse: bool) -> Vec<&'static str> {
    let mut fields = vec![ID, TEXT, METADATA, DENSE];
    if sparse {
        fields.push(SPARSE);
    }
    fields
}

/// Documents from the columns of a query or search result, in row order. `Err` names what is
/// missing or malformed.
pub(super) fn documents(fields: &[FieldData], rows: usize, sparse: bool) -> Result<Vec<Document>, String> {
    if rows == 0 {
        // An empty result may come without any columns (a sparse search that matched nothing).
        return Ok(Vec::new());
    }
    let find = |name: &str| fields.iter().find(|f| f.name() == name);
    let column = |name: &str| find(name).ok_or_else(|| format!("the result has no '{name}' field"));
    let wrong = |name: &str| format!("the result's '{name}' field has an unexpected type");
    let short = |name: &str, len: usize| format!("the result's '{name}' field has {len} rows, expected {rows}");
    let ids = column(ID)?.as_varchar().ok_or_else(|| wrong(ID))?;
    let texts = column(TEXT)?.as_varchar().ok_or_else(|| wrong(TEXT))?;
    let metadata = column(METADATA)?.as_json().ok_or_else(|| wrong(METADATA))?;
    let vectors = column(DENSE)?.as_float_vectors().ok_or_else(|| wrong(DENSE))?;
    let sparse =
        if sparse { Some(column(SPARSE)?.as_sparse_float_vectors().ok_or_else(|| wrong(SPARSE))?) } else { None };
    for (name, len) in [(ID, ids.len()), (TEXT, texts.len()), (METADATA, metadata.len()), (DENSE, vectors.len())] {
        if len != rows {
            return Err(short(name, len));
        }
    }
    if let Some(s) = sparse {
        if s.len() != rows {
            return Err(short(SPARSE, s.len()));
        }
    }
    Ok((0..rows)
        .map(|i| Document {
            id: ids[i].clone(),
            text: texts[i].clone(),
            vector: vectors[i].clone(),
            metadata: match &metadata[i] {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            },
            sparse: sparse
                .map(|s| s[i].iter().filter(|(t, _)| **t != PLACEHOLDER_TERM).map(|(t, w)| (*t, *w)).collect())
                .unwrap_or_default(),
            multivector: Vec::new(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_for_expressions() {
        assert_eq!(quote("a"), r#""a""#);
        assert_eq!(quote("say \"hi\"\\\n\t'é"), r#""say \"hi\"\\\n\t'é""#);
    }

    #[test]
    fn names_map_one_to_one() {
        for name in ["docs", "a_b", "a-b", "a.b", "Beta.2", "x_u", "_", "a__-.b"] {
            let m = milvus_name(name);
            assert!(m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{m}");
            assert_eq!(ember_name(&m).as_deref(), Some(name), "{m}");
        }
        assert_ne!(milvus_name("a_h"), milvus_name("a-"));
        assert_eq!(ember_name("books"), None);
        assert_eq!(ember_name("ember_a_x"), None);
        assert_eq!(ember_name("ember_"), None);
    }

    #[test]
    fn documents_round_trip_through_columns() {
        let docs = vec![
            Document {
                id: "a".into(),
                text: "t".into(),
                vector: vec![1.0, 2.0],
                metadata: serde_json::json!({"k": [1, null]}).as_object().cloned().unwrap_or_default(),
                sparse: vec![(3, 0.5), (9, 0.0)],
                multivector: Vec::new(),
            },
            Document { id: "b".into(), vector: vec![0.0, 1.0], ..Document::default() },
            Document { id: "c".into(), vector: vec![0.0, 1.0], sparse: vec![(1, 0.0)], ..Document::default() },
        ];
        let refs: Vec<&Document> = docs.iter().collect();
        let cols = columns(&refs, true);
        let stored = cols[4].as_sparse_float_vectors().map(|v| v.to_vec()).unwrap_or_default();
        assert_eq!(stored[1], BTreeMap::from([(PLACEHOLDER_TERM, 1.0)]));
        assert_eq!(stored[2], BTreeMap::from([(1, 0.0), (PLACEHOLDER_TERM, 1.0)]));
        assert_eq!(documents(&cols, 3, true).unwrap(), docs);
        assert!(documents(&cols[..3], 3, true).unwrap_err().contains("no 'dense' field"));
        assert!(documents(&cols, 2, true).unwrap_err().contains("has 3 rows, expected 2"));
    }
}
