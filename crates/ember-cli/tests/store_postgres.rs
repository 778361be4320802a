//! `ember collections create|list|info|drop`, `ingest`, `search`, `get` and `delete` with
//! `--store postgres://…` (PostgreSQL + pgvector from `EMBER_TEST_POSTGRES_URL`, started by
//! scripts/setup-postgres.sh), checked against the same commands on the embedded store: the
//! same hits with the same scores. Under `CI=true` a missing server fails the test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_error, ember, postgres_url, real_model, stderr, temp};
use serde_json::Value;

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn collections_on_postgres_work_like_the_embedded_store() {
    let Some(url) = postgres_url() else { return };
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let docs = temp("pg-docs");
    std::fs::write(
        docs.join("animals.md"),
        "# Cats\n\nCats are small domesticated felines that purr and chase mice.\n\n\
         # Volcanoes\n\nA volcano erupts when molten rock, ash and gases escape from a magma chamber.",
    )
    .unwrap();
    std::fs::write(
        docs.join("papers.jsonl"),
        "{\"id\": \"p1\", \"text\": \"Vitamin D supplementation improves bone density in older adults.\", \"lang\": \"en\", \"year\": 2021}\n\
         {\"id\": \"p2\", \"text\": \"La vitamine D améliore la densité osseuse.\", \"lang\": \"fr\", \"year\": 2019}\n\
         {\"id\": \"p3\", \"text\": \"Deep learning models for protein folding.\", \"lang\": \"en\", \"year\": 2018}\n",
    )
    .unwrap();
    let name = format!("cli-kb-{}", std::process::id());
    let data = temp("pg-embedded");
    let embedded = ["--data-dir", data.to_str().unwrap()];
    let pg = ["--store", url.as_str()];
    let _ = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);

    let o = ember(&[&["collections", "create", &name, "--model", model][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("created collection '{name}' on postgres://")), "{}", stderr(&o));
    let o = ember(&[&["collections", "create", &name, "--model", model][..], &pg].concat(), None);
    assert_error(&o, &[&format!("collection '{name}' already exists")]);

    for store in [&embedded[..], &pg[..]] {
        let o =
            ember(&[&["ingest", docs.to_str().unwrap(), "-c", &name, "-m", model, "--json"][..], store].concat(), None);
        assert!(o.status.success(), "{}", stderr(&o));
        let report: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!((report["chunks_written"].as_u64(), report["count"].as_u64()), (Some(5), Some(5)), "{report}");
        // Re-ingesting skips everything (the content hashes read back from the store).
        let o = ember(&[&["ingest", docs.to_str().unwrap(), "-c", &name, "--json"][..], store].concat(), None);
        let report: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!((report["unchanged"].as_u64(), report["chunks_written"].as_u64()), (Some(4), Some(0)), "{report}");
    }

    // Dense, BM25 and hybrid (dense + BM25, fused by RRF in the engine): the same hits with the
    // same scores on both stores.
    for (query, filter, mode) in [
        ("why does a volcano erupt?", None, "dense"),
        ("vitamin D and bones", Some("lang = \"en\" and year >= 2020"), "dense"),
        ("why does a volcano erupt?", None, "bm25"),
        ("vitamin D supplementation", None, "hybrid"),
        ("cats purring", None, "hybrid"),
        ("vitamin bones", Some("lang = \"en\""), "hybrid"),
    ] {
        let mut results = Vec::new();
        for store in [&embedded[..], &pg[..]] {
            let mut args = vec!["search", &name, query, "-k", "5", "--json", "--mode", mode];
            if let Some(f) = filter {
                args.extend(["--filter", f]);
            }
            let o = ember(&[&args[..], store].concat(), None);
            assert!(o.status.success(), "{}", stderr(&o));
            let hits: Vec<(String, f64)> = json_lines(&o)
                .iter()
                .map(|h| (h["id"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap()))
                .collect();
            results.push(hits);
        }
        assert_eq!(results[0], results[1], "{query} ({mode}): embedded vs postgres");
        assert!(!results[1].is_empty(), "{query} ({mode})");
    }
    let o =
        ember(&[&["search", &name, "volcano magma", "-k", "1", "--json", "--mode", "bm25"][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["id"], "animals.md#1");
    let o = ember(&[&["search", &name, "volcano", "-k", "1", "--json"][..], &pg].concat(), None);
    assert_eq!(json_lines(&o)[0]["id"], "animals.md#1");

    let o = ember(&[&["get", &name, "p1#0"][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["metadata"]["year"], 2021);
    let o = ember(&[&["delete", &name, "p1#0", "nope"][..], &pg].concat(), None);
    assert!(stderr(&o).contains("deleted 1 of 2 ids"), "{}", stderr(&o));
    let o = ember(&[&["collections", "info", &name, "--json"][..], &pg].concat(), None);
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["count"], 4);
    assert_eq!(info["dimension"], 384);
    let o = ember(&[&["get", &name, "p1#0"][..], &pg].concat(), None);
    assert_error(&o, &["no document 'p1#0'"]);
    let o = ember(&[&["collections", "list"][..], &pg].concat(), None);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&name));

    let o = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember(&[&["search", &name, "volcano"][..], &pg].concat(), None);
    assert_error(&o, &[&format!("no collection named '{name}'")]);
}

#[test]
fn bad_store_locations_are_clear_errors() {
    let o = ember(&["collections", "list", "--store", "qdrant://localhost:6334"], None);
    assert_error(&o, &["unknown store scheme 'qdrant://'"]);
    let o = ember(&["collections", "list", "--store", "postgres://ann:hunter2@127.0.0.1:1/db?retries=0"], None);
    assert_error(&o, &["postgres://ann:***@127.0.0.1:1/db", "connect"]);
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let o =
        ember(&["collections", "create", "x", "--store", "postgres://u@h/d?sslmode=maybe", "--dimension", "3"], None);
    assert_error(&o, &["sslmode=\"maybe\" is not supported (use disable, prefer or require)"]);
    let o = ember(&["collections", "create", "x", "--data-dir", temp("pg-nomodel").to_str().unwrap()], None);
    assert_error(&o, &["give --model"]);
}

#[test]
fn serve_store_postgres_serves_what_the_cli_wrote() {
    use common::server::{http, start_server};
    let Some(url) = postgres_url() else { return };
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let docs = temp("pg-serve-docs");
    std::fs::write(
        docs.join("papers.jsonl"),
        "{\"id\": \"p1\", \"text\": \"Vitamin D supplementation improves bone density in older adults.\", \"lang\": \"en\"}\n\
         {\"id\": \"p2\", \"text\": \"A volcano erupts when molten rock escapes from a magma chamber.\", \"lang\": \"en\"}\n\
         {\"id\": \"p3\", \"text\": \"Deep learning models for protein folding.\", \"lang\": \"fr\"}\n",
    )
    .unwrap();
    let name = format!("served-kb-{}", std::process::id());
    let pg = ["--store", url.as_str()];
    let _ = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);
    let o = ember(&[&["ingest", docs.to_str().unwrap(), "-c", &name, "-m", model][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember(&[&["search", &name, "bones and vitamins", "-k", "3", "--json"][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let cli: Vec<(String, f64)> =
        json_lines(&o).iter().map(|h| (h["id"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap())).collect();
    assert_eq!(cli.len(), 3);

    let server = start_server(&["--model", model, "--store", &url]);
    assert!(server.log.lock().unwrap().contains("collections in postgres://"), "{}", server.log.lock().unwrap());
    let (status, body) = http(&server.addr, "GET", &format!("/v1/collections/{name}"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["count"], 3);
    let query = r#"{"query": "bones and vitamins", "k": 3}"#;
    let (status, body) = http(&server.addr, "POST", &format!("/v1/collections/{name}/search"), query);
    assert_eq!(status, 200, "{body}");
    let hits = serde_json::from_str::<Value>(&body).unwrap()["hits"].as_array().unwrap().clone();
    let served: Vec<(String, f64)> =
        hits.iter().map(|h| (h["id"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap())).collect();
    assert_eq!(served.iter().map(|h| &h.0).collect::<Vec<_>>(), cli.iter().map(|h| &h.0).collect::<Vec<_>>());
    for (s, c) in served.iter().zip(&cli) {
        assert!((s.1 - c.1).abs() < 1e-4, "{} scored {} served, {} by the CLI", s.0, s.1, c.1);
    }
    // A document written over HTTP is visible to the CLI at once: the server holds no state.
    let doc = r#"{"documents": [{"id": "p4", "text": "Calcium and vitamin D for strong bones."}]}"#;
    let (status, body) = http(&server.addr, "POST", &format!("/v1/collections/{name}/documents"), doc);
    assert_eq!(status, 200, "{body}");
    let o = ember(&[&["get", &name, "p4"][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Calcium and vitamin D"));
    drop(server);
    let o = ember(&[&["collections", "drop", &name][..], &pg].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));

    // --store and --data-dir exclude each other; a bad location names itself.
    let o = ember(&["serve", "--model", model, "--store", &url, "--data-dir", "/tmp/x", "--port", "0"], None);
    assert_eq!(o.status.code(), Some(2), "a usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("'--store <STORE>' cannot be used with '--data-dir <DATA_DIR>'"), "{}", stderr(&o));
    let o = ember(&["serve", "--model", model, "--store", "mysql://h/db", "--port", "0"], None);
    assert_error(&o, &["mysql://h/db"]);
}

/// A SciFact subset in BEIR layout: the first `n` corpus documents, the test queries with a
/// relevant document among them, and their judgements.
fn scifact_subset(dir: &std::path::Path, n: usize) {
    let source = common::repo_root().join("data/scifact");
    let corpus: Vec<String> =
        std::fs::read_to_string(source.join("corpus.jsonl")).unwrap().lines().take(n).map(String::from).collect();
    let kept: std::collections::HashSet<String> =
        corpus.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["_id"].as_str().unwrap().to_string()).collect();
    let qrels = std::fs::read_to_string(source.join("qrels/test.tsv")).unwrap();
    let mut lines = qrels.lines();
    let header = lines.next().unwrap();
    let judged: Vec<&str> = lines.filter(|l| kept.contains(l.split('\t').nth(1).unwrap())).collect();
    let queries: std::collections::HashSet<&str> = judged.iter().map(|l| l.split('\t').next().unwrap()).collect();
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(dir.join("corpus.jsonl"), corpus.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), format!("{header}\n{}\n", judged.join("\n"))).unwrap();
    let all = std::fs::read_to_string(source.join("queries.jsonl")).unwrap();
    let kept_queries: Vec<&str> = all
        .lines()
        .filter(|l| queries.contains(serde_json::from_str::<Value>(l).unwrap()["_id"].as_str().unwrap()))
        .collect();
    assert!(kept_queries.len() >= 20, "the subset has only {} judged queries", kept_queries.len());
    std::fs::write(dir.join("queries.jsonl"), kept_queries.join("\n") + "\n").unwrap();
}

/// `ember eval --store postgres://…` (the scratch collection on PostgreSQL, dropped afterwards)
/// gives exactly the embedded store's metrics on a SciFact subset, for hybrid (dense + BM25, RRF)
/// and BM25 alone; the full SciFact numbers are in docs/benchmarks.md.
#[test]
fn eval_through_postgres_equals_the_embedded_store_on_a_scifact_subset() {
    let Some(url) = postgres_url() else { return };
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let beir = temp("pg-scifact-subset");
    scifact_subset(&beir, 600);
    let cache = temp("pg-scifact-cache");
    for mode in ["hybrid", "bm25"] {
        let mut metrics = Vec::new();
        for store in [None, Some(url.as_str())] {
            let mut args = vec![
                "eval",
                "-m",
                model.to_str().unwrap(),
                "-d",
                beir.to_str().unwrap(),
                "--mode",
                mode,
                "--cache-dir",
                cache.to_str().unwrap(),
                "--json",
            ];
            if let Some(url) = store {
                args.extend(["--store", url]);
            }
            let o = ember(&args, None);
            assert!(o.status.success(), "{mode} {store:?}: {}", stderr(&o));
            let mut result: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
            let m = result["metrics"].as_object_mut().unwrap();
            m.retain(|k, _| !k.starts_with("query_ms"));
            metrics.push(result["metrics"].clone());
        }
        assert_eq!(metrics[0], metrics[1], "{mode}: embedded vs postgres");
        let ndcg = metrics[1]["ndcg_at_10"].as_f64().unwrap();
        assert!(ndcg > 0.6, "{mode}: nDCG@10 {ndcg} on the subset");
    }
    // The scratch collection is gone.
    let o = ember(&["collections", "list", "--store", &url], None);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("ember-eval-scratch"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
