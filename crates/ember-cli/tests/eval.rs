//! `ember eval` end to end on real data and real weights: published MTEB scores reproduce
//! (reference.md: all-MiniLM-L6-v2 STSBenchmark 82.03, SciFact nDCG@10 64.51), the embedding
//! cache serves a second run, and reports are written.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn eval_json(args: &[&str]) -> Vec<serde_json::Value> {
    let o = ember(args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn minilm_stsbenchmark_reproduces_mteb_and_the_cache_serves_a_rerun() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let cache = temp("eval-cache");
    let data = repo_root().join("data/stsbenchmark");
    let args = [
        "eval",
        "-m",
        model.to_str().unwrap(),
        "-d",
        data.to_str().unwrap(),
        "--json",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let first = eval_json(&args);
    let r = &first[0];
    assert_eq!(r["task"], "sts");
    let spearman = r["main_score"].as_f64().unwrap() * 100.0;
    assert!((spearman - 82.03).abs() <= 0.3, "STSBenchmark cos Spearman {spearman}, MTEB 82.03");
    assert!((r["metrics"]["cosine_pearson"].as_f64().unwrap() - 0.8274).abs() < 0.002);
    // 2 × 1,379 sentences; the second run embeds none of them.
    assert_eq!(r["texts"], 2758);
    let second = eval_json(&args);
    assert_eq!(second[0]["cache_hits"], 2758);
    assert_eq!(second[0]["main_score"], r["main_score"]);
}

#[test]
fn minilm_scifact_reproduces_mteb_ndcg_at_10() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let data = repo_root().join("data/scifact");
    let report = temp("eval-report").join("report.md");
    let out = eval_json(&[
        "eval",
        "-m",
        model.to_str().unwrap(),
        "-d",
        data.to_str().unwrap(),
        "--json",
        "--no-cache",
        "--report",
        report.to_str().unwrap(),
    ]);
    let r = &out[0];
    assert_eq!(r["task"], "retrieval");
    assert_eq!(r["main_metric"], "ndcg_at_10");
    let ndcg = r["main_score"].as_f64().unwrap() * 100.0;
    assert!((ndcg - 64.51).abs() <= 0.3, "SciFact nDCG@10 {ndcg}, MTEB 64.51");
    let recall = r["metrics"]["recall_at_100"].as_f64().unwrap() * 100.0;
    assert!((recall - 92.50).abs() <= 0.5, "SciFact recall@100 {recall}, MTEB 92.50");
    let map10 = r["metrics"]["map_at_10"].as_f64().unwrap() * 100.0;
    assert!((map10 - 59.59).abs() <= 0.3, "SciFact MAP@10 {map10}, MTEB 59.59");
    assert_eq!(r["texts"], 5183 + 300);
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("| scifact | retrieval |"), "{md}");
    assert!(report.with_extension("svg").exists() && report.with_extension("json").exists());
}

#[test]
fn eval_errors_name_the_file() {
    let Some(model) = tiny_model("eval-bad") else { return };
    let m = model.to_str().unwrap();
    let d = temp("eval-bad-data");
    std::fs::write(d.join("test.tsv"), "sentence1\tsentence2\tscore\n").unwrap();
    assert_error(&ember(&["eval", "-m", m, "-d", d.to_str().unwrap()], None), &["test.tsv", "empty"]);
    std::fs::write(d.join("test.tsv"), "sentence1\tsentence2\tscore\na\tb\tfive\n").unwrap();
    assert_error(&ember(&["eval", "-m", m, "-d", d.to_str().unwrap()], None), &["test.tsv:2", "not a number"]);
    assert_error(&ember(&["eval", "-m", m, "-d", "/no/such/dir"], None), &["/no/such/dir"]);
    std::fs::create_dir_all(d.join("beir/qrels")).unwrap();
    std::fs::write(d.join("beir/corpus.jsonl"), "{\"_id\":\"1\",\"text\":\"x\"}\n").unwrap();
    std::fs::write(d.join("beir/queries.jsonl"), "{\"_id\":\"q\",\"text\":\"y\"}\n").unwrap();
    std::fs::write(d.join("beir/qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq\t2\t1\n").unwrap();
    assert_error(
        &ember(&["eval", "-m", m, "-d", d.join("beir").to_str().unwrap()], None),
        &["test.tsv:2", "corpus id '2'"],
    );
}
