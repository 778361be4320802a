//! `migrate`: a collection copied between stores without re-embedding. Embedded → embedded with
//! every field (dense, sparse, token vectors, metadata, text), documents and every search mode
//! equal; an interrupted migration resumed from its checkpoint; embedded ↔ PostgreSQL both ways
//! (when `EMBER_TEST_POSTGRES_URL` is set; under `CI=true` a missing server is a failure); and
//! the errors: unknown source, incompatible destination, a destination that cannot hold a field.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{meta, vector};
use ember_core::Similarity;
use ember_store::{
    migrate, AnalyzerConfig, CollectionConfig, Document, MigrateError, MigrateOptions, MigrateReport,
    MultiVectorConfig, SparseFieldConfig, Store, TextIndexConfig, VectorCollection, VectorStore,
};
use serde_json::json;

const DIM: usize = 8;
const TOKEN_DIM: usize = 4;

fn full_config() -> CollectionConfig {
    CollectionConfig {
        text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
        sparse: Some(SparseFieldConfig { model_id: "test/splade".into() }),
        multivector: Some(MultiVectorConfig { dimension: TOKEN_DIM }),
        ..CollectionConfig::dense("test/model", DIM, Similarity::Cosine)
    }
}

const WORDS: &[&str] = &["volcano", "cat", "bone", "protein", "river", "ash", "mouse", "density", "fold", "magma"];

/// Document `i`: every field filled, deterministic and distinct.
fn full_doc(i: u64) -> Document {
    let w = |k: u64| WORDS[((i * 7 + k * 3) % WORDS.len() as u64) as usize];
    let mut sparse: Vec<(u32, f32)> =
        (0..1 + i % 5).map(|k| ((i * 13 + k * 101) as u32 % 997, 0.25 + k as f32)).collect();
    sparse.sort_by_key(|(t, _)| *t);
    sparse.dedup_by_key(|(t, _)| *t);
    Document {
        id: format!("doc-{i:04}"),
        text: format!("{} {} {} ✓ number {i}", w(0), w(1), w(2)),
        vector: vector(i, DIM),
        metadata: meta(
            json!({"i": i, "even": i.is_multiple_of(2), "tags": [w(0), w(1)], "nested": {"x": i as f64 / 3.0}}),
        ),
        sparse,
        multivector: (0..1 + i % 3).map(|k| vector(i * 31 + k, TOKEN_DIM)).collect(),
    }
}

fn embedded(dir: &Path) -> Arc<dyn VectorStore> {
    Arc::new(Store::open(dir).unwrap())
}

fn run(
    from: &dyn VectorStore,
    from_name: &str,
    to: &dyn VectorStore,
    to_name: &str,
    options: &MigrateOptions,
) -> Result<MigrateReport, MigrateError> {
    migrate(from, from_name, to, to_name, options, &mut |_| {})
}

/// Every document of `source` is in `destination`, equal field by field, and nothing else is.
fn assert_same_documents(source: &dyn VectorCollection, destination: &dyn VectorCollection, context: &str) {
    let want = source.scan(None).unwrap();
    assert_eq!(destination.count().unwrap(), want.len(), "{context}: counts");
    for doc in &want {
        assert_eq!(destination.get(&doc.id).unwrap().as_ref(), Some(doc), "{context}: document {}", doc.id);
    }
    assert_eq!(destination.scan(None).unwrap(), want, "{context}: scans");
}

/// Dense search (exact) returns the same ids with the same scores, with and without a filter.
fn assert_same_dense_search(source: &dyn VectorCollection, destination: &dyn VectorCollection, context: &str) {
    let filter = ember_store::Filter::parse("even = true").unwrap();
    for q in 0..10 {
        let query = vector(10_000 + q, DIM);
        for f in [None, Some(&filter)] {
            let a = source.search(&query, 10, f).unwrap();
            let b = destination.search(&query, 10, f).unwrap();
            let key = |hits: &[ember_store::Hit]| hits.iter().map(|h| (h.id.clone(), h.score)).collect::<Vec<_>>();
            assert_eq!(key(&a), key(&b), "{context}: query {q}, filter {}", f.is_some());
            assert_eq!(a.len(), 10, "{context}");
        }
    }
}

