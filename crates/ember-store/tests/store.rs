//! The store's API contract: collections, documents, search, filters, compaction.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use common::{collection_dir, config, doc, files_with, meta, vector};
use ember_core::Similarity;
use ember_store::{CollectionConfig, Document, Filter, IndexKind, Store, StoreError, StoreOptions};
use serde_json::json;

#[test]
fn collections_are_created_listed_found_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_collection("alpha", config(3)).unwrap();
    let other = CollectionConfig { model_id: "other".into(), distance: Similarity::Dot, ..config(5) };
    store.create_collection("beta", other.clone()).unwrap();
    a.upsert(vec![doc("x", 1, 3, json!({}))]).unwrap();

    let err = store.create_collection("alpha", config(3)).unwrap_err();
    assert!(matches!(&err, StoreError::AlreadyExists { name } if name == "alpha"), "{err}");
    let err = store.collection("gamma").unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { name, available } if name == "gamma" && available == &["alpha", "beta"]),
        "{err}"
    );
    assert_eq!(err.to_string(), "no collection named 'gamma' (available: alpha, beta)");

    let list = store.list().unwrap();
    assert_eq!(list.iter().map(|i| (i.name.as_str(), i.count)).collect::<Vec<_>>(), [("alpha", 1), ("beta", 0)]);
    assert_eq!(list[1].config, other);
    drop((a, store));

    // Everything is recorded on disk.
    let store = Store::open(dir.path()).unwrap();
    let beta = store.collection("beta").unwrap();
    assert_eq!(beta.config(), &other);
    assert_eq!(store.collection("alpha").unwrap().get("x").unwrap().unwrap(), doc("x", 1, 3, json!({})));

    let alpha = store.collection("alpha").unwrap();
    store.drop_collection("alpha").unwrap();
    assert!(matches!(alpha.get("x"), Err(StoreError::Dropped { .. })));
    assert!(matches!(alpha.upsert(vec![doc("y", 2, 3, json!({}))]), Err(StoreError::Dropped { .. })));
    assert!(matches!(store.drop_collection("alpha"), Err(StoreError::NotFound { .. })));
    assert!(!collection_dir(dir.path(), "alpha").exists());
    assert_eq!(store.names().unwrap(), ["beta"]);
    // The name can be reused, and the new collection starts empty.
    let again = store.create_collection("alpha", config(4)).unwrap();
    assert!(again.is_empty());
    assert_eq!(files_with(&dir.path().join("collections"), ".").len(), 0, "no leftovers");
}

#[test]
fn bad_names_and_configs_are_refused_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for name in ["", "../evil", "a/b", ".hidden", "sp ace", "back\\slash"] {
        assert!(matches!(store.create_collection(name, config(3)), Err(StoreError::InvalidName { .. })), "{name}");
        assert!(matches!(store.collection(name), Err(StoreError::InvalidName { .. })), "{name}");
    }
    let err = store.create_collection(
        "h",
        CollectionConfig { index: IndexKind::Hnsw { m: 1, ef_construction: 100 }, ..config(3) },
    );
    assert!(err.unwrap_err().to_string().contains("m >= 2"));
    assert!(matches!(store.create_collection("z", config(0)), Err(StoreError::InvalidConfig { .. })));
    assert!(std::fs::read_dir(dir.path().join("collections")).unwrap().next().is_none());
}

#[test]
fn a_store_is_opened_by_one_owner_and_never_over_a_foreign_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("c", config(2)).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })));
    drop(store);
    // A live handle keeps the store locked.
    assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })));
    drop(c);
    Store::open(dir.path()).unwrap();

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(Store::open(foreign.path()), Err(StoreError::NotAStore { .. })));
    assert_eq!(std::fs::read_dir(foreign.path()).unwrap().count(), 1);
}

#[test]
fn rejected_upserts_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("docs", config(4)).unwrap();
    c.upsert(vec![doc("keep", 1, 4, json!({"v": 1}))]).unwrap();
    let before = c.info();
    let wal = files_with(&collection_dir(dir.path(), "docs"), "wal-");
    let wal_before = std::fs::read(&wal[0]).unwrap();

    let err = c.upsert(vec![doc("new", 2, 4, json!({})), doc("keep", 3, 5, json!({"v": 2}))]).unwrap_err();
    assert!(
        matches!(&err, StoreError::DimensionMismatch { collection, expected: 4, got: 5 } if collection == "docs"),
        "{err}"
    );
    assert_eq!(err.to_string(), "collection 'docs' holds vectors of dimension 4, got 5");
    let mut nan = doc("nan", 4, 4, json!({}));
    nan.vector[2] = f32::NAN;
    assert!(matches!(c.upsert(vec![nan]), Err(StoreError::InvalidDocument { .. })));
    assert!(matches!(c.upsert(vec![doc("", 5, 4, json!({}))]), Err(StoreError::InvalidDocument { .. })));
    assert!(matches!(c.search(&[1.0; 3], 1, None), Err(StoreError::DimensionMismatch { expected: 4, got: 3, .. })));
    assert!(matches!(c.search(&[f32::INFINITY; 4], 1, None), Err(StoreError::InvalidQuery { .. })));

    assert_eq!(c.info(), before);
    assert_eq!(std::fs::read(&wal[0]).unwrap(), wal_before, "the log is byte-for-byte unchanged");
    assert_eq!(c.get("new").unwrap(), None);
    drop((c, store));
    let c = Store::open(dir.path()).unwrap().collection("docs").unwrap();
    assert_eq!(c.scan(None).unwrap(), vec![doc("keep", 1, 4, json!({"v": 1}))]);
}

