//! `ember search --mode dense|bm25|sparse|multivector|hybrid`, fusion flags and `--explain`, end
//! to end with the real all-MiniLM-L6-v2 on a small corpus; `ember eval --mode bm25` on SciFact.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_error, ember, real_model, repo_root, stderr, temp};
use serde_json::Value;

const CORPUS: &str = "\
{\"id\": \"cats\", \"text\": \"Cats are small domesticated felines that purr and chase mice.\"}
{\"id\": \"volcano\", \"text\": \"A volcano erupts when molten rock, ash and gases escape from a magma chamber.\"}
{\"id\": \"vitamin\", \"text\": \"Vitamin D supplementation improves bone density in older adults.\"}
{\"id\": \"market\", \"text\": \"The stock market fell sharply after the central bank raised interest rates.\"}
{\"id\": \"plants\", \"text\": \"Photosynthesis converts sunlight, water and carbon dioxide into glucose in plant leaves.\"}
{\"id\": \"etna\", \"text\": \"Mount Etna in Sicily had a large eruption with lava flows last year.\"}
";

fn search(data: &str, query: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["search", "kb", query, "--json", "--data-dir", data];
    args.extend_from_slice(extra);
    let o = ember(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ids(hits: &[Value]) -> Vec<&str> {
    hits.iter().map(|h| h["id"].as_str().unwrap()).collect()
}

fn ingest(model: &str, data: &str, name: &str, extra: &[&str]) {
    let docs = temp(&format!("modes-docs-{name}"));
    std::fs::write(docs.join("corpus.jsonl"), CORPUS).unwrap();
    let mut args = vec!["ingest", docs.to_str().unwrap(), "-c", name, "-m", model, "--data-dir", data, "--json"];
    args.extend_from_slice(extra);
    let o = ember(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn every_mode_ranks_the_corpus_and_explain_shows_each_list() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let data = temp("modes-data");
    let data = data.to_str().unwrap();
    ingest(model, data, "kb", &[]);

    // BM25 finds only the documents sharing a stemmed term, and loads no model.
    let hits = search(data, "magma chamber", &["--mode", "bm25"]);
    assert_eq!(ids(&hits), ["volcano#0"]);
    let hits = search(data, "volcanic eruption and lava", &["--mode", "bm25"]);
    // "eruption" and "erupts" share the stem "erupt"; "volcanic" is not "volcano" to Porter.
    assert_eq!(ids(&hits), ["etna#0", "volcano#0"]);
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());

    // Dense finds meaning without shared words.
    let hits = search(data, "why do mountains explode with fire", &["--mode", "dense", "-k", "3"]);
    assert_eq!(ids(&hits)[..2], ["volcano#0", "etna#0"]);

    // Hybrid (dense + BM25, RRF k = 60) with --explain.
    let hits = search(data, "volcanic eruption and lava", &["--mode", "hybrid", "-k", "3", "--explain"]);
    // etna is BM25's first and dense's second, volcano the reverse: equal RRF scores, so the
    // tie goes by best rank (both 1), then id. cats is only in the dense list (third).
    assert_eq!(ids(&hits), ["etna#0", "volcano#0", "cats#0"]);
    let rrf = 1.0 / 61.0 + 1.0 / 62.0;
    for (i, (bm25, dense)) in [(1, 2), (2, 1)].into_iter().enumerate() {
        let e = &hits[i]["explain"];
        assert_eq!(e["fused_rank"], i + 1);
        assert_eq!(
            (e["lists"]["bm25"]["rank"].as_u64(), e["lists"]["dense"]["rank"].as_u64()),
            (Some(bm25), Some(dense))
        );
        assert!((hits[i]["score"].as_f64().unwrap() - rrf).abs() < 1e-6, "{}", hits[i]);
        assert!(e["rerank_score"].is_null());
    }
    assert!(hits[2]["explain"]["lists"]["bm25"].is_null());
    assert_eq!(hits[2]["explain"]["lists"]["dense"]["rank"], 3);
    assert!((hits[2]["score"].as_f64().unwrap() - 1.0 / 63.0).abs() < 1e-6);

    // Human output carries the explain line.
    let o = ember(
        &["search", "kb", "volcanic eruption and lava", "--mode", "hybrid", "-k", "1", "--explain", "--data-dir", data],
        None,
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("fused #1 0.0325 | dense #2 0.6741 | bm25 #1 1.1263"), "{out}");
    assert!(out.contains("| bm25 #1 "), "{out}");

    // Other fusions and weights.
    for extra in [&["--fusion", "dbsf"][..], &["--fusion", "minmax"], &["--fusion", "weighted", "--weights", "0.3,0.7"]]
    {
        let mut args = vec!["--mode", "hybrid", "-k", "2"];
        args.extend_from_slice(extra);
        assert_eq!(ids(&search(data, "volcanic eruption and lava", &args)), ["etna#0", "volcano#0"], "{extra:?}");
    }
}

#[test]
fn missing_indexes_fields_and_rerankers_are_clear_errors() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let data = temp("modes-errors");
    let data = data.to_str().unwrap();
    ingest(model, data, "kb", &["--text-index", "none"]);
    let run = |extra: &[&str]| {
        let mut args = vec!["search", "kb", "lava", "--data-dir", data];
        args.extend_from_slice(extra);
        ember(&args, None)
    };
    assert_error(&run(&["--mode", "bm25"]), &["collection 'kb' has no BM25 text index; create it with"]);
    assert_error(&run(&["--mode", "sparse"]), &["collection 'kb' has no sparse field"]);
    assert_error(&run(&["--mode", "hybrid"]), &["hybrid search needs a second list"]);
    assert_error(&run(&["--mode", "multivector"]), &["collection 'kb' has no multivector field"]);
    assert_error(
        &run(&["--rerank", "/nonexistent/cross-encoder"]),
        &["cannot load reranker '/nonexistent/cross-encoder'"],
    );
    assert_error(&run(&["--mode", "hybrid", "--fusion", "weighted"]), &["--fusion weighted needs --weights"]);
    assert_error(&run(&["--mode", "dense", "--weights", "1,2"]), &["--sources and --weights apply to --mode hybrid"]);
    assert_error(&run(&["--mode", "hybrid", "--sources", "dense,bogus"]), &["unknown retrieval source 'bogus'"]);

    // A model without sparse output is refused before the collection is created.
    let docs = temp("modes-docs-sparse");
    std::fs::write(docs.join("corpus.jsonl"), CORPUS).unwrap();
    let o = ember(
        &["ingest", docs.to_str().unwrap(), "-c", "kb3", "-m", model, "--sparse-model", model, "--data-dir", data],
        None,
    );
    assert_error(&o, &["produces no sparse vectors (it produces: dense)"]);
    assert_error(&ember(&["collections", "info", "kb3", "--data-dir", data], None), &["no collection named 'kb3'"]);

    ingest(model, data, "kb2", &[]);
    let o = ember(&["search", "kb2", "lava", "--mode", "hybrid", "--weights", "1,2,3", "--data-dir", data], None);
    assert_error(&o, &["3 weights given for 2 ranked lists"]);
}

/// BM25 on SciFact's test split through `ember eval` (the engine's retrieve on a scratch store)
/// equals ember-index's own BM25 run (`cargo run -p ember-eval --example bm25_scifact`: nDCG@10
/// 0.6826, recall@100 0.9282), and needs no model.
#[test]
fn eval_bm25_on_scifact_needs_no_model_and_matches_the_index_example() {
    let data = repo_root().join("data/scifact");
    let cache = temp("modes-eval-cache");
    let o = ember(
        &["eval", "-d", data.to_str().unwrap(), "--mode", "bm25", "--json", "--cache-dir", cache.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    assert_eq!(r["model"], "bm25");
    assert_eq!(r["main_metric"], "ndcg_at_10");
    let ndcg = r["main_score"].as_f64().unwrap();
    assert!((ndcg - BM25_NDCG10).abs() < 1e-9, "SciFact BM25 nDCG@10 {ndcg}");
    assert!((r["metrics"]["recall_at_100"].as_f64().unwrap() - 0.928_222_222_222_222_3).abs() < 1e-9);
    // The scratch store is gone.
    assert_eq!(std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0), 0);
    assert_error(&ember(&["eval", "-d", data.to_str().unwrap(), "--mode", "hybrid"], None), &["--model is needed"]);
}

/// Computed by this test's command; `bm25_scifact` prints the same run as `nDCG@10 0.6826` and
/// `recall@100 0.9282`.
const BM25_NDCG10: f64 = 0.682_575_425_600_509_7;

/// `--rerank` orders the fused candidates exactly as `ember rerank` orders the same texts with the
/// same model (the tiny Qwen3 reranker whose scores match the model card's code in ember-models'
/// parity tests), and `--explain` carries each hit's rerank score.
#[test]
fn search_rerank_orders_candidates_as_ember_rerank_does() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = model.to_str().unwrap();
    let data = temp("modes-rerank");
    let data = data.to_str().unwrap();
    ingest(model, data, "kb", &[]);
    let reranker = repo_root().join("crates/ember-models/tests/fixtures/rerank/tiny-qwen3-reranker");
    let reranker = reranker.to_str().unwrap();
    let query = "volcanic eruption and lava";
    let hits =
        search(data, query, &["--mode", "hybrid", "-k", "4", "--rerank", reranker, "--rerank-top", "6", "--explain"]);
    assert_eq!(hits.len(), 4);

    // The same six candidates (the hybrid list's top 6 = all documents), scored by `ember rerank`.
    let all = search(data, query, &["--mode", "hybrid", "-k", "6"]);
    let dir = temp("modes-rerank-docs");
    let docs = dir.join("docs.txt");
    let texts: Vec<&str> = all.iter().map(|h| h["text"].as_str().unwrap()).collect();
    std::fs::write(&docs, texts.join("\n")).unwrap();
    let o = ember(
        &["rerank", "--model", reranker, "--query", query, "--documents", docs.to_str().unwrap(), "--json"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let want: Vec<(&str, f64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (all[r["index"].as_u64().unwrap() as usize]["id"].as_str().unwrap(), r["score"].as_f64().unwrap()))
        .collect();
    for (hit, (id, score)) in hits.iter().zip(&want) {
        assert_eq!(hit["id"].as_str().unwrap(), *id, "{hits:?}\n{want:?}");
        let got = hit["explain"]["rerank_score"].as_f64().unwrap();
        assert!((got - score).abs() < 1e-5, "{id}: {got} vs {score}");
    }
}
