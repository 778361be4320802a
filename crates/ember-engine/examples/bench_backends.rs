//! Ingest throughput and dense and hybrid query latency of every store backend on the same
//! synthetic data, in one run: `scripts/bench-backends.sh` (docs/benchmarks.md has the numbers).
//!
//! ```sh
//! cargo run --release -p ember-engine --features postgres,milvus --example bench_backends -- \
//!     [--postgres postgres://postgres@127.0.0.1:54329/ember_test] [--milvus milvus://127.0.0.1:19530] \
//!     [--n 100000] [--dim 384] [--queries 200]
//! ```
//!
//! The data imitates embeddings of topical text: points of a low intrinsic dimension (a
//! 16-dimensional latent space holding 64 Gaussian clusters) mapped into `dim` dimensions by a
//! fixed random linear map, with a little isotropic noise, then normalised. (Uniform or purely
//! isotropic points in 384 dimensions are all nearly equidistant, which makes "the 10 nearest"
//! meaningless and any graph index look broken.) Each document also gets a text: words of its
//! cluster's topic mixed with words from a Zipf-distributed common vocabulary; a query is a point
//! and a text drawn the same way.
//!
//! Each backend gets a flat (exact) and an HNSW (m = 16, ef_construction = 64) collection with a
//! sparse field (each document's term counts as a sparse vector, weight 1 + ln tf) and, where the
//! backend keeps one (not Milvus), a BM25 text index (plain analyzer), written in batches of
//! 1,000; queries ask for k = 10 one at a time, from one thread: dense (the store's search),
//! dense + sparse and dense + BM25, both fused by RRF in the engine's `retrieve_embedded` (100
//! candidates per list).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ember_core::{Similarity, SparseVector};
use ember_engine::{retrieve_embedded, Mode, QueryEmbedding, SearchRequest, Source};
use ember_store::{
    open_store, AnalyzerConfig, CollectionConfig, Document, IndexKind, SparseFieldConfig, StoreLocation, StoreOptions,
    TextIndexConfig, VectorCollection,
};
use serde_json::{json, Map};

const LATENT: usize = 16;
const CLUSTERS: usize = 64;
const TOPIC_WORDS: usize = 50;
const COMMON_WORDS: usize = 5_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// A seeded xorshift generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-300), self.unit());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }

    /// A word rank from a 1/r law over `n` words.
    fn zipf(&mut self, n: usize) -> usize {
        ((n as f64).powf(self.unit()) as usize).saturating_sub(1).min(n - 1)
    }
}

/// The fixed parts of the generator: cluster centres in the latent space and the map out of it.
struct Space {
    centres: Vec<[f32; LATENT]>,
    map: Vec<Vec<f32>>,
    dim: usize,
}

impl Space {
    fn new(dim: usize) -> Space {
        let mut rng = Rng::new(7);
        let centres = (0..CLUSTERS).map(|_| std::array::from_fn(|_| 2.0 * rng.normal())).collect();
        let map = (0..LATENT).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
        Space { centres, map, dim }
    }

    /// A point of cluster `c`, and a text of `words` words about its topic.
    fn sample(&self, rng: &mut Rng, c: usize, words: usize) -> (Vec<f32>, String) {
        let latent: Vec<f32> = self.centres[c].iter().map(|x| x + rng.normal()).collect();
        let mut v = vec![0f32; self.dim];
        for (l, row) in latent.iter().zip(&self.map) {
            for (x, m) in v.iter_mut().zip(row) {
                *x += l * m;
            }
        }
        let scale = (LATENT as f32).sqrt() * 0.15;
        v.iter_mut().for_each(|x| *x += scale * rng.normal());
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        let text: Vec<String> = (0..words)
            .map(|i| {
                if i % 2 == 0 {
                    format!("topic{c}x{}", rng.zipf(TOPIC_WORDS))
                } else {
                    format!("w{}", rng.zipf(COMMON_WORDS))
                }
            })
            .collect();
        (v, text.join(" "))
    }
}

