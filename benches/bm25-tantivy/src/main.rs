//! BM25 top-10 query throughput: ember's `InvertedIndex` against tantivy on a 100k-document
//! corpus built deterministically from SciFact's abstracts.
//!
//! * Corpus: every SciFact title and abstract sentence (split after `. `) goes into a pool;
//!   document `i` is 4 to 12 pool entries drawn uniformly with a seeded SplitMix64 (seed 42),
//!   joined by spaces. 100,000 documents by default.
//! * Queries: SciFact's 300 test queries (`qrels/test.tsv`).
//! * `pre` (primary, apples to apples): ember indexes the raw text with
//!   `AnalyzerConfig::english()`; tantivy indexes ember's analyzer output (terms joined by
//!   spaces) with a whitespace tokenizer and no filters, so both hold identical terms. Each
//!   tantivy query is analyzed by ember's analyzer inside the timed loop, as `search_text`
//!   does for ember. A term repeated in a query gets boost = count in both engines (Anserini).
//!   tantivy's block-WAND only runs when every clause is a plain `TermQuery`, so a boosted
//!   clause sends it down its slower union path; `pre-noboost` drops the boosts (repeated terms
//!   deduplicated, tantivy's fast path for every query, scores differ from ember's on queries
//!   that repeat a term) to show tantivy's best case.
//! * `native` (secondary): tantivy's own analyzer on the raw text: SimpleTokenizer,
//!   LowerCaser, StopWordFilter with ember's (Lucene's) 33 stopwords, Stemmer(English)
//!   (Snowball English = Porter2; ember's is the original Porter).
//!
//! Single thread, top 10, searchers reused, one warm-up pass, then `--reps` timed passes per
//! engine (interleaved) and the median pass reported.
//!
//! Usage: bm25-tantivy [--data data/scifact] [--docs 100000] [--reps 5] [--mode pre|pre-noboost|native|both]
//!        [--show-diffs]   (print the queries whose top 10 differ, with both engines' scores)

use std::collections::HashSet;
use std::time::Instant;

