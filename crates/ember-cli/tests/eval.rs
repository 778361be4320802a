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

/// A small BEIR set: six documents (two with titles), four queries, one relevant document each.
fn write_small_beir(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(
        dir.join("corpus.jsonl"),
        "\
{\"_id\": \"cats\", \"title\": \"\", \"text\": \"Cats are small domesticated felines that purr and chase mice.\"}
{\"_id\": \"volcano\", \"title\": \"Volcanoes\", \"text\": \"A volcano erupts when molten rock, ash and gases escape from a magma chamber.\"}
{\"_id\": \"vitamin\", \"title\": \"\", \"text\": \"Vitamin D supplementation improves bone density in older adults.\"}
{\"_id\": \"market\", \"title\": \"\", \"text\": \"The stock market fell sharply after the central bank raised interest rates.\"}
{\"_id\": \"plants\", \"title\": \"Photosynthesis\", \"text\": \"Plants convert sunlight, water and carbon dioxide into glucose in their leaves.\"}
{\"_id\": \"etna\", \"title\": \"\", \"text\": \"Mount Etna in Sicily had a large eruption with lava flows last year.\"}
",
    )
    .unwrap();
    std::fs::write(
        dir.join("queries.jsonl"),
        "\
{\"_id\": \"q1\", \"text\": \"volcanic eruption and lava\"}
{\"_id\": \"q2\", \"text\": \"does vitamin d help bones\"}
{\"_id\": \"q3\", \"text\": \"how do plants make sugar\"}
{\"_id\": \"q4\", \"text\": \"why did shares drop\"}
",
    )
    .unwrap();
    std::fs::write(
        dir.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\tvolcano\t1\nq2\tvitamin\t1\nq3\tplants\t1\nq4\tmarket\t1\n",
    )
    .unwrap();
}

/// `ember embed`'s sparse vectors (term id → weight) of `texts`, one per line.
fn splade_vectors(model: &str, texts: &[&str], name: &str) -> Vec<std::collections::HashMap<String, f64>> {
    let input = temp(name).join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let o = ember(&["embed", "-m", model, "--output-kind", "sparse", "-i", input.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            row["sparse"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect()
        })
        .collect()
}

/// `ember eval --mode sparse` with splade-tiny (the engine's sparse list on a scratch collection)
/// scores exactly what a brute-force ranking by dot products of the same model's sparse vectors
/// (`ember embed --output-kind sparse`) scores, and the sparse cache serves a re-run.
#[test]
fn eval_sparse_with_splade_matches_brute_force_dot_products() {
    let Some(splade) = real_model("splade-tiny", "splade-tiny") else { return };
    let m = splade.to_str().unwrap();
    let beir = temp("eval-sparse-data");
    write_small_beir(&beir);
    let cache = temp("eval-sparse-cache");
    let args = [
        "eval",
        "-d",
        beir.to_str().unwrap(),
        "--mode",
        "sparse",
        "--sparse-model",
        m,
        "--json",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let first = eval_json(&args);
    let r = &first[0];
    assert_eq!(r["model"], m);
    assert_eq!(r["texts"], 6 + 4);
    assert_eq!(r["cache_hits"], 0);

    // Brute force: BEIR's full text is "title text", trimmed.
    let docs = [
        ("cats", "Cats are small domesticated felines that purr and chase mice."),
        ("volcano", "Volcanoes A volcano erupts when molten rock, ash and gases escape from a magma chamber."),
        ("vitamin", "Vitamin D supplementation improves bone density in older adults."),
        ("market", "The stock market fell sharply after the central bank raised interest rates."),
        ("plants", "Photosynthesis Plants convert sunlight, water and carbon dioxide into glucose in their leaves."),
        ("etna", "Mount Etna in Sicily had a large eruption with lava flows last year."),
    ];
    let queries = [
        ("volcanic eruption and lava", "volcano"),
        ("does vitamin d help bones", "vitamin"),
        ("how do plants make sugar", "plants"),
        ("why did shares drop", "market"),
    ];
    let dv = splade_vectors(m, &docs.map(|d| d.1), "eval-sparse-docs");
    let qv = splade_vectors(m, &queries.map(|q| q.0), "eval-sparse-queries");
    let (mut ndcg, mut mrr, mut hit1) = (0.0, 0.0, 0.0);
    let mut ranks = Vec::new();
    for ((_, relevant), q) in queries.iter().zip(&qv) {
        let mut scored: Vec<(&str, f64)> = docs
            .iter()
            .zip(&dv)
            .map(|((id, _), d)| (*id, q.iter().filter_map(|(t, w)| d.get(t).map(|x| w * x)).sum::<f64>()))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let rank = scored.iter().position(|(id, _)| id == relevant).map(|p| p + 1);
        ranks.push(rank);
        if let Some(rank) = rank {
            ndcg += 1.0 / ((rank + 1) as f64).log2();
            mrr += 1.0 / rank as f64;
            hit1 += f64::from(u8::from(rank == 1));
        }
    }
    let n = queries.len() as f64;
    let metric = |k: &str| r["metrics"][k].as_f64().unwrap();
    assert!(
        (metric("ndcg_at_10") - ndcg / n).abs() < 1e-6,
        "ranks {ranks:?}: {} vs {}",
        metric("ndcg_at_10"),
        ndcg / n
    );
    assert!((metric("mrr_at_10") - mrr / n).abs() < 1e-6, "ranks {ranks:?}");
    assert!((metric("recall_at_1") - hit1 / n).abs() < 1e-6, "ranks {ranks:?}");
    assert_eq!(r["main_score"], r["metrics"]["ndcg_at_10"]);
    // What this model does on this set (the brute force above says why).
    assert_eq!(ranks, SPLADE_TINY_RANKS, "relevant documents' ranks");
    // The volcano document ranks second for q1, the others first: nDCG@10 = (1/log2(3) + 3) / 4.
    assert!((metric("ndcg_at_10") - (1.0 / 3f64.log2() + 3.0) / 4.0).abs() < 1e-6);
    assert!((metric("mrr_at_10") - 0.875).abs() < 1e-6);

    let second = eval_json(&args);
    assert_eq!(second[0]["cache_hits"], 6 + 4);
    assert_eq!(second[0]["main_score"], r["main_score"]);
}

/// The relevant documents' ranks under splade-tiny in [`eval_sparse_with_splade_matches_brute_force_dot_products`].
const SPLADE_TINY_RANKS: [Option<usize>; 4] = [Some(2), Some(1), Some(1), Some(1)];

#[test]
fn eval_sparse_refuses_models_without_sparse_output() {
    let Some(model) = tiny_model("eval-sparse-bad") else { return };
    let m = model.to_str().unwrap();
    let beir = temp("eval-sparse-bad-data");
    write_small_beir(&beir);
    let d = beir.to_str().unwrap();
    assert_error(
        &ember(&["eval", "-m", m, "-d", d, "--mode", "sparse", "--no-cache"], None),
        &["produces no sparse vectors (it produces: dense)", "--sparse-model"],
    );
    assert_error(
        &ember(&["eval", "-d", d, "--mode", "sparse", "--sparse-model", m, "--no-cache"], None),
        &["--sparse-model", "produces no sparse vectors (it produces: dense)"],
    );
    assert_error(
        &ember(&["eval", "-m", m, "-d", d, "--mode", "hybrid", "--sources", "dense,sparse", "--no-cache"], None),
        &["produces no sparse vectors (it produces: dense)"],
    );
    assert_error(&ember(&["eval", "-d", d, "--mode", "sparse"], None), &["--mode sparse needs --sparse-model"]);
    assert_error(
        &ember(&["eval", "-m", m, "-d", d, "--sparse-model", m], None),
        &["--sparse-model applies to --mode sparse"],
    );
}