#[test]
fn documents_upsert_overwrite_delete_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = Store::open(dir.path()).unwrap();
        let c = store.create_collection("docs", config(8)).unwrap();
        let mut rich = doc(
            "rich",
            7,
            8,
            json!({"lang": "en", "year": 2021, "tags": ["a", "b"], "meta": {"author": "Ann", "score": 0.25}, "none": null}),
        );
        rich.text = "multi\nline \"quoted\" ünïcode 🚀".into();
        c.upsert(vec![rich.clone(), doc("a", 1, 8, json!({})), doc("b", 2, 8, json!({}))]).unwrap();
        c.upsert(vec![doc("a", 10, 8, json!({"v": 2}))]).unwrap(); // overwrite
        assert_eq!(c.delete(&["b", "missing", "b"]).unwrap(), 1);
        assert_eq!(c.delete(&[]).unwrap(), 0);
        c.upsert(vec![doc("c", 3, 8, json!({})), doc("c", 4, 8, json!({"last": true}))]).unwrap(); // last wins
        assert_eq!(c.get("b").unwrap(), None);
        assert_eq!(c.get("a").unwrap().unwrap(), doc("a", 10, 8, json!({"v": 2})));
        assert_eq!(c.len(), 3);
        c.scan(None).unwrap()
    };
    assert_eq!(expected.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a", "c", "rich"]);
    assert_eq!(expected[1], doc("c", 4, 8, json!({"last": true})));
    let store = Store::open(dir.path()).unwrap();
    let c = store.collection("docs").unwrap();
    assert_eq!(c.scan(None).unwrap(), expected);
    assert_eq!(c.info().count, 3);
    let hit = &c.search(&expected[2].vector, 1, None).unwrap()[0];
    assert_eq!((hit.id.as_str(), &hit.document), ("rich", &expected[2]));
    assert!((hit.score - 1.0).abs() < 1e-6);
}

