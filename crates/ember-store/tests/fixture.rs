//! Compatibility: `tests/fixtures/store-v1` is a data directory written by format version 1
//! (a compacted segment, a flushed segment holding a delete, records still in the log).
//! Every later build must read it and find exactly these documents.
//!
//! Regenerate only together with a deliberate format change (bump `FORMAT_VERSION`, keep the old
//! fixture and its test, add a new one):
//! `cargo test -p ember-store --test fixture -- --ignored write_fixture`

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, meta};
use ember_core::Similarity;
use ember_store::{CollectionConfig, Document, Filter, IndexKind, Precision, Store, StoreOptions, FORMAT_VERSION};
use serde_json::json;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

fn notes_config() -> CollectionConfig {
    CollectionConfig {
        model_id: "BAAI/bge-small-en-v1.5".into(),
        dimension: 4,
        distance: Similarity::Cosine,
        precision: Precision::Float16,
        index: IndexKind::Flat,
        text_index: None,
        sparse: None,
        multivector: None,
    }
}

fn empty_config() -> CollectionConfig {
    CollectionConfig {
        model_id: "intfloat/e5-small-v2".into(),
        dimension: 2,
        distance: Similarity::Dot,
        precision: Precision::Int8,
        index: IndexKind::Flat,
        text_index: None,
        sparse: None,
        multivector: None,
    }
}

// Metadata keys are written in sorted order so the bytes do not depend on serde_json's
// `preserve_order` feature.
fn a_v1() -> Document {
    Document {
        id: "a".into(),
        text: "first version of a".into(),
        vector: vec![1.0, 0.0, 0.0, 0.0],
        metadata: meta(json!({"lang": "en", "year": 2019})),
        ..Document::default()
    }
}

fn a_v2() -> Document {
    Document {
        id: "a".into(),
        text: "Alpha, rewritten: «ünïcode» and \"quotes\"\nsecond line".into(),
        vector: vec![0.5, -1.25, 1e-3, 3.0e38],
        metadata: meta(
            json!({"lang": "en", "meta": {"author": "Ann", "score": 0.1}, "tags": ["x", "y"], "year": 2024}),
        ),
        ..Document::default()
    }
}

fn b_v1() -> Document {
    Document {
        id: "b".into(),
        text: "b".into(),
        vector: vec![0.0, 1.0, 0.0, 0.0],
        metadata: meta(json!({"lang": "de"})),
        ..Document::default()
    }
}

fn b_v2() -> Document {
    Document {
        id: "b".into(),
        text: "Beta, overwritten before the compaction".into(),
        vector: vec![0.0, 1.0, 1.0, 0.0],
        metadata: meta(json!({"big": 18446744073709551615u64, "lang": "de", "none": null, "year": 2021})),
        ..Document::default()
    }
}

fn c() -> Document {
    Document {
        id: "c".into(),
        text: "deleted in a segment".into(),
        vector: vec![0.0, 0.0, 1.0, 0.0],
        metadata: meta(json!({})),
        ..Document::default()
    }
}

fn d() -> Document {
    Document {
        id: "d".into(),
        text: "deleted in the log".into(),
        vector: vec![0.0, 0.0, 0.0, 1.0],
        metadata: meta(json!({})),
        ..Document::default()
    }
}

fn e() -> Document {
    Document {
        id: "e".into(),
        text: String::new(),
        vector: vec![-1.0, -1.0, -1.0, -1.0],
        metadata: meta(json!({"lang": "fr", "year": 2020})),
        ..Document::default()
    }
}

fn f() -> Document {
    Document {
        id: "f/with spaces & ✓".into(),
        text: "only in the log".into(),
        vector: vec![0.25, 0.25, 0.25, 0.25],
        metadata: meta(json!({"lang": "en", "year": 2023})),
        ..Document::default()
    }
}

