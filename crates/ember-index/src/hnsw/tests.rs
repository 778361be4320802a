//! HNSW against the flat index as oracle: recall, exact scores, filters, deletes, determinism
//! and the byte format.

use ember_core::{CoreError, Similarity};

use super::format::HEADER_BYTES;
use super::{HnswIndex, HnswParams};
use crate::bytes::checksum;
use crate::dense::DenseIndex;
use crate::error::IndexError;
use crate::flat::FlatIndex;
use crate::testdata::{clustered, recall};

fn build(points: &[Vec<f32>], similarity: Similarity, params: HnswParams) -> (HnswIndex, FlatIndex) {
    let dim = points[0].len();
    let mut hnsw = HnswIndex::new(dim, similarity, params).unwrap();
    let mut flat = FlatIndex::new(dim, similarity);
    for (id, p) in points.iter().enumerate() {
        hnsw.insert(id, p).unwrap();
        flat.insert(id, p).unwrap();
    }
    (hnsw, flat)
}

fn params(ef_construction: usize, ef_search: usize) -> HnswParams {
    HnswParams { m: 16, ef_construction, ef_search, ..HnswParams::default() }
}

/// Mean recall@k of `hnsw` against `flat` over `queries`, checking on the way that every
/// returned score equals the flat index's score for that id.
fn mean_recall(hnsw: &HnswIndex, flat: &FlatIndex, queries: &[Vec<f32>], k: usize) -> f64 {
    let mut total = 0.0;
    for q in queries {
        let got = hnsw.search(q, k, None).unwrap();
        let want = flat.search(q, k, None).unwrap();
        assert_eq!(got.len(), want.len());
        let all = flat.search(q, flat.len(), None).unwrap();
        for h in &got {
            let exact = all.iter().find(|s| s.id == h.id).unwrap().score;
            assert!((h.score - exact).abs() <= 1e-4 * exact.abs().max(1.0), "id {} {} vs {exact}", h.id, h.score);
        }
        total += recall(&got, &want);
    }
    total / queries.len() as f64
}

#[test]
fn recall_at_10_against_flat_on_5k_clustered_points() {
    let (points, queries) = clustered(5000, 200, 64, 50, 1.0, 7);
    let (hnsw, flat) = build(&points, Similarity::Cosine, params(100, 64));
    let r = mean_recall(&hnsw, &flat, &queries, 10);
    eprintln!("cosine recall@10 = {r:.4}");
    assert!(r >= 0.95, "recall@10 {r}");
}

#[test]
fn recall_for_dot_euclidean_and_manhattan() {
    let (points, queries) = clustered(2000, 100, 32, 20, 1.0, 8);
    for sim in [Similarity::Dot, Similarity::Euclidean, Similarity::Manhattan] {
        let (hnsw, flat) = build(&points, sim, params(100, 64));
        let r = mean_recall(&hnsw, &flat, &queries, 10);
        eprintln!("{sim:?} recall@10 = {r:.4}");
        assert!(r >= 0.95, "{sim:?} recall@10 {r}");
    }
}