/// A text's sparse vector: one term id per distinct word, weight 1 + ln(count).
fn sparse_of(text: &str) -> SparseVector {
    let mut counts = std::collections::BTreeMap::<u32, u32>::new();
    for word in text.split(' ') {
        let id = if let Some(rest) = word.strip_prefix("topic") {
            let (c, r) = rest.split_once('x').unwrap();
            c.parse::<u32>().unwrap() * TOPIC_WORDS as u32 + r.parse::<u32>().unwrap()
        } else {
            (CLUSTERS * TOPIC_WORDS) as u32 + word[1..].parse::<u32>().unwrap()
        };
        *counts.entry(id).or_default() += 1;
    }
    counts.into_iter().map(|(id, n)| (id, 1.0 + (n as f32).ln())).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n").map_or(100_000, |s| s.parse().unwrap());
    let dim: usize = arg(&args, "--dim").map_or(384, |s| s.parse().unwrap());
    let nq: usize = arg(&args, "--queries").map_or(200, |s| s.parse().unwrap());
    let space = Space::new(dim);
    let mut rng = Rng::new(1);
    let data: Vec<(Vec<f32>, String)> = (0..n)
        .map(|i| {
            let words = 20 + rng.below(40);
            space.sample(&mut rng, i % CLUSTERS, words)
        })
        .collect();
    let mut rng = Rng::new(2);
    let queries: Vec<(Vec<f32>, String)> = (0..nq)
        .map(|_| {
            let c = rng.below(CLUSTERS);
            space.sample(&mut rng, c, 4)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut locations = vec![("embedded", StoreLocation::Embedded(dir.path().to_path_buf()))];
    for (flag, backend) in [("--postgres", "postgres"), ("--milvus", "milvus")] {
        if let Some(url) = arg(&args, flag) {
            locations.push((backend, StoreLocation::parse(&url).unwrap()));
        }
    }
    println!(
        "n = {n}, dim = {dim}, {nq} queries, k = 10, batches of 1000, a sparse field on every collection, a BM25 \
         text index where the backend keeps one"
    );
    println!(
        "| backend | index | ingest docs/s | dense p50 ms | dense p99 ms | dense+sparse p50 ms | dense+sparse p99 ms | \
         dense+BM25 p50 ms | dense+BM25 p99 ms | dense recall@10 vs exact |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut exact: Option<Vec<Vec<String>>> = None;
    for (backend, location) in &locations {
        let store = open_store(location, StoreOptions::default()).unwrap();
        for (label, index) in [("flat", IndexKind::Flat), ("hnsw", IndexKind::Hnsw { m: 16, ef_construction: 64 })] {
            let name = format!("bench_{label}");
            let _ = store.drop_collection(&name);
            let config = CollectionConfig {
                index,
                text_index: store.keeps_text_index().then(|| TextIndexConfig::new(AnalyzerConfig::plain())),
                sparse: Some(SparseFieldConfig { model_id: "bench-terms".into() }),
                ..CollectionConfig::dense("bench", dim, Similarity::Cosine)
            };
            let c = store.create_collection(&name, config).unwrap();
            let started = Instant::now();
            for (b, batch) in data.chunks(1000).enumerate() {
                let docs: Vec<Document> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, (v, text))| Document {
                        id: format!("d{}", b * 1000 + i),
                        text: text.clone(),
                        vector: v.clone(),
                        metadata: json!({"group": (b * 1000 + i) % 10}).as_object().cloned().unwrap_or_else(Map::new),
                        sparse: sparse_of(text),
                        ..Document::default()
                    })
                    .collect();
                c.upsert(docs).unwrap();
            }
            // Until the backend's indexes are ready for queries (Milvus builds them after the load).
            store.wait_for_maintenance();
            let ingest = n as f64 / started.elapsed().as_secs_f64();
            let (dense, results) = dense_queries(c.as_ref(), &queries);
            let with_sparse = hybrid_queries(c.as_ref(), &queries, Source::Sparse);
            let with_bm25 = c.config().text_index.is_some().then(|| hybrid_queries(c.as_ref(), &queries, Source::Bm25));
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
            let bm25 = with_bm25.map_or("– | –".to_string(), |l| {
                format!("{:.2} | {:.2}", percentile(&l, 0.5), percentile(&l, 0.99))
            });
            println!(
                "| {backend} | {label} | {ingest:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {bm25} | {recall:.3} |",
                percentile(&dense, 0.5),
                percentile(&dense, 0.99),
                percentile(&with_sparse, 0.5),
                percentile(&with_sparse, 0.99),
            );
            store.drop_collection(&name).unwrap();
        }
    }
}

fn dense_queries(c: &dyn VectorCollection, queries: &[(Vec<f32>, String)]) -> (Vec<f64>, Vec<Vec<String>>) {
    // One warm-up query, not timed.
    c.search(&queries[0].0, 10, None).unwrap();
    let mut latencies = Vec::new();
    let mut results = Vec::new();
    for (q, _) in queries {
        let t = Instant::now();
        let hits = c.search(q, 10, None).unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        results.push(hits.into_iter().map(|h| h.id).collect());
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, results)
}

/// Dense + `second` fused by RRF.
fn hybrid_queries(c: &dyn VectorCollection, queries: &[(Vec<f32>, String)], second: Source) -> Vec<f64> {
    let sources = [Source::Dense, second];
    let search = |(q, text): &(Vec<f32>, String)| {
        let request = SearchRequest { sources: &sources, ..SearchRequest::new(text, 10, Mode::Hybrid) };
        let query = QueryEmbedding {
            dense: Some(q.clone()),
            sparse: (second == Source::Sparse).then(|| sparse_of(text)),
            ..QueryEmbedding::default()
        };
        let response = retrieve_embedded(c, &request, &query).unwrap();
        assert_eq!(response.hits.len(), 10, "a hybrid query found fewer than 10 hits");
    };
    search(&queries[0]);
    let mut latencies: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            search(q);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}
