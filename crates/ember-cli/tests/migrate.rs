//! `ember migrate`: a collection copied between stores by the real binary. Embedded → embedded
//! with every field; a migration SIGKILLed mid-way and resumed from its checkpoint (not from
//! zero); embedded ↔ PostgreSQL when `EMBER_TEST_POSTGRES_URL` is set (under `CI=true` a missing
//! server is a failure); and the errors a user meets.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_error, ember, postgres_url, stderr, temp};
use ember_core::Similarity;
use ember_store::{
    CollectionConfig, Document, MultiVectorConfig, SparseFieldConfig, Store, VectorCollection, VectorStore,
};
use serde_json::{json, Value};

const DIM: usize = 8;

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn doc(i: u64, fields: bool) -> Document {
    Document {
        id: format!("d{i:06}"),
        text: format!("document {i} ✓"),
        vector: vector(i, DIM),
        metadata: json!({"i": i, "odd": !i.is_multiple_of(2)}).as_object().cloned().unwrap(),
        sparse: if fields { vec![(i as u32 % 50, 0.5), (100 + i as u32 % 7, 1.5)] } else { Vec::new() },
        multivector: if fields { vec![vector(i + 7, 4), vector(i + 9, 4)] } else { Vec::new() },
    }
}

/// An embedded store in `dir` with collection `name` of `n` documents (closed again on return).
fn make_source(dir: &Path, name: &str, n: u64, fields: bool) {
    let store = Store::open(dir).unwrap();
    let mut config = CollectionConfig::dense("test/model", DIM, Similarity::Cosine);
    if fields {
        config.sparse = Some(SparseFieldConfig { model_id: "test/splade".into() });
        config.multivector = Some(MultiVectorConfig { dimension: 4 });
    }
    let c = store.create_collection(name, config).unwrap();
    let docs: Vec<Document> = (0..n).map(|i| doc(i, fields)).collect();
    for chunk in docs.chunks(5000) {
        c.upsert(chunk.to_vec()).unwrap();
    }
}

fn assert_equal_collections(a: &dyn VectorCollection, b: &dyn VectorCollection) {
    let (x, y) = (a.scan(None).unwrap(), b.scan(None).unwrap());
    assert_eq!(x.len(), y.len(), "counts");
    assert!(x == y, "the documents differ");
    for q in 0..5 {
        let query = vector(1_000_000 + q, DIM);
        let key = |c: &dyn VectorCollection| {
            c.search(&query, 10, None).unwrap().into_iter().map(|h| (h.id, h.score)).collect::<Vec<_>>()
        };
        assert_eq!(key(a), key(b), "dense search, query {q}");
    }
}

/// `ember ARGS` run in `dir` (where a default checkpoint file is written).
fn ember_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ember")).args(args).current_dir(dir).env("HF_HUB_OFFLINE", "1").output().unwrap()
}

fn report(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
}

