//! `ember embed --output-kind`, `ember score` and `ember models info` with SPLADE (splade-tiny)
//! and BGE-M3 (the tiny checkpoint of ember-models' fixtures), checked against the reference
//! values in `crates/ember-models/tests/fixtures/sparse/` (transformers / FlagEmbedding).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{ember, real_model, repo_root, stderr, temp};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = repo_root().join("crates/ember-models/tests/fixtures/sparse").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tiny_bge_m3(name: &str) -> Option<PathBuf> {
    let tok = real_model("xlmr-tokenizer", "xlmr-tokenizer")?;
    let fixtures = repo_root().join("crates/ember-models/tests/fixtures");
    let d = temp(name);
    common::copy_dir(&fixtures.join("tiny-bge-m3"), &d);
    std::fs::copy(fixtures.join("tiny-xlmr/model.safetensors"), d.join("model.safetensors")).unwrap();
    std::fs::copy(tok.join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    Some(d)
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn assert_fails_with(o: &std::process::Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

#[test]
fn embed_writes_dense_sparse_and_colbert_of_bge_m3() {
    let Some(model) = tiny_bge_m3("m3-embed") else { return };
    let fx = fixture("tiny-bge-m3.json");
    let cases = &fx["cases"].as_array().unwrap()[..4];
    let input: String = cases.iter().map(|c| format!("{}\n", c["text"].as_str().unwrap())).collect();
    let m = model.to_str().unwrap();
    let o = ember(&["embed", "-m", m, "--output-kind", "dense,sparse,colbert"], Some(input.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json_lines(&o.stdout);
    assert_eq!(rows.len(), 4);
    for (row, case) in rows.iter().zip(cases) {
        assert_eq!(row.as_object().unwrap().keys().collect::<Vec<_>>(), ["colbert", "dense", "sparse"]);
        let dense = floats(&row["dense"]);
        let want = floats(&case["dense"]);
        assert!(dense.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-4), "{dense:?} vs {want:?}");
        // sparse: {"<id>": weight}, ids ascending
        let sparse = row["sparse"].as_object().unwrap();
        let want: Vec<(String, f32)> =
            case["sparse"].as_array().unwrap().iter().map(|p| (p[0].to_string(), f(&p[1]))).collect();
        let got: Vec<(String, f32)> = sparse.iter().map(|(k, v)| (k.clone(), f(v))).collect();
        let mut got_sorted = got.clone();
        got_sorted.sort_by_key(|(k, _)| k.parse::<u32>().unwrap());
        assert_eq!(got.iter().map(|p| &p.0).collect::<Vec<_>>().len(), want.len());
        for ((gk, gw), (wk, ww)) in got_sorted.iter().zip(&want) {
            assert_eq!(gk, wk);
            assert!((gw - ww).abs() <= 1e-4, "{gk}: {gw} vs {ww}");
        }
        let colbert = row["colbert"].as_array().unwrap();
        let want = case["colbert"].as_array().unwrap();
        assert_eq!(colbert.len(), want.len());
        for (g, w) in colbert.iter().zip(want) {
            assert!(floats(g).iter().zip(floats(w)).all(|(a, b)| (a - b).abs() <= 1e-4));
        }
    }
    // `multivector` is an alias, and only the kinds asked for are written
    let o = ember(&["embed", "-m", m, "--output-kind", "multivector"], Some(b"What is BGE M3?\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let row = &json_lines(&o.stdout)[0];
    assert_eq!(row.as_object().unwrap().keys().collect::<Vec<_>>(), ["colbert"]);
    // the dense-only path is unchanged for BGE-M3
    let o = ember(&["embed", "-m", m], Some(b"What is BGE M3?\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = floats(&json_lines(&o.stdout)[0]);
    let want = floats(&cases[0]["dense"]);
    assert_eq!(plain.len(), want.len());
    assert!(plain.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-4), "{plain:?}");
}

#[test]
fn embed_splade_keys_sparse_vectors_by_id_or_token() {
    let Some(model) = real_model("splade-tiny", "splade-tiny") else { return };
    let m = model.to_str().unwrap();
    let fx = fixture("splade-tiny.json");
    let case = &fx["cases"][0];
    assert_eq!(case["text"], "The capital of France is Paris.");
    // SPLADE has no dense output: without --output-kind, ember embed writes its sparse vectors
    let o = ember(&["embed", "-m", m], Some(b"The capital of France is Paris.\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let row = &json_lines(&o.stdout)[0];
    let sparse = row["sparse"].as_object().unwrap();
    let want = case["sparse"].as_array().unwrap();
    assert_eq!(sparse.len(), want.len());
    for p in want {
        let got = f(&sparse[&p[0].to_string()]);
        assert!((got - f(&p[1])).abs() <= 1e-4);
    }
    // by token: the top terms the reference found, with its weights
    let o = ember(
        &["embed", "-m", m, "--output-kind", "sparse", "--sparse-format", "tokens"],
        Some(b"The capital of France is Paris.\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let row = &json_lines(&o.stdout)[0];
    let by_token = row["sparse"].as_object().unwrap();
    let mut ranked: Vec<(u32, f32)> = want.iter().map(|p| (p[0].as_u64().unwrap() as u32, f(&p[1]))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (token, (_, weight)) in fx["cases"][0]["top_tokens"].as_array().unwrap().iter().zip(&ranked).take(5) {
        let token = token.as_str().unwrap();
        assert!((f(&by_token[token]) - weight).abs() <= 1e-4, "{token}");
    }
    for t in ["capital", "paris", "france"] {
        assert!(by_token.contains_key(t), "{t}");
    }
    // asking a sparse-only model for dense output names what it has
    let o = ember(&["embed", "-m", m, "--output-kind", "dense,sparse"], Some(b"x\n"));
    assert_fails_with(&o, &["cannot produce dense output", "it produces: sparse"]);
    let o = ember(&["embed", "-m", m, "--output-kind", "bm25"], Some(b"x\n"));
    assert_fails_with(&o, &["unknown output kind 'bm25'"]);
}

#[test]
fn score_reproduces_flagembedding_compute_score() {
    let Some(model) = tiny_bge_m3("m3-score") else { return };
    let m = model.to_str().unwrap();
    let fx = fixture("tiny-bge-m3.json");
    let dir = temp("m3-score-in");
    let pairs: String = fx["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}\t{}\n", p["query"].as_str().unwrap(), p["passage"].as_str().unwrap()))
        .collect();
    std::fs::write(dir.join("pairs.tsv"), pairs).unwrap();
    let pairs_file = dir.join("pairs.tsv");
    let pf = pairs_file.to_str().unwrap();
    // default mode for BGE-M3: colbert+sparse+dense, weights 0.4,0.2,0.4
    let o = ember(&["score", "-m", m, "--pairs", pf, "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = &fx["scores_model_card_weights"];
    for (n, row) in rows.as_array().unwrap().iter().enumerate() {
        assert_eq!(row["mode"], "colbert+sparse+dense");
        for (key, got) in [
            ("colbert+sparse+dense", &row["score"]),
            ("dense", &row["dense"]),
            ("sparse", &row["sparse"]),
            ("colbert", &row["colbert"]),
        ] {
            let (g, w) = (f(got), f(&want[key][n]));
            assert!((g - w).abs() <= 1e-4, "pair {n} {key}: {g} vs {w}");
        }
    }
    // plain output, one score per line; FlagEmbedding's own default weights [1, 1, 1]
    let o = ember(&["score", "-m", m, "--pairs", pf, "--weights", "1,1,1"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<f32> = String::from_utf8(o.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let want = &fx["scores_default_weights"]["colbert+sparse+dense"];
    assert_eq!(lines.len(), 6);
    for (n, g) in lines.iter().enumerate() {
        assert!((g - f(&want[n])).abs() <= 1e-4, "pair {n}: {g}");
    }
    // one query against a documents file, sparse+dense
    let docs = dir.join("docs.txt");
    let p = &fx["pairs"][0];
    std::fs::write(
        &docs,
        format!("{}\n{}\n", fx["pairs"][0]["passage"].as_str().unwrap(), fx["pairs"][1]["passage"].as_str().unwrap()),
    )
    .unwrap();
    let o = ember(
        &["score", "-m", m, "-q", p["query"].as_str().unwrap(), "-d", docs.to_str().unwrap(), "--mode", "sparse+dense"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<f32> = String::from_utf8(o.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let want = &fx["scores_model_card_weights"]["sparse+dense"];
    assert!((lines[0] - f(&want[0])).abs() <= 1e-4 && (lines[1] - f(&want[1])).abs() <= 1e-4, "{lines:?}");
}

#[test]
fn score_and_info_name_the_outputs_a_model_has() {
    let Some(model) = tiny_bge_m3("m3-info") else { return };
    let o = ember(&["models", "info", "-m", model.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("outputs        dense, sparse, colbert (multivector)"), "{out}");
    assert!(out.contains("heads          bge-m3"), "{out}");
    let o = ember(&["models", "info", "-m", model.to_str().unwrap(), "--json"], None);
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["outputs"], serde_json::json!(["dense", "sparse", "multivector"]));

    let Some(dense) = common::tiny_model("m3-dense-only") else { return };
    let dir = temp("m3-info-in");
    std::fs::write(dir.join("docs.txt"), "a\n").unwrap();
    let docs = dir.join("docs.txt");
    let o = ember(
        &["score", "-m", dense.to_str().unwrap(), "-q", "x", "-d", docs.to_str().unwrap(), "--mode", "colbert"],
        None,
    );
    assert_fails_with(&o, &["cannot produce multivector output", "it produces: dense"]);
    let o = ember(&["score", "-m", dense.to_str().unwrap(), "-q", "x", "-d", docs.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ember(
        &["score", "-m", dense.to_str().unwrap(), "-q", "x", "-d", docs.to_str().unwrap(), "--weights", "1,2"],
        None,
    );
    assert_fails_with(&o, &["weights must be three"]);
    let o = ember(&["models", "info", "-m", dense.to_str().unwrap()], None);
    assert!(String::from_utf8(o.stdout).unwrap().contains("outputs        dense\n"));
}

/// `ember ingest --multivector` stores BGE-M3's token vectors and `ember search --mode
/// multivector` ranks by MaxSim: the same order and scores as `ember score --mode colbert`
/// (FlagEmbedding's colbert_score, checked against the reference in
/// `score_reproduces_flagembedding_compute_score`).
#[test]
fn multivector_collections_rank_by_colbert_score() {
    let Some(model) = tiny_bge_m3("m3-multivector") else { return };
    let m = model.to_str().unwrap();
    let dir = temp("m3-multivector-in");
    let texts = [
        "BGE M3 is an embedding model supporting dense, lexical and multi-vector retrieval.",
        "Paris is the capital and largest city of France.",
        "Cats are small domesticated felines that purr.",
        "BM25 is a ranking function used by search engines.",
    ];
    let corpus: String =
        texts.iter().enumerate().map(|(i, t)| format!("{{\"id\": \"d{i}\", \"text\": \"{t}\"}}\n")).collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let data = temp("m3-multivector-data");
    let data = data.to_str().unwrap();
    let o = ember(
        &[
            "ingest",
            dir.join("corpus.jsonl").to_str().unwrap(),
            "-c",
            "kb",
            "-m",
            m,
            "--multivector",
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let query = "What is BGE M3?";
    let o = ember(&["search", "kb", query, "--mode", "multivector", "-k", "4", "--json", "--data-dir", data], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let hits = json_lines(&o.stdout);
    assert_eq!(hits.len(), 4);

    std::fs::write(dir.join("docs.txt"), texts.join("\n")).unwrap();
    let o = ember(
        &["score", "-m", m, "-q", query, "-d", dir.join("docs.txt").to_str().unwrap(), "--mode", "colbert"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let scores: Vec<f32> = String::from_utf8(o.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(scores.len(), 4);
    let mut want: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for (hit, (i, s)) in hits.iter().zip(&want) {
        assert_eq!(hit["id"].as_str().unwrap(), format!("d{i}#0"), "{hits:?} vs {want:?}");
        assert!((f(&hit["score"]) - s).abs() <= 1e-4, "d{i}: {} vs {s}", hit["score"]);
    }

    // A model without token vectors is refused before a collection exists.
    let Some(minilm) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let o = ember(
        &[
            "ingest",
            dir.join("corpus.jsonl").to_str().unwrap(),
            "-c",
            "kb2",
            "-m",
            minilm.to_str().unwrap(),
            "--multivector",
            "--data-dir",
            data,
        ],
        None,
    );
    assert_fails_with(&o, &["--multivector needs a model with token vectors", "produces: dense"]);
}
