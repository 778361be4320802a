//! The inverted index against references: BM25 scores against an independent Python computation
//! of Lucene's formula, pruned search against the exhaustive scan on random corpora (text and
//! sparse vectors, with filters and removals), the byte format, and the analyzers.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::random::SplitMix64;
use crate::topk::Scored;
use crate::IndexError;

fn bm25_index(analyzer: AnalyzerConfig, bm25: Bm25Params) -> InvertedIndex {
    InvertedIndex::new(InvertedIndexParams::Bm25 { bm25, analyzer }).unwrap()
}

#[derive(Deserialize)]
struct Fixture {
    docs: Vec<String>,
    removed: Vec<usize>,
    cases: Vec<FixtureCase>,
}

#[derive(Deserialize)]
struct FixtureCase {
    params: Bm25Params,
    scenario: String,
    query: String,
    scores: Vec<(usize, f64)>,
}

/// scripts/gen_bm25_fixture.py: Lucene's BM25 written out in Python (double precision), for five
/// parameter sets, both length norms, repeated and unknown query terms, an empty document, and
/// the same corpus after removals. Every matching document's score within 1e-5.
#[test]
fn bm25_matches_the_python_reference_of_lucenes_formula() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bm25_reference.json"))
        .expect("fixture");
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for case in &fixture.cases {
        let mut index = bm25_index(AnalyzerConfig::plain(), case.params);
        for (id, doc) in fixture.docs.iter().enumerate() {
            index.insert_text(id, doc).unwrap();
        }
        if case.scenario == "removed" {
            for &id in &fixture.removed {
                index.remove(id);
            }
        }
        let n = fixture.docs.len();
        let got = index.search_text_exhaustive(&case.query, n, None).unwrap();
        let pruned = index.search_text(&case.query, n, None).unwrap();
        assert_eq!(got, pruned, "pruned == exhaustive for {:?}", case.query);
        let got: BTreeMap<usize, f32> = got.iter().map(|s| (s.id, s.score)).collect();
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            case.scores.iter().map(|s| s.0).collect::<Vec<_>>(),
            "matching documents for {:?} {:?} {}",
            case.query,
            case.params,
            case.scenario
        );
        for &(id, want) in &case.scores {
            let diff = (f64::from(got[&id]) - want).abs();
            assert!(diff <= 1e-5, "doc {id} for {:?} {:?}: {} vs {want}", case.query, case.params, got[&id]);
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} scores checked");
}

