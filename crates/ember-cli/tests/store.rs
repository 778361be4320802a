//! `ember ingest`, `search`, `collections`, `get` and `delete` end to end with the real
//! all-MiniLM-L6-v2, on a throwaway data directory.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_error, ember, real_model, stderr, temp};
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn ingest_search_get_delete_and_reingest() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let docs = temp("store-docs");
    let data = temp("store-data");
    let data = data.to_str().unwrap();
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
         {\"id\": \"p3\", \"text\": \"Deep learning models for protein folding.\", \"lang\": \"en\", \"year\": 2018}\n\
         not json at all\n",
    )
    .unwrap();
    std::fs::write(docs.join("blob.txt"), b"\x00\x01\x02binary").unwrap();

    let o = ember(&["ingest", docs.to_str().unwrap(), "-c", "kb", "-m", model, "--data-dir", data, "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}: looks binary", docs.join("blob.txt").display())), "{err}");
    assert!(err.contains(&format!("{}:4: malformed JSON", docs.join("papers.jsonl").display())), "{err}");
    let report: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(report["documents"], 4);
    assert_eq!(report["added"], 4);
    // One chunk per heading section of animals.md, one per record.
    assert_eq!(report["chunks_written"], 5);
    assert_eq!(report["count"], 5);

    let o = ember(&["search", "kb", "why does a volcano erupt?", "-k", "2", "--json", "--data-dir", data], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let hits = json_lines(&o);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["id"], "animals.md#1");
    assert_eq!(hits[0]["rank"], 1);
    let source = std::fs::read_to_string(docs.join("animals.md")).unwrap();
    let (start, end) = (hits[0]["start"].as_u64().unwrap() as usize, hits[0]["end"].as_u64().unwrap() as usize);
    let span: String = source.chars().skip(start).take(end - start).collect();
    assert_eq!(hits[0]["text"], span.as_str());
    assert!(span.starts_with("# Volcanoes"), "{span}");
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());

    let o = ember(
        &[
            "search",
            "kb",
            "vitamin D and bones",
            "--filter",
            "lang = \"en\" and year >= 2020",
            "--json",
            "--data-dir",
            data,
        ],
        None,
    );
    let hits = json_lines(&o);
    assert_eq!(hits.iter().map(|h| h["id"].as_str().unwrap()).collect::<Vec<_>>(), ["p1#0"]);

    let o = ember(&["get", "kb", "p2#0", "--data-dir", data], None);
    let doc: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(doc["text"], "La vitamine D améliore la densité osseuse.");
    assert_eq!(doc["metadata"]["year"], 2019);

    // Unchanged documents are skipped; a changed one is replaced under the same id.
    let o = ember(&["ingest", docs.to_str().unwrap(), "-c", "kb", "--data-dir", data, "--json"], None);
    let report: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!((report["unchanged"].as_u64(), report["chunks_written"].as_u64()), (Some(4), Some(0)));
    std::fs::write(docs.join("animals.md"), "# Cats\n\nCats sleep most of the day.").unwrap();
    let o = ember(&["ingest", docs.to_str().unwrap(), "-c", "kb", "--data-dir", data, "--json"], None);
    let report: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(report["replaced"], 1);
    assert_eq!(report["chunks_written"], 1);
    assert_eq!(report["chunks_deleted"], 1);
    let o = ember(&["get", "kb", "animals.md#1", "--data-dir", data], None);
    assert_error(&o, &["no document 'animals.md#1' in collection 'kb'"]);

    let o = ember(&["delete", "kb", "p3#0", "missing", "--data-dir", data], None);
    assert!(stderr(&o).contains("deleted 1 of 2 ids"), "{}", stderr(&o));
    let o = ember(&["collections", "info", "kb", "--json", "--data-dir", data], None);
    let info: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(info["count"], 3);
    assert_eq!(info["dimension"], 384);
    assert_eq!(info["model"], std::path::Path::new(model).canonicalize().unwrap().to_str().unwrap());

    let o = ember(&["collections", "list", "--data-dir", data], None);
    assert!(stdout(&o).starts_with("kb\t3 documents"), "{}", stdout(&o));
    let o = ember(&["collections", "drop", "kb", "--data-dir", data], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember(&["search", "kb", "cats", "--data-dir", data], None);
    assert_error(&o, &["kb"]);
}

#[test]
fn bad_filters_unknown_collections_and_missing_paths_are_clear_errors() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let data = temp("store-errors");
    let data = data.to_str().unwrap();
    let docs = temp("store-errors-docs");
    std::fs::write(docs.join("a.txt"), "hello world").unwrap();
    let o =
        ember(&["ingest", docs.to_str().unwrap(), "-c", "kb", "-m", model.to_str().unwrap(), "--data-dir", data], None);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = ember(&["search", "kb", "hello", "--filter", "year >= ", "--data-dir", data], None);
    assert_error(&o, &["filter error at column 9", "expected a value"]);
    let o = ember(&["search", "nope", "hello", "--data-dir", data], None);
    assert_error(&o, &["nope", "kb"]);
    let o = ember(&["ingest", "/no/such/dir", "-c", "kb", "--data-dir", data], None);
    assert_error(&o, &["/no/such/dir"]);
    let o = ember(&["collections", "drop", "../etc", "--data-dir", data], None);
    assert_error(&o, &["../etc"]);
    // Another model's vectors are refused before anything is embedded or written.
    let tiny = common::tiny_model("store-errors-tiny").unwrap();
    let o =
        ember(&["ingest", docs.to_str().unwrap(), "-c", "kb", "-m", tiny.to_str().unwrap(), "--data-dir", data], None);
    assert_error(&o, &["collection 'kb' holds vectors of model"]);
    let o = ember(&["collections", "info", "kb", "--json", "--data-dir", data], None);
    let info: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(info["count"], 1);

    // An HNSW collection and a binary-quantized one answer like the flat one.
    for (name, flags) in [("graph", ["--index", "hnsw"]), ("bits", ["--precision", "binary"])] {
        let mut args =
            vec!["ingest", docs.to_str().unwrap(), "-c", name, "-m", model.to_str().unwrap(), "--data-dir", data];
        args.extend(flags);
        let o = ember(&args, None);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = ember(&["search", name, "hello world", "--json", "--ef", "100", "--data-dir", data], None);
        let hit: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
        assert_eq!(hit["id"], "a.txt#0");
        assert!((hit["score"].as_f64().unwrap() - 1.0).abs() < 1e-4, "{hit}");
    }
    let o = ember(&["collections", "info", "graph", "--json", "--data-dir", data], None);
    let info: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(info["index"].as_str().unwrap().starts_with("Hnsw"), "{info}");
}
