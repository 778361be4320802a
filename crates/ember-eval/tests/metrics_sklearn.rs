//! ember's metrics against SciPy / scikit-learn (and MTEB's threshold scans), whose values were
//! recorded once in `tests/fixtures/metrics/sklearn_reference.json` by `generate_sklearn.py`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ember_eval::metrics::classification::{self, LogisticRegression, LogisticRegressionConfig};
use ember_eval::metrics::clustering::{kmeans, v_measure, KMeansConfig};
use ember_eval::metrics::correlation::{pearson, spearman};
use ember_eval::metrics::pair_classification::{self, average_precision, PairScores};
use ember_eval::metrics::reranking::{self, RerankingInstance};
use serde_json::Value;

fn reference() -> Value {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "metrics", "sklearn_reference.json"].iter().collect();
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(|row| floats(row).into_iter().map(|x| x as f32).collect()).collect()
}

fn labels(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(got: f64, want: &Value, tolerance: f64, what: &str) {
    let want = want.as_f64().unwrap();
    assert!((got - want).abs() <= tolerance, "{what}: ember {got}, reference {want}");
}

#[test]
fn correlations_match_scipy() {
    for case in reference()["correlation"].as_array().unwrap() {
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        close(pearson(&a, &b).unwrap(), &case["pearson"], 1e-12, "pearson");
        close(spearman(&a, &b).unwrap(), &case["spearman"], 1e-12, "spearman");
    }
}

#[test]
fn pair_classification_matches_sklearn_and_mteb() {
    let reference = reference();
    for case in reference["pair_classification"].as_array().unwrap() {
        let (a, b) = (rows(&case["a"]), rows(&case["b"]));
        let truth: Vec<bool> = labels(&case["labels"]).into_iter().map(|l| l == 1).collect();
        let got = pair_classification::evaluate(&a, &b, &truth).unwrap();
        let expected = &case["expected"];
        let functions: [(&str, &PairScores); 4] =
            [("cosine", &got.cosine), ("dot", &got.dot), ("euclidean", &got.euclidean), ("manhattan", &got.manhattan)];
        for (name, scores) in functions {
            let e = &expected[name];
            // similarities computed in f64 here and in NumPy: only summation order differs
            close(scores.ap, &e["ap"], 1e-9, &format!("{name} ap"));
            close(scores.accuracy, &e["accuracy"], 1e-12, &format!("{name} accuracy"));
            close(scores.f1, &e["f1"], 1e-12, &format!("{name} f1"));
            close(scores.precision, &e["precision"], 1e-12, &format!("{name} precision"));
            close(scores.recall, &e["recall"], 1e-12, &format!("{name} recall"));
            close(scores.accuracy_threshold, &e["accuracy_threshold"], 1e-6, &format!("{name} accuracy threshold"));
            close(scores.f1_threshold, &e["f1_threshold"], 1e-6, &format!("{name} f1 threshold"));
        }
        close(got.max_ap, &expected["max_ap"], 1e-9, "max_ap");
    }
    let ties = &reference["average_precision_ties"];
    let truth: Vec<bool> = labels(&ties["labels"]).into_iter().map(|l| l == 1).collect();
    close(average_precision(&truth, &floats(&ties["scores"])).unwrap(), &ties["ap"], 1e-12, "AP with ties");
}

#[test]
fn reranking_matches_sklearn_ap() {
    let reference = reference();
    let case = &reference["reranking"];
    let data: Vec<(Vec<f64>, Vec<f64>)> = case["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (floats(&i["positive"]), floats(&i["negative"])))
        .collect();
    let instances: Vec<RerankingInstance<'_>> =
        data.iter().map(|(p, n)| RerankingInstance { positive: p, negative: n }).collect();
    let got = reranking::evaluate(&instances, 10).unwrap();
    close(got.map, &case["map"], 1e-12, "MAP");
    close(got.mrr, &case["mrr_at_10"], 1e-12, "MRR@10");
}

#[test]
fn v_measure_matches_sklearn() {
    for case in reference()["v_measure"].as_array().unwrap() {
        let got = v_measure(&labels(&case["truth"]), &labels(&case["pred"])).unwrap();
        close(got.homogeneity, &case["homogeneity"], 1e-12, "homogeneity");
        close(got.completeness, &case["completeness"], 1e-12, "completeness");
        close(got.v_measure, &case["v_measure"], 1e-12, "v_measure");
    }
}

#[test]
fn kmeans_reaches_sklearn_quality() {
    let reference = reference();
    let case = &reference["kmeans"];
    let points = rows(&case["points"]);
    let truth = labels(&case["labels"]);
    let fitted = kmeans(&points, &KMeansConfig { n_init: 10, ..KMeansConfig::new(5) }).unwrap();
    let sklearn_inertia = case["sklearn_inertia"].as_f64().unwrap();
    // same local optimum as scikit-learn's KMeans(n_init=10) on these blobs
    assert!(fitted.inertia <= sklearn_inertia * (1.0 + 1e-9), "{} vs {sklearn_inertia}", fitted.inertia);
    close(v_measure(&truth, &fitted.labels).unwrap().v_measure, &case["sklearn_v_measure"], 1e-9, "v_measure");
    // a single k-means++ run (MTEB's n_init) may stop in a worse local optimum, as scikit-learn's can
    let single = kmeans(&points, &KMeansConfig::new(5)).unwrap();
    assert!(single.inertia >= fitted.inertia * (1.0 - 1e-12), "{} vs {}", single.inertia, fitted.inertia);
}

#[test]
fn logistic_regression_matches_sklearn() {
    for case in reference()["logistic_regression"].as_array().unwrap() {
        let (x_train, y_train) = (rows(&case["x_train"]), labels(&case["y_train"]));
        let (x_test, y_test) = (rows(&case["x_test"]), labels(&case["y_test"]));
        let converged = LogisticRegressionConfig { max_iter: 10_000, tol: 1e-10, ..Default::default() };
        let model = LogisticRegression::fit(&x_train, &y_train, &converged).unwrap();
        assert!(model.converged);
        assert_eq!(model.predict(&x_test).unwrap(), labels(&case["predicted"]));
        let proba = model.predict_proba(&x_test).unwrap();
        for (got, want) in proba.iter().zip(case["proba"].as_array().unwrap()) {
            for (g, w) in got.iter().zip(floats(want)) {
                assert!((g - w).abs() < 1e-6, "probability {g} vs {w}");
            }
        }
        let scores = classification::evaluate(&x_train, &y_train, &x_test, &y_test, &converged).unwrap();
        close(scores.accuracy, &case["accuracy"], 1e-12, "accuracy");
        close(scores.f1_macro, &case["f1_macro"], 1e-12, "f1 macro");
        close(scores.f1_weighted, &case["f1_weighted"], 1e-12, "f1 weighted");
        // MTEB's settings (max_iter = 100, tol = 1e-4)
        let mteb = classification::evaluate(&x_train, &y_train, &x_test, &y_test, &LogisticRegressionConfig::default())
            .unwrap();
        close(mteb.accuracy, &case["mteb_settings_accuracy"], 1e-12, "accuracy with MTEB's settings");
    }
}