/// A random text corpus over a Zipf-distributed vocabulary, so some terms are in most documents.
fn random_corpus(n: usize, vocab: usize, seed: u64) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    let zipf = |rng: &mut SplitMix64| -> usize {
        // inverse-CDF of a 1/r law, roughly
        let u = rng.unit_open();
        ((vocab as f64).powf(u) as usize).saturating_sub(1).min(vocab - 1)
    };
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(60) + if rng.below(10) == 0 { rng.below(400) } else { 0 };
            (0..len).map(|_| format!("t{}", zipf(&mut rng))).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn random_query(rng: &mut SplitMix64, vocab: usize) -> String {
    let len = 1 + rng.below(8);
    (0..len)
        .map(|_| {
            let u = rng.unit_open();
            format!("t{}", ((vocab as f64).powf(u) as usize).saturating_sub(1))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pruned_bm25_equals_exhaustive_on_random_corpora() {
    for (seed, length_norm) in [(1, LengthNorm::Lucene), (2, LengthNorm::Exact)] {
        let docs = random_corpus(6000, 2000, seed);
        let mut index = bm25_index(AnalyzerConfig::plain(), Bm25Params { length_norm, ..Bm25Params::default() });
        for (id, d) in docs.iter().enumerate() {
            index.insert_text(id, d).unwrap();
        }
        let mut rng = SplitMix64::new(seed + 100);
        let mut candidates = 0;
        let mut total = 0;
        for q in 0..300 {
            let query = random_query(&mut rng, 2000);
            let k = [1, 5, 10, 100][q % 4];
            let want = index.search_text_exhaustive(&query, k, None).unwrap();
            let (got, stats) = index.search_text_with_stats(&query, k, None).unwrap();
            assert_eq!(got, want, "query {query:?} k {k}");
            candidates += stats.candidates;
            total += want.len().max(1);
            // A filter applied during the search: the k best among the even ids.
            let even = |id: usize| id.is_multiple_of(2);
            let want = index.search_text_exhaustive(&query, k, Some(&even)).unwrap();
            let got = index.search_text(&query, k, Some(&even)).unwrap();
            assert_eq!(got, want, "filtered query {query:?} k {k}");
            assert!(got.iter().all(|s| s.id.is_multiple_of(2)));
        }
        assert!(total > 0 && candidates > 0);
    }
}

#[test]
fn pruning_skips_most_documents_for_common_terms() {
    let docs = random_corpus(20_000, 500, 3);
    let mut index = bm25_index(AnalyzerConfig::plain(), Bm25Params::default());
    for (id, d) in docs.iter().enumerate() {
        index.insert_text(id, d).unwrap();
    }
    // t0..t3 are in most documents: an exhaustive scan touches tens of thousands of postings.
    let query = "t0 t1 t2 t3 t40";
    let postings: usize = ["t0", "t1", "t2", "t3", "t40"]
        .iter()
        .map(|t| index.postings.get(&index.dictionary[*t]).map_or(0, |l| l.len()))
        .sum();
    let (got, stats) = index.search_text_with_stats(query, 10, None).unwrap();
    assert_eq!(got, index.search_text_exhaustive(query, 10, None).unwrap());
    assert!(stats.candidates * 5 < postings, "{} candidates for {postings} postings", stats.candidates);
}

/// Random sparse vectors (SPLADE-like: a few dozen terms from a 30k vocabulary, weights 0..3).
fn random_sparse(rng: &mut SplitMix64, terms: usize, vocab: usize) -> Vec<(u32, f32)> {
    let mut v: BTreeMap<u32, f32> = BTreeMap::new();
    for _ in 0..terms {
        let u = rng.unit_open();
        let t = ((vocab as f64).powf(u) as u32).saturating_sub(1);
        v.insert(t, (rng.unit_open() * 3.0) as f32);
    }
    v.into_iter().collect()
}

#[test]
fn dot_product_scores_equal_brute_force_and_pruned_equals_exhaustive() {
    let mut rng = SplitMix64::new(11);
    let docs: Vec<Vec<(u32, f32)>> = (0..4000)
        .map(|_| {
            let n = 5 + rng.below(80);
            random_sparse(&mut rng, n, 30_000)
        })
        .collect();
    let mut index = InvertedIndex::new(InvertedIndexParams::dot()).unwrap();
    for (id, d) in docs.iter().enumerate() {
        index.insert_sparse(id, d).unwrap();
    }
    // remove a tenth, re-insert some with new vectors
    for id in (0..docs.len()).step_by(10) {
        index.remove(id);
    }
    let mut live: Vec<Option<Vec<(u32, f32)>>> =
        docs.iter().enumerate().map(|(id, d)| (id % 10 != 0).then(|| d.clone())).collect();
    for id in (0..docs.len()).step_by(20) {
        let v = random_sparse(&mut rng, 30, 30_000);
        index.insert_sparse(id, &v).unwrap();
        live[id] = Some(v);
    }
    assert_eq!(index.len(), live.iter().flatten().count());
    for q in 0..200 {
        let n = 3 + rng.below(40);
        let query = random_sparse(&mut rng, n, 30_000);
        let k = [1, 10, 50][q % 3];
        // brute force: a plain f64 dot product per live document
        let qmap: BTreeMap<u32, f32> = query.iter().copied().collect();
        let mut brute: Vec<Scored> = live
            .iter()
            .enumerate()
            .filter_map(|(id, d)| {
                let d = d.as_ref()?;
                let common: Vec<f64> = d.iter().filter_map(|(t, w)| qmap.get(t).map(|q| f64::from(*q * *w))).collect();
                (!common.is_empty()).then(|| Scored { id, score: common.iter().sum::<f64>() as f32 })
            })
            .collect();
        brute.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        brute.truncate(k);
        let exhaustive = index.search_sparse_exhaustive(&query, k, None).unwrap();
        let (pruned, _) = index.search_sparse_with_stats(&query, k, None).unwrap();
        assert_eq!(pruned, exhaustive, "query {q}");
        assert_eq!(exhaustive.len(), brute.len());
        for (a, b) in exhaustive.iter().zip(&brute) {
            assert!((a.score - b.score).abs() <= 1e-5 * b.score.max(1.0), "{a:?} vs {b:?}");
        }
        // ids agree wherever the brute-force scores are not (near-)tied
        for (i, (a, b)) in exhaustive.iter().zip(&brute).enumerate() {
            let tied = brute.iter().filter(|x| (x.score - b.score).abs() <= 1e-5).count() > 1;
            assert!(tied || a.id == b.id, "rank {i}: {a:?} vs {b:?}");
        }
        let filter = |id: usize| id % 3 != 1;
        assert_eq!(
            index.search_sparse(&query, k, Some(&filter)).unwrap(),
            index.search_sparse_exhaustive(&query, k, Some(&filter)).unwrap()
        );
    }
}

#[test]
fn hand_worked_dot_products() {
    let mut index = InvertedIndex::new(InvertedIndexParams::dot()).unwrap();
    index.insert_sparse(0, &[(1, 1.0), (2, 2.0)]).unwrap();
    index.insert_sparse(1, &[(2, 1.0), (3, 4.0)]).unwrap();
    index.insert_sparse(2, &[(9, 1.0)]).unwrap();
    let hits = index.search_sparse(&[(2, 1.0), (3, 0.5)], 10, None).unwrap();
    assert_eq!(hits, vec![Scored { id: 1, score: 3.0 }, Scored { id: 0, score: 2.0 }]);
    // ties go to the lower id
    let hits = index.search_sparse(&[(1, 2.0), (3, 1.0)], 10, None).unwrap();
    assert_eq!(hits, vec![Scored { id: 1, score: 4.0 }, Scored { id: 0, score: 2.0 }]);
    let hits = index.search_sparse(&[(2, 2.0), (3, 0.25)], 10, None).unwrap();
    assert_eq!(hits, vec![Scored { id: 0, score: 4.0 }, Scored { id: 1, score: 3.0 }]);
    assert_eq!(index.search_sparse(&[(2, 1.0)], 0, None).unwrap(), vec![]);
    assert_eq!(index.search_sparse(&[(77, 1.0)], 3, None).unwrap(), vec![]);
    assert_eq!(index.search_sparse(&[], 3, None).unwrap(), vec![]);

    // products that overflow f32 neither panic nor disturb the order of the others
    let mut huge = InvertedIndex::new(InvertedIndexParams::dot()).unwrap();
    huge.insert_sparse(0, &[(1, 3e38)]).unwrap();
    huge.insert_sparse(1, &[(1, 1.0)]).unwrap();
    let hits = huge.search_sparse(&[(1, 1e10)], 2, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(hits, huge.search_sparse_exhaustive(&[(1, 1e10)], 2, None).unwrap());

    // bad input says what is wrong
    assert_eq!(index.insert_sparse(5, &[(1, -1.0)]), Err(SparseError::BadWeight { term: 1, value: -1.0 }));
    assert!(matches!(index.insert_sparse(5, &[(1, f32::NAN)]), Err(SparseError::BadWeight { .. })));
    assert_eq!(index.insert_sparse(5, &[(1, 1.0), (1, 2.0)]), Err(SparseError::DuplicateTerm { term: 1 }));
    assert!(matches!(index.insert_text(5, "text"), Err(SparseError::WrongScoring { .. })));
    assert!(matches!(index.search_text("text", 1, None), Err(SparseError::WrongScoring { .. })));
    assert!(matches!(index.insert_sparse(MAX_SPARSE_ID + 1, &[(1, 1.0)]), Err(SparseError::IdTooLarge { .. })));
    let bm25 = bm25_index(AnalyzerConfig::english(), Bm25Params::default());
    assert!(matches!(bm25.search_sparse(&[(1, 1.0)], 1, None), Err(SparseError::WrongScoring { .. })));
    assert!(matches!(
        InvertedIndex::new(InvertedIndexParams::Bm25 {
            bm25: Bm25Params { b: 1.5, ..Bm25Params::default() },
            analyzer: AnalyzerConfig::english()
        }),
        Err(SparseError::InvalidParameter { name: "b", .. })
    ));
}

#[test]
fn removal_and_replacement_update_postings_and_statistics() {
    let docs = random_corpus(1500, 300, 5);
    let mut incremental = bm25_index(AnalyzerConfig::plain(), Bm25Params::default());
    for (id, d) in docs.iter().enumerate() {
        incremental.insert_text(id, d).unwrap();
    }
    // remove every third, replace every seventh with another document's text, insert out of order
    let mut expected: BTreeMap<usize, String> = docs.iter().cloned().enumerate().collect();
    for id in (0..docs.len()).step_by(3) {
        incremental.remove(id);
        expected.remove(&id);
    }
    incremental.remove(99_999); // unknown: nothing happens
    for id in (0..docs.len()).step_by(7) {
        let text = docs[(id * 31 + 5) % docs.len()].clone();
        incremental.insert_text(id, &text).unwrap();
        expected.insert(id, text);
    }
    for id in [4000, 2500, 1700] {
        incremental.insert_text(id, &docs[id % 100]).unwrap();
        expected.insert(id, docs[id % 100].clone());
    }
    // the same content inserted fresh, in id order
    let mut fresh = bm25_index(AnalyzerConfig::plain(), Bm25Params::default());
    for (&id, text) in &expected {
        fresh.insert_text(id, text).unwrap();
    }
    assert_eq!(incremental.len(), fresh.len());
    assert_eq!(incremental.posting_count(), fresh.posting_count());
    assert!(!incremental.contains(3) && incremental.contains(1) && incremental.contains(4000));
    let mut rng = SplitMix64::new(9);
    for _ in 0..100 {
        let query = random_query(&mut rng, 300);
        let a = incremental.search_text(&query, 20, None).unwrap();
        assert_eq!(a, fresh.search_text(&query, 20, None).unwrap(), "{query}");
        assert!(a.iter().all(|s| expected.contains_key(&s.id)));
    }
    // everything removed: nothing found
    for id in 0..5000 {
        incremental.remove(id);
    }
    assert!(incremental.is_empty() && incremental.posting_count() == 0);
    assert_eq!(incremental.search_text("t0 t1", 5, None).unwrap(), vec![]);
}

#[test]
fn filters_return_k_passing_hits() {
    let docs = random_corpus(3000, 200, 8);
    let mut index = bm25_index(AnalyzerConfig::plain(), Bm25Params::default());
    for (id, d) in docs.iter().enumerate() {
        index.insert_text(id, d).unwrap();
    }
    let rare = |id: usize| id % 97 == 5;
    let passing = (0..docs.len()).filter(|&id| rare(id)).count();
    let hits = index.search_text("t0 t1 t2", 1000, Some(&rare)).unwrap();
    let matching =
        (0..docs.len()).filter(|&id| rare(id) && docs[id].split(' ').any(|w| ["t0", "t1", "t2"].contains(&w))).count();
    assert_eq!(hits.len(), matching);
    assert!(matching <= passing && matching > 10);
    assert!(hits.iter().all(|s| rare(s.id)));
    let none = |_: usize| false;
    assert_eq!(index.search_text("t0", 10, Some(&none)).unwrap(), vec![]);
}

#[test]
fn bytes_round_trip_and_corruption_is_an_error() {
    let docs = random_corpus(500, 100, 12);
    let mut index = bm25_index(AnalyzerConfig::english(), Bm25Params { k1: 0.9, b: 0.4, ..Bm25Params::default() });
    for (id, d) in docs.iter().enumerate() {
        index.insert_text(id * 2, d).unwrap();
    }
    index.insert_text(5000, "Running dogs' owners running.").unwrap();
    index.remove(10);
    let bytes = index.to_bytes();
    let back = InvertedIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.params(), index.params());
    assert_eq!(back.len(), index.len());
    for q in ["t1 t2", "t5", "running dog", "t0 t0 t3"] {
        assert_eq!(back.search_text(q, 50, None).unwrap(), index.search_text(q, 50, None).unwrap());
    }
    assert_eq!(back.to_bytes(), bytes);

    let mut dot = InvertedIndex::new(InvertedIndexParams::dot()).unwrap();
    dot.insert_sparse(3, &[(10, 0.5), (250_000, 1.25)]).unwrap();
    dot.insert_sparse(1, &[]).unwrap();
    let dot_back = InvertedIndex::from_bytes(&dot.to_bytes()).unwrap();
    assert_eq!(dot_back.search_sparse(&[(250_000, 2.0)], 5, None).unwrap(), vec![Scored { id: 3, score: 2.5 }]);
    assert_eq!(dot_back.len(), 2);

    // every single-byte change is caught (magic, version, checksum, or consistency checks)
    let small = dot.to_bytes();
    for i in 0..small.len() {
        let mut b = small.clone();
        b[i] ^= 0x10;
        assert!(InvertedIndex::from_bytes(&b).is_err(), "flipped byte {i}");
    }
    for cut in 0..small.len() {
        assert!(InvertedIndex::from_bytes(&small[..cut]).is_err(), "cut at {cut}");
    }
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(InvertedIndex::from_bytes(&b).unwrap_err(), IndexError::BadMagic { kind: "sparse" });
    let mut b = bytes.clone();
    b[8] = 9;
    assert!(matches!(InvertedIndex::from_bytes(&b), Err(IndexError::UnsupportedVersion { found: 9, .. })));
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    assert_eq!(InvertedIndex::from_bytes(&b).unwrap_err(), IndexError::ChecksumMismatch { kind: "sparse" });
}

fn fixture_index() -> InvertedIndex {
    let mut index = bm25_index(AnalyzerConfig::english(), Bm25Params::default());
    for (id, text) in FIXTURE_TEXTS.iter().enumerate() {
        index.insert_text(id, text).unwrap();
    }
    index.remove(1);
    index
}

/// The checked-in image of format version 1 (`tests/fixtures/sparse-v1.bin`) still loads, equals
/// the index it was made from, re-serialises to the same bytes and searches.
#[test]
fn format_v1_fixture_still_loads() {
    let bytes: &[u8] = include_bytes!("../../tests/fixtures/sparse-v1.bin");
    let stored = InvertedIndex::from_bytes(bytes).unwrap();
    assert_eq!(stored.to_bytes(), bytes);
    assert_eq!(fixture_index().to_bytes(), bytes);
    let hits = stored.search_text("stemming cats", 10, None).unwrap();
    assert_eq!(hits.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2, 0]);
}

/// Regenerate the fixture: `cargo test -p ember-index write_sparse_format_v1_fixture -- --ignored`.
#[test]
#[ignore = "writes tests/fixtures/sparse-v1.bin"]
fn write_sparse_format_v1_fixture() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sparse-v1.bin");
    std::fs::write(path, fixture_index().to_bytes()).unwrap();
}

#[test]
fn indexes_and_analyzers_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<InvertedIndex>();
    check::<Analyzer>();
}

