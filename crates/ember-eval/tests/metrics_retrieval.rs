//! ember's retrieval metrics against the output of the real trec_eval 9.0.4 binary, recorded once
//! in `tests/fixtures/metrics/*.trec_eval` (see the README there for how). trec_eval prints four
//! decimals, hence the 1e-4 tolerance (5e-5 rounding plus float noise).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ember_eval::metrics::retrieval::{evaluate, Qrels, Run, MTEB_K_VALUES};

const TOLERANCE: f64 = 1e-4;

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "metrics", name].iter().collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_qrels(text: &str) -> Qrels {
    let mut qrels = Qrels::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [query, _, doc, rel] = fields[..] else { panic!("bad qrels line {line:?}") };
        qrels.entry(query.to_owned()).or_default().insert(doc.to_owned(), rel.parse().unwrap());
    }
    qrels
}

fn parse_run(text: &str) -> Run {
    let mut run = Run::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [query, _, doc, _rank, score, _tag] = fields[..] else { panic!("bad run line {line:?}") };
        run.entry(query.to_owned()).or_default().insert(doc.to_owned(), score.parse().unwrap());
    }
    run
}

/// measure name -> query id (or "all") -> value
fn parse_trec_eval(text: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [measure, query, value] = fields[..] else { panic!("bad trec_eval line {line:?}") };
        out.entry(measure.to_owned()).or_default().insert(query.to_owned(), value.parse().unwrap());
    }
    out
}

fn check_case(name: &str) {
    let qrels = parse_qrels(&fixture(&format!("{name}.qrels")));
    let run = parse_run(&fixture(&format!("{name}.run")));
    let expected = parse_trec_eval(&fixture(&format!("{name}.trec_eval")));
    let scores = evaluate(&qrels, &run, &MTEB_K_VALUES).unwrap();

    // the same queries are evaluated
    assert_eq!(expected["num_q"]["all"] as usize, scores.num_queries, "{name}: num_q");
    let expected_queries: Vec<&String> = expected["P_1"].keys().filter(|q| *q != "all").collect();
    let queries: Vec<&String> = scores.per_query.keys().collect();
    assert_eq!(expected_queries, queries, "{name}: evaluated query ids");

    let mut compared = 0;
    let mut check = |measure: &str, query: &str, got: f64| {
        let want = expected[measure][query];
        assert!((got - want).abs() <= TOLERANCE, "{name}: {measure} of {query}: ember {got}, trec_eval {want}");
        compared += 1;
    };
    for k in MTEB_K_VALUES {
        for (query, q) in &scores.per_query {
            check(&format!("ndcg_cut_{k}"), query, q.ndcg_at[&k]);
            check(&format!("map_cut_{k}"), query, q.map_at[&k]);
            check(&format!("recall_{k}"), query, q.recall_at[&k]);
            check(&format!("P_{k}"), query, q.precision_at[&k]);
            check(&format!("success_{k}"), query, q.hit_rate_at[&k]);
        }
        check(&format!("ndcg_cut_{k}"), "all", scores.ndcg_at[&k]);
        check(&format!("map_cut_{k}"), "all", scores.map_at[&k]);
        check(&format!("recall_{k}"), "all", scores.recall_at[&k]);
        check(&format!("P_{k}"), "all", scores.precision_at[&k]);
        check(&format!("success_{k}"), "all", scores.hit_rate_at[&k]);
    }
    for (query, q) in &scores.per_query {
        check("recip_rank", query, q.reciprocal_rank);
    }
    check("recip_rank", "all", scores.reciprocal_rank);
    assert!(compared > 100);

    // MRR@k is not a trec_eval measure; it is recip_rank where the first relevant document is in
    // the top k (success_k = 1) and 0 otherwise, both of which trec_eval gives per query.
    for k in MTEB_K_VALUES {
        let mut sum = 0.0;
        for (query, q) in &scores.per_query {
            let want =
                if expected[&format!("success_{k}")][query] == 1.0 { expected["recip_rank"][query] } else { 0.0 };
            assert!((q.mrr_at[&k] - want).abs() <= TOLERANCE, "{name}: MRR@{k} of {query}");
            sum += q.mrr_at[&k];
        }
        assert!((scores.mrr_at[&k] - sum / scores.num_queries as f64).abs() < 1e-12);
    }
}

#[test]
fn hand_made_cases_match_trec_eval() {
    check_case("hand");
}

#[test]
fn random_cases_match_trec_eval() {
    check_case("random");
}

#[test]
fn skipped_queries_are_counted() {
    let qrels = parse_qrels(&fixture("hand.qrels"));
    let run = parse_run(&fixture("hand.run"));
    let scores = evaluate(&qrels, &run, &[10]).unwrap();
    // q3 is judged but not retrieved, q5 retrieved but not judged
    assert_eq!(scores.num_unretrieved_queries, 1);
    assert_eq!(scores.num_unjudged_queries, 1);
    let empty: HashMap<String, f32> = HashMap::new();
    let mut with_empty = run.clone();
    with_empty.insert("q3".into(), empty);
    // a judged query with an empty result list counts, with zeros (as in pytrec_eval)
    let more = evaluate(&qrels, &with_empty, &[10]).unwrap();
    assert_eq!(more.num_queries, scores.num_queries + 1);
    assert_eq!(more.per_query["q3"].ndcg_at[&10], 0.0);
}
