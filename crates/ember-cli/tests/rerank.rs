//! `ember rerank` on the tiny reranker fixtures of ember-models: the order and scores equal the
//! reference implementations' (recorded in the fixtures' JSON by
//! scripts/gen_reranker_fixtures.py), in the table and JSON outputs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    repo_root().join("crates/ember-models/tests/fixtures/rerank")
}

struct Case {
    query: String,
    documents: Vec<String>,
    instruction: Option<String>,
    scores: Vec<f32>,
    raw_scores: Vec<f32>,
}

fn case(model: &str, index: usize) -> Case {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{model}.json"))).unwrap()).unwrap();
    let c = &v["cases"][index];
    let floats = |k: &str| c[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    Case {
        query: c["query"].as_str().unwrap().to_string(),
        documents: c["documents"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect(),
        instruction: c["instruction"].as_str().map(str::to_string),
        scores: floats("scores"),
        raw_scores: floats("raw_scores"),
    }
}

/// Indices best first (ties by index), as ember ranks.
fn order(scores: &[f32]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..scores.len()).collect();
    o.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    o
}

fn write_lines(dir: &Path, docs: &[String]) -> PathBuf {
    let path = dir.join("docs.txt");
    std::fs::write(&path, docs.join("\n") + "\n").unwrap();
    path
}

fn json_results(stdout: &[u8]) -> Vec<(usize, usize, f32, String)> {
    let v: Value = serde_json::from_slice(stdout).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rank"].as_u64().unwrap() as usize,
                r["index"].as_u64().unwrap() as usize,
                r["score"].as_f64().unwrap() as f32,
                r["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_ranked(got: &[(usize, usize, f32, String)], c: &Case, want: &[f32], top: usize) {
    let o = order(want);
    assert_eq!(got.len(), top.min(o.len()));
    for (k, (rank, index, score, text)) in got.iter().enumerate() {
        assert_eq!(*rank, k + 1);
        assert_eq!(*index, o[k], "rank {rank}");
        assert!((score - want[*index]).abs() <= 1e-4, "document {index}: {score} vs {}", want[*index]);
        assert_eq!(text, &c.documents[*index]);
    }
}

#[test]
fn qwen3_reranker_orders_as_the_model_card() {
    let dir = temp("rerank-qwen");
    let model = fixtures().join("tiny-qwen3-reranker");
    let m = model.to_str().unwrap();
    let c = case("tiny-qwen3-reranker", 0);
    let docs = write_lines(&dir, &c.documents);
    let o = ember(&["rerank", "-m", m, "-q", &c.query, "-d", docs.to_str().unwrap(), "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ranked(&json_results(&o.stdout), &c, &c.scores, usize::MAX);
    // Raw scores (log-odds) and the best two.
    let o = ember(
        &["rerank", "-m", m, "-q", &c.query, "-d", docs.to_str().unwrap(), "--json", "--raw-scores", "--top-n", "2"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ranked(&json_results(&o.stdout), &c, &c.raw_scores, 2);
    // A custom instruction; documents as JSON lines.
    let c = case("tiny-qwen3-reranker", 1);
    let jsonl = dir.join("docs.jsonl");
    let lines: Vec<String> = c.documents.iter().map(|d| serde_json::json!({"text": d, "id": 1}).to_string()).collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let instruction = c.instruction.clone().unwrap();
    let o = ember(
        &["rerank", "-m", m, "-q", &c.query, "-d", jsonl.to_str().unwrap(), "--instruction", &instruction, "--json"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ranked(&json_results(&o.stdout), &c, &c.scores, usize::MAX);
}

#[test]
fn bert_cross_encoder_table_output() {
    let Some(tok) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let dir = temp("rerank-bert");
    let model = dir.join("model");
    copy_dir(&fixtures().join("tiny-bert-reranker"), &model);
    std::fs::copy(tok.join("tokenizer.json"), model.join("tokenizer.json")).unwrap();
    let c = case("tiny-bert-reranker", 0);
    let docs = write_lines(&dir, &c.documents);
    let o = ember(&["rerank", "-m", model.to_str().unwrap(), "-q", &c.query, "-d", docs.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    // The long document is cut to 512 tokens, and the note says so.
    assert!(stderr(&o).contains("1 of 7 (query, document) pairs were longer than 512 tokens"), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let o = order(&c.scores);
    assert_eq!(rows.len(), c.documents.len());
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (k + 1).to_string());
        let index: usize = row[1].parse().unwrap();
        assert_eq!(index, o[k]);
        let score: f32 = row[2].parse().unwrap();
        assert!((score - c.scores[index]).abs() <= 1e-4, "document {index}: {score} vs {}", c.scores[index]);
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = temp("rerank-bad");
    let m = fixtures().join("tiny-qwen3-reranker");
    let m = m.to_str().unwrap();
    let docs = write_lines(&dir, &["a".to_string()]);
    let d = docs.to_str().unwrap();
    assert_error(
        &ember(&["rerank", "-m", m, "-q", "q", "-d", "/nonexistent/docs.txt"], None),
        &["/nonexistent/docs.txt"],
    );
    assert_error(&ember(&["rerank", "-m", m, "-q", "q", "-d", d, "--top-n", "0"], None), &["--top-n"]);
    assert_error(
        &ember(&["rerank", "-m", m, "-q", "q", "-d", d, "--max-length", "3"], None),
        &["max_length 3 leaves no room"],
    );
    // An embedding model is not a reranker.
    let embedding = repo_root().join("crates/ember-models/tests/fixtures/tiny-xlmr");
    assert_error(
        &ember(&["rerank", "-m", embedding.to_str().unwrap(), "-q", "q", "-d", d], None),
        &["'XLMRobertaModel'", "not a reranker", "BertForSequenceClassification"],
    );
    // No documents: nothing to print, no error.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let o = ember(&["rerank", "-m", m, "-q", "q", "-d", empty.to_str().unwrap(), "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"], serde_json::json!([]));
}