#[test]
fn exact_when_ef_covers_the_whole_index() {
    let (points, queries) = clustered(300, 20, 16, 5, 0.5, 9);
    let (hnsw, flat) = build(&points, Similarity::Euclidean, params(64, 400));
    for q in &queries {
        let got: Vec<usize> = hnsw.search(q, 10, None).unwrap().iter().map(|s| s.id).collect();
        let want: Vec<usize> = flat.search(q, 10, None).unwrap().iter().map(|s| s.id).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn filtered_search_returns_k_hits_when_k_pass() {
    let (points, queries) = clustered(5000, 30, 32, 40, 1.0, 10);
    let (mut hnsw, flat) = build(&points, Similarity::Cosine, params(100, 64));
    // Selectivities 50%, 5% and 0.1% (5 points), with ids that pass spread over the clusters.
    let filters: [(&str, &(dyn Fn(usize) -> bool + Sync)); 3] =
        [("50%", &|id| id % 2 == 0), ("5%", &|id| id % 20 == 3), ("0.1%", &|id| id % 1000 == 999)];
    for threshold in [None, Some(0)] {
        // `Some(0)`: always walk the graph, however selective the filter.
        hnsw.params.full_scan_threshold = threshold;
        for (name, f) in filters {
            let passing = (0..points.len()).filter(|&id| f(id)).count();
            let mut total = 0.0;
            for q in &queries {
                let got = hnsw.search(q, 10, Some(f)).unwrap();
                let want = flat.search(q, 10, Some(f)).unwrap();
                assert_eq!(got.len(), 10.min(passing), "{name} {threshold:?}");
                assert!(got.iter().all(|h| f(h.id)), "{name}: a hit fails the filter");
                total += recall(&got, &want);
            }
            let r = total / queries.len() as f64;
            eprintln!("filter {name} threshold {threshold:?}: recall@10 {r:.4}");
            assert!(r >= 0.9, "{name} {threshold:?} recall {r}");
        }
    }
}

#[test]
fn deleted_points_are_never_returned_and_replacing_a_vector_works() {
    let (points, queries) = clustered(3000, 50, 32, 30, 0.6, 11);
    let (mut hnsw, mut flat) = build(&points, Similarity::Cosine, params(100, 64));
    let gone = |id: usize| id.is_multiple_of(3);
    for id in (0..points.len()).filter(|&id| gone(id)) {
        hnsw.remove(id);
        flat.remove(id);
    }
    hnsw.remove(1_000_000);
    assert_eq!(hnsw.len(), 2000);
    assert_eq!(hnsw.deleted_count(), 1000);
    let mut total = 0.0;
    for q in &queries {
        let got = hnsw.search(q, 10, None).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| !gone(h.id)), "a deleted point was returned");
        total += recall(&got, &flat.search(q, 10, None).unwrap());
    }
    assert!(total / queries.len() as f64 >= 0.95);

    // Replace point 1 by the first query: it is now the query's best hit; point 0 stays gone.
    hnsw.insert(1, &queries[0]).unwrap();
    assert_eq!(hnsw.len(), 2000);
    let best = hnsw.search(&queries[0], 1, None).unwrap()[0];
    assert_eq!(best.id, 1);
    assert!((best.score - 1.0).abs() < 1e-5);
    let around_old = hnsw.search(&points[1], 50, None).unwrap();
    assert!(around_old.iter().all(|h| h.id != 1 || h.score < 0.999), "the old vector of 1 was returned");
    hnsw.insert(0, &points[0]).unwrap();
    assert_eq!(hnsw.search(&points[0], 1, None).unwrap()[0].id, 0);

    // Removing everything leaves an empty index whose searches return nothing.
    for id in 0..points.len() {
        hnsw.remove(id);
    }
    assert!(hnsw.is_empty());
    assert!(hnsw.search(&queries[0], 5, None).unwrap().is_empty());
}

#[test]
fn compact_drops_tombstones_and_keeps_results() {
    let (points, queries) = clustered(1000, 20, 16, 10, 0.6, 12);
    let (mut hnsw, mut flat) = build(&points, Similarity::Euclidean, params(64, 64));
    for id in (0..1000).step_by(2) {
        hnsw.remove(id);
        flat.remove(id);
    }
    hnsw.compact().unwrap();
    assert_eq!((hnsw.len(), hnsw.deleted_count()), (500, 0));
    for q in &queries {
        let got = hnsw.search(q, 10, None).unwrap();
        assert!(recall(&got, &flat.search(q, 10, None).unwrap()) >= 0.8);
        assert!(got.iter().all(|h| h.id % 2 == 1));
    }
}