/// The fixture's history. Every write of the first phase triggers a flush (tiny threshold).
fn write_store(dir: &Path) {
    {
        let tiny = StoreOptions { wal_flush_bytes: 1, max_segments: 8, background_maintenance: false };
        let store = Store::open_with(dir, tiny).unwrap();
        store.create_collection("empty", empty_config()).unwrap();
        let notes = store.create_collection("notes", notes_config()).unwrap();
        notes.upsert(vec![a_v1(), b_v1(), c(), d()]).unwrap(); // flush → seg 1
        notes.upsert(vec![e(), b_v2()]).unwrap(); // flush → seg 2
        notes.compact().unwrap(); // segs 1 and 2 → seg 3
        notes.delete(&["c"]).unwrap(); // flush → seg 4 (a delete)
    }
    let store = Store::open(dir).unwrap();
    let notes = store.collection("notes").unwrap();
    notes.upsert(vec![f()]).unwrap(); // these stay in the log
    notes.delete(&["d"]).unwrap();
    notes.upsert(vec![a_v2()]).unwrap();
}

fn expected() -> Vec<Document> {
    vec![a_v2(), b_v2(), e(), f()]
}

#[test]
#[ignore = "writes the committed fixture; run by hand with a deliberate format change"]
fn write_fixture() {
    let dir = fixture_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    write_store(&dir);
}

#[test]
fn reads_the_committed_v1_fixture() {
    assert!(fixture_dir().join("STORE").exists(), "the fixture is committed under tests/fixtures/store-v1");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.names().unwrap(), ["empty", "notes"]);

    let empty = store.collection("empty").unwrap();
    assert_eq!(empty.config(), &empty_config());
    assert!(empty.is_empty());

    let notes = store.collection("notes").unwrap();
    assert_eq!(notes.config(), &notes_config());
    let info = notes.info();
    assert_eq!((info.count, info.segments), (4, 2));
    assert_eq!(notes.scan(None).unwrap(), expected());
    for doc in expected() {
        assert_eq!(notes.get(&doc.id).unwrap(), Some(doc));
    }
    assert_eq!(notes.get("c").unwrap(), None);
    assert_eq!(notes.get("d").unwrap(), None);
    // Bit-exact vectors, including an extreme one.
    assert_eq!(notes.get("a").unwrap().unwrap().vector[3].to_bits(), 3.0e38f32.to_bits());

    let hits = notes.search(&[0.0, 1.0, 1.0, 0.0], 2, None).unwrap();
    assert_eq!(hits[0].id, "b");
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    let filter = Filter::parse(r#"lang = "en" and year >= 2023"#).unwrap();
    let hits = notes.search(&[1.0, 0.0, 0.0, 0.0], 10, Some(&filter)).unwrap();
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["f/with spaces & ✓", "a"]);

    // Opening an intact store changes none of its files.
    for entry in walk(&fixture_dir()) {
        let copy = tmp.path().join(entry.strip_prefix(fixture_dir()).unwrap());
        assert_eq!(std::fs::read(&entry).unwrap(), std::fs::read(&copy).unwrap(), "{}", entry.display());
    }
    // It still takes writes.
    notes.upsert(vec![c()]).unwrap();
    notes.compact().unwrap();
    assert_eq!(notes.len(), 5);
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn this_build_writes_the_fixture_byte_for_byte() {
    // Any change to the bytes written is a format change: bump FORMAT_VERSION and add a fixture.
    assert_eq!(FORMAT_VERSION, 1);
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path());
    let ours: Vec<PathBuf> =
        walk(tmp.path()).iter().map(|p| p.strip_prefix(tmp.path()).unwrap().to_path_buf()).collect();
    let committed: Vec<PathBuf> =
        walk(&fixture_dir()).iter().map(|p| p.strip_prefix(fixture_dir()).unwrap().to_path_buf()).collect();
    assert_eq!(ours, committed);
    for file in ours {
        let (a, b) =
            (std::fs::read(tmp.path().join(&file)).unwrap(), std::fs::read(fixture_dir().join(&file)).unwrap());
        if file == Path::new("STORE") {
            // Its payload names the crate version that created the store; the header must match.
            assert_eq!(a[..16], b[..16]);
        } else {
            assert!(a == b, "{} differs from the committed fixture", file.display());
        }
    }
}