const FIXTURE_TEXTS: [&str; 4] = [
    "The cat's whiskers twitched.",
    "Removed before saving.",
    "Stemmers stem: stemming, stemmed, cats.",
    "Nothing in common.",
];

/// Expected terms are Anserini's (pyserini 0.21's `Analyzer(get_lucene_analyzer())`) for the same
/// strings; over SciFact's 5,183 documents and 300 queries the two agree on every term (see
/// docs/benchmarks.md).
#[test]
fn english_analyzer_is_anserinis() {
    let a = Analyzer::english();
    assert_eq!(
        a.analyze("The Researchers' findings: running experiments on mice's hippocampi wasn't easy, in 2019!"),
        vec!["research", "find", "run", "experi", "mice", "hippocampi", "wasn't", "easi", "2019"]
    );
    // stopwords are Lucene's 33 (so "not" and "no" go, "which" and "what" stay)
    assert_eq!(a.analyze("which is not what no such thing"), vec!["which", "what", "thing"]);
    assert_eq!(a.analyze("The U.S. economy grew 3.5% in Q1"), vec!["u.", "economi", "grew", "3.5", "q1"]);
    // Lucene keeps emoji (Extended_Pictographic) and drops superscripts, fractions, circled numbers
    assert_eq!(
        a.analyze("E = mc² © 2012 Elsevier Ltd. ™ 👍🏽 ½ ① x₂"),
        vec!["e", "mc", "©", "2012", "elsevi", "ltd", "™", "👍🏽", "x"]
    );
    assert_eq!(a.analyze("The dog's owners’ DOGS’s naïve café"), vec!["dog", "owner", "dog", "naïv", "café"]);
    assert_eq!(a.analyze(""), Vec::<String>::new());
    assert_eq!(a.analyze("  ...  !!! "), Vec::<String>::new());
}