use ember_index::sparse::{Analyzer, AnalyzerConfig, InvertedIndex, InvertedIndexParams, LUCENE_ENGLISH_STOPWORDS};
use tantivy::collector::TopDocs;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::tokenizer::{
    Language, LowerCaser, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer, WhitespaceTokenizer,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

const K: usize = 10;

struct SplitMix64(u64);
impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn read_jsonl(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn build_corpus(data: &str, n_docs: usize) -> (Vec<String>, usize) {
    let mut pool: Vec<String> = Vec::new();
    for doc in read_jsonl(&format!("{data}/corpus.jsonl")) {
        let title = doc["title"].as_str().unwrap_or("").trim();
        if !title.is_empty() {
            pool.push(title.to_string());
        }
        let text = doc["text"].as_str().unwrap_or("");
        for s in text.split_inclusive(". ") {
            let s = s.trim();
            if !s.is_empty() {
                pool.push(s.to_string());
            }
        }
    }
    let mut rng = SplitMix64(42);
    let docs = (0..n_docs)
        .map(|_| {
            let n = 4 + rng.below(9);
            (0..n).map(|_| pool[rng.below(pool.len())].as_str()).collect::<Vec<_>>().join(" ")
        })
        .collect();
    (docs, pool.len())
}

fn load_queries(data: &str) -> Vec<String> {
    let test: HashSet<String> = std::fs::read_to_string(format!("{data}/qrels/test.tsv"))
        .expect("qrels/test.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect();
    read_jsonl(&format!("{data}/queries.jsonl"))
        .into_iter()
        .filter(|q| test.contains(q["_id"].as_str().unwrap_or("")))
        .map(|q| q["text"].as_str().unwrap_or("").to_string())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A disjunction of the terms, a repeated term boosted by its count (as ember and Anserini).
fn disjunction(field: Field, terms: impl IntoIterator<Item = String>, boost: bool) -> BooleanQuery {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for t in terms {
        match counts.iter_mut().find(|(w, _)| *w == t) {
            Some((_, c)) => *c += 1,
            None => counts.push((t, 1)),
        }
    }
    let clauses: Vec<(Occur, Box<dyn Query>)> = counts
        .into_iter()
        .map(|(t, c)| {
            let q: Box<dyn Query> =
                Box::new(TermQuery::new(Term::from_field_text(field, &t), IndexRecordOption::WithFreqs));
            let q: Box<dyn Query> = if boost && c > 1 { Box::new(BoostQuery::new(q, c as f32)) } else { q };
            (Occur::Should, q)
        })
        .collect();
    BooleanQuery::new(clauses)
}

struct Tantivy {
    reader: IndexReader,
    field: Field,
}

fn build_tantivy(texts: &[String], analyzer: TextAnalyzer) -> (Tantivy, f64, usize) {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default().set_tokenizer("bench").set_index_option(IndexRecordOption::WithFreqs);
    let field = builder.add_text_field("body", TextOptions::default().set_indexing_options(indexing));
    let id = builder.add_u64_field("id", FAST);
    let index = Index::create_in_ram(builder.build());
    index.tokenizers().register("bench", analyzer);
    let t0 = Instant::now();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 1_000_000_000).expect("writer");
    writer.set_merge_policy(Box::new(NoMergePolicy));
    for (i, text) in texts.iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(field, text);
        doc.add_u64(id, i as u64);
        writer.add_document(doc).expect("add");
    }
    writer.commit().expect("commit");
    let segments = index.searchable_segment_ids().expect("segments");
    if segments.len() > 1 {
        writer.merge(&segments).wait().expect("merge");
    }
    writer.wait_merging_threads().expect("wait");
    let secs = t0.elapsed().as_secs_f64();
    let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().expect("reader");
    let n_segments = reader.searcher().segment_readers().len();
    (Tantivy { reader, field }, secs, n_segments)
}

fn tantivy_ids(searcher: &Searcher, hits: &[(f32, DocAddress)]) -> Vec<usize> {
    hits.iter()
        .map(|(_, a)| {
            let col = searcher.segment_reader(a.segment_ord).fast_fields().u64("id").expect("id column");
            col.first(a.doc_id).expect("id") as usize
        })
        .collect()
}

/// Mean |A ∩ B| / max(|A|, |B|) over queries, lists with the same set, lists identical in order.
fn overlap(a: &[Vec<usize>], b: &[Vec<usize>]) -> (f64, usize, usize) {
    let mut sum = 0.0;
    let mut identical = 0;
    let mut same_set = 0;
    for (x, y) in a.iter().zip(b) {
        let xs: HashSet<_> = x.iter().collect();
        let common = y.iter().filter(|i| xs.contains(i)).count();
        let denom = x.len().max(y.len()).max(1);
        sum += common as f64 / denom as f64;
        if x == y {
            identical += 1;
        }
        if common == x.len() && x.len() == y.len() {
            same_set += 1;
        }
    }
    (sum / a.len() as f64, same_set, identical)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or(default.to_string())
    };
    let data = arg("--data", "data/scifact");
    let n_docs: usize = arg("--docs", "100000").parse().expect("--docs");
    let reps: usize = arg("--reps", "5").parse().expect("--reps");
    let mode = arg("--mode", "both");

    let (docs, pool) = build_corpus(&data, n_docs);
    let queries = load_queries(&data);
    let analyzer = Analyzer::english();
    let avg_words = docs.iter().map(|d| d.split_whitespace().count()).sum::<usize>() as f64 / docs.len() as f64;
    println!(
        "corpus: {} docs from a pool of {pool} SciFact sentences/titles, {avg_words:.1} words/doc; {} queries; k = {K}; {reps} reps",
        docs.len(),
        queries.len()
    );

    // ember
    let t0 = Instant::now();
    let mut ember = InvertedIndex::new(InvertedIndexParams::bm25(AnalyzerConfig::english())).expect("index");
    for (i, d) in docs.iter().enumerate() {
        ember.insert_text(i, d).expect("insert");
    }
    let ember_build = t0.elapsed().as_secs_f64();
    println!("ember: build {ember_build:.2} s ({} terms, {} postings)", ember.term_count(), ember.posting_count());
    let ember_search =
        |q: &str| -> Vec<usize> { ember.search_text(q, K, None).expect("search").into_iter().map(|s| s.id).collect() };
    let ember_hits: Vec<Vec<usize>> = queries.iter().map(|q| ember_search(q)).collect();
    let time_ember = || {
        let t = Instant::now();
        let mut n = 0;
        for q in &queries {
            n += ember.search_text(q, K, None).expect("search").len();
        }
        std::hint::black_box(n);
        t.elapsed().as_secs_f64()
    };

    let mut rows: Vec<String> = Vec::new();
    let modes: Vec<&str> = match mode.as_str() {
        "both" => vec!["pre", "pre-noboost", "native"],
        "pre" => vec!["pre"],
        "pre-noboost" => vec!["pre-noboost"],
        _ => vec!["native"],
    };
    for m in modes {
        let (tv, build, segs, pre_secs) = if m.starts_with("pre") {
            let t = Instant::now();
            let analyzed: Vec<String> = docs.iter().map(|d| analyzer.analyze(d).join(" ")).collect();
            let pre_secs = t.elapsed().as_secs_f64();
            let (tv, build, segs) =
                build_tantivy(&analyzed, TextAnalyzer::builder(WhitespaceTokenizer::default()).build());
            (tv, build, segs, Some(pre_secs))
        } else {
            let a = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(StopWordFilter::remove(LUCENE_ENGLISH_STOPWORDS.iter().map(|w| w.to_string())))
                .filter(Stemmer::new(Language::English))
                .build();
            let (tv, build, segs) = build_tantivy(&docs, a);
            (tv, build, segs, None)
        };
        let searcher = tv.reader.searcher();
        let mut native = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(StopWordFilter::remove(LUCENE_ENGLISH_STOPWORDS.iter().map(|w| w.to_string())))
            .filter(Stemmer::new(Language::English))
            .build();
        let mut make_query = |q: &str| -> BooleanQuery {
            if m.starts_with("pre") {
                disjunction(tv.field, analyzer.analyze(q), m == "pre")
            } else {
                let mut terms = Vec::new();
                let mut stream = native.token_stream(q);
                while let Some(tok) = stream.next() {
                    terms.push(tok.text.clone());
                }
                disjunction(tv.field, terms, true)
            }
        };
        let top = TopDocs::with_limit(K);
        let tv_scored: Vec<Vec<(f32, DocAddress)>> =
            queries.iter().map(|q| searcher.search(&make_query(q), &top).expect("search")).collect();
        let tv_hits: Vec<Vec<usize>> = tv_scored.iter().map(|h| tantivy_ids(&searcher, h)).collect();
        if args.iter().any(|a| a == "--show-diffs") {
            // tantivy keeps BM25's (k1 + 1) factor, which ember (as Lucene ≥ 8) drops.
            for (qi, q) in queries.iter().enumerate() {
                if ember_hits[qi] != tv_hits[qi] {
                    let e = ember.search_text(q, K, None).expect("search");
                    println!("[{m}] differs: {q}");
                    println!("  ember:   {:?}", e.iter().map(|s| (s.id, s.score)).collect::<Vec<_>>());
                    println!(
                        "  tantivy: {:?}",
                        tv_hits[qi].iter().zip(&tv_scored[qi]).map(|(id, (sc, _))| (*id, sc / 2.2)).collect::<Vec<_>>()
                    );
                }
            }
        }
        let prebuilt: Vec<BooleanQuery> = queries.iter().map(|q| make_query(q)).collect();
        let mut time_tantivy = || {
            let t = Instant::now();
            let mut n = 0;
            for q in &queries {
                n += searcher.search(&make_query(q), &top).expect("search").len();
            }
            std::hint::black_box(n);
            t.elapsed().as_secs_f64()
        };
        // Breakdown: tantivy with the queries built beforehand (search only), and the cost of
        // ember's query analysis alone (inside both engines' timed loops above).
        let repeated = queries
            .iter()
            .filter(|q| {
                let t = analyzer.analyze(q);
                t.iter().collect::<HashSet<_>>().len() < t.len()
            })
            .count();
        let time_prebuilt = || {
            let t = Instant::now();
            let mut n = 0;
            for q in &prebuilt {
                n += searcher.search(q, &top).expect("search").len();
            }
            std::hint::black_box(n);
            t.elapsed().as_secs_f64()
        };
        let time_analysis = || {
            let t = Instant::now();
            let mut n = 0;
            for q in &queries {
                n += analyzer.analyze(q).len();
            }
            std::hint::black_box(n);
            t.elapsed().as_secs_f64()
        };
        // warm-up
        time_ember();
        time_tantivy();
        time_prebuilt();
        let (mut te, mut tt, mut tp, mut ta) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            te.push(time_ember());
            tt.push(time_tantivy());
            tp.push(time_prebuilt());
            ta.push(time_analysis());
        }
        let nq_ = queries.len() as f64;
        println!(
            "[{m}] tantivy search only (queries prebuilt): {:.0} QPS; ember query analysis alone: {:.1} µs/query; {repeated} queries repeat a term (boosted clause)",
            nq_ / median(tp),
            median(ta) / nq_ * 1e6
        );
        let nq = queries.len() as f64;
        let qe = nq / median(te.clone());
        let qt = nq / median(tt.clone());
        let (ov, same_set, identical) = overlap(&ember_hits, &tv_hits);
        println!(
            "[{m}] tantivy: build {build:.2} s ({segs} segment){}",
            pre_secs.map(|s| format!(", plus {s:.2} s of ember analysis beforehand")).unwrap_or_default()
        );
        println!("[{m}] ember   passes (s): {:?}", te.iter().map(|x| (x * 1e4).round() / 1e4).collect::<Vec<_>>());
        println!("[{m}] tantivy passes (s): {:?}", tt.iter().map(|x| (x * 1e4).round() / 1e4).collect::<Vec<_>>());
        println!(
            "[{m}] QPS ember {qe:.0}, tantivy {qt:.0}, ratio {:.2}x; top-{K} overlap {:.2}% ({same_set}/{} same set, {identical} same order)",
            qe / qt,
            ov * 100.0,
            queries.len()
        );
        rows.push(format!(
            "| {m} | {qe:.0} | {qt:.0} | {:.2}× | {ember_build:.1} s | {build:.1} s | {:.2}% | {same_set} / {identical} of {} |",
            qe / qt,
            ov * 100.0,
            queries.len()
        ));
    }
    println!("\n| tantivy input | ember QPS | tantivy QPS | ember / tantivy | ember build | tantivy build | top-10 overlap | same set / same order |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!("{r}");
    }
}