/// Brute force: the ids of the `k` most cosine-similar docs among those passing `filter`.
fn oracle(docs: &[Document], query: &[f32], k: usize, filter: Option<&Filter>) -> Vec<(String, f32)> {
    let mut scored: Vec<(String, f32)> = docs
        .iter()
        .filter(|d| filter.is_none_or(|f| f.matches(&d.metadata)))
        .map(|d| (d.id.clone(), Similarity::Cosine.score(query, &d.vector).unwrap()))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

#[test]
fn filtered_search_finds_k_matches_and_equals_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("docs", config(16)).unwrap();
    let query = vector(999, 16);
    // 1000 documents; the 30 in French point away from the query, so a search that filtered
    // after taking the top k would find none of them.
    let docs: Vec<Document> = (0..1000)
        .map(|i| {
            let lang = if i % 33 == 0 { "fr" } else { "en" };
            let mut d =
                doc(&format!("d{i:04}"), i, 16, json!({"lang": lang, "year": 2000 + i % 25, "tags": [i % 3, i % 5]}));
            if lang == "fr" {
                d.vector = query.iter().zip(&d.vector).map(|(q, v)| -q + 0.1 * v).collect();
            }
            d
        })
        .collect();
    for chunk in docs.chunks(100) {
        c.upsert(chunk.to_vec()).unwrap();
    }
    assert_eq!(c.delete(&["d0033", "d0066"]).unwrap(), 2);
    let live: Vec<Document> = docs.iter().filter(|d| d.id != "d0033" && d.id != "d0066").cloned().collect();

    for (src, k, want) in [
        (r#"lang = "fr""#, 20, 20),
        (r#"lang = "fr""#, 100, 29),
        (r#"lang = "en" and year >= 2020 and tags in [1]"#, 10, 10),
        (r#"not (lang = "en" or year < 2024)"#, 50, 2),
        ("year = 1999", 5, 0),
    ] {
        let filter = Filter::parse(src).unwrap();
        let hits = c.search(&query, k, Some(&filter)).unwrap();
        assert_eq!(hits.len(), want, "{src}");
        let got: Vec<(String, f32)> = hits.iter().map(|h| (h.id.clone(), h.score)).collect();
        let expected = oracle(&live, &query, k, Some(&filter));
        assert_eq!(got.len(), expected.len());
        for ((gi, gs), (ei, es)) in got.iter().zip(&expected) {
            assert_eq!(gi, ei, "{src}");
            assert!((gs - es).abs() < 1e-5);
        }
        assert!(hits.iter().all(|h| filter.matches(&h.document.metadata)));
        let scanned = c.scan(Some(&filter)).unwrap();
        assert_eq!(scanned.len(), live.iter().filter(|d| filter.matches(&d.metadata)).count(), "{src}");
    }
    let unfiltered = c.search(&query, 7, None).unwrap();
    assert_eq!(
        unfiltered.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        oracle(&live, &query, 7, None).into_iter().map(|x| x.0).collect::<Vec<_>>()
    );
    assert!(c.search(&query, 0, None).unwrap().is_empty());
}

#[test]
fn compaction_folds_logs_and_segments_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { wal_flush_bytes: 4096, max_segments: 3, background_maintenance: false };
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let c = store.create_collection("docs", config(8)).unwrap();
    let cdir = collection_dir(dir.path(), "docs");
    let mut max_segments_seen = 0;
    for round in 0..40u64 {
        let batch: Vec<Document> = (0..10)
            .map(|i| doc(&format!("d{}", (round * 7 + i) % 150), round * 100 + i, 8, json!({"round": round})))
            .collect();
        c.upsert(batch).unwrap();
        if round % 4 == 3 {
            let ids: Vec<String> = (0..5).map(|i| format!("d{}", (round * 11 + i) % 150)).collect();
            c.delete(&ids.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        }
        let info = c.info();
        assert!(info.segments <= 3, "the automatic trigger merges past max_segments");
        assert_eq!(info.maintenance_error, None);
        max_segments_seen = max_segments_seen.max(info.segments);
        assert_eq!(files_with(&cdir, "seg-").len(), info.segments);
    }
    assert!(max_segments_seen >= 2, "flushes made several segments");
    let before = c.scan(None).unwrap();
    let disk_before = c.info().disk_bytes;

    c.compact().unwrap();
    let info = c.info();
    assert_eq!((info.segments, info.wal_bytes), (1, 16), "one segment and an empty log");
    assert_eq!(files_with(&cdir, "seg-").len(), 1);
    assert_eq!(files_with(&cdir, "wal-").len(), 1);
    assert!(info.disk_bytes < disk_before);
    let on_disk: u64 = std::fs::read_dir(&cdir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(info.disk_bytes, on_disk);
    assert_eq!(c.scan(None).unwrap(), before);
    c.compact().unwrap(); // nothing to do
    assert_eq!(c.info().segments, 1);

    c.upsert(vec![doc("after", 1, 8, json!({}))]).unwrap();
    let mut expected = before.clone();
    expected.push(doc("after", 1, 8, json!({})));
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    drop((c, store));
    let c = Store::open_with(dir.path(), options).unwrap().collection("docs").unwrap();
    assert_eq!(c.scan(None).unwrap(), expected);
}

#[test]
fn background_maintenance_keeps_the_log_short_while_data_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { wal_flush_bytes: 2048, max_segments: 2, background_maintenance: true };
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let c = store.create_collection("docs", config(8)).unwrap();
    for i in 0..300u64 {
        c.upsert(vec![doc(&format!("d{}", i % 120), i, 8, json!({"i": i}))]).unwrap();
    }
    c.wait_for_maintenance();
    assert_eq!(c.info().maintenance_error, None);
    assert!(c.info().wal_bytes < 300 * 100, "the log was folded");
    let expected = c.scan(None).unwrap();
    assert_eq!(expected.len(), 120);
    drop((c, store));
    let c = Store::open_with(dir.path(), options).unwrap().collection("docs").unwrap();
    assert_eq!(c.scan(None).unwrap(), expected);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("docs", config(4)).unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    c.upsert(vec![doc(&format!("t{t}-{i}"), t * 1000 + i, 4, json!({"t": t}))]).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(c.len(), 400);
    let before = c.scan(None).unwrap();
    drop((c, store));
    let c = Store::open(dir.path()).unwrap().collection("docs").unwrap();
    assert_eq!(c.scan(None).unwrap(), before);
}

#[test]
fn metadata_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("docs", config(2)).unwrap();
    let m = meta(
        json!({"big": u64::MAX, "neg": i64::MIN, "f": 0.1, "tiny": 5e-324, "s": "", "nested": [[], {}, [1, {"x": null}]]}),
    );
    c.upsert(vec![Document {
        id: "m".into(),
        text: String::new(),
        vector: vec![0.0, 0.0],
        metadata: m.clone(),
        ..Document::default()
    }])
    .unwrap();
    drop((c, store));
    let c = Store::open(dir.path()).unwrap().collection("docs").unwrap();
    assert_eq!(c.get("m").unwrap().unwrap().metadata, m);
}