/// scripts/gen_lucene_terms_fixture.py: Anserini's analyzer on 5,900 SciFact words (2,000 of them
/// with suffixes the Porter steps treat specially) and 150 sentence beginnings.
#[test]
fn english_analyzer_matches_lucene_on_scifact_words_and_sentences() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lucene_english_terms.tsv"))
        .expect("fixture");
    let a = Analyzer::english();
    let mut lines = 0;
    for line in text.lines() {
        let (input, want) = line.split_once('\t').expect("input<TAB>terms");
        assert_eq!(a.analyze(input).join(" "), want, "{input:?}");
        lines += 1;
    }
    assert!(lines > 6000);
}

#[test]
fn other_analyzers() {
    let plain = Analyzer::new(AnalyzerConfig::plain()).unwrap();
    assert_eq!(plain.analyze("The Cats' café, naïve CAFÉ"), vec!["the", "cats", "café", "naïve", "café"]);
    // Han characters one by one without jieba
    assert_eq!(plain.analyze("我们在北京"), vec!["我", "们", "在", "北", "京"]);

    let snowball = Analyzer::new(AnalyzerConfig {
        stemmer: Stemmer::Snowball(Language::English),
        stopwords: Stopwords::Nltk(Language::English),
        ..AnalyzerConfig::english()
    })
    .unwrap();
    assert_eq!(
        snowball.analyze("Generously running through the fairly quick rivers"),
        vec!["generous", "run", "fair", "quick", "river"]
    );
    let german = Analyzer::new(AnalyzerConfig::for_language(Language::German)).unwrap();
    assert_eq!(german.analyze("Die Katzen liefen über die Häuser"), vec!["katz", "lief", "haus"]);
    let custom = Analyzer::new(AnalyzerConfig {
        stopwords: Stopwords::Custom(vec!["Foo".into()]),
        stemmer: Stemmer::None,
        ..AnalyzerConfig::english()
    })
    .unwrap();
    assert_eq!(custom.analyze("foo bar FOO the"), vec!["bar", "the"]);
    assert_eq!(
        Analyzer::new(AnalyzerConfig { stemmer: Stemmer::Snowball(Language::Chinese), ..AnalyzerConfig::english() })
            .unwrap_err(),
        SparseError::UnsupportedLanguage { what: "Snowball stemmer", language: Language::Chinese }
    );
}