#[test]
fn embedded_to_embedded_copies_every_field_and_searches_the_same() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (embedded(a.path()), embedded(b.path()));
    let source = from.create_collection("kb", full_config()).unwrap();
    source.upsert((0..300).map(full_doc).collect()).unwrap();
    source.delete(&["doc-0005", "doc-0150"]).unwrap();

    let mut seen = Vec::new();
    let options = MigrateOptions { batch_size: 64, verify_sample: 1000, ..MigrateOptions::default() };
    let report = migrate(from.as_ref(), "kb", to.as_ref(), "kb2", &options, &mut |p| seen.push(p.clone())).unwrap();
    assert!(report.created_destination && report.complete, "{report:?}");
    assert_eq!((report.copied, report.skipped, report.batches), (298, 0, 5), "{report:?}");
    assert_eq!((report.source_count, report.destination_count), (298, 298), "{report:?}");
    assert_eq!(report.verified, 6, "the first id of each of 5 batches and the last id: {report:?}");
    assert_eq!(seen.iter().map(|p| p.copied).collect::<Vec<_>>(), [64, 128, 192, 256, 298]);
    assert!(seen.iter().all(|p| p.total == 298));
    assert_eq!(seen.last().unwrap().last_id, "doc-0299");

    let destination = to.collection("kb2").unwrap();
    assert_eq!(destination.config(), source.config(), "created with the source's configuration");
    assert_same_documents(source.as_ref(), destination.as_ref(), "embedded → embedded");
    assert_same_dense_search(source.as_ref(), destination.as_ref(), "embedded → embedded");
    for q in 0..5u64 {
        let text = format!("{} {}", WORDS[q as usize], WORDS[(q as usize + 3) % WORDS.len()]);
        assert_eq!(
            source.search_text(&text, 10, None).unwrap(),
            destination.search_text(&text, 10, None).unwrap(),
            "BM25 {text:?}"
        );
        let sparse = full_doc(q * 17).sparse;
        assert_eq!(
            source.search_sparse(&sparse, 10, None).unwrap(),
            destination.search_sparse(&sparse, 10, None).unwrap()
        );
        let tokens = full_doc(q * 19).multivector;
        let (x, y) = (
            source.search_multivector(&tokens, 10, None, None).unwrap(),
            destination.search_multivector(&tokens, 10, None, None).unwrap(),
        );
        assert_eq!(x.len(), 10);
        assert_eq!(x, y, "MaxSim");
    }
    // The source is untouched.
    assert_eq!(source.count().unwrap(), 298);

    // Into the same store under another name, and again (idempotent: an existing compatible
    // destination, same documents).
    for round in 0..2 {
        let report = run(from.as_ref(), "kb", from.as_ref(), "kb-copy", &options).unwrap();
        assert_eq!((report.created_destination, report.copied), (round == 0, 298), "{report:?}");
        assert_same_documents(source.as_ref(), from.collection("kb-copy").unwrap().as_ref(), "same store");
    }
    let err = run(from.as_ref(), "kb", from.as_ref(), "kb", &options).unwrap_err();
    assert!(matches!(err, MigrateError::SameCollection { .. }), "{err}");
}

