//! Every index a collection can be configured with (flat, int8 and binary first passes with
//! rescoring, HNSW) against exact search computed here, through the store's API: before and
//! after a reopen (indexes are rebuilt from the stored vectors), with deletes and filters.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, meta};
use ember_core::{cosine, Similarity};
use ember_store::{CollectionConfig, Document, Filter, IndexKind, Precision, Store};
use serde_json::json;

/// Points around 40 random centres in 48 dimensions (seeded), like embeddings of topical text.
fn clustered(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..dim).map(|_| next()).collect()).collect();
    (0..n).map(|i| centres[i % 40].iter().map(|c| c + 0.35 * next()).collect()).collect()
}

fn exact(vectors: &[(String, Vec<f32>, bool)], query: &[f32], k: usize, pass: impl Fn(usize) -> bool) -> Vec<String> {
    let mut scored: Vec<(f32, &String)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, (_, _, live))| *live && pass(*i))
        .map(|(_, (id, v, _))| (cosine(query, v), id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, id)| id.clone()).collect()
}

#[test]
fn every_index_kind_agrees_with_exact_search() {
    let dim = 48;
    let points = clustered(3000, dim);
    let queries = clustered(3040, dim).split_off(3000);
    let kinds = [
        ("flat", IndexKind::Flat, Precision::Float32, 1.0),
        ("int8", IndexKind::Flat, Precision::Int8, 0.97),
        ("binary", IndexKind::Flat, Precision::Binary, 0.80),
        ("hnsw", IndexKind::Hnsw { m: 16, ef_construction: 100 }, Precision::Float32, 0.95),
    ];
    for (name, index, precision, min_recall) in kinds {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CollectionConfig { index, precision, distance: Similarity::Cosine, ..config(dim) };
        let mut truth: Vec<(String, Vec<f32>, bool)> =
            points.iter().enumerate().map(|(i, v)| (format!("p{i}"), v.clone(), true)).collect();
        {
            let store = Store::open(dir.path()).unwrap();
            let c = store.create_collection("c", cfg).unwrap();
            for batch in truth.chunks(500) {
                let docs = batch
                    .iter()
                    .map(|(id, v, _)| Document {
                        id: id.clone(),
                        text: id.clone(),
                        vector: v.clone(),
                        metadata: meta(json!({"n": id[1..].parse::<u64>().unwrap()})),
                        ..Document::default()
                    })
                    .collect();
                c.upsert(docs).unwrap();
            }
            // Every third point is deleted: never returned again.
            let gone: Vec<String> = (0..3000).step_by(3).map(|i| format!("p{i}")).collect();
            let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
            assert_eq!(c.delete(&refs).unwrap(), 1000);
            for i in (0..3000).step_by(3) {
                truth[i].2 = false;
            }
        }
        for round in ["fresh", "reopened"] {
            let store = Store::open(dir.path()).unwrap();
            let c = store.collection("c").unwrap();
            assert_eq!(c.len(), 2000);
            let (mut found, mut wanted) = (0, 0);
            for q in &queries {
                let hits = c.search(q, 10, None).unwrap();
                let expect = exact(&truth, q, 10, |_| true);
                assert_eq!(hits.len(), 10, "{name} {round}");
                wanted += expect.len();
                found += hits.iter().filter(|h| expect.contains(&h.id)).count();
                for h in &hits {
                    let n: usize = h.id[1..].parse().unwrap();
                    assert!(!n.is_multiple_of(3), "{name} {round}: deleted {} returned", h.id);
                    assert!((h.score - cosine(q, &points[n])).abs() < 1e-4, "{name}: scores are exact after rescoring");
                }
            }
            let recall = found as f64 / wanted as f64;
            assert!(recall >= min_recall, "{name} {round}: recall@10 {recall:.3} < {min_recall}");
            // More effort finds more: an HNSW candidate list as large as the collection is exact.
            if name == "hnsw" {
                let (mut narrow, mut wide) = (0, 0);
                for q in &queries {
                    let expect = exact(&truth, q, 10, |_| true);
                    let hits = c.search_with_effort(q, 10, None, Some(10)).unwrap();
                    narrow += hits.iter().filter(|h| expect.contains(&h.id)).count();
                    let hits = c.search_with_effort(q, 10, None, Some(2000)).unwrap();
                    wide += hits.iter().filter(|h| expect.contains(&h.id)).count();
                }
                assert_eq!(wide, wanted, "hnsw {round}: ef = 2000 is exact");
                assert!(narrow <= found && narrow < wide, "hnsw {round}: ef 10 finds {narrow}, default {found}");
            }
            // A selective filter (1 point in 50 passes) still yields k hits, all passing.
            let filter = Filter::parse("n >= 1000 and n < 1150").unwrap();
            for q in queries.iter().take(5) {
                let hits = c.search(q, 10, Some(&filter)).unwrap();
                let expect = exact(&truth, q, 10, |i| (1000..1150).contains(&i));
                assert_eq!(hits.len(), 10, "{name} {round}: filtered search");
                let ids: Vec<&String> = hits.iter().map(|h| &h.id).collect();
                let overlap = expect.iter().filter(|e| ids.contains(e)).count();
                assert!(overlap >= 9, "{name} {round}: filtered recall {overlap}/10");
            }
        }
    }
}
