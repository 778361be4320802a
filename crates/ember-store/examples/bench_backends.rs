//! Ingest throughput and dense query latency of every store backend on the same synthetic data,
//! in one run: `scripts/bench-backends.sh` (docs/benchmarks.md has the numbers).
//!
//! ```sh
//! cargo run --release -p ember-store --features postgres --example bench_backends -- \
//!     --postgres postgres://postgres@127.0.0.1:54329/ember_test [--n 100000] [--dim 384] [--queries 200]
//! cargo run --release -p ember-store --features milvus --example bench_backends -- \
//!     --milvus milvus://milvus.internal:19530     # a real Milvus (milvus-lite measures nothing useful)
//! ```
//! Vectors are seeded random unit vectors around 256 centres; queries are other such vectors.
//! Each backend gets a flat (exact) and an HNSW (m = 16, ef_construction = 64) collection,
//! written in batches of 1,000; queries ask for k = 10 one at a time, from one thread.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ember_core::Similarity;
use ember_store::{open_store, CollectionConfig, Document, IndexKind, StoreLocation, StoreOptions, VectorCollection};
use serde_json::{json, Map};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn points(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..256).map(|_| (0..dim).map(|_| next()).collect()).collect();
    (0..n)
        .map(|i| {
            let c = &centres[(i * 7919) % 256];
            let mut v: Vec<f32> = c.iter().map(|x| x + 0.6 * next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n").map_or(100_000, |s| s.parse().unwrap());
    let dim: usize = arg(&args, "--dim").map_or(384, |s| s.parse().unwrap());
    let nq: usize = arg(&args, "--queries").map_or(200, |s| s.parse().unwrap());
    let data = points(n, dim, 1);
    let queries = points(nq, dim, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut locations = vec![("embedded", StoreLocation::Embedded(dir.path().to_path_buf()))];
    if let Some(url) = arg(&args, "--postgres") {
        locations.push(("postgres", StoreLocation::parse(&url).unwrap()));
    }
    if let Some(url) = arg(&args, "--milvus") {
        locations.push(("milvus", StoreLocation::parse(&url).unwrap()));
    }
    println!("n = {n}, dim = {dim}, {nq} queries, k = 10, batches of 1000");
    println!("| backend | index | ingest vectors/s | query p50 ms | query p99 ms | recall@10 vs exact |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut exact: Option<Vec<Vec<String>>> = None;
    for (backend, location) in &locations {
        let store = open_store(location, StoreOptions::default()).unwrap();
        for (label, index) in [("flat", IndexKind::Flat), ("hnsw", IndexKind::Hnsw { m: 16, ef_construction: 64 })] {
            let name = format!("bench-{label}");
            let _ = store.drop_collection(&name);
            let config = CollectionConfig { index, ..CollectionConfig::dense("bench", dim, Similarity::Cosine) };
            let c = store.create_collection(&name, config).unwrap();
            let started = Instant::now();
            for (b, batch) in data.chunks(1000).enumerate() {
                let docs: Vec<Document> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Document {
                        id: format!("d{}", b * 1000 + i),
                        text: String::new(),
                        vector: v.clone(),
                        metadata: json!({"group": (b * 1000 + i) % 10}).as_object().cloned().unwrap_or_else(Map::new),
                        ..Document::default()
                    })
                    .collect();
                c.upsert(docs).unwrap();
            }
            let ingest = n as f64 / started.elapsed().as_secs_f64();
            let (latencies, results) = run_queries(c.as_ref(), &queries);
            let recall = match (&exact, label) {
                (None, "flat") => {
                    exact = Some(results);
                    1.0
                }
                (Some(truth), _) => {
                    let found: usize =
                        truth.iter().zip(&results).map(|(t, r)| r.iter().filter(|id| t.contains(id)).count()).sum();
                    found as f64 / (truth.len() * 10) as f64
                }
                _ => f64::NAN,
            };
            println!(
                "| {backend} | {label} | {ingest:.0} | {:.2} | {:.2} | {recall:.3} |",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
            store.drop_collection(&name).unwrap();
        }
    }
}

fn run_queries(c: &dyn VectorCollection, queries: &[Vec<f32>]) -> (Vec<f64>, Vec<Vec<String>>) {
    // One warm-up query, not timed.
    c.search(&queries[0], 10, None).unwrap();
    let mut latencies = Vec::new();
    let mut results = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = c.search(q, 10, None).unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        results.push(hits.into_iter().map(|h| h.id).collect());
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, results)
}