#[test]
fn small_cases_and_errors() {
    let mut hnsw = HnswIndex::new(3, Similarity::Cosine, HnswParams::default()).unwrap();
    assert!(hnsw.search(&[1.0, 0.0, 0.0], 3, None).unwrap().is_empty());
    hnsw.insert(7, &[1.0, 0.0, 0.0]).unwrap();
    hnsw.insert(9, &[0.0, 1.0, 0.0]).unwrap();
    let hits = hnsw.search(&[1.0, 0.1, 0.0], 5, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![7, 9]);
    assert!(hnsw.search(&[1.0, 0.0, 0.0], 0, None).unwrap().is_empty());
    assert_eq!(hnsw.insert(1, &[1.0]), Err(CoreError::DimensionMismatch { left: 3, right: 1 }));
    assert!(hnsw.search(&[1.0, 0.0], 1, None).is_err());
    let nobody = |_: usize| false;
    assert!(hnsw.search(&[1.0, 0.0, 0.0], 1, Some(&nobody)).unwrap().is_empty());
    assert!(matches!(
        HnswIndex::new(3, Similarity::Dot, HnswParams { m: 1, ..HnswParams::default() }),
        Err(IndexError::InvalidParameter { name: "m", .. })
    ));
    assert!(HnswIndex::new(3, Similarity::Dot, HnswParams { ef_search: 0, ..HnswParams::default() }).is_err());
}

#[test]
fn the_same_seed_builds_the_same_graph() {
    let (points, _) = clustered(500, 0, 16, 5, 0.6, 13);
    let a = build(&points, Similarity::Cosine, params(50, 32)).0.to_bytes();
    let b = build(&points, Similarity::Cosine, params(50, 32)).0.to_bytes();
    assert_eq!(a, b);
    let other = build(&points, Similarity::Cosine, HnswParams { seed: 99, ..params(50, 32) }).0.to_bytes();
    assert_ne!(a, other);
}

#[test]
fn bytes_round_trip_to_identical_results() {
    let (points, queries) = clustered(2000, 50, 24, 20, 0.6, 14);
    let (mut hnsw, _) = build(&points, Similarity::Dot, params(64, 48));
    for id in (0..2000).step_by(7) {
        hnsw.remove(id);
    }
    let bytes = hnsw.to_bytes();
    let loaded = HnswIndex::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.to_bytes(), bytes);
    assert_eq!((loaded.len(), loaded.dim(), loaded.params()), (hnsw.len(), hnsw.dim(), hnsw.params()));
    let odd = |id: usize| id % 2 == 1;
    for q in &queries {
        assert_eq!(loaded.search(q, 10, None).unwrap(), hnsw.search(q, 10, None).unwrap());
        assert_eq!(loaded.search(q, 10, Some(&odd)).unwrap(), hnsw.search(q, 10, Some(&odd)).unwrap());
    }
    // Inserting after loading continues the same level sequence as inserting before saving.
    let (mut a, mut b) = (hnsw, loaded);
    a.insert(5000, &queries[0]).unwrap();
    b.insert(5000, &queries[0]).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn concurrent_searches_equal_sequential_ones() {
    let (points, queries) = clustered(2000, 40, 16, 10, 1.0, 16);
    let (hnsw, _) = build(&points, Similarity::Cosine, params(64, 32));
    let even = |id: usize| id.is_multiple_of(2);
    let sequential: Vec<_> = queries.iter().map(|q| hnsw.search(q, 10, Some(&even)).unwrap()).collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (hnsw, queries, sequential) = (&hnsw, &queries, &sequential);
            scope.spawn(move || {
                for (i, q) in queries.iter().enumerate().skip(t) {
                    assert_eq!(hnsw.search(q, 10, Some(&even)).unwrap(), sequential[i]);
                }
            });
        }
    });
}

