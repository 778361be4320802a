//! `ember collections create|list|info|drop`, `ingest`, `search`, `get` and `delete` with
//! `--store milvus://…` (a protocol test: the Milvus-protocol server of milvus-lite from
//! `EMBER_TEST_MILVUS_URL`, started by scripts/setup-milvus.sh), checked against the same commands
//! on the embedded store: the same hits with the same scores. Under `CI=true` a missing server
//! fails the test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_error, ember, real_model, stderr, temp};
use serde_json::Value;

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn milvus_url() -> Option<String> {
    common::server_url("EMBER_TEST_MILVUS_URL", "scripts/setup-milvus.sh")
}

#[test]
fn collections_on_milvus_work_like_the_embedded_store_protocol() {
    let Some(url) = milvus_url() else { return };
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let docs = temp("milvus-docs");
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
    let data = temp("milvus-embedded");
    let embedded = ["--data-dir", data.to_str().unwrap()];
    let mv = ["--store", url.as_str()];
    let _ = ember(&[&["collections", "drop", &name][..], &mv].concat(), None);

    let o = ember(&[&["collections", "create", &name, "--model", model][..], &mv].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("created collection '{name}' on milvus://")), "{}", stderr(&o));
    let o = ember(&[&["collections", "create", &name, "--model", model][..], &mv].concat(), None);
    assert_error(&o, &[&format!("collection '{name}' already exists")]);

    for store in [&embedded[..], &mv[..]] {
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

    for (query, filter) in
        [("why does a volcano erupt?", None), ("vitamin D and bones", Some("lang = \"en\" and year >= 2020"))]
    {
        let mut results = Vec::new();
        for store in [&embedded[..], &mv[..]] {
            let mut args = vec!["search", &name, query, "-k", "5", "--json"];
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
        assert_eq!(results[0], results[1], "{query}: embedded vs milvus");
        assert!(!results[1].is_empty());
    }
    let o = ember(&[&["search", &name, "volcano", "-k", "1", "--json"][..], &mv].concat(), None);
    assert_eq!(json_lines(&o)[0]["id"], "animals.md#1");

    let o = ember(&[&["get", &name, "p1#0"][..], &mv].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["metadata"]["year"], 2021);
    let o = ember(&[&["delete", &name, "p1#0", "nope"][..], &mv].concat(), None);
    assert!(stderr(&o).contains("deleted 1 of 2 ids"), "{}", stderr(&o));
    let o = ember(&[&["collections", "info", &name, "--json"][..], &mv].concat(), None);
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["count"], 4);
    assert_eq!(info["dimension"], 384);
    let o = ember(&[&["get", &name, "p1#0"][..], &mv].concat(), None);
    assert_error(&o, &["no document 'p1#0'"]);
    let o = ember(&[&["collections", "list"][..], &mv].concat(), None);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&name));

    let o = ember(&[&["collections", "drop", &name][..], &mv].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember(&[&["search", &name, "volcano"][..], &mv].concat(), None);
    assert_error(&o, &[&format!("no collection named '{name}'")]);
}

#[test]
fn unreachable_milvus_is_a_clear_error_without_the_password() {
    let o = ember(
        &["collections", "list", "--store", "milvus://ann:hunter2@127.0.0.1:1?retries=0&connect_timeout=2"],
        None,
    );
    assert_error(&o, &["connect on milvus://ann:***@127.0.0.1:1 failed after 1 attempt(s)"]);
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let o = ember(&["collections", "create", "x", "--store", "milvus://h:19530?tls=maybe", "--dimension", "3"], None);
    assert_error(&o, &["tls=\"maybe\" is not true or false"]);
}