#[test]
fn chinese_analyzer_segments_with_jieba() {
    let zh = Analyzer::new(AnalyzerConfig::chinese()).unwrap();
    // jieba's README example; 的 / 了 / 在 are NLTK Chinese stopwords
    assert_eq!(zh.analyze("我来到北京清华大学"), vec!["来到", "北京", "清华大学"]);
    assert_eq!(zh.analyze("他来到了网易杭研大厦"), vec!["来到", "网易", "杭研", "大厦"]);
    assert_eq!(zh.analyze("Rust 的 jieba 分词，很快！"), vec!["rust", "jieba", "分词", "很快"]);

    let mut index = bm25_index(AnalyzerConfig::chinese(), Bm25Params::default());
    index.insert_text(0, "我来到北京清华大学").unwrap();
    index.insert_text(1, "小明硕士毕业于中国科学院计算所").unwrap();
    index.insert_text(2, "北京的天气很好").unwrap();
    let hits = index.search_text("清华大学在北京", 10, None).unwrap();
    assert_eq!(hits.iter().map(|s| s.id).collect::<Vec<_>>(), vec![0, 2]);
}

#[test]
fn analyzer_configs_are_serde_data() {
    let config = AnalyzerConfig::english();
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(
        json,
        r#"{"segmenter":"unicode","english_possessive":true,"lowercase":true,"stopwords":"english","stemmer":"porter"}"#
    );
    let back: AnalyzerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    // fields left out keep the English defaults; other forms of the enums
    let c: AnalyzerConfig = serde_json::from_str(
        r#"{"segmenter":"jieba","stopwords":{"nltk":"chinese"},"stemmer":"none","english_possessive":false}"#,
    )
    .unwrap();
    assert_eq!(c, AnalyzerConfig::chinese());
    let c: AnalyzerConfig =
        serde_json::from_str(r#"{"stopwords":{"custom":["a","b"]},"stemmer":{"snowball":"french"}}"#).unwrap();
    assert_eq!(c.stemmer, Stemmer::Snowball(Language::French));
    assert!(serde_json::from_str::<AnalyzerConfig>(r#"{"stemer":"porter"}"#).is_err());
    // the built analyzer serialises as its config
    let a: Analyzer = serde_json::from_str(&json).unwrap();
    assert_eq!(a, Analyzer::english());
    assert_eq!(serde_json::to_string(&a).unwrap(), json);
    // index parameters
    let p = InvertedIndexParams::default();
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.starts_with(r#"{"scoring":"bm25","bm25":{"k1":1.2,"b":0.75,"length_norm":"lucene"}"#), "{json}");
    assert_eq!(serde_json::from_str::<InvertedIndexParams>(&json).unwrap(), p);
    assert_eq!(serde_json::from_str::<InvertedIndexParams>(r#"{"scoring":"bm25"}"#).unwrap(), p);
    assert_eq!(
        serde_json::from_str::<InvertedIndexParams>(r#"{"scoring":"dot"}"#).unwrap(),
        InvertedIndexParams::dot()
    );
}

/// `Bm25Formula` (for stores that keep postings elsewhere) scores every hit of the inverted
/// index bit for bit, from the statistics alone: both length norms, repeated query terms, after
/// removals.
#[test]
fn bm25_formula_scores_what_the_index_scores() {
    for (seed, length_norm) in [(5, LengthNorm::Lucene), (6, LengthNorm::Exact)] {
        let params = Bm25Params { k1: 0.9, b: 0.4, length_norm };
        let docs = random_corpus(1500, 400, seed);
        let mut index = bm25_index(AnalyzerConfig::plain(), params);
        for (id, d) in docs.iter().enumerate() {
            index.insert_text(id, d).unwrap();
        }
        for id in (0..docs.len()).step_by(7) {
            index.remove(id);
        }
        let live: Vec<usize> = (0..docs.len()).filter(|id| id % 7 != 0).collect();
        let analyzer = Analyzer::new(AnalyzerConfig::plain()).unwrap();
        let tf = |id: usize| -> BTreeMap<String, u32> {
            let mut counts = BTreeMap::new();
            for t in analyzer.analyze(&docs[id]) {
                *counts.entry(t).or_insert(0) += 1;
            }
            counts
        };
        let tfs: BTreeMap<usize, BTreeMap<String, u32>> = live.iter().map(|&id| (id, tf(id))).collect();
        let lens: BTreeMap<usize, u32> = tfs.iter().map(|(&id, c)| (id, c.values().sum())).collect();
        let with_terms = lens.values().filter(|&&l| l > 0).count();
        let total: u64 = lens.values().map(|&l| u64::from(l)).sum();
        let formula = Bm25Formula::new(&params, with_terms, total);
        let mut rng = SplitMix64::new(seed + 50);
        let mut checked = 0;
        for _ in 0..100 {
            let query = format!("{} {}", random_query(&mut rng, 400), random_query(&mut rng, 400));
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for t in analyzer.analyze(&query) {
                *counts.entry(t).or_insert(0) += 1;
            }
            for hit in index.search_text(&query, 50, None).unwrap() {
                let contributions = counts.iter().filter_map(|(term, &count)| {
                    let tf = *tfs[&hit.id].get(term)?;
                    let df = tfs.values().filter(|c| c.contains_key(term)).count();
                    Some(formula.contribution(formula.term_weight(count, df), tf, lens[&hit.id]))
                });
                assert_eq!(Bm25Formula::sum(contributions), hit.score, "query {query:?} doc {}", hit.id);
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
        assert_eq!(Bm25Formula::norm_length(&params, 201), if length_norm == LengthNorm::Lucene { 200 } else { 201 });
    }
}