/// Rewrite the checksum of a hand-edited byte image so the structural checks are reached.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 8;
    let sum = checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn corrupt_bytes_are_errors_not_panics() {
    let (points, _) = clustered(300, 0, 8, 5, 0.6, 15);
    let (hnsw, _) = build(&points, Similarity::Cosine, params(32, 32));
    let bytes = hnsw.to_bytes();

    for len in (0..bytes.len()).step_by(97).chain([bytes.len() - 1, 11, 12, 20]) {
        assert!(HnswIndex::from_bytes(&bytes[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 16]);
    assert!(HnswIndex::from_bytes(&longer).is_err());
    let mut reseal_longer = longer.clone();
    reseal(&mut reseal_longer);
    assert!(matches!(HnswIndex::from_bytes(&reseal_longer), Err(IndexError::TrailingBytes { .. })));

    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(HnswIndex::from_bytes(&magic).unwrap_err(), IndexError::BadMagic { kind: "HNSW" });
    let mut version = bytes.clone();
    version[8] = 2;
    assert!(matches!(HnswIndex::from_bytes(&version), Err(IndexError::UnsupportedVersion { found: 2, .. })));

    // Any flipped bit is caught by the checksum.
    for pos in (12..bytes.len()).step_by(13) {
        let mut flipped = bytes.clone();
        flipped[pos] ^= 0x10;
        assert!(HnswIndex::from_bytes(&flipped).is_err(), "bit flip at {pos}");
    }

    // Structural damage behind a valid checksum: a link to a node that does not exist, a link
    // count above the capacity, a bad similarity code, a level above the top.
    let n = 300;
    let dim = 8;
    let links0_at = HEADER_BYTES + n * 10 + n * dim * 4;
    let mut bad_link = bytes.clone();
    bad_link[links0_at + 4..links0_at + 8].copy_from_slice(&(n as u32).to_le_bytes());
    reseal(&mut bad_link);
    assert!(matches!(HnswIndex::from_bytes(&bad_link), Err(IndexError::Corrupt { .. })));
    let mut bad_count = bytes.clone();
    bad_count[links0_at..links0_at + 4].copy_from_slice(&33u32.to_le_bytes());
    reseal(&mut bad_count);
    assert!(matches!(HnswIndex::from_bytes(&bad_count), Err(IndexError::Corrupt { .. })));
    let mut bad_sim = bytes.clone();
    bad_sim[16] = 9;
    reseal(&mut bad_sim);
    assert!(matches!(HnswIndex::from_bytes(&bad_sim), Err(IndexError::Corrupt { .. })));
    let mut bad_level = bytes.clone();
    bad_level[HEADER_BYTES + n * 8] = 31;
    reseal(&mut bad_level);
    assert!(HnswIndex::from_bytes(&bad_level).is_err());
    assert!(HnswIndex::from_bytes(&[]).is_err());
}

/// The checked-in image of format version 1 (`tests/fixtures/hnsw-v1.bin`) still loads, searches
/// exactly (ef covers the whole index) and re-serialises to the same bytes.
#[test]
fn format_v1_fixture_still_loads() {
    let bytes: &[u8] = include_bytes!("../../tests/fixtures/hnsw-v1.bin");
    let hnsw = HnswIndex::from_bytes(bytes).unwrap();
    assert_eq!(hnsw.to_bytes(), bytes);
    let (points, queries) = fixture_points();
    let mut flat = FlatIndex::new(8, Similarity::Cosine);
    for (id, p) in points.iter().enumerate() {
        flat.insert(id * 10, p).unwrap();
    }
    flat.remove(30);
    for q in &queries {
        let got: Vec<usize> = hnsw.search(q, 5, None).unwrap().iter().map(|s| s.id).collect();
        let want: Vec<usize> = flat.search(q, 5, None).unwrap().iter().map(|s| s.id).collect();
        assert_eq!(got, want);
    }
}

fn fixture_points() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    clustered(40, 5, 8, 4, 0.5, 2024)
}

/// Regenerate the fixture: `cargo test -p ember-index write_format_v1_fixture -- --ignored`.
#[test]
#[ignore = "writes tests/fixtures/hnsw-v1.bin"]
fn write_format_v1_fixture() {
    let (points, _) = fixture_points();
    let mut hnsw = HnswIndex::new(
        8,
        Similarity::Cosine,
        HnswParams { m: 4, ef_construction: 16, ef_search: 64, ..HnswParams::default() },
    )
    .unwrap();
    for (id, p) in points.iter().enumerate() {
        hnsw.insert(id * 10, p).unwrap();
    }
    hnsw.remove(30);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hnsw-v1.bin");
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).unwrap();
    std::fs::write(path, hnsw.to_bytes()).unwrap();
}