#[test]
fn an_interrupted_migration_resumes_after_its_checkpoint() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (embedded(a.path()), embedded(b.path()));
    let source = from.create_collection("kb", full_config()).unwrap();
    source.upsert((0..250).map(full_doc).collect()).unwrap();
    let checkpoint = c.path().join("cp.json");
    let options = MigrateOptions { batch_size: 20, checkpoint: Some(checkpoint.clone()), ..MigrateOptions::default() };

    // Stop after 3 batches: 60 documents copied, the checkpoint says so.
    let first =
        run(from.as_ref(), "kb", to.as_ref(), "kb", &MigrateOptions { max_batches: Some(3), ..options.clone() })
            .unwrap();
    assert!(!first.complete, "{first:?}");
    assert_eq!((first.copied, first.batches, first.destination_count), (60, 3, 60), "{first:?}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!((saved["last_id"].as_str(), saved["copied"].as_u64()), (Some("doc-0059"), Some(60)), "{saved}");
    assert!(!c.path().join("cp.json.tmp").exists(), "no temporary file left behind");

    // A checkpoint belongs to one source and destination.
    let err = run(from.as_ref(), "kb", to.as_ref(), "other", &options).unwrap_err().to_string();
    assert!(err.contains("belongs to the migration from collection 'kb'") && err.contains("--restart"), "{err}");
    assert!(!to.names().unwrap().contains(&"other".to_string()), "nothing created for a refused checkpoint");

    // The process died after a batch was written but before its checkpoint: the checkpoint is
    // one batch behind, and the batch is copied again without harm.
    let mut behind = saved.clone();
    behind["last_id"] = json!("doc-0039");
    behind["copied"] = json!(40);
    std::fs::write(&checkpoint, serde_json::to_vec(&behind).unwrap()).unwrap();

    // Resume: starts after doc-0039, not from zero.
    let second = run(from.as_ref(), "kb", to.as_ref(), "kb", &options).unwrap();
    assert!(second.complete && !second.created_destination, "{second:?}");
    assert_eq!(second.resumed_after.as_deref(), Some("doc-0039"), "{second:?}");
    assert_eq!((second.skipped, second.copied, second.batches), (40, 210, 11), "{second:?}");
    assert_eq!((second.source_count, second.destination_count), (250, 250), "{second:?}");
    assert!(!checkpoint.exists(), "a finished migration removes its checkpoint");
    assert_same_documents(source.as_ref(), to.collection("kb").unwrap().as_ref(), "resumed");

    // A checkpoint whose destination was dropped meanwhile is refused (its documents are gone).
    run(from.as_ref(), "kb", to.as_ref(), "kb", &MigrateOptions { max_batches: Some(1), ..options.clone() }).unwrap();
    to.drop_collection("kb").unwrap();
    let err = run(from.as_ref(), "kb", to.as_ref(), "kb", &options).unwrap_err().to_string();
    assert!(err.contains("does not exist") && err.contains("--restart"), "{err}");
    assert!(to.names().unwrap().is_empty(), "not created again empty");
    let restarted = run(from.as_ref(), "kb", to.as_ref(), "kb", &MigrateOptions { restart: true, ..options }).unwrap();
    assert_eq!((restarted.skipped, restarted.copied), (0, 250), "{restarted:?}");
    assert_same_documents(source.as_ref(), to.collection("kb").unwrap().as_ref(), "restarted");
}

#[test]
fn documents_deleted_from_the_source_fail_the_count_check_unless_deleted_from_the_destination() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (embedded(a.path()), embedded(b.path()));
    let source = from.create_collection("kb", full_config()).unwrap();
    source.upsert((0..50).map(full_doc).collect()).unwrap();
    let c = tempfile::tempdir().unwrap();
    let options =
        MigrateOptions { batch_size: 8, checkpoint: Some(c.path().join("cp.json")), ..MigrateOptions::default() };
    // Two batches (doc-0000 … doc-0015) copied; then documents are deleted from the source, two
    // of them already copied.
    run(from.as_ref(), "kb", to.as_ref(), "kb", &MigrateOptions { max_batches: Some(2), ..options.clone() }).unwrap();
    source.delete(&["doc-0000", "doc-0003", "doc-0049"]).unwrap();
    let err = run(from.as_ref(), "kb", to.as_ref(), "kb", &options).unwrap_err().to_string();
    assert!(
        err.contains("the source holds 47 documents and the destination 49") && err.contains("--delete-missing"),
        "{err}"
    );
    let report =
        run(from.as_ref(), "kb", to.as_ref(), "kb", &MigrateOptions { delete_missing: true, ..options }).unwrap();
    assert_eq!((report.copied, report.deleted, report.destination_count), (0, 2, 47), "{report:?}");
    assert_same_documents(source.as_ref(), to.collection("kb").unwrap().as_ref(), "after --delete-missing");
}