#[test]
fn migrate_copies_between_embedded_stores() {
    let root = temp("migrate-embedded");
    let (a, b) = (root.join("a"), root.join("b"));
    make_source(&a, "kb", 1234, true);
    let cp = root.join("cp.json");
    let args = ["migrate", "--from", "kb", "--from-store", a.to_str().unwrap(), "--to-store", b.to_str().unwrap()];
    let o = ember_in(
        &root,
        &[&args[..], &["--to", "kb2", "--batch", "100", "--checkpoint", cp.to_str().unwrap()]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("1234 documents copied, 0 skipped"), "{err}");
    assert!(err.contains("collection 'kb2' in the embedded store at"), "{err}");
    assert!(!cp.exists(), "the checkpoint is removed at the end");
    let (from, to) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    let (x, y) = (VectorStore::collection(&from, "kb").unwrap(), VectorStore::collection(&to, "kb2").unwrap());
    assert_eq!(x.config(), y.config());
    assert_equal_collections(x.as_ref(), y.as_ref());
    drop((x, y, from, to));

    // JSON report; an existing compatible destination is written over idempotently.
    let r = report(&ember_in(
        &root,
        &[&args[..], &["--to", "kb2", "--json", "--checkpoint", cp.to_str().unwrap()]].concat(),
    ));
    assert_eq!((r["copied"].as_u64(), r["created_destination"].as_bool()), (Some(1234), Some(false)), "{r}");
    assert_eq!((r["destination_count"].as_u64(), r["complete"].as_bool()), (Some(1234), Some(true)), "{r}");

    // The same store on both sides (opened once), default checkpoint in the working directory.
    let o = ember_in(&root, &["migrate", "--from", "kb", "--to", "kb3", "--from-store", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember_in(&root, &["migrate", "--from", "kb", "--from-store", a.to_str().unwrap()]);
    assert_error(&o, &["the source and the destination are the same collection"]);
}

#[test]
fn a_migration_killed_midway_resumes_from_its_checkpoint() {
    let root = temp("migrate-kill");
    let (a, b) = (root.join("a"), root.join("b"));
    let total = 20_000u64;
    make_source(&a, "kb", total, false);
    let cp = root.join("cp.json");
    let args = [
        "migrate",
        "--from",
        "kb",
        "--from-store",
        a.to_str().unwrap(),
        "--to-store",
        b.to_str().unwrap(),
        "--batch",
        "20",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--json",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few batches are checkpointed.
    let start = Instant::now();
    let copied_at_kill = loop {
        let copied = std::fs::read(&cp)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["copied"].as_u64());
        if copied.is_some_and(|c| c >= 200) {
            break copied.unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "the migration ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint after 60 s");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    let resumed_from = saved["copied"].as_u64().unwrap();
    assert!(resumed_from >= copied_at_kill && resumed_from < total, "killed too late: {saved}");
    eprintln!("killed with {resumed_from} of {total} documents checkpointed");

    let r = report(&ember_in(&root, &args));
    assert_eq!(r["skipped"].as_u64(), Some(resumed_from), "the second run starts after the checkpoint: {r}");
    assert_eq!(r["copied"].as_u64(), Some(total - resumed_from), "{r}");
    assert_eq!(r["resumed_after"].as_str(), saved["last_id"].as_str(), "{r}");
    assert_eq!((r["destination_count"].as_u64(), r["complete"].as_bool()), (Some(total), Some(true)), "{r}");
    assert!(!cp.exists());
    let (from, to) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    assert_equal_collections(
        VectorStore::collection(&from, "kb").unwrap().as_ref(),
        VectorStore::collection(&to, "kb").unwrap().as_ref(),
    );
}

#[test]
fn migrate_errors_say_what_and_where() {
    let root = temp("migrate-errors");
    let (a, b) = (root.join("a"), root.join("b"));
    make_source(&a, "kb", 10, true);
    let from = ["--from-store", a.to_str().unwrap()];
    let to = ["--to-store", b.to_str().unwrap()];

    let o = ember_in(&root, &[&["migrate", "--from", "missing"][..], &from, &to].concat());
    assert_error(&o, &["opening the source collection 'missing' in the embedded store at", "available: kb"]);

    let o = ember(&["collections", "create", "kb", "--dimension", "4", "--data-dir", b.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember_in(&root, &[&["migrate", "--from", "kb"][..], &from, &to].concat());
    assert_error(
        &o,
        &["cannot take the documents of collection 'kb'", "model 'test/model', the destination of model 'external'"],
    );
    let o = ember(
        &[
            "collections",
            "create",
            "kb4",
            "--model",
            "test/model",
            "--dimension",
            "4",
            "--data-dir",
            b.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember_in(&root, &[&["migrate", "--from", "kb", "--to", "kb4"][..], &from, &to].concat());
    assert_error(&o, &["dimension 8, the destination of dimension 4"]);

    // An unreachable destination server: named, without its password, before anything is read.
    let unreachable = "postgres://ann:s3cret@127.0.0.1:1/db?connect_timeout=2&retries=0";
    let o = ember_in(&root, &[&["migrate", "--from", "kb"][..], &from, &["--to-store", unreachable]].concat());
    assert_error(&o, &["opening the destination store, postgres://ann:***@127.0.0.1:1/db"]);
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));

    let o = ember_in(&root, &[&["migrate", "--from", "kb", "--batch", "0"][..], &from, &to].concat());
    assert_error(&o, &["batch size must be at least 1"]);
    let o = ember_in(&root, &[&["migrate", "--from", "kb", "--to-store", "milvus2://x"][..], &from].concat());
    assert_error(&o, &["unknown store scheme"]);
}

#[test]
fn migrate_to_postgres_and_back() {
    let Some(url) = postgres_url() else { return };
    let root = temp("migrate-pg");
    let (a, b) = (root.join("a"), root.join("b"));
    make_source(&a, "kb", 777, false);
    make_source(&a, "kb-fields", 5, true);
    let name = format!("cli-migrate-{}", std::process::id());
    let pg = ["--store", url.as_str()];
    let _ = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);

    let o = ember_in(
        &root,
        &[
            "migrate",
            "--from",
            "kb",
            "--from-store",
            a.to_str().unwrap(),
            "--to-store",
            &url,
            "--to",
            &name,
            "--batch",
            "100",
            "--json",
        ],
    );
    let r = report(&o);
    assert_eq!((r["copied"].as_u64(), r["destination_count"].as_u64()), (Some(777), Some(777)), "{r}");
    assert!(stderr(&o).contains("on postgres://"), "{}", stderr(&o));
    let o = ember_in(
        &root,
        &["migrate", "--from", &name, "--from-store", &url, "--to-store", b.to_str().unwrap(), "--to", "kb", "--json"],
    );
    let r = report(&o);
    assert_eq!((r["copied"].as_u64(), r["destination_count"].as_u64()), (Some(777), Some(777)), "{r}");

    // Through PostgreSQL and back: the same documents, the same exact search.
    let (x, y) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    assert_equal_collections(
        VectorStore::collection(&x, "kb").unwrap().as_ref(),
        VectorStore::collection(&y, "kb").unwrap().as_ref(),
    );
    drop((x, y));
    let got = ember(&[&["get", &name, "d000123", "--with-vector"][..], &pg].concat(), None);
    let got: Value = serde_json::from_str(String::from_utf8_lossy(&got.stdout).trim()).unwrap();
    let want = doc(123, false);
    assert_eq!(got["text"].as_str(), Some(want.text.as_str()));
    assert_eq!(got["vector"], json!(want.vector));

    // Token vectors: PostgreSQL refuses the field before anything is copied.
    let o = ember_in(
        &root,
        &[
            "migrate",
            "--from",
            "kb-fields",
            "--from-store",
            a.to_str().unwrap(),
            "--to-store",
            &url,
            "--to",
            &format!("{name}-f"),
        ],
    );
    assert_error(&o, &["cannot be created with the configuration of collection 'kb-fields'", "does not store"]);
    let o = ember(&[&["collections", "list"][..], &pg].concat(), None);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&format!("{name}-f")), "nothing created");

    let o = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An ingested collection (real model, BM25 text index) moved to PostgreSQL: refused with a hint
/// while it has a text index, taken with `--no-text-index`, and `ember search` (exact, dense)
/// then returns the same hits with the same scores on both stores, with and without a filter.
#[test]
fn an_ingested_collection_searches_the_same_after_moving_to_postgres() {
    let Some(url) = postgres_url() else { return };
    let Some(model) = common::real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let root = temp("migrate-ingested");
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("papers.jsonl"),
        "{\"id\": \"p1\", \"text\": \"Vitamin D supplementation improves bone density in older adults.\", \"year\": 2021}\n\
         {\"id\": \"p2\", \"text\": \"La vitamine D améliore la densité osseuse.\", \"year\": 2019}\n\
         {\"id\": \"p3\", \"text\": \"Deep learning models for protein folding.\", \"year\": 2018}\n\
         {\"id\": \"p4\", \"text\": \"A volcano erupts when magma and gases escape.\", \"year\": 2020}\n\
         {\"id\": \"p5\", \"text\": \"Cats are small domesticated felines that chase mice.\", \"year\": 2022}\n",
    )
    .unwrap();
    let data = root.join("data");
    let embedded = ["--data-dir", data.to_str().unwrap()];
    let o = ember(
        &[&["ingest", docs.to_str().unwrap(), "-c", "kb", "-m", model.to_str().unwrap()][..], &embedded].concat(),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let name = format!("cli-migrate-ingested-{}", std::process::id());
    let pg = ["--store", url.as_str()];
    let _ = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);

    let migrate =
        ["migrate", "--from", "kb", "--from-store", data.to_str().unwrap(), "--to-store", &url, "--to", &name];
    // The BM25 text index moves too (PostgreSQL keeps its postings): dense, BM25 and hybrid
    // searches answer the same on both stores.
    let r = report(&ember_in(&root, &[&migrate[..], &["--json"]].concat()));
    assert_eq!((r["copied"].as_u64(), r["destination_count"].as_u64()), (Some(5), Some(5)), "{r}");

    for (query, filter, mode) in [
        ("why does a volcano erupt?", None, "dense"),
        ("vitamin D and bones", Some("year >= 2020"), "dense"),
        ("vitamin D and bones", None, "bm25"),
        ("volcano magma", None, "hybrid"),
    ] {
        let mut results = Vec::new();
        for (collection, store) in [("kb", &embedded[..]), (name.as_str(), &pg[..])] {
            let mut args = vec!["search", collection, query, "-k", "5", "--json", "--mode", mode];
            if let Some(f) = filter {
                args.extend(["--filter", f]);
            }
            let o = ember(&[&args[..], store].concat(), None);
            assert!(o.status.success(), "{}", stderr(&o));
            let hits: Vec<(String, f64)> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .map(|h| (h["id"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap()))
                .collect();
            results.push(hits);
        }
        assert!(!results[0].is_empty(), "{query}");
        assert_eq!(results[0], results[1], "{query}: embedded vs postgres after the migration");
    }
    let o = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
}
