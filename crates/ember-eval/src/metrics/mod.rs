//! Evaluation metrics, computed the way MTEB computes them so that ember's scores can be compared
//! with published MTEB results.
//!
//! Every function takes plain slices and std collections (no models, no I/O) and is deterministic.
//! Each submodule's header states which MTEB / trec_eval / scikit-learn / SciPy code it follows,
//! and where it deliberately differs. Reference values used by the tests were produced by those
//! reference implementations (see `tests/fixtures/metrics/README.md`).
//!
//! | module | MTEB task type | main score |
//! |---|---|---|
//! | [`retrieval`] | Retrieval (and v2 Reranking) | `ndcg_at[10]` (trec_eval `ndcg_cut.10`) |
//! | [`correlation`] | STS | Spearman of cosine similarity vs gold |
//! | [`pair_classification`] | PairClassification | max AP over similarity functions |
//! | [`reranking`] | Reranking (v1 evaluator) | MAP |
//! | [`clustering`] | Clustering | V-measure of k-means clusters |
//! | [`classification`] | Classification | accuracy of logistic regression |
//!
//! Errors: inputs for which MTEB would crash or return NaN (no queries to average, empty or
//! mismatched slices, NaN scores, constant inputs to a correlation) are reported as
//! [`MetricsError`] rather than producing a number; no function here panics.
//! Values are `f64` and are *not* rounded (MTEB rounds the retrieval means to 5 decimals when it
//! reports them; do that when writing a report, not here).

pub mod classification;
pub mod clustering;
pub mod correlation;
pub mod pair_classification;
pub mod reranking;
pub mod retrieval;

use thiserror::Error;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// An input that must hold at least one element is empty.
    #[error("{what} is empty")]
    Empty { what: &'static str },
    /// Two inputs that must be parallel have different lengths.
    #[error("{left} has {left_len} values but {right} has {right_len}")]
    LengthMismatch { left: &'static str, left_len: usize, right: &'static str, right_len: usize },
    /// An input holds NaN (or an infinity where only finite values make sense).
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// A retrieval score is NaN, so the ranking is undefined (trec_eval would sort it arbitrarily).
    #[error("the run scores document {doc:?} for query {query:?} as NaN")]
    NanScore { query: String, doc: String },
    /// A correlation of a constant sequence is undefined (SciPy returns NaN and warns).
    #[error("{what} is constant: the correlation is undefined")]
    ConstantInput { what: &'static str },
    /// No query is both in the qrels and in the run, so there is nothing to average
    /// (MTEB would divide by zero).
    #[error("no query is both judged (qrels) and retrieved (run)")]
    NoEvaluatedQueries,
    /// A metric is undefined for these labels (for example average precision without positives).
    #[error("{0}")]
    Undefined(String),
    /// A parameter is out of its domain (k = 0, a label out of range, ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

/// Checks that `values` is non-empty and finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(MetricsError::Empty { what });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Checks that two parallel inputs have the same length.
pub(crate) fn check_same_len(left: &'static str, left_len: usize, right: &'static str, right_len: usize) -> Result<()> {
    if left_len == right_len {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch { left, left_len, right, right_len })
    }
}