#[test]
fn errors_name_what_is_wrong_and_write_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (embedded(a.path()), embedded(b.path()));
    from.create_collection("kb", full_config()).unwrap().upsert((0..10).map(full_doc).collect()).unwrap();
    let options = MigrateOptions::default();

    let err = run(from.as_ref(), "nope", to.as_ref(), "kb", &options).unwrap_err().to_string();
    assert!(err.contains("opening the source collection 'nope'") && err.contains("available: kb"), "{err}");
    assert!(to.names().unwrap().is_empty(), "nothing created for an unknown source");

    let cases = [
        (
            "dim",
            CollectionConfig { dimension: DIM + 1, ..full_config() },
            "dimension 8, the destination of dimension 9",
        ),
        (
            "model",
            CollectionConfig { model_id: "other/model".into(), ..full_config() },
            "model 'test/model', the destination of model 'other/model'",
        ),
        (
            "distance",
            CollectionConfig { distance: Similarity::Dot, ..full_config() },
            "by Cosine similarity, the destination by Dot",
        ),
        (
            "nosparse",
            CollectionConfig { sparse: None, ..full_config() },
            "the source has a sparse field (model 'test/splade'), the destination has none",
        ),
        (
            "notokens",
            CollectionConfig { multivector: None, ..full_config() },
            "multi-vector field (token vectors of dimension 4), the destination has none",
        ),
    ];
    for (name, config, needle) in cases {
        to.create_collection(name, config).unwrap();
        let err = run(from.as_ref(), "kb", to.as_ref(), name, &options).unwrap_err();
        assert!(matches!(err, MigrateError::Incompatible { .. }), "{name}: {err}");
        let err = err.to_string();
        assert!(err.contains(needle), "{name}: {err}");
        assert!(
            err.contains("collection 'kb' in the embedded store at") && err.contains(&format!("collection '{name}'")),
            "{err}"
        );
        assert_eq!(to.collection(name).unwrap().count().unwrap(), 0, "{name}: nothing written");
    }
    let err = run(from.as_ref(), "kb", to.as_ref(), "x", &MigrateOptions { batch_size: 0, ..options }).unwrap_err();
    assert!(err.to_string().contains("batch size must be at least 1"), "{err}");
}

/// Throughput, run by hand: `cargo test --release -p ember-store --features postgres --test migrate
/// -- --ignored --nocapture` (100,000 × 384 vectors, batches of 1,000; PostgreSQL when configured).
#[test]
#[ignore = "a measurement, run by hand with --release"]
fn migrate_throughput() {
    const N: u64 = 100_000;
    const D: usize = 384;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (embedded(a.path()), embedded(b.path()));
    let source = from.create_collection("kb", CollectionConfig::dense("test/model", D, Similarity::Cosine)).unwrap();
    for start in (0..N).step_by(10_000) {
        let docs = (start..start + 10_000)
            .map(|i| Document {
                id: format!("doc-{i:07}"),
                text: format!("text {i}"),
                vector: vector(i, D),
                metadata: meta(json!({"i": i})),
                ..Document::default()
            })
            .collect();
        source.upsert(docs).unwrap();
    }
    #[cfg(feature = "postgres")]
    let pg = postgres::store_for_measurement();
    #[cfg(not(feature = "postgres"))]
    let pg: Option<((), Arc<dyn VectorStore>)> = None;
    // `_guard` keeps the PostgreSQL schema until the end.
    let (_guard, pg) = match pg {
        Some((guard, store)) => (Some(guard), Some(("postgres", store))),
        None => (None, None),
    };
    let targets: Vec<(&str, Arc<dyn VectorStore>)> = std::iter::once(("embedded", to)).chain(pg).collect();
    for (name, store) in &targets {
        let report = run(from.as_ref(), "kb", store.as_ref(), "kb", &MigrateOptions::default()).unwrap();
        assert_eq!(report.destination_count, N as usize);
        println!(
            "embedded → {name}: {} documents × {D} in {:.2} s, {:.0} documents/s",
            report.copied,
            report.seconds,
            report.copied as f64 / report.seconds
        );
    }
}

mod postgres {
    #[cfg(feature = "postgres")]
    use super::*;

    pub(super) fn url() -> Option<String> {
        match std::env::var("EMBER_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but EMBER_TEST_POSTGRES_URL is not set: the PostgreSQL migration tests must run in CI")
            }
            _ => {
                eprintln!(
                    "\n!!! SKIPPING the PostgreSQL migration tests: EMBER_TEST_POSTGRES_URL is not set.\n\
                     !!! Run: eval \"$(bash scripts/setup-postgres.sh | tail -n 1)\" and test again.\n"
                );
                None
            }
        }
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_needs_the_feature_in_ci() {
        assert!(
            !(url().is_some() && std::env::var("CI").is_ok_and(|v| v == "true")),
            "CI=true and EMBER_TEST_POSTGRES_URL is set, but ember-store was built without the `postgres` feature"
        );
    }

    #[cfg(feature = "postgres")]
    pub(super) use with_feature::store_for_measurement;

    #[cfg(feature = "postgres")]
    mod with_feature {
        use ember_store::{PgConnectOptions, PgVectorStore};

        use super::*;

        /// A fresh schema dropped at the end, and a store in it.
        struct Schema {
            url: String,
            name: String,
        }

        impl Drop for Schema {
            fn drop(&mut self) {
                if let Ok(mut client) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
                }
            }
        }

        fn store(test: &str) -> Option<(Schema, Arc<dyn VectorStore>)> {
            let url = url()?;
            let name = format!("ember_test_migrate_{test}_{}", std::process::id());
            let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            client
                .batch_execute(&format!(
                    "CREATE EXTENSION IF NOT EXISTS vector; DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                ))
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let store_url = format!("{url}{sep}options=-c%20search_path%3D{name},public");
            let store = PgVectorStore::connect(&PgConnectOptions::parse(&store_url).unwrap()).unwrap();
            Some((Schema { url, name }, Arc::new(store)))
        }

        pub(crate) fn store_for_measurement() -> Option<(impl std::any::Any, Arc<dyn VectorStore>)> {
            store("throughput")
        }

        fn dense_doc(i: u64) -> Document {
            Document { sparse: Vec::new(), multivector: Vec::new(), ..full_doc(i) }
        }

        #[test]
        fn embedded_to_postgres_and_back_searches_the_same() {
            let Some((_schema, pg)) = store("roundtrip") else { return };
            let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (from, back) = (embedded(a.path()), embedded(b.path()));
            let source =
                from.create_collection("kb", CollectionConfig::dense("test/model", DIM, Similarity::Cosine)).unwrap();
            source.upsert((0..400).map(dense_doc).collect()).unwrap();
            let checkpoint = c.path().join("cp.json");
            let options =
                MigrateOptions { batch_size: 50, checkpoint: Some(checkpoint.clone()), ..MigrateOptions::default() };

            // Interrupted after 2 batches, then resumed.
            let first = run(
                from.as_ref(),
                "kb",
                pg.as_ref(),
                "kb",
                &MigrateOptions { max_batches: Some(2), ..options.clone() },
            )
            .unwrap();
            assert_eq!((first.copied, first.destination_count, first.complete), (100, 100, false), "{first:?}");
            let second = run(from.as_ref(), "kb", pg.as_ref(), "kb", &options).unwrap();
            assert_eq!((second.skipped, second.copied, second.destination_count), (100, 300, 400), "{second:?}");
            assert!(second.destination.contains("on postgres://"), "{}", second.destination);
            let on_pg = pg.collection("kb").unwrap();
            assert_eq!(on_pg.config(), source.config());
            assert_same_documents(source.as_ref(), on_pg.as_ref(), "embedded → postgres");
            assert_same_dense_search(source.as_ref(), on_pg.as_ref(), "embedded → postgres");

            // And back.
            let report = run(pg.as_ref(), "kb", back.as_ref(), "kb", &options).unwrap();
            assert_eq!((report.copied, report.destination_count), (400, 400), "{report:?}");
            let on_back = back.collection("kb").unwrap();
            assert_same_documents(on_pg.as_ref(), on_back.as_ref(), "postgres → embedded");
            assert_same_dense_search(on_pg.as_ref(), on_back.as_ref(), "postgres → embedded");
            assert_same_dense_search(source.as_ref(), on_back.as_ref(), "round trip");
        }

        #[test]
        fn postgres_refuses_fields_it_cannot_hold_before_copying() {
            let Some((_schema, pg)) = store("fields") else { return };
            let a = tempfile::tempdir().unwrap();
            let from = embedded(a.path());
            from.create_collection("full", full_config()).unwrap().upsert((0..10).map(full_doc).collect()).unwrap();
            let err = run(from.as_ref(), "full", pg.as_ref(), "full", &MigrateOptions::default()).unwrap_err();
            assert!(matches!(err, MigrateError::DestinationCannotHold { .. }), "{err}");
            let err = err.to_string();
            assert!(err.contains("cannot be created with the configuration of collection 'full'"), "{err}");
            assert!(err.contains("does not store"), "{err}");
            assert!(pg.names().unwrap().is_empty(), "nothing created: {:?}", pg.names().unwrap());

            // A text index is held (BM25 on PostgreSQL): the same BM25 answers after the move;
            // `without_text_index` leaves it out.
            let text = CollectionConfig {
                text_index: Some(TextIndexConfig::new(AnalyzerConfig::english())),
                ..CollectionConfig::dense("test/model", DIM, Similarity::Cosine)
            };
            let source = from.create_collection("text", text).unwrap();
            source.upsert((0..10).map(dense_doc).collect()).unwrap();
            let report = run(from.as_ref(), "text", pg.as_ref(), "text", &MigrateOptions::default()).unwrap();
            assert_eq!(report.destination_count, 10);
            let moved = pg.collection("text").unwrap();
            assert_eq!(moved.config().text_index, source.config().text_index);
            let query = source.get(&source.scan_page(None, 1).unwrap()[0].id).unwrap().unwrap().text;
            let ids = |hits: Vec<ember_store::Hit>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
            assert_eq!(
                ids(moved.search_text(&query, 5, None).unwrap()),
                ids(source.search_text(&query, 5, None).unwrap())
            );
            let options = MigrateOptions { without_text_index: true, ..MigrateOptions::default() };
            let report = run(from.as_ref(), "text", pg.as_ref(), "plain", &options).unwrap();
            assert_eq!(report.destination_count, 10);
            assert_eq!(pg.collection("plain").unwrap().config().text_index, None);
            assert_same_documents(source.as_ref(), pg.collection("plain").unwrap().as_ref(), "without text index");

            // An existing destination with another dimension.
            pg.create_collection("narrow", CollectionConfig::dense("test/model", 4, Similarity::Cosine)).unwrap();
            let err = run(from.as_ref(), "text", pg.as_ref(), "narrow", &options).unwrap_err().to_string();
            assert!(err.contains("dimension 8, the destination of dimension 4"), "{err}");
        }
    }
}
